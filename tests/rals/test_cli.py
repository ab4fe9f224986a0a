"""`cgr cost`, `cgr account`, `cgr balance` against a real served RALs (tutorial plan)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from cgrpy.cli.main import main
from services.rals.server import RalsServer
from tests.harness import serve
from tests.suite import free_port

T0 = "2014-08-04T13:00:00Z"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # The CLI is a blocking gRPC client: run it off the loop that serves RALs.
    capsys.readouterr()
    rc = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


async def test_cost_table_and_json(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with serve(RalsServer, pg_url) as svc:
        base = ("cost", "--addr", svc.addr, "--tenant", "cgrates.org", "--category", "call",
                "--subject", "1001", "--destination", "1002", "--answer-time", T0, "--usage", "85s")
        rc, out, _ = await cli(capsys, *base, "--json")
        assert rc == 0
        got = json.loads(out, parse_float=Decimal)
        # 1001 -> 1002, 85 s = 0.4 connect + 0.2 + 25 x 0.00167
        assert got["Cost"] == Decimal("0.64175") and got["Usage"] == 85 * 10**9
        assert got["ConnectFee"] == Decimal("0.4")
        spans = got["Timespans"]
        assert [(s["TimeStart"], s["Usage"], s["Cost"]) for s in spans] == [
            ("2014-08-04T13:00:00Z", 60 * 10**9, Decimal("0.6")),
            ("2014-08-04T13:01:00Z", 25 * 10**9, Decimal("0.04175"))]
        assert spans[0]["RatingPlanID"] == "RP_1001" and spans[0]["DestinationID"] == "DST_1002"
        assert spans[1]["Rate"] == {"Value": Decimal("0.1"), "RateUnit": 60 * 10**9,
                                    "RateIncrement": 10**9, "GroupIntervalStart": 60 * 10**9}
        assert "CostDetails" not in got
        rc, out, _ = await cli(capsys, *base, "--json", "--details")
        assert json.loads(out)["CostDetails"]["Charges"][0]["RatingID"]

        rc, out, _ = await cli(capsys, *base)
        assert rc == 0
        lines = out.splitlines()
        assert lines[0].split() == ["Cost", "0.64175"]
        assert lines[1].split() == ["Usage", "1m25s"] and lines[2].split() == ["ConnectFee", "0.4"]
        assert lines[6].split()[:5] == ["2014-08-04T13:01:00Z", "25s", "0.04175", "RP_1001",
                                        "DST_1002"]

        rc, _, err = await cli(capsys, "cost", "--addr", svc.addr, "--subject", "nobody",
                               "--destination", "1002", "--usage", "1m", "--answer-time", T0)
        assert rc == 1 and err.startswith("cgr cost: ") and err.count("\n") == 1
        assert "RATING_PLAN_NOT_FOUND" in err
        rc, _, err = await cli(capsys, *base[:-1], "85 seconds")
        assert rc == 2 and "--usage" in err


async def test_cost_unreachable_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    addr = f"127.0.0.1:{free_port()}"
    rc, out, err = await cli(capsys, "cost", "--addr", addr, "--subject", "1001",
                             "--destination", "1002", "--usage", "1m", "--json")
    assert rc == 1 and out == ""
    assert err == f"cgr cost: RALs unreachable at {addr} (UNAVAILABLE)\n"
    rc, _, err = await cli(capsys, "account", "get", "1001", "--addr", addr)
    assert rc == 1 and err.count("\n") == 1 and "unreachable" in err


async def test_account_and_balance_commands(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with serve(RalsServer, pg_url) as svc:
        a = ("--addr", svc.addr)
        # the tutorial's AP_PACKAGE_10 topped 1001 up to 10 ("test" balance)
        rc, out, _ = await cli(capsys, "account", "get", "1001", *a, "--json")
        assert rc == 0
        acc = json.loads(out, parse_float=Decimal)
        assert [(b["ID"], b["Value"]) for b in acc["BalanceMap"]["*monetary"]] == [("test", 10)]
        rc, out, _ = await cli(capsys, "account", "get", "1001", *a)
        assert out.splitlines()[0] == "cgrates.org:1001"
        assert out.splitlines()[2].split()[:3] == ["*monetary", "test", "10"]

        rc, out, _ = await cli(capsys, "account", "set", "9001", *a, "--allow-negative")
        assert rc == 0 and out.startswith("cgrates.org:9001  [allow_negative]")
        rc, out, _ = await cli(capsys, "balance", "add", "9001", *a, "--value", "2.5", "--json")
        assert rc == 0
        rc, out, _ = await cli(capsys, "balance", "add", "9001", *a, "--value", "0.25", "--json")
        bal = json.loads(out, parse_float=Decimal)["BalanceMap"]["*monetary"]
        assert [(b["ID"], b["Value"]) for b in bal] == [("*default", Decimal("2.75"))]
        rc, out, _ = await cli(capsys, "balance", "set", "9001", *a, "--id", "promo",
                               "--value", "1", "--weight", "20", "--destination-ids", "DST_1002",
                               "--json")
        bal = json.loads(out, parse_float=Decimal)["BalanceMap"]["*monetary"]
        assert {b["ID"]: (b["Value"], b["Weight"], b["DestinationIDs"]) for b in bal} == {
            "*default": (Decimal("2.75"), 0, {}), "promo": (1, 20, {"DST_1002": True})}
        rc, _, err = await cli(capsys, "balance", "add", "9001", *a, "--value", "1,5")
        assert rc == 2 and "--value" in err

        # debit 1001 -> 1002 85 s on 1001 (CDR-style *postpaid: the rounded 0.6418)
        deb = ("balance", "debit", "1001", *a, "--destination", "1002", "--usage", "85s",
               "--answer-time", T0, "--request-id", "cli-test-1", "--json")
        rc, out, _ = await cli(capsys, *deb)
        first = json.loads(out, parse_float=Decimal)
        assert rc == 0 and first == {"RequestID": "cli-test-1", "Cost": Decimal("0.6418"),
                                     "Usage": 85 * 10**9, "Duplicate": False}
        rc, out, _ = await cli(capsys, *deb)
        assert json.loads(out, parse_float=Decimal)["Duplicate"] is True
        rc, out, _ = await cli(capsys, "account", "get", "1001", *a, "--json")
        assert json.loads(out, parse_float=Decimal)["BalanceMap"]["*monetary"][0]["Value"] == \
            Decimal("9.3582")
        rc, out, _ = await cli(capsys, *deb[:-3])  # a fresh request id: a second debit
        assert rc == 0 and out.startswith("debited 0.6418 for 1m25s from cgrates.org:1001")

        # verify: RALs reads the StorDB, not its cache
        rc, out, _ = await cli(capsys, "account", "verify", *a, "--json")
        rep = json.loads(out)
        assert rc == 0 and rep["OK"] is True
        assert {r["Account"] for r in rep["Accounts"]} >= {"1001", "1002", "1003", "9001"}
        rc, out, _ = await cli(capsys, "account", "verify", "1001", *a)
        assert rc == 0 and out.splitlines() == ["ok    cgrates.org:1001",
                                                "1 accounts checked, 0 inconsistent"]

        rc, out, _ = await cli(capsys, "account", "remove", "9001", *a)
        assert rc == 0 and out == "removed cgrates.org:9001\n"
        rc, out, _ = await cli(capsys, "account", "remove", "9001", *a, "--json")  # idempotent
        assert rc == 0 and json.loads(out)["Removed"] is True
        rc, _, err = await cli(capsys, "account", "get", "9001", *a)
        assert rc == 1 and err.startswith("cgr account get: NOT_FOUND")
        rc, out, _ = await cli(capsys, "account", "verify", "9001", *a)
        assert rc == 1 and "NOT_FOUND" in out


async def test_verify_finds_a_tampered_balance(sqlite_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import update

    from cgrpy.storage.db import make_engine
    from cgrpy.storage.models.accounts import balances

    async with serve(RalsServer, sqlite_url) as svc:  # provisions the tutorial's accounts
        rc, _, _ = await cli(capsys, "account", "verify", "--addr", svc.addr,
                             "--tenant", "cgrates.org")
        assert rc == 0
        engine = make_engine(sqlite_url)
        with engine.begin() as conn:  # money appearing without a journal row
            conn.execute(update(balances).where(balances.c.account == "1002").values(value="11"))
        engine.dispose()
        rc, out, _ = await cli(capsys, "account", "verify", "--addr", svc.addr)
        assert rc == 1
        assert "DIFF  cgrates.org:1002 balance" in out and "value 11 != journal 10" in out
        assert out.splitlines()[-1] == "3 accounts checked, 1 inconsistent"
