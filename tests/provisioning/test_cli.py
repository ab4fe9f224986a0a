"""`cgr profiles set|get|rm|ids` against the real RALs (TariffPlanService) and AttributeS."""

from __future__ import annotations

import asyncio
import json

from cgrates.v1 import attributes_pb2_grpc
from cgrpy.cli.main import main
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
