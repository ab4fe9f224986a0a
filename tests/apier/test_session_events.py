"""SessionSv1.ProcessEvent / ProcessMessage (SMS charging), the *WithDigest calls, SyncSessions and
the passive-session reads over JSON-RPC (:2012 TCP, :2080 HTTP) and through OpenSIPS's :2014
(``cgrates_cmd``), against the real suite (tutorial plan, Postgres). SMS price: RP_SMS, 0.01 per
message (tariffplans/tutorial)."""

from __future__ import annotations

import time
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import common_pb2, resources_pb2_grpc
from cgrpy.event import loads_exact
from services.sm.apier.backends import STUBS
from tests.apier.jsonrpc_client import TcpClient, err, ok

pytestmark = pytest.mark.e2e

T0 = "2014-08-04T13:00:00Z"


def _account(api, account: str, value: Decimal) -> None:
    assert ok(api.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": account})) == "OK"
    assert ok(api.call("APIerSv1.SetBalance", {"Tenant": "cgrates.org", "Account": account, "BalanceType": "*monetary",
                                               "Value": value, "Balance": {"ID": "main", "Weight": 10}})) == "OK"


def _money(api, account: str) -> Decimal:
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": account}))
    return next(b["Value"] for b in acc["BalanceMap"]["*monetary"] if b["ID"] == "main")


def _cdrs_by_run(api, origin_id: str, runs: set[str]) -> dict[str, dict]:
    """SM's CDRs reach CDRs through its durable spool (delivered in the background): wait."""
    deadline = time.monotonic() + 15
    while True:
        reply = api.call("APIerSv2.GetCDRs", {"OriginIDs": [origin_id]})
        by_run = {c["RunID"]: c for c in (reply["result"] or [])}
        if set(by_run) == runs or time.monotonic() > deadline:
            assert set(by_run) == runs, reply
            return by_run
        time.sleep(0.2)


def _sms(account: str, origin_id: str, **extra) -> dict:
    return {"ToR": "*sms", "OriginID": origin_id, "OriginHost": "sms-test", "RequestType": "*prepaid",
            "Category": "sms", "Account": account, "Subject": account, "Destination": "1002",
            "SetupTime": T0, "AnswerTime": T0, "Usage": 1, **extra}


def test_sms_process_event_charges_once_and_writes_the_cdr(api):
    acc = f"sms_pe_{type(api).__name__}"
    _account(api, acc, Decimal("1"))
    arg = {"Flags": ["*accounts", "*cdrs"], "Tenant": "cgrates.org", "ID": "sms1", "Event": _sms(acc, f"{acc}-1")}
    reply = ok(api.call("SessionSv1.ProcessEvent", arg))
    assert reply == {"MaxUsage": 1, "ResourceAllocation": None, "Attributes": None, "Suppliers": None,
                     "ThresholdIDs": None, "StatQueueIDs": None}
    assert _money(api, acc) == Decimal("0.99")
    # the same SMS again (a retry): same answer, not charged twice, no second CDR
    assert ok(api.call("SessionSv1.ProcessEvent", arg)) == reply
    assert _money(api, acc) == Decimal("0.99")
    by_run = _cdrs_by_run(api, f"{acc}-1", {"*default", "*raw"})
    assert Decimal(str(by_run["*default"]["Cost"])) == Decimal("0.01")
    assert by_run["*default"]["ToR"] == "*sms"


def test_sms_process_message_debit_and_insufficient_credit(api):
    acc = f"sms_pm_{type(api).__name__}"
    _account(api, acc, Decimal("0.015"))
    arg = {"Debit": True, "Tenant": "cgrates.org", "Event": _sms(acc, f"{acc}-1")}
    assert ok(api.call("SessionSv1.ProcessMessage", arg))["MaxUsage"] == 1
    assert _money(api, acc) == Decimal("0.005")
    # the next SMS cannot be paid: refused, nothing taken
    poor = {**arg, "Event": _sms(acc, f"{acc}-2")}
    assert err(api.call("SessionSv1.ProcessMessage", poor)) == "RALS_ERROR:INSUFFICIENT_CREDIT"
    assert _money(api, acc) == Decimal("0.005")


def test_process_event_bad_arguments_change_nothing(api):
    acc = f"sms_bad_{type(api).__name__}"
    _account(api, acc, Decimal("1"))
    ev = _sms(acc, f"{acc}-1")
    assert err(api.call("SessionSv1.ProcessEvent", {"Flags": ["*accounts", "*bogus"], "Event": ev})).startswith(
        "SERVER_ERROR: Flags: unknown flag *bogus")
    assert err(api.call("SessionSv1.ProcessEvent", {"Flags": ["*rals:*sometimes"], "Event": ev})).startswith(
        "SERVER_ERROR: Flags: *rals:*sometimes")
    no_origin = {k: v for k, v in ev.items() if k != "OriginID"}
    assert err(api.call("SessionSv1.ProcessEvent", {"Flags": ["*accounts"], "Event": no_origin})) == \
        "MANDATORY_IE_MISSING: [OriginID]"
    assert err(api.call("SessionSv1.ProcessEvent", {"Flags": ["*accounts"]})) == "MANDATORY_IE_MISSING: [Event]"
    assert "resources" in STUBS  # ResourceS is part of the suite (else: NOT_CONNECTED: ResourceS)
    assert err(api.call("SessionSv1.ProcessEvent", {"Flags": ["*resources:*often"], "Event": ev})).startswith(
        "SERVER_ERROR: Flags: *resources:*often")
    assert _money(api, acc) == Decimal("1")


def _usages(suite) -> dict:
    """ResGroup1's usages, asked of ResourceS itself (gRPC)."""
    with grpc.insecure_channel(suite.addr("resources")) as ch:
        res = resources_pb2_grpc.ResourcesServiceStub(ch).GetResource(
            common_pb2.TenantID(tenant="cgrates.org", id="ResGroup1"), timeout=10)
    return loads_exact(res.json)["Usages"]


def test_process_event_resources(api, suite):
    """ResGroup1 (tutorial): accounts 1001-1003, limit 7; UsageID = OriginID, 1 unit."""
    oid = f"res-{type(api).__name__}"
    ev = {"Account": "1002", "Destination": "1001", "OriginID": oid, "SetupTime": T0}
    flags = lambda step: {"Flags": [f"*resources:{step}"], "Tenant": "cgrates.org", "Event": ev}  # noqa: E731
    assert ok(api.call("SessionSv1.ProcessEvent", flags("*authorize")))["ResourceAllocation"] == "ResGroup1"
    assert ok(api.call("SessionSv1.ProcessEvent", flags("*allocate")))["ResourceAllocation"] == "ResGroup1"
    assert oid in _usages(suite)
    assert ok(api.call("SessionSv1.ProcessEvent", flags("*release")))["ResourceAllocation"] == "OK"
    assert oid not in _usages(suite)
    # ProcessMessage AllocateResources; an account no resource matches -> RESOURCES_ERROR
    msg = {"AllocateResources": True, "Tenant": "cgrates.org", "Event": {**ev, "OriginID": f"{oid}-m"}}
    assert ok(api.call("SessionSv1.ProcessMessage", msg))["ResourceAllocation"] == "ResGroup1"
    stranger = {"Flags": ["*resources:*allocate"], "Tenant": "cgrates.org", "Event": {**ev, "Account": "nobody"}}
    assert err(api.call("SessionSv1.ProcessEvent", stranger)).startswith("RESOURCES_ERROR:")


def test_process_event_attributes_thresholds_stats(api):
    ev = {"Account": "1001", "Destination": "1002", "OriginID": "pe-attr-1", "SetupTime": T0, "AnswerTime": T0,
          "Usage": "60s"}
    reply = ok(api.call("SessionSv1.ProcessEvent", {"Flags": ["*attributes", "*thresholds", "*stats"],
                                                    "Tenant": "cgrates.org", "Event": ev}))
    assert reply["Attributes"]["MatchedProfiles"] == ["ATTR_1001_SESSIONAUTH"]
    assert reply["Attributes"]["CGREvent"]["Event"]["RequestType"] == "*prepaid"
    assert isinstance(reply["ThresholdIDs"], list) and isinstance(reply["StatQueueIDs"], list)
    assert reply["MaxUsage"] == 0
    # *rals:*authorize sizes the call like AuthorizeEvent (1001 -> 1002 for 60 s: granted)
    auth = ok(api.call("SessionSv1.ProcessEvent", {"Flags": ["*rals:*authorize"], "Tenant": "cgrates.org",
                                                   "Event": {**ev, "RequestType": "*prepaid"}}))
    assert auth["MaxUsage"] == 60_000_000_000


def test_digest_calls_sync_and_passive_sessions(api, suite):
    auth = {"GetMaxUsage": True, "Tenant": "cgrates.org",
            "Event": {"Account": "1001", "Destination": "1002", "OriginID": "dig-1", "RequestType": "*prepaid",
                      "SetupTime": T0, "AnswerTime": T0, "Usage": "60s"}}
    digest = ok(api.call("SessionSv1.AuthorizeEventWithDigest", auth))
    assert digest["MaxUsage"] == 60
    osips = TcpClient(suite.env["CGRPY_OPENSIPS_LISTEN"])
    try:
        assert ok(osips.call("SessionSv1.AuthorizeEventWithDigest", auth)) == digest  # same reply as :2014
    finally:
        osips.close()
    assert ok(api.call("SessionSv1.SyncSessions", "")) == "OK"
    assert err(api.call("SessionSv1.GetPassiveSessions", {})) == "NOT_FOUND"
    assert ok(api.call("SessionSv1.GetPassiveSessionsCount", {})) == 0
    assert err(api.call("SessionSv1.GetPassiveSessionsCount", {"Filters": ["*gt:~*req.Usage:1"]})).startswith(
        "NOT_IMPLEMENTED")


def test_sms_through_opensips_cgrates_cmd(api, suite):
    """cgrates_cmd("SessionSv1.ProcessEvent"): $cgr_opt at the top (Flags as one string), $cgr in Event."""
    acc = f"sms_osips_{type(api).__name__}"
    _account(api, acc, Decimal("2"))
    osips = TcpClient(suite.env["CGRPY_OPENSIPS_LISTEN"])
    try:
        arg = {"Flags": "*accounts,*cdrs", "Tenant": "cgrates.org", "Event": _sms(acc, f"{acc}-1")}
        assert ok(osips.call("SessionSv1.ProcessEvent", arg))["MaxUsage"] == 1
        msg = {"Debit": True, "Tenant": "cgrates.org", "Event": _sms(acc, f"{acc}-2")}
        assert ok(osips.call("SessionSv1.ProcessMessage", msg))["MaxUsage"] == 1
        assert err(osips.call("SessionSv1.NoSuchMethod", {})) == "rpc: can't find method SessionSv1.NoSuchMethod"
    finally:
        osips.close()
    assert _money(api, acc) == Decimal("1.98")


def test_initiate_session_with_digest_shape(api, suite):
    """V1InitReplyWithDigest on the API and on :2014: MaxUsage in seconds, digests as text."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    osips = TcpClient(suite.env["CGRPY_OPENSIPS_LISTEN"])
    try:
        for client, oid in ((api, f"dig-init-{type(api).__name__}"), (osips, f"dig-init-osips-{type(api).__name__}")):
            ev = {"Account": "1001", "Destination": "1002", "OriginID": oid, "OriginHost": "127.0.0.1",
                  "RequestType": "*prepaid", "SetupTime": now, "AnswerTime": now}
            r = ok(client.call("SessionSv1.InitiateSessionWithDigest",
                               {"InitSession": True, "Tenant": "cgrates.org", "Event": ev}))
            assert set(r) == {"AttributesDigest", "ResourceAllocation", "MaxUsage", "Thresholds", "StatQueues"}
            assert isinstance(r["MaxUsage"], int) and 0 < r["MaxUsage"] <= 3 * 3600  # seconds, not ns
            assert ok(client.call("SessionSv1.TerminateSession", {"TerminateSession": True, "Tenant": "cgrates.org",
                                                                 "Event": {**ev, "Usage": "1s"}})) == "OK"
    finally:
        osips.close()
