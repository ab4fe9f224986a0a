"""OpenSIPS-emulator scenarios against the real suite: `cgr up` on Postgres with
the tutorial plan, SM's debit interval 1 s, driven through SM's TCP port (and its UDP event port)
with the frames the captured traces show. Balances and CDRs are checked over gRPC (RALs, cdre).

One suite for the module; every test resets the tutorial accounts to their 10 units first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc, sm_pb2, sm_pb2_grpc
from cgrpy.runtime.healthcheck import check
from tests.opensips_client import FakeOpenSIPS
from tests.suite import REPO, Suite, service_children, suite_env

pytestmark = pytest.mark.e2e

TENANT = "cgrates.org"
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    env = suite_env(pg_databases.create(), CGRPY_DEBIT_INTERVAL="1s")
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as s:
        yield s


@pytest.fixture
async def rals(suite: Suite):
    async with grpc.aio.insecure_channel(suite.addr("rals")) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        for acc in ("1001", "1002", "1003"):
            await stub.SetBalance(rals_pb2.SetBalanceRequest(
                tenant=TENANT, account=acc, balance_type="*monetary", value="10",
                balance=rals_pb2.Balance(id="test")))
        yield stub


@pytest.fixture
async def cdrs(suite: Suite):
    async with grpc.aio.insecure_channel(suite.addr("cdre")) as ch:
        yield cdre_pb2_grpc.CdrServiceStub(ch)


def opensips(suite: Suite) -> FakeOpenSIPS:
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    return FakeOpenSIPS(host, int(port))


async def balance(rals, account: str) -> Decimal:
    acc = await rals.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=account))
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def wait_cdrs(cdrs, origin_id: str, n: int, timeout: float = 20.0) -> dict[str, cdre_pb2.CDR]:
    """A CDR cdre did not store at once reaches it through SM's spool later: poll."""
    flt = cdre_pb2.CDRFilter(origin_ids=[origin_id])
    deadline = time.monotonic() + timeout
    while True:
        found = list((await cdrs.GetCDRs(flt)).cdrs)
        if len(found) >= n or time.monotonic() > deadline:
            return {c.run_id: c for c in found}
        await asyncio.sleep(0.2)


def call_event(origin: str, account: str, destination: str, reqtype: str = "*prepaid") -> dict:
    return {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": reqtype,
            "OriginID": origin, "Account": account, "Destination": destination}


async def start_call(osips: FakeOpenSIPS, ev: dict, now: int, dialog: tuple[int, int]) -> dict:
    auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**ev, "SetupTime": str(now)})
    assert auth["error"] is None, auth
    init = await osips.call("SessionSv1.InitiateSession",
                            {**ev, "SetupTime": str(now), "AnswerTime": str(now),
                             "DialogID": dialog[0], "DialogEntry": dialog[1]}, InitSession=True)
    assert init["error"] is None, init
    return init


async def end_call(osips: FakeOpenSIPS, ev: dict, now: int, usage: str) -> None:
    term = await osips.call("SessionSv1.TerminateSession",
                            {**ev, "AnswerTime": str(now), "Usage": usage}, TerminateSession=True)
    assert term["result"] == "OK" and term["error"] is None, term
    cdr = await osips.call("SessionSv1.ProcessCDR", {**ev, "Usage": usage, "AnswerTime": str(now),
                                                      "DisconnectCause": "Downstream BYE"})
    assert cdr["result"] == "OK", cdr


# ----------------------------------------------------------------------------- calls


async def _call_65s(suite, origin: str) -> None:
    now = int(time.time())
    ev = call_event(origin, "1001", "1002")
    async with opensips(suite) as osips:
        init = await start_call(osips, ev, now, (515806928, 1891))
        assert init["result"]["MaxUsage"] == 3 * 3600 * SECOND  # ns, as CGRateS replies
        await asyncio.sleep(1.5)  # the debit loop runs
        await end_call(osips, ev, now, "65s")


async def test_prepaid_1001_to_1002_for_65s(suite, rals, cdrs):
    await _call_65s(suite, "sc-65s@127.0.0.1")
    # RT_20CNT: 0.4 connect + 0.2 for the first 60 s increment +
    # 5 s at Round(0.1/60, 5) = 0.00167 per 1 s increment = 0.60835 (the EventCost); at session
    # end the DestinationRate rounding (*up, 4 decimals) is charged too: 0.6084.
    got = await wait_cdrs(cdrs, "sc-65s@127.0.0.1", 2)
    assert set(got) == {"*default", "*raw"}
    assert got["*default"].cost == "0.6084" and got["*default"].usage_ns == 65 * SECOND
    assert got["*default"].request_type == "*prepaid"
    assert got["*raw"].usage_ns == 65 * SECOND
    assert await balance(rals, "1001") == Decimal("9.3916")


