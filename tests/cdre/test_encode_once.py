"""cdre does a run's conversions once: the EventCost is decoded once (the session cost and the
CDR share it) and encoded once (row, session cost, outbox event, reply), SM's CDRs
(``*attributes:false *chargers:false``) are parsed once and not copied, and the outbox converts
an event to protobuf once for ThresholdS and StatS. What is stored and sent must be exactly what
encoding each time gave. SQLite and Postgres, real StorDB."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cgrates.v1 import cdre_pb2
from cgrpy.config import load_settings
from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.wire import event_to_pb
from services.cdre.cdr import CDR, cdr_from_event, cost_details_json, to_event
from services.cdre.clients import GrpcBackends
from services.cdre.pipeline import PipelineConfig, ProcessError, ProcessFlags, process_cdr
from services.cdre.server import _FLAGS, _MAX_FLAG_SETS, _flags, session_cost_from_pb
from services.cdre.store import CdrStore, RunOutcome, SessionCost
from tests.cdre.fakes import FakeBackends

DETAILS = {"CGRID": "x", "Cost": Decimal("0.40"), "Usage": 60_000_000_000,
           "Charges": [{"RatingID": "r1", "Increments": [{"Cost": Decimal("0.0066667")}]}],
           "Accounting": {"a1": {"Units": Decimal("1E-7")}}}


def _prepaid_event(origin: str, details_text: str) -> CGREvent:
    return CGREvent(tenant="cgrates.org", event={
        "Source": "test", "OriginHost": "127.0.0.1", "OriginID": origin, "Account": "1001",
        "Destination": "1002", "RequestType": "*prepaid", "Usage": 60_000_000_000,
        "AnswerTime": "2014-08-04T13:00:00Z", "RunID": "*default", "CostSource": "*sessions",
        "Cost": "0.40", "CostDetails": details_text})


def test_cost_details_json_is_dumps_exact_and_follows_a_replaced_object():
    cdr = CDR(cgrid="c" * 40, cost_details=dict(DETAILS))
    first = cost_details_json(cdr)
    assert first == dumps_exact(DETAILS)
    assert cost_details_json(cdr) is first  # memo
    cdr.cost_details = {"Cost": Decimal("1.5")}
    assert cost_details_json(cdr) == '{"Cost":1.5}'
    cdr.cost_details = None
    assert cost_details_json(cdr) is None
    # a copy encodes its own (the memo is not carried over)
    cdr.cost_details = dict(DETAILS)
    cost_details_json(cdr)
    assert cdr.copy()._details_json is None  # noqa: SLF001


def test_session_cost_and_cdr_share_the_decoded_event_cost():
    text = dumps_exact(DETAILS)
    pb = cdre_pb2.SessionCost(cgrid="c" * 40, run_id="*default", cost="0.40",
                              usage_ns=60_000_000_000, cost_details_json=text)
    decoded: dict = {}
    sc = session_cost_from_pb(pb, decoded)
    cdr = cdr_from_event(_prepaid_event("o1", text), decoded=decoded)
    assert sc.cost_details == DETAILS and cdr.cost_details is sc.cost_details
    # a different text is decoded on its own
    other = dumps_exact({**DETAILS, "Cost": Decimal("0.41")})
    cdr2 = cdr_from_event(_prepaid_event("o2", other), decoded=decoded)
    assert cdr2.cost_details == {**DETAILS, "Cost": Decimal("0.41")}


def test_a_run_stored_with_its_session_cost_writes_the_same_json_everywhere(store: CdrStore):
    cdr = CDR(cgrid="d" * 40, run_id="*default", request_type="*prepaid", account="1001",
              usage_ns=60_000_000_000, extra_fields={"Note": "n"}, cost_details=dict(DETAILS))
    sc = SessionCost(cgrid=cdr.cgrid, run_id="*default", cost=Decimal("0.40"),
                     usage_ns=60_000_000_000, cost_details=cdr.cost_details)
    outcome = RunOutcome(Decimal("0.40"), "*sessions", cdr.cost_details)
    with store.engine.begin() as conn:
        stored, dup = store.insert_final_in(conn, cdr, outcome, session_cost=sc,
                                            notify=("thresholds", "stats"))
    assert not dup
    got = store.get_run(cdr.cgrid, "*default")
    assert got is not None and got.cdr.cost_details == DETAILS and got.cdr.cost == Decimal("0.4")
    assert store.get_session_cost(cdr.cgrid, "*default") == sc
    # the outbox event is the CDR's event as encoding it whole gives
    (row,) = store.claim_outbox(10, 10**9)
    (ev,) = row.events
    want = to_event(stored.cdr, EventType="CDR")
    assert ev.id == want.id and ev.tenant == want.tenant
    assert ev.event == loads_exact(dumps_exact(want.event))
    assert ev.event["CostDetails"] == DETAILS
    # a second insert of the run changes nothing
    with store.engine.begin() as conn:
        _st, dup = store.insert_final_in(conn, cdr, outcome, session_cost=sc, notify=("stats",))
    assert dup and store.count_cdrs() == 1 and store.outbox_depth() == 1


async def test_sm_cdr_is_parsed_once_and_the_event_left_alone(store: CdrStore):
    text = dumps_exact(DETAILS)
    ev = _prepaid_event("o3", text)
    before = dict(ev.event)
    parsed = cdr_from_event(ev)
    flags = ProcessFlags(attributes=False, chargers=False)
    sc = SessionCost(cgrid=parsed.cgrid, run_id="*default", cost=Decimal("0.40"),
                     usage_ns=60_000_000_000, cost_details=parsed.cost_details)
    be = FakeBackends()
    res = await process_cdr(ev, flags, be, store, PipelineConfig(session_cost_retries=0),
                            session_cost=sc, parsed=parsed)
    assert ev.event == before
    (run,) = res.runs
    assert run.cdr.order_id > 0 and run.cdr.cost == Decimal("0.40") and be.debit_calls == 0
    assert store.get_cdrs()[0] == run.cdr
    # again: a duplicate, nothing stored twice
    res = await process_cdr(ev, flags, be, store, PipelineConfig(session_cost_retries=0),
                            session_cost=sc, parsed=cdr_from_event(ev))
    assert res.duplicate and store.count_cdrs() == 1


def test_outbox_batch_converted_once_for_both_receivers():
    be = GrpcBackends(load_settings(env={}))
    e1 = CGREvent(id="a", event={"CostDetails": dict(DETAILS), "Cost": Decimal("0.4")})
    e2 = CGREvent(id="b", event={"Usage": 5})
    first = be._event_pbs([e1, e2])  # noqa: SLF001
    assert first[id(e1)] == event_to_pb(e1) and first[id(e2)] == event_to_pb(e2)
    second = be._event_pbs([e1, e2])  # noqa: SLF001 - the same events: the same protobufs
    assert second[id(e1)] is first[id(e1)] and second[id(e2)] is first[id(e2)]
    # an equal but other event is converted anew; only the last batch is remembered
    e1b = CGREvent(id="a", event={"Usage": 6})
    third = be._event_pbs([e1b])  # noqa: SLF001
    assert third[id(e1b)] == event_to_pb(e1b)
    fourth = be._event_pbs([e1])  # noqa: SLF001
    assert fourth[id(e1)] is not first[id(e1)] and fourth[id(e1)] == event_to_pb(e1)


def test_flag_lists_parsed_once_and_a_bad_one_refused_every_time():
    words = ["*chargers:false", "*attributes:false", "*rals:true"]
    first = _flags(words)
    assert first == ProcessFlags.parse(words) and _flags(list(words)) is first
    for _ in range(2):
        with pytest.raises(ProcessError, match="unknown CDR flag"):
            _flags(["*ralz"])
    # a sender making up new lists does not grow the cache without end
    for i in range(200):
        _flags(["*rals:true"] * (i % 3 + 1) + ["*store"] * (i // 3))
    assert len(_FLAGS) <= _MAX_FLAG_SETS
