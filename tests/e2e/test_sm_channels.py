"""SM end to end, per kind of session: unit-counted *sms and *data sessions through the cgrates
module protocol, and a suite that knows both OpenSIPS channels (the :2014 connections and the
event interface with an MI endpoint), so each session is handled on the channel it came from.

The MI endpoint is a small HTTP server on loopback standing in for OpenSIPS's mi_http: it records
every request and answers like OpenSIPS does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc, sm_pb2, sm_pb2_grpc
from cgrpy.runtime.healthcheck import check
from tests.opensips_client import FakeOpenSIPS
from tests.suite import REPO, Suite, service_children, suite_env

pytestmark = pytest.mark.e2e

TENANT = "cgrates.org"
SECOND = 1_000_000_000
MB = 1048576


class MIStandIn(ThreadingHTTPServer):
    """OpenSIPS mi_http on loopback: POST /mi JSON-RPC 2.0, every request recorded."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _MIHandler)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mi"

    def methods(self) -> list[str]:
        with self.lock:
            return [r.get("method", "") for r in self.requests]


class _MIHandler(BaseHTTPRequestHandler):
    server: MIStandIn

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(body)
        reply = json.dumps({"jsonrpc": "2.0", "result": "OK", "id": body.get("id")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def mi() -> Iterator[MIStandIn]:
    server = MIStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def suite(pg_databases, mi: MIStandIn) -> Iterator[Suite]:
    env = suite_env(pg_databases.create(), CGRPY_DEBIT_INTERVAL="1s", CGRPY_OPENSIPS_MI_URL=mi.url,
                    CGRPY_SM_CHANNEL_SYNC_INTERVAL="500ms", CGRPY_SM_RESTORE_CONFIRM_TIMEOUT="4s")
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as s:
        yield s


@pytest.fixture
async def rals(suite: Suite):
    async with grpc.aio.insecure_channel(suite.addr("rals")) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        await stub.SetBalance(rals_pb2.SetBalanceRequest(
            tenant=TENANT, account="1001", balance_type="*monetary", value="10",
            balance=rals_pb2.Balance(id="test")))
        yield stub


@pytest.fixture
async def cdrs(suite: Suite):
    async with grpc.aio.insecure_channel(suite.addr("cdre")) as ch:
        yield cdre_pb2_grpc.CdrServiceStub(ch)


def opensips(suite: Suite) -> FakeOpenSIPS:
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    return FakeOpenSIPS(host, int(port))


async def balances(rals, account: str) -> dict[str, Decimal]:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=account))
    out: dict[str, Decimal] = {}
    for b in acc.balances:
        out[b.type] = out.get(b.type, Decimal(0)) + Decimal(b.value)
    return out


async def wait_cdrs(cdrs, origin_id: str, n: int, timeout: float = 20.0) -> dict[str, cdre_pb2.CDR]:
    flt = cdre_pb2.CDRFilter(origin_ids=[origin_id])
    deadline = time.monotonic() + timeout
    while True:
        found = list((await cdrs.GetCDRs(flt)).cdrs)
        if len(found) >= n or time.monotonic() > deadline:
            return {c.run_id: c for c in found}
        await asyncio.sleep(0.2)


def unit_event(origin: str, tor: str, category: str, now: int) -> dict[str, Any]:
    return {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "OriginID": origin, "Account": "1001", "Destination": "1002", "ToR": tor,
            "Category": category, "SetupTime": str(now), "AnswerTime": str(now)}


# ----------------------------------------------------------------------------- *sms and *data


async def test_prepaid_sms_charged_one_message(suite, rals, cdrs):
    now = int(time.time())
    ev = unit_event("ch-sms@127.0.0.1", "*sms", "sms", now)
    async with opensips(suite) as osips:
        osips.active_ids = [ev["OriginID"]]  # the switch has it (the periodic sync asks)
        auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", ev)
        assert auth["error"] is None and auth["result"]["MaxUsage"] == 1, auth  # one message
        init = await osips.call("SessionSv1.InitiateSession", ev, InitSession=True)
        assert init["error"] is None and init["result"]["MaxUsage"] == 1, init
        # RT_SMS: 0.01 per message, debited once at initiate (no time loop)
        await asyncio.sleep(1.5)
        assert (await balances(rals, "1001"))["*monetary"] == Decimal("9.99")
        term = await osips.call("SessionSv1.TerminateSession", {**ev, "Usage": 1}, TerminateSession=True)
        assert term["error"] is None, term
        cdr = await osips.call("SessionSv1.ProcessCDR", {**ev, "Usage": 1})
        assert cdr["result"] == "OK", cdr
    got = await wait_cdrs(cdrs, ev["OriginID"], 2)
    assert got["*default"].usage_ns == 1 and got["*default"].cost == "0.01"
    assert got["*default"].tor == "*sms"
    assert (await balances(rals, "1001"))["*monetary"] == Decimal("9.99")


