"""Online CDR export inside the real cdre service: configured like CGRateS (profiles file +
``cdrs_online_cdr_exports``), fed by ProcessCDR over gRPC, watched with `cgr cdrs list
--export-failed` and `cgr cdrs retry-exports`, and surviving a ``kill -9`` of cdre."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import grpc
import pytest
from sqlalchemy import select

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.cli.main import main
from cgrpy.config import ConfigError
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.models.cdrs import CdrOutboxRow
from services.cdre.server import CdreServer
from tests.cdre.receiver import Receiver, free_port
from tests.cdre.test_contract import NOWHERE, OFF, cdr_event, req
from tests.conftest import REPO
from tests.harness import serve

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def cli(*argv: str):
    return asyncio.to_thread(main, list(argv))


def exporters_env(tmp_path: Path, profiles: dict[str, dict], ids: list[str],
                  failed_retry: str = "0s") -> dict[str, str]:
    f = tmp_path / "cdre_profiles.json"
    f.write_text(json.dumps(profiles))
    return {**NOWHERE, "CGRPY_CDRE_PROFILES_FILE": str(f),
            "CGRPY_CDRS_ONLINE_CDR_EXPORTS": json.dumps(ids),
            "CGRPY_CDRE_EXPORT_FAILED_RETRY": failed_retry}


async def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_export_failed_listed_then_retried_on_demand_and_amqp(db_url, tmp_path, capsys):
    rx = Receiver()  # down for now
    queue = f"cgrpy_test_{uuid.uuid4().hex[:10]}"
    env = exporters_env(tmp_path, {
        "web": {"export_format": "*http_json_cdr", "export_path": rx.url, "attempts": 2},
        "mq": {"export_format": "*amqp_json_cdr", "export_path": f"{AMQP}?queue_id={queue}"},
    }, ["web", "mq"])
    async with serve(CdreServer, db_url, tariffplan=None, env=env) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        flags = [f for f in OFF if f != "*rals:false"]
        resp = await stub.ProcessCDR(req(cdr_event("exp-1", rt="*rated", Cost="0.60835"), flags))
        cgrid = resp.cdrs[0].cgrid
        # *export:false: stored, not exported
        await stub.ProcessCDR(req(cdr_event("exp-2", rt="*rated", Cost="1"),
                                  [*flags, "*export:false"]))

        async def web_failed() -> bool:
            got = await stub.GetFailedExports(cdre_pb2.FailedExportsRequest(exporter="web"))
            return len(got.exports) == 1

        await wait_for(web_failed)  # 2 attempts, 1 s apart
        assert await cli("cdrs", "list", "--export-failed", "--addr", svc.addr, "--json") == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(x["Exporter"], x["Attempts"], x["CDR"]["CGRID"]) for x in listed] == [
            ("web", 2, cgrid)]
        assert "refused" in listed[0]["LastError"].lower()
        assert await cli("cdrs", "list", "--export-failed", "--addr", svc.addr) == 0
        table = capsys.readouterr().out
        assert "on demand" in table and "(1 failed exports)" in table

        with rx:  # the receiver is back: retry on demand
            assert await cli("cdrs", "retry-exports", "--addr", svc.addr) == 0
            assert capsys.readouterr().out.strip() == "1 failed exports due now"

            async def delivered() -> bool:
                return bool(rx.accepted())

            await wait_for(delivered)
        assert [json.loads(p.body)["CGRID"] for p in rx.accepted()] == [cgrid]
        assert (await stub.GetFailedExports(cdre_pb2.FailedExportsRequest())).exports == []
        assert await cli("cdrs", "list", "--export-failed", "--addr", svc.addr) == 0
        assert "(0 failed exports)" in capsys.readouterr().out

    conn = await aio_pika.connect(AMQP)
    try:
        q = await (await conn.channel()).declare_queue(queue, durable=True)
        msg = await q.get(timeout=5)
        await msg.ack()
        assert b'"Cost":0.60835,' in msg.body and json.loads(msg.body)["CGRID"] == cgrid
        assert await q.get(fail=False) is None  # the *export:false CDR never went out
        await q.delete(if_unused=False, if_empty=False)
    finally:
        await conn.close()


async def test_failed_exports_retried_by_themselves(sqlite_url, tmp_path):
    rx = Receiver()
    env = exporters_env(tmp_path, {"web": {"export_format": "*http_post", "export_path": rx.url}},
                        ["web"], failed_retry="1s")
    async with serve(CdreServer, sqlite_url, tariffplan=None, env=env) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await stub.ProcessCDR(req(cdr_event("auto-1", rt="*none")))

        async def failed() -> bool:
            return bool((await stub.GetFailedExports(cdre_pb2.FailedExportsRequest())).exports)

        await wait_for(failed)
        with rx:
            async def delivered() -> bool:
                return bool(rx.accepted())

            await wait_for(delivered)
        assert len(rx.accepted()) == 1


async def test_bad_exporter_configuration_stops_start_up(sqlite_url, tmp_path):
    env = exporters_env(tmp_path, {"file": {"export_format": "*file_csv"}}, ["file"])
    with pytest.raises(ConfigError, match="not one of"):
        async with serve(CdreServer, sqlite_url, tariffplan=None, env=env):
            pass
    env = exporters_env(tmp_path, {}, ["missing"])
    with pytest.raises(ConfigError, match="no CDRe profile 'missing'"):
        async with serve(CdreServer, sqlite_url, tariffplan=None, env=env):
            pass


def _outbox(url: str) -> list[CdrOutboxRow]:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return list(conn.execute(select(CdrOutboxRow.__table__)).all())
    finally:
        eng.dispose()


def _start_cdre(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    full.update(env, CGRPY_CDRE_GRPC_PORT=str(port), CGRPY_CDRE_METRICS_PORT=str(free_port()),
                CGRPY_API_TOKEN_FILE="", CGRPY_EVENT_LOOP="asyncio")
    return subprocess.Popen([sys.executable, "-m", "services.cdre"], cwd=REPO, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _process_cdr(port: int, ev_req: cdre_pb2.ProcessCDRRequest) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = cdre_pb2_grpc.CdrServiceStub(ch)
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = await stub.ProcessCDR(ev_req, timeout=5)
                return resp.cdrs[0].cgrid
            except grpc.aio.AioRpcError:
                assert time.monotonic() < deadline, "cdre did not come up"
                await asyncio.sleep(0.2)


async def test_pending_export_survives_kill_9(pg_url, tmp_path):
    upgrade(pg_url)
    rx = Receiver()
    env = exporters_env(tmp_path, {"web": {"export_format": "*http_json_cdr",
                                           "export_path": rx.url, "attempts": 10}}, ["web"])
    env["CGRPY_STORDB_URL"] = pg_url
    port = free_port()
    proc = _start_cdre(env, port)
    try:
        cgrid = await _process_cdr(port, req(cdr_event("kill-1", rt="*none")))
        rows = _outbox(pg_url)  # the reply means committed, export row included
        assert [(r.target, json.loads(r.event)["Event"]["CGRID"]) for r in rows] == [
            ("export:web", cgrid)]

        async def tried() -> bool:  # a post was tried and refused: due again after backoff
            return any(r.attempts >= 1 and r.lease_until_ns < time.time_ns() + 5 * 10**9
                       for r in _outbox(pg_url))

        await wait_for(tried)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(_outbox(pg_url)) == 1  # nothing lost
    with rx:
        proc = _start_cdre(env, port)
        try:
            async def delivered() -> bool:
                return bool(rx.accepted())

            await wait_for(delivered, timeout=30)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert [json.loads(p.body)["CGRID"] for p in rx.accepted()] == [cgrid]
    assert _outbox(pg_url) == []