async def test_1001_to_1003_cut_at_12s_by_max_cost(suite, rals, cdrs):
    now = int(time.time())
    ev = call_event("sc-maxcost@127.0.0.1", "1001", "1003")
    async with opensips(suite) as osips:
        started = time.monotonic()
        await start_call(osips, ev, now, (1122334455, 4242))
        disc = await osips.wait_engine_request("DisconnectSession", timeout=25)
        cut_after = time.monotonic() - started
        assert disc["method"] == "SessionSv1.DisconnectSession"
        (arg,) = disc["params"]
        assert arg["Reason"] == "INSUFFICIENT_CREDIT"
        assert arg["EventStart"]["DialogID"] == 1122334455 and arg["EventStart"]["DialogEntry"] == 4242
        assert arg["EventStart"]["OriginID"] == ev["OriginID"]
        # RT_1CNT_PER_SEC 0.01/s, MaxCost 0.12 *disconnect: the 13th second is refused
        assert 11.5 <= cut_after <= 14.5, cut_after
        # OpenSIPS ends the dialog and reports the usage
        await end_call(osips, ev, now, "12s")
    assert await balance(rals, "1001") == Decimal("9.88")
    got = await wait_cdrs(cdrs, ev["OriginID"], 2)
    assert got["*default"].usage_ns == 12 * SECOND and got["*default"].cost == "0.12"


async def test_refused_call_without_credit(suite, rals, cdrs):
    await rals.SetBalance(rals_pb2.SetBalanceRequest(
        tenant=TENANT, account="1003", balance_type="*monetary", value="0",
        balance=rals_pb2.Balance(id="test")))
    now = int(time.time())
    ev = call_event("sc-refused@127.0.0.1", "1003", "1001")
    async with opensips(suite) as osips:
        auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**ev, "SetupTime": str(now)})
        assert auth["result"] is None and auth["error"] == "RALS_ERROR:INSUFFICIENT_CREDIT", auth
        init = await osips.call("SessionSv1.InitiateSession",
                                {**ev, "SetupTime": str(now), "AnswerTime": str(now),
                                 "DialogID": 1, "DialogEntry": 2}, InitSession=True)
        assert init["result"] is None and init["error"].startswith("RALS_ERROR:"), init
    assert await balance(rals, "1003") == Decimal(0)


async def test_missed_call_gives_a_cdr_with_usage_0(suite, rals, cdrs):
    now = int(time.time())
    async with opensips(suite) as osips:
        # as in missed_busy.jsonl: the module sends the raw Call-ID header line as OriginID
        ev = {**call_event("Call-ID: sc-missed@127.0.0.1", "1001", "1098"),
              "Usage": "0s", "SetupTime": str(now), "DisconnectCause": ""}
        assert (await osips.call("SessionSv1.ProcessCDR", ev))["result"] == "OK"
    # stored under the bare Call-ID (the header-name prefix stripped), one CDR per run
    got = await wait_cdrs(cdrs, "sc-missed@127.0.0.1", 2)
    assert set(got) == {"*default", "*raw"}
    assert all(c.usage_ns == 0 for c in got.values())
    assert got["*default"].destination == "1098"
    assert await balance(rals, "1001") == Decimal(10)


async def test_postpaid_1002_is_debited_at_cdr(suite, rals, cdrs):
    now = int(time.time())
    ev = call_event("sc-postpaid@127.0.0.1", "1002", "1001", "*postpaid")
    async with opensips(suite) as osips:
        await start_call(osips, ev, now, (77, 88))
        await asyncio.sleep(1.2)
        assert await balance(rals, "1002") == Decimal(10)  # nothing while the call runs
        await end_call(osips, ev, now, "20s")
    got = await wait_cdrs(cdrs, ev["OriginID"], 2)
    # RP_1002, DST_1001 -> RT_20CNT: 0.4 + one 60 s increment 0.2
    assert got["*default"].cost == "0.6" and got["*default"].usage_ns == 20 * SECOND
    deadline = time.monotonic() + 10
    while await balance(rals, "1002") != Decimal("9.4") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await balance(rals, "1002") == Decimal("9.4")