async def test_prepaid_data_session_charges_the_bytes_used(suite, rals, cdrs):
    await rals.SetBalance(rals_pb2.SetBalanceRequest(
        tenant=TENANT, account="1001", balance_type="*data", value=str(10 * MB),
        balance=rals_pb2.Balance(id="data")))
    now = int(time.time())
    ev = unit_event("ch-data@127.0.0.1", "*data", "data", now)
    async with opensips(suite) as osips:
        osips.active_ids = [ev["OriginID"]]
        init = await osips.call("SessionSv1.InitiateSession", ev, InitSession=True)
        # no Usage: the *data default, 1048576 bytes, reserved at once
        assert init["error"] is None and init["result"]["MaxUsage"] == MB, init
        await asyncio.sleep(1.5)  # a time loop would debit now: nothing may move
        assert (await balances(rals, "1001"))["*data"] == Decimal(9 * MB)
        term = await osips.call("SessionSv1.TerminateSession", {**ev, "Usage": 300000},
                                TerminateSession=True)
        assert term["error"] is None, term
        assert (await osips.call("SessionSv1.ProcessCDR", {**ev, "Usage": 300000}))["result"] == "OK"
    got = await wait_cdrs(cdrs, ev["OriginID"], 2)
    assert got["*default"].usage_ns == 300000 and got["*default"].tor == "*data"
    after = await balances(rals, "1001")
    assert after["*data"] == Decimal(10 * MB - 300000)  # the unused reserve went back
    assert after["*monetary"] == Decimal(10)


# ----------------------------------------------------------------------------- disconnect channel


def send_event(suite: Suite, method: str, params: dict[str, Any]) -> None:
    host, port = suite.env["CGRPY_OPENSIPS_EVENT_LISTEN"].split(":")
    body = {"jsonrpc": "2.0", "method": method, "params": params}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(json.dumps(body, separators=(",", ":")).encode(), (host, int(port)))


