"""OpenSIPS params -> CGREvent + flags, and reply shapes, on the captured trace messages."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cgrpy.event import CGREvent, dumps_exact
from services.sm.opensips.messages import (
    Kind,
    RequestError,
    authorize_digest_reply,
    cgrid_of,
    compat_seconds,
    initiate_reply,
    normalize_origin_id,
    parse_request,
    seconds,
)
from services.sm.sessions.types import (
    AttributesReply,
    AuthorizeResult,
    InitiateResult,
    SortedSupplier,
    SuppliersReply,
)
from tests.conftest import TRACES


def _sent(trace: str, method: str) -> dict:
    for line in (TRACES / trace).read_text().splitlines():
        rec = json.loads(line)
        if rec["direction"] == "opensips->engine" and rec["msg"].get("method") == method:
            return json.loads(rec["raw"])
    raise AssertionError(method)


def test_auth_digest_params() -> None:
    msg = _sent("authorized_call.jsonl", "SessionSv1.AuthorizeEventWithDigest")
    req = parse_request(msg["method"], msg["params"][0])
    assert req.kind is Kind.AUTHORIZE_DIGEST and not req.compat
    assert req.event.tenant == "cgrates.org"
    assert req.event.event == {
        "Source": "OpenSIPS",
        "OriginHost": "127.0.0.1",
        "RequestType": "*prepaid",
        "OriginID": "1-6715@127.0.0.1",
        "Account": "1001",
        "SetupTime": "1795677153",
        "Destination": "1002",
    }
    f = req.flags
    assert f.get_max_usage and f.get_attributes and f.get_suppliers
    assert f.process_thresholds and f.process_stats  # ProcessStatQueues honoured
    assert f.authorize_resources and f.allocate_resources and f.release_resources
    assert req.event.time is not None and int(req.event.time.timestamp()) == 1795677153


def test_initiate_keeps_dialog_integers_and_cgrid() -> None:
    msg = _sent("engine_disconnect.jsonl", "SessionSv1.InitiateSession")
    req = parse_request(msg["method"], msg["params"][0])
    assert req.kind is Kind.INITIATE
    assert req.event.get("DialogID") == 1986131823 and req.event.get("DialogEntry") == 3159
    import hashlib

    assert req.cgrid == hashlib.sha1(b"1-8689@127.0.0.1127.0.0.1").hexdigest()


def test_missed_call_origin_id_prefix_stripped() -> None:
    msg = _sent("missed_cancel.jsonl", "SessionSv1.ProcessCDR")
    req = parse_request(msg["method"], msg["params"][0])
    assert req.origin_id == "1-9173@127.0.0.1"
    assert req.event.get("Usage") == "0s" and req.event.get("DisconnectCause") == "Cancelled"
    assert normalize_origin_id("i: abc@h") == "abc@h"
    assert normalize_origin_id("call-id:abc") == "abc"


def test_tagged_session() -> None:
    req = parse_request(
        "SessionSv1.InitiateSession",
        {"Event": {"OriginID": "c1@h|carrier", "OriginHost": ""}, "InitSession": True},
    )
    assert req.tag == "carrier" and req.origin_id == "c1@h|carrier"
    assert req.cgrid != cgrid_of(CGREvent(event={"OriginID": "c1@h", "OriginHost": ""}))


def test_compat_mode_flat_params() -> None:
    msg = _sent("compat_mode_call.jsonl", "SMGenericV1.GetMaxUsage")
    req = parse_request(msg["method"], msg["params"][0])
    assert req.compat and req.kind is Kind.AUTHORIZE and req.flags.get_max_usage
    assert "GetSuppliers" not in req.event.event and "Tenant" not in req.event.event
    assert req.event.tenant == "cgrates.org" and req.event.get("Account") == "1001"
    assert req.flags.get_attributes  # int 1 -> true


def test_bad_params_are_clear_errors() -> None:
    with pytest.raises(RequestError, match="Event"):
        parse_request("SessionSv1.InitiateSession", {"Tenant": "x"})
    with pytest.raises(RequestError, match="OriginID"):
        parse_request("SessionSv1.InitiateSession", {"Event": {"Account": "1"}})
    with pytest.raises(RequestError, match="method"):
        parse_request("SessionSv1.Nope", {})


def test_digest_reply_matches_trace_shape() -> None:
    ev = CGREvent(event={"OfficeGroup": "Marketing"})
    res = AuthorizeResult(
        max_usage_ns=10800 * 10**9,
        attributes=AttributesReply(ev, ["ATTR_1001"], ["OfficeGroup"]),
        suppliers=SuppliersReply("SPP_1", [SortedSupplier("supplier1"), SortedSupplier("supplier2")]),
        threshold_ids=[],
        stat_queue_ids=None,
    )
    got = dumps_exact(authorize_digest_reply(res))
    assert got == (
        '{"AttributesDigest":"OfficeGroup:Marketing","ResourceAllocation":null,"MaxUsage":10800,'
        '"SuppliersDigest":"supplier1,supplier2","Thresholds":"","StatQueues":null}'
    )


def test_max_usage_units() -> None:
    assert seconds(10800 * 10**9) == 10800
    assert seconds(1_500_000_000) == Decimal("1.5")
    assert seconds(-1) == -1
    assert compat_seconds(10800 * 10**9) == 10800 and compat_seconds(-1) == -1
    init = initiate_reply(InitiateResult(max_usage_ns=10800 * 10**9))
    assert dumps_exact(init) == (
        '{"Attributes":null,"ResourceAllocation":null,"MaxUsage":10800000000000,'
        '"ThresholdIDs":null,"StatQueueIDs":null}'
    )