async def test_event_datagram_call_gives_a_cdr(suite, rals, cdrs):
    now = int(time.time())
    # E_ACC_CDR as in authorized_call.jsonl, the call made as *postpaid 1003 -> 1001
    datagram = {"jsonrpc": "2.0", "method": "E_ACC_CDR", "params": {
        "method": "INVITE", "from_tag": "6715SIPpTag001", "to_tag": "6589SIPpTag011",
        "callid": "sc-datagram@127.0.0.1", "sip_code": "200", "sip_reason": "OK", "time": now,
        "cgr_reqtype": "*postpaid", "cgr_account": "1003", "cgr_destination": "1001",
        "cgr_tenant": "cgrates.org", "dialog_id": "367.0d69ebe1", "duration": 3, "ms_duration": 2006,
        "setuptime": 0, "created": now}}
    host, port = suite.env["CGRPY_OPENSIPS_EVENT_LISTEN"].split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(json.dumps(datagram, separators=(",", ":")).encode(), (host, int(port)))
    got = await wait_cdrs(cdrs, "sc-datagram@127.0.0.1", 2)
    assert set(got) == {"*default", "*raw"}
    # usage from ms_duration (exact), RP_1003 DST_1001 -> RT_10CNT: 0.2 + 0.1
    assert got["*default"].usage_ns == 2_006_000_000 and got["*default"].cost == "0.3"
    deadline = time.monotonic() + 10
    while await balance(rals, "1003") != Decimal("9.7") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await balance(rals, "1003") == Decimal("9.7")


# ----------------------------------------------------------------------------- operator view


async def test_sessions_list_and_disconnect_over_grpc(suite, rals, cdrs):
    now = int(time.time())
    ev = call_event("sc-operator@127.0.0.1", "1001", "1002")
    async with opensips(suite) as osips, grpc.aio.insecure_channel(suite.addr("sm")) as ch:
        sm = sm_pb2_grpc.SessionServiceStub(ch)
        await start_call(osips, ev, now, (4711, 17))
        resp = await sm.GetActiveSessions(sm_pb2.ActiveSessionsRequest(origin_id=ev["OriginID"]))
        rows = {s.run_id: s for s in resp.sessions}
        assert set(rows) == {"*default", "*raw"}
        d = rows["*default"]
        assert (d.account, d.destination, d.request_type) == ("1001", "1002", "*prepaid")
        assert d.debited_usage_ns == 60 * SECOND and d.cost == "0.6"  # first 60 s increment + fee
        # reserve 59 s + what 9.4 still buys: 9.4 - 0.4 - 0.2 = 8.8 / 0.00167 = 5269 s more after
        # the first minute of a new call (GetMaxUsage starts a call from scratch)
        assert d.max_usage_left_ns == 59 * SECOND + (60 + 5269) * SECOND
        assert rows["*raw"].max_usage_left_ns == -1
        # the operator's table: `cgr sessions list` against the same SM
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cgrpy.cli.main", "sessions", "list", "--json"],
            cwd=REPO, env=suite.env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        listed = {r["RunID"]: r for r in json.loads(out.stdout) if r["OriginID"] == ev["OriginID"]}
        assert listed["*default"]["Account"] == "1001" and listed["*default"]["Cost"] == "0.6"
        assert listed["*default"]["DebitedUsage"] == 60 * SECOND
        assert listed["*raw"]["MaxUsageLeft"] == -1
        table = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cgrpy.cli.main", "sessions", "list"],
            cwd=REPO, env=suite.env, capture_output=True, text=True, timeout=30)
        header, *lines = table.stdout.splitlines()
        assert header.split()[:3] == ["ACCOUNT", "DESTINATION", "DURATION"]
        assert any(line.split()[:2] == ["1001", "1002"] and "1m0s" in line for line in lines), table.stdout
        # cgr sessions disconnect ORIGINID: SM asks OpenSIPS; OpenSIPS ends the dialog
        task = asyncio.ensure_future(sm.DisconnectSession(sm_pb2.DisconnectSessionRequest(
            origin_id=ev["OriginID"], reason="FORCED_DISCONNECT")))
        disc = await osips.wait_engine_request("DisconnectSession", timeout=10)
        assert disc["params"][0]["EventStart"]["DialogID"] == 4711
        assert disc["params"][0]["Reason"] == "FORCED_DISCONNECT"
        await end_call(osips, ev, now, "3s")
        await task
        resp = await sm.GetActiveSessions(sm_pb2.ActiveSessionsRequest(origin_id=ev["OriginID"]))
        assert list(resp.sessions) == []
    gone = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "cgrpy.cli.main", "sessions", "disconnect", ev["OriginID"]],
        cwd=REPO, env=suite.env, capture_output=True, text=True, timeout=30)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr, gone.stderr
    assert await balance(rals, "1001") == Decimal("9.4")