async def wait_active(sm, origin_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not (await sm.GetActiveSessions(sm_pb2.ActiveSessionsRequest(origin_id=origin_id))).sessions:
        assert time.monotonic() < deadline, f"{origin_id} never became active"
        await asyncio.sleep(0.1)


async def wait_mi(mi: MIStandIn, method: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with mi.lock:
            found = [r for r in mi.requests if r.get("method") == method]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no MI {method}: {mi.methods()}"
        await asyncio.sleep(0.05)


async def test_module_call_is_disconnected_on_its_connection_not_over_mi(suite, rals, mi):
    now = int(time.time())
    ev = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
          "OriginID": "ch-module@127.0.0.1", "Account": "1001", "Destination": "1002",
          "SetupTime": str(now), "AnswerTime": str(now), "DialogID": 4711, "DialogEntry": 42}
    async with opensips(suite) as osips, grpc.aio.insecure_channel(suite.addr("sm")) as ch:
        osips.active_ids = [ev["OriginID"]]
        init = await osips.call("SessionSv1.InitiateSession", ev, InitSession=True)
        assert init["error"] is None, init
        task = asyncio.ensure_future(sm_pb2_grpc.SessionServiceStub(ch).DisconnectSession(
            sm_pb2.DisconnectSessionRequest(origin_id=ev["OriginID"], reason="FORCED_DISCONNECT")))
        disc = await osips.wait_engine_request("DisconnectSession", timeout=10)
        assert disc["params"][0]["EventStart"]["DialogID"] == 4711
        term = await osips.call("SessionSv1.TerminateSession", {**ev, "Usage": "2s"}, TerminateSession=True)
        assert term["error"] is None, term
        await task
    assert "dlg_end_dlg" not in mi.methods()


async def test_event_interface_call_is_disconnected_over_mi(suite, rals, cdrs, mi):
    now = int(time.time())
    call = {"callid": "ch-events@127.0.0.1", "sip_code": "200", "sip_reason": "OK", "time": now,
            "cgr_reqtype": "*prepaid", "cgr_account": "1001", "cgr_destination": "1002",
            "cgr_tenant": TENANT, "dialog_id": "367.0d69ebe1", "created": now}
    send_event(suite, "E_ACC_EVENT", {**call, "method": "INVITE"})
    async with opensips(suite) as osips, grpc.aio.insecure_channel(suite.addr("sm")) as ch:
        sm = sm_pb2_grpc.SessionServiceStub(ch)
        await wait_active(sm, call["callid"])
        # the module's GetActiveSessionIDs never lists event-interface calls: the sync keeps it
        await osips.wait_engine_request("GetActiveSessionIDs")
        await asyncio.sleep(1.2)
        await wait_active(sm, call["callid"], timeout=0)
        task = asyncio.ensure_future(sm.DisconnectSession(
            sm_pb2.DisconnectSessionRequest(origin_id=call["callid"], reason="FORCED_DISCONNECT")))
        req = await wait_mi(mi, "dlg_end_dlg")
        assert req["params"] == {"dialog_id": "367.0d69ebe1"}
        # OpenSIPS ends the dialog: the BYE's accounting event closes the session
        send_event(suite, "E_ACC_CDR", {**call, "method": "INVITE", "duration": 3, "ms_duration": 2500})
        await task
        await asyncio.sleep(0.3)
        assert not [r for r in osips.engine_requests if r["method"].endswith("DisconnectSession")]
    got = await wait_cdrs(cdrs, call["callid"], 2)
    assert got["*default"].usage_ns == 2_500_000_000


async def test_mi_alone_subscribes_to_no_event(suite, mi):
    # CGRPY_OPENSIPS_MI_URL without CGRPY_OPENSIPS_EVENT_ADVERTISE: the cgrates-module mode of the
    # shipped opensips.cfg, which raises no E_ACC_* events; MI serves disconnects only
    assert suite.proc is not None and suite.proc.poll() is None
    assert "event_subscribe" not in mi.methods()


# ----------------------------------------------------------------------------- channel sync


async def test_channel_sync_closes_the_calls_the_switch_no_longer_has(suite, rals, cdrs):
    now = int(time.time())
    base = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "Account": "1001", "Destination": "1002", "SetupTime": str(now), "AnswerTime": str(now)}
    kept, lost = ({**base, "OriginID": f"ch-sync-{n}@127.0.0.1", "DialogID": n, "DialogEntry": 7}
                  for n in (1, 2))
    async with opensips(suite) as osips, grpc.aio.insecure_channel(suite.addr("sm")) as ch:
        sm = sm_pb2_grpc.SessionServiceStub(ch)
        osips.active_ids = [kept["OriginID"], lost["OriginID"]]
        for ev in (kept, lost):
            assert (await osips.call("SessionSv1.InitiateSession", ev, InitSession=True))["error"] is None
        await asyncio.sleep(1.2)  # synced twice: both still there
        await wait_active(sm, kept["OriginID"], timeout=0)
        await wait_active(sm, lost["OriginID"], timeout=0)
        osips.active_ids = [kept["OriginID"]]  # the switch lost the second call (its BYE never came)
        got = await wait_cdrs(cdrs, lost["OriginID"], 2, timeout=5)
        assert set(got) == {"*default", "*raw"}
        assert got["*default"].cost == "0.6"  # RT_20CNT: 0.4 connect + first 60 s increment
        await wait_active(sm, kept["OriginID"], timeout=0)
        term = await osips.call("SessionSv1.TerminateSession", {**kept, "Usage": "3s"}, TerminateSession=True)
        assert term["error"] is None, term
    assert not [r for r in osips.engine_requests if r["method"].endswith("DisconnectSession")]


# ----------------------------------------------------------------------------- SM restart


async def test_restored_call_not_charged_while_opensips_is_away(suite, rals, cdrs):
    """SM killed mid-call and OpenSIPS does not come back: the restored session is not debited
    any further; after CGRPY_SM_RESTORE_CONFIRM_TIMEOUT it is closed at what was charged before
    the restart and its CDRs are posted."""
    assert suite.proc is not None
    now = int(time.time())
    # 1001 -> 1003: RT_1CNT_PER_SEC, 0.01 per second, so every 1 s debit shows in the balance
    ev = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
          "OriginID": "ch-away@127.0.0.1", "Account": "1001", "Destination": "1003",
          "SetupTime": str(now), "AnswerTime": str(now), "DialogID": 77, "DialogEntry": 7}
    async with opensips(suite) as osips:
        osips.active_ids = [ev["OriginID"]]
        assert (await osips.call("SessionSv1.InitiateSession", ev, InitSession=True))["error"] is None
        await asyncio.sleep(1.5)  # debits at 0 s and 1 s
    paid = (await balances(rals, "1001"))["*monetary"]
    assert paid == Decimal("9.98")
    old = service_children(suite.proc.pid)["sm"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 40
    while True:
        new = service_children(suite.proc.pid).get("sm")
        if new and new != old and check(suite.addr("sm")) == "SERVING":
            break
        assert time.monotonic() < deadline, "sm was not restarted:\n" + suite.read_output()[-3000:]
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # OpenSIPS still away: a resumed loop would debit (and catch up) now
    assert (await balances(rals, "1001"))["*monetary"] == paid
    got = await wait_cdrs(cdrs, ev["OriginID"], 2, timeout=10)
    assert set(got) == {"*default", "*raw"}, suite.read_output()[-3000:]
    assert got["*default"].usage_ns == 2 * SECOND and got["*default"].cost == "0.02"
    assert (await balances(rals, "1001"))["*monetary"] == paid
