"""`cgr attributes ...` / `cgr chargers ...` against the real servers (tutorial plan)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from cgrpy.cli.main import main
from cgrpy.cli.profiles import UsageError, parse_fields
from cgrpy.event import loads_exact
from services.attributes.server import AttributesServer
from services.chargers.server import ChargersServer
from tests.harness import serve


def test_parse_fields():
    assert parse_fields(["Account=1001", "Usage:=60000000000", "Cost:=0.10", "X=a=b",
                         "Flag:=true", "Empty="]) == {
        "Account": "1001", "Usage": 60_000_000_000, "Cost": Decimal("0.10"), "X": "a=b",
        "Flag": True, "Empty": ""}
    with pytest.raises(UsageError, match="'Account': expected NAME=value"):
        parse_fields(["Account"])
    with pytest.raises(UsageError, match="'nope' is not JSON"):
        parse_fields(["Cost:=nope"])


async def cli(*argv: str) -> int:
    # the CLI is synchronous; the servers run on this loop
    return await asyncio.to_thread(main, list(argv))


async def test_cli_attributes_and_chargers(sqlite_url, capsys):
    async with serve(AttributesServer, sqlite_url) as attrs, serve(
        ChargersServer, sqlite_url, tariffplan=None, env={"CGRPY_ATTRIBUTES_ADDR": attrs.addr}
    ) as chrg:
        assert await cli("attributes", "process", "--addr", attrs.addr, "--context", "*sessions",
                         "--event", "Account=1001", "Cost:=0.1000000000000000000000000000001") == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "matched: ATTR_1001_SESSIONAUTH"
        assert out[1] == "altered: *req.Password *req.RequestType *req.PaypalAccount *req.LCRProfile"
        assert '"Cost":0.1000000000000000000000000000001' in out[2]

        assert await cli("attributes", "process", "--addr", attrs.addr, "--json",
                         "--tenant", "cgrates.com", "--context", "*cdrs", "--process-runs", "2",
                         "--event", "SubscriberId=1006") == 0
        reply = loads_exact(capsys.readouterr().out)
        assert reply["MatchedProfiles"] == ["ATTR_TNT_ALIAS", "ATTR_ACC_ALIAS"]
        assert reply["CGREvent"]["Tenant"] == "cgrates.org"

        assert await cli("attributes", "process", "--addr", attrs.addr, "--context", "*cdrs",
                         "--event", "Account=1001") == 1
        assert capsys.readouterr().err.strip() == "cgr attributes: NOT_FOUND"
        assert await cli("attributes", "process", "--addr", attrs.addr, "--event", "Account") == 2
        assert "expected NAME=value" in capsys.readouterr().err

        assert await cli("attributes", "get", "--addr", attrs.addr, "ATTR_1001_SIMPLEAUTH") == 0
        assert json.loads(capsys.readouterr().out)["Weight"] == 20
        assert await cli("attributes", "ids", "--addr", attrs.addr, "--tenant", "cgrates.com") == 0
        assert capsys.readouterr().out.split() == ["ATTR_TNT_1001", "ATTR_TNT_ALIAS", "ATTR_TNT_DISC"]

        assert await cli("chargers", "process", "--addr", chrg.addr, "--json",
                         "--event", "Account=1001", "RequestType=*prepaid") == 0
        runs = json.loads(capsys.readouterr().out)
        assert [(r["ChargerSProfile"], r["AttributeSProfiles"], r["CGREvent"]["Event"]["RequestType"],
                 r["CGREvent"]["Event"]["RunID"]) for r in runs] == [
            ("DEFAULT", None, "*prepaid", "*default"),
            ("Raw", ["*constant:*req.RequestType:*none"], "*none", "*raw")]
        assert await cli("chargers", "process", "--addr", chrg.addr, "--event", "Account=1001") == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "DEFAULT RunID=*default attributes=- altered=*req.RunID"
        assert out[2] == ("Raw RunID=*raw attributes=*constant:*req.RequestType:*none "
                          "altered=*req.RunID,*req.RequestType")
        assert await cli("chargers", "ids", "--addr", chrg.addr, "--json") == 0
        assert json.loads(capsys.readouterr().out) == ["DEFAULT", "Raw"]

    assert await cli("chargers", "ids", "--addr", "127.0.0.1:1") == 1
    assert "not reachable (UNAVAILABLE)" in capsys.readouterr().err
