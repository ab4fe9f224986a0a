"""CGRID and CDR normalisation (docs/opensips-protocol.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.cgrid import cgrid, sha1_concat
from cgrpy.event import CGREvent, loads_exact
from services.cdre.cdr import CdrError, cdr_from_event, to_external
from tests.conftest import TRACES


def test_cgrid_is_sha1_of_origin_id_then_host_without_separator():
    # Hex computed independently: printf '1-6715@127.0.0.1127.0.0.1' | sha1sum
    assert cgrid("1-6715@127.0.0.1", "127.0.0.1") == "c396306b09183a97529185b169af43c5205c3a38"
    assert cgrid("1-9173@127.0.0.1", "127.0.0.1") == "df7f4be94a1a8ed1c283316517b762f9a435a75d"
    # printf 'abc' | sha1sum ; the parts are simply concatenated
    assert sha1_concat("a", "b", "c") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert cgrid("ab", "c") == sha1_concat("abc")


def _trace_cdr_events(name: str) -> list[CGREvent]:
    out = []
    for line in (TRACES / name).read_text().splitlines():
        rec = json.loads(line)
        msg = rec.get("msg") or {}
        if msg.get("method") == "SessionSv1.ProcessCDR":
            params = loads_exact(json.dumps(msg["params"][0]))
            out.append(CGREvent(tenant=params["Tenant"], event=params["Event"]))
    return out


def test_answered_call_from_opensips_trace():
    ev = _trace_cdr_events("authorized_call.jsonl")[0]
    cdr = cdr_from_event(ev)
    assert cdr.origin_id == "1-6715@127.0.0.1"
    assert cdr.cgrid == "c396306b09183a97529185b169af43c5205c3a38"
    assert cdr.run_id == "*default"
    assert cdr.tor == "*voice"
    assert cdr.request_type == "*prepaid"
    assert cdr.tenant == "cgrates.org" and cdr.category == "call"
    assert cdr.account == "1001" and cdr.subject == "1001" and cdr.destination == "1002"
    assert cdr.usage_ns == 2_000_000_000
    assert cdr.answer_time == datetime.fromtimestamp(1795677153, UTC)
    assert cdr.setup_time is None
    assert cdr.rating_start == cdr.answer_time
    assert cdr.extra_fields == {"DisconnectCause": "Downstream BYE"}
    assert cdr.cost == Decimal(-1)
    ext = to_external(cdr)
    assert ext["Usage"] == "2s"
    assert ext["AnswerTime"] == "2026-11-26T07:12:33Z"
    assert ext["SetupTime"] == "0001-01-01T00:00:00Z"
    assert ext["Cost"] == Decimal(-1)


def test_missed_call_origin_id_loses_the_header_name():
    ev = _trace_cdr_events("missed_cancel.jsonl")[0]
    assert ev.event["OriginID"].startswith("Call-ID: ")
    cdr = cdr_from_event(ev)
    assert cdr.origin_id == ev.event["OriginID"][len("Call-ID: "):]
    assert cdr.cgrid == cgrid(cdr.origin_id, "127.0.0.1")
    assert cdr.usage_ns == 0
    assert cdr.answer_time is None and cdr.setup_time is not None
    assert cdr.rating_start == cdr.setup_time
    assert cdr.extra_fields["DisconnectCause"] == "Cancelled"


def test_every_trace_cdr_normalises():
    import glob
    names = [p.rsplit("/", 1)[-1] for p in glob.glob(str(TRACES / "*.jsonl"))]
    seen = 0
    for name in names:
        for ev in _trace_cdr_events(name):
            cdr = cdr_from_event(ev)
            assert len(cdr.cgrid) == 40 and cdr.usage_ns >= 0
            seen += 1
    assert seen >= 10


def test_usage_number_is_ns_text_is_parsed_and_negative_is_zero():
    base = {"OriginID": "x", "OriginHost": "h", "Account": "1001"}
    assert cdr_from_event(CGREvent(event={**base, "Usage": 120_000_000_000})).usage_ns == 120 * 10**9
    assert cdr_from_event(CGREvent(event={**base, "Usage": "120"})).usage_ns == 120
    assert cdr_from_event(CGREvent(event={**base, "Usage": "1m25s"})).usage_ns == 85 * 10**9
    assert cdr_from_event(CGREvent(event={**base, "Usage": -5})).usage_ns == 0


def test_defaults_legacy_request_type_given_cgrid_and_data_usage_rendering():
    cdr = cdr_from_event(CGREvent(tenant="t1", event={
        "CGRID": "abc", "RunID": "run1", "RequestType": "postpaid", "ToR": "*data",
        "Usage": 1048576, "Account": "1002", "Subject": "s", "Cost": Decimal("0.5"),
        "SetupTime": "2014-01-14T00:00:00Z", "Flag": True, "N": Decimal("1.50"),
    }))
    assert (cdr.cgrid, cdr.run_id, cdr.tenant, cdr.request_type) == ("abc", "run1", "t1", "*postpaid")
    assert cdr.subject == "s" and cdr.cost == Decimal("0.5")
    assert cdr.extra_fields == {"Flag": "true", "N": "1.5"}
    ext = to_external(cdr)
    assert ext["Usage"] == "1048576" and ext["SetupTime"] == "2014-01-14T00:00:00Z"
    assert cdr_from_event(CGREvent(event={"OriginID": "o"})).request_type == "*rated"


@pytest.mark.parametrize(("field", "value", "word"), [
    ("Usage", "ten seconds", "Usage"),
    ("AnswerTime", "yesterday", "AnswerTime"),
    ("Cost", "abc", "Cost"),
    ("PreRated", "maybe", "PreRated"),
    ("CostDetails", "{not json", "CostDetails"),
])
def test_bad_fields_are_named(field, value, word):
    with pytest.raises(CdrError, match=word):
        cdr_from_event(CGREvent(event={"OriginID": "o", field: value}))