# ----------------------------------------------------------------------------- failures


async def test_sm_killed_mid_call_still_charged_once(suite, rals, cdrs):
    assert suite.proc is not None
    now = int(time.time())
    ev = call_event("sc-killed@127.0.0.1", "1001", "1002")
    async with opensips(suite) as osips:
        await start_call(osips, ev, now, (9001, 9002))
        await asyncio.sleep(1.5)
    old = service_children(suite.proc.pid)["sm"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        new = service_children(suite.proc.pid).get("sm")
        if new and new != old and check(suite.addr("sm")) == "SERVING":
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("sm was not restarted:\n" + suite.read_output()[-3000:])
    # OpenSIPS reconnects; it still has the call (GetActiveSessionIDs), so SM keeps charging it
    async with opensips(suite) as osips:
        osips.active_ids = [ev["OriginID"]]
        await osips.wait_engine_request("GetActiveSessionIDs", timeout=10)
        async with grpc.aio.insecure_channel(suite.addr("sm")) as ch:
            resp = await sm_pb2_grpc.SessionServiceStub(ch).GetActiveSessions(
                sm_pb2.ActiveSessionsRequest(origin_id=ev["OriginID"]))
            assert {s.run_id for s in resp.sessions} == {"*default", "*raw"}
        await end_call(osips, ev, now, "70s")
    got = await wait_cdrs(cdrs, ev["OriginID"], 2)
    # 0.4 + 0.2 + 10 s x 0.00167 = 0.6167, charged once across the restart
    assert await balance(rals, "1001") == Decimal(10) - Decimal("0.6167"), (
        {k: (c.cost, c.usage_ns, c.cost_details_json) for k, c in got.items()},
        suite.read_output()[-6000:])
    await asyncio.sleep(1.0)  # a duplicate would arrive now
    assert (await cdrs.CountCDRs(cdre_pb2.CDRFilter(origin_ids=[ev["OriginID"]]))).count == 2
    assert got["*default"].cost == "0.6167" and got["*default"].usage_ns == 70 * SECOND


async def test_slow_rals_opensips_still_answered_within_deadline(suite, rals, cdrs):
    assert suite.proc is not None
    pid = service_children(suite.proc.pid)["rals"]
    now = int(time.time())
    ev = call_event("sc-slow@127.0.0.1", "1001", "1002")
    async with opensips(suite) as osips:
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**ev, "SetupTime": str(now)})
            took = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        assert took < 2.5, took  # sm_reply_timeout 2 s
        assert auth["result"] is None and auth["error"] == "SERVER_ERROR"  # policy deny
        # RALs is back: the next call is authorized
        again = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**ev, "SetupTime": str(now)})
        assert again["error"] is None and again["result"]["MaxUsage"] > 0, again


async def test_1000_garbage_frames_do_not_crash_sm(suite, rals, cdrs):
    now = int(time.time())
    ev = call_event("sc-garbage@127.0.0.1", "1001", "1002")
    async with opensips(suite) as bad, opensips(suite) as good:
        for i in range(1000):
            bad.send_raw(b'{"method": "SessionSv1.AuthorizeEvent", "id": %d, "params": [}' % i
                         if i % 2 else b"]garbage" + bytes([i % 256]))
        await bad.writer.drain()
        # another connection of the pool is unaffected
        auth = await good.call("SessionSv1.AuthorizeEventWithDigest", {**ev, "SetupTime": str(now)})
        assert auth["error"] is None and auth["result"]["MaxUsage"] > 0
        # the garbage connection still answers a well-formed request after its garbage
        # (or SM closed it: both are allowed, a crash is not)
        try:
            ping = await bad.call("SessionSv1.Ping", {}, timeout=5)
            assert ping["result"] == "Pong" or ping["error"]
        except (TimeoutError, ConnectionError):
            pass
    assert check(suite.addr("sm")) == "SERVING"
