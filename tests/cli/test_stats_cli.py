"""`cgr stats show`, `cgr thresholds show`, `cgr suppliers` against the real servers (tutorial plan)."""

from __future__ import annotations

import asyncio
import json

from cgrates.v1 import stats_pb2_grpc, thresholds_pb2_grpc
from cgrpy.cli.main import main
from cgrpy.cli.stats import table
from services.rals.server import RalsServer
from services.stats.server import StatsServer
from services.suppliers.server import SuppliersServer
from services.thresholds.server import ThresholdsServer
from tests.harness import serve
from tests.stats.test_contract import cdr
from tests.suite import free_port
from tests.thresholds.test_contract import ev

ZERO = "0001-01-01T00:00:00Z"


async def cli(*argv: str) -> int:
    # the CLI is synchronous; the servers run on this loop
    return await asyncio.to_thread(main, list(argv))


def test_table_aligns_columns():
    assert table(("A", "LONGER"), [("xyz", "1"), ("q", "")]).splitlines() == [
        "A    LONGER", "xyz  1", "q"]


async def test_stats_show(db_url, capsys):
    async with serve(StatsServer, db_url) as svc:
        stub = stats_pb2_grpc.StatsServiceStub(svc.channel)
        # Stats2 gets 60s/0.6 and 30s/0.4 -> *tcc 1, *tcd 1m30s
        await stub.ProcessEvent(cdr("c1", "1001", "1002", "60s", "0.6"))
        await stub.ProcessEvent(cdr("c2", "1001", "1002", "30s", "0.4"))

        assert await cli("stats", "show", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.splitlines() == [
            "QUEUE     METRIC  VALUE",
            "Stats2    *tcd    1m30s",
            "Stats2    *tcc    1",
            "Stats2_1  *tcd    N/A",
            "Stats2_1  *tcc    N/A",
        ]
        assert await cli("stats", "show", "Stats2", "--json", "--addr", svc.addr,
                         "--tenant", "cgrates.org") == 0
        assert json.loads(capsys.readouterr().out) == {"Stats2": {"*tcc": "1", "*tcd": "1m30s"}}

        assert await cli("stats", "show", "Nope", "--addr", svc.addr) == 1
        assert capsys.readouterr().err.strip() == "cgr stats: NOT_FOUND"
        assert await cli("stats", "show", "--tenant", "other.org", "--addr", svc.addr) == 1
        assert capsys.readouterr().err.strip() == "cgr stats: NOT_FOUND"


async def test_thresholds_show(sqlite_url, capsys):
    async with serve(RalsServer, sqlite_url) as rals, serve(
        ThresholdsServer, sqlite_url, tariffplan=None, env={"CGRPY_RALS_ADDR": rals.addr}
    ) as svc:
        assert await cli("thresholds", "show", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.splitlines() == [
            "THRESHOLD      HITS  SNOOZE",
            f"THD_ACNT_1001  0     {ZERO}",
            f"THD_ACNT_1002  0     {ZERO}",
        ]
        stub = thresholds_pb2_grpc.ThresholdsServiceStub(svc.channel)
        assert list((await stub.ProcessEvent(ev("t1", Account="1002"))).ids) == ["THD_ACNT_1002"]
        assert await cli("thresholds", "show", "THD_ACNT_1002", "--json", "--addr", svc.addr) == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["ID"], shown["Hits"]) == ("THD_ACNT_1002", 1)
        assert shown["Snooze"] != ZERO  # MinSleep 1s: snoozed after the hit

        # THD_ACNT_1001: MaxHits 1 -> fires once, then it is gone
        assert list((await stub.ProcessEvent(ev("t2", Account="1001"))).ids) == ["THD_ACNT_1001"]
        assert await cli("thresholds", "show", "--json", "--addr", svc.addr) == 0
        assert [t["ID"] for t in json.loads(capsys.readouterr().out)] == ["THD_ACNT_1002"]
        assert await cli("thresholds", "show", "THD_ACNT_1001", "--addr", svc.addr) == 1
        assert capsys.readouterr().err.strip() == "cgr thresholds: NOT_FOUND"


async def test_suppliers(db_url, capsys):
    async with serve(SuppliersServer, db_url) as svc:
        # SPL_ACNT_1001 (*weight) -> supplier2 (20), supplier1 (10)
        assert await cli("suppliers", "--account", "1001", "--destination", "1002", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.splitlines() == [
            "profile: SPL_ACNT_1001  sorting: *weight",
            "#  SUPPLIER   PARAMETERS  SORTING DATA",
            "1  supplier2  -           Weight=20",
            "2  supplier1  -           Weight=10",
            "digest: supplier2,supplier1",
        ]
        assert await cli("suppliers", "--account", "1001", "--destination", "1002", "--json",
                         "--limit", "1", "--addr", svc.addr) == 0
        assert json.loads(capsys.readouterr().out) == {
            "SortedSuppliers": {
                "ProfileID": "SPL_ACNT_1001", "Sorting": "*weight", "Count": 1,
                "SortedSuppliers": [
                    {"SupplierID": "supplier2", "SupplierParameters": "", "SortingData": {"Weight": 20}}]},
            "SuppliersDigest": "supplier2",
        }
        assert await cli("suppliers", "--account", "9999", "--destination", "1002", "--addr", svc.addr) == 1
        assert capsys.readouterr().err.strip().startswith("cgr suppliers: NOT_FOUND")
        assert await cli("suppliers", "--account", "1001", "--destination", "1002", "--event", "Usage",
                         "--addr", svc.addr) == 2
        assert "expected NAME=value" in capsys.readouterr().err


async def test_unreachable_service_is_one_line(capsys):
    addr = f"127.0.0.1:{free_port()}"
    for argv, name in ((["stats", "show"], "stats"), (["thresholds", "show", "X"], "thresholds"),
                       (["suppliers", "--account", "1001", "--destination", "1002"], "suppliers")):
        assert await cli(*argv, "--addr", addr) == 1
        err = capsys.readouterr().err
        assert err == f"cgr {name}: {name} at {addr} not reachable (UNAVAILABLE)\n", err
