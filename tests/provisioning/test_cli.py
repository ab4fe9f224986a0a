"""`cgr profiles set|get|rm|ids` against the real RALs (TariffPlanService) and AttributeS."""

from __future__ import annotations

import asyncio
import json

from cgrates.v1 import attributes_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.cli.main import main
from cgrpy.event import loads_exact
from services.attributes.server import AttributesServer
from services.rals.server import RalsServer
from tests.attributes.test_contract import fields, request
from tests.harness import serve
from tests.provisioning.common import addrs, dump

CSV = """#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight
cgrates.org,ATTR_CLI,*any,*string:~*req.Account:1030,,,*req.Password,*constant,pw,false,10
cgrates.org,ATTR_CLI,,,,,*req.RequestType,*constant,*pseudoprepaid,,
"""


async def cli(monkeypatch, env: dict[str, str], *argv: str) -> int:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return await asyncio.to_thread(main, list(argv))


async def test_profiles_cli(sqlite_url, tmp_path, monkeypatch, capsys):
    async with serve(AttributesServer, sqlite_url) as attrs, \
            serve(RalsServer, sqlite_url, tariffplan=None, env=addrs(attributes=attrs.addr)) as rals:
        env = {**addrs(attributes=attrs.addr, rals=rals.addr), "CGRPY_STORDB_URL": sqlite_url}
        snippet = tmp_path / "attrs.csv"
        snippet.write_text(CSV)
        assert await cli(monkeypatch, env, "profiles", "set", "Attributes", "--csv", str(snippet)) == 0
        out = capsys.readouterr().out
        assert "Attribute cgrates.org:ATTR_CLI: stored 2 row(s)" in out and "attributes reloaded" in out
        res = await attributes_pb2_grpc.AttributesServiceStub(attrs.channel).ProcessEvent(request({"Account": "1030"}))
        assert fields(res)["RequestType"] == "*pseudoprepaid"
        # stored exactly as the CSV rows
        assert [r for r in dump(sqlite_url)["Attributes"] if r["ID"] == "ATTR_CLI"][1]["Value"] == "*pseudoprepaid"

        assert await cli(monkeypatch, env, "profiles", "get", "Attribute", "ATTR_CLI") == 0
        got = json.loads(capsys.readouterr().out)
        assert got["FilterIDs"] == ["*string:~*req.Account:1030"] and got["Weight"] == 10

        before = dump(sqlite_url)
        bad = json.dumps({"ID": "ATTR_BAD", "Weight": "heavy", "Attributes": [{"Path": "*req.A", "Value": "1"}]})
        assert await cli(monkeypatch, env, "profiles", "set", "Attribute", "--json", bad) == 1
        assert "column Weight: not a number" in capsys.readouterr().err
        assert dump(sqlite_url) == before

        assert await cli(monkeypatch, env, "profiles", "ids", "Attribute") == 0
        assert "ATTR_CLI" in capsys.readouterr().out.split()
        assert await cli(monkeypatch, env, "profiles", "rm", "Attribute", "ATTR_CLI") == 0
        assert await cli(monkeypatch, env, "profiles", "get", "Attribute", "ATTR_CLI") == 1
        assert capsys.readouterr().err.strip() == "cgr profiles: NOT_FOUND"
        assert await cli(monkeypatch, env, "profiles", "get", "Gizmo", "X") == 2


# An ActionTriggers snippet as an operator writes it: the balance filter is only the type, every
# other balance cell empty (= no filter, as `cgr load` reads it).
TRIGGERS_CSV = """#Tag,UniqueId,ThresholdType,ThresholdValue,Recurrent,MinSleep,ExpiryTime,ActivationTime,BalanceTag,BalanceType,BalanceCategories,BalanceDestinationIds,BalanceRatingSubject,BalanceSharedGroup,BalanceExpiryTime,BalanceTimingIds,BalanceWeight,BalanceBlocker,BalanceDisabled,ActionsId,Weight
TRG_CLI,low,*min_balance,9.5,false,0,,,,*monetary,,,,,,,,,,ACT_CLI_LOW,10
"""
ACTIONS_CSV = """#ActionsId[0],Action[1],ExtraParameters[2],Filter[3],BalanceId[4],BalanceType[5],Categories[6],DestinationIds[7],RatingSubject[8],SharedGroup[9],ExpiryTime[10],TimingIds[11],Units[12],BalanceWeight[13],BalanceBlocker[14],BalanceDisabled[15],Weight[16]
ACT_CLI_LOW,*topup,,,test,*monetary,,*any,,,*unlimited,,0.1,,,,10
ACT_CLI_VOICE,*topup_reset,,,,*voice,,DST_1002,SPECIAL_1002,,*unlimited,,90s,20,false,false,10
"""


def _cells(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    head = [c.split("[")[0] for c in lines[0].lstrip("#").split(",")]
    return [dict(zip(head, line.split(","), strict=True)) for line in lines[1:]]


async def test_profiles_cli_csv_triggers_store_the_rows_and_match(sqlite_url, tmp_path, monkeypatch, capsys):
    """Empty balance cells of ActionTriggers stay "no filter" (they were
    stored as BalanceWeight 0 / BalanceBlocker false / BalanceDisabled false, so the trigger
    never matched a balance); Actions with a duration in Units no longer crash the CLI."""
    async with serve(RalsServer, sqlite_url, tariffplan="tutorial", env=addrs()) as rals:
        env = {**addrs(rals=rals.addr), "CGRPY_STORDB_URL": sqlite_url}
        (tmp_path / "acts.csv").write_text(ACTIONS_CSV)
        (tmp_path / "trg.csv").write_text(TRIGGERS_CSV)
        assert await cli(monkeypatch, env, "profiles", "set", "Actions", "--csv", str(tmp_path / "acts.csv")) == 0
        assert await cli(monkeypatch, env, "profiles", "set", "ActionTriggers", "--csv", str(tmp_path / "trg.csv")) == 0
        capsys.readouterr()
        stored = dump(sqlite_url)
        # stored exactly as the CSV rows, like `cgr load` would
        assert [r for r in stored["ActionTriggers"] if r["Tag"] == "TRG_CLI"] == _cells(TRIGGERS_CSV)
        assert [r for r in stored["Actions"] if r["ActionsId"].startswith("ACT_CLI_")] == _cells(ACTIONS_CSV)
        assert await cli(monkeypatch, env, "profiles", "get", "ActionTriggers", "TRG_CLI") == 0
        got = json.loads(capsys.readouterr().out)["ActionTriggers"][0]
        assert (got["BalanceWeight"], got["BalanceBlocker"], got["BalanceDisabled"]) == (None, None, None)

        # attached to 1001 (balance "test" = 10, weight 10), the trigger matches its balance
        stub = rals_pb2_grpc.RalsServiceStub(rals.channel)
        await stub.SetAccountActionTriggers(rals_pb2.SetAccountActionTriggersRequest(
            tenant="cgrates.org", account="1001", add_group_ids=["TRG_CLI"]))
        acc = await stub.AddBalance(rals_pb2.SetBalanceRequest(
            tenant="cgrates.org", account="1001", balance_type="*monetary", value="-0.6",
            balance=rals_pb2.Balance(id="test")))
        assert [b.value for b in acc.balances if b.id == "test"] == ["9.5"]  # 9.4 + 0.1
        trigs = loads_exact((await stub.GetAccountActionTriggers(
            rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))).json)
        assert [t["Executed"] for t in trigs if t["ID"] == "TRG_CLI"] == [True]
