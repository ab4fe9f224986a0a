"""`cgr resources show|release` and `cgr profiles set Resources` against the real servers."""

from __future__ import annotations

import asyncio
import json

from cgrates.v1 import resources_pb2, resources_pb2_grpc
from cgrpy.cli.main import main
from cgrpy.event import CGREvent
from cgrpy.wire import event_to_pb
from services.rals.server import RalsServer
from services.resources.server import ResourcesServer
from tests.harness import serve

ZERO = "0001-01-01T00:00:00Z"


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def _usage(uid: str, account: str) -> resources_pb2.ResourceUsageRequest:
    return resources_pb2.ResourceUsageRequest(
        event=event_to_pb(CGREvent("cgrates.org", f"e-{uid}", None, {"Account": account})), usage_id=uid)


async def test_resources_show_and_release(sqlite_url, capsys):
    async with serve(ResourcesServer, sqlite_url) as svc:
        stub = resources_pb2_grpc.ResourcesServiceStub(svc.channel)
        for uid, acc in (("call-b", "1002"), ("call-a", "1001")):
            await stub.AllocateResources(_usage(uid, acc))
        assert await cli("resources", "show", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.splitlines() == [
            "RESOURCE   USAGE  LIMIT  USAGES",
            "ResGroup1  2      7      call-a,call-b",
        ]
        assert await cli("resources", "show", "ResGroup1", "--json", "--addr", svc.addr) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["Usages"]["call-a"] == {"Tenant": "cgrates.org", "ID": "call-a", "ExpiryTime": ZERO, "Units": 1}
        assert await cli("resources", "release", "call-a", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.strip() == "released call-a from ResGroup1"
        assert await cli("resources", "release", "call-a", "--addr", svc.addr) == 0
        assert capsys.readouterr().out.strip() == "call-a was not held"
        assert await cli("resources", "show", "Nope", "--addr", svc.addr) == 1
        assert capsys.readouterr().err.strip() == "cgr resources: NOT_FOUND"


async def test_profiles_set_resources_reaches_the_service(sqlite_url, capsys, monkeypatch, tmp_path):
    async with serve(ResourcesServer, sqlite_url) as res:
        async with serve(RalsServer, sqlite_url, tariffplan=None,
                         env={"CGRPY_RESOURCES_ADDR": res.addr}) as rals:
            monkeypatch.setenv("CGRPY_STORDB_URL", sqlite_url)
            monkeypatch.setenv("CGRPY_RESOURCES_ADDR", res.addr)
            monkeypatch.setenv("CGRPY_RALS_ADDR", rals.addr)
            csv = tmp_path / "Resources.csv"
            csv.write_text("cgrates.org,RES_TRUNK,*string:~*req.Account:1004,,-1,2,TRUNK_A,false,true,10,*none\n")
            assert await cli("profiles", "set", "Resources", "--csv", str(csv)) == 0, capsys.readouterr().err
            capsys.readouterr()
            assert await cli("resources", "show", "--addr", res.addr) == 0
            assert capsys.readouterr().out.splitlines() == [
                "RESOURCE   USAGE  LIMIT  USAGES",
                "RES_TRUNK  0      2      -",
                "ResGroup1  0      7      -",
            ]
            stub = resources_pb2_grpc.ResourcesServiceStub(res.channel)
            assert (await stub.AllocateResources(_usage("t1", "1004"))).message == "TRUNK_A"
