"""Each v0.10 metric on its own: values, N/A below MinItems, merge/removal by event ID."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cgrpy.event import CGREvent
from services.stats.metric_types import MetricError, new_metric


def ev(eid: str, **fields: object) -> CGREvent:
    return CGREvent(tenant="cgrates.org", id=eid, event=dict(fields))


def test_asr_rounds_half_up_to_five_decimals() -> None:
    m = new_metric("*asr")
    m.add(ev("1", AnswerTime="2014-07-14T14:25:00Z"))
    m.add(ev("2", AnswerTime="2014-07-14T14:25:00Z"))
    m.add(ev("3"))
    assert m.string_value() == "66.66667%"
    assert m.float_value() == Decimal("66.66667")
    m.remove("1")
    assert m.string_value() == "50%"
    assert m.native_value() == Decimal(50)


def test_asr_empty_answer_time_is_unanswered_and_garbage_is_an_error() -> None:
    m = new_metric("*asr")
    m.add(ev("1", AnswerTime=""))
    assert m.string_value() == "0%"
    with pytest.raises(MetricError, match="AnswerTime"):
        m.extract(ev("2", AnswerTime="yesterday"))
    with pytest.raises(MetricError):
        m.extract(ev("3", AnswerTime=True))


@pytest.mark.parametrize("mid", ["*asr", "*acd", "*tcd", "*acc", "*tcc", "*pdd", "*ddc",
                                 "*sum:~*req.Cost", "*average:~*req.Cost", "*distinct:~*req.Cost"])
def test_every_metric_is_na_below_min_items(mid: str) -> None:
    m = new_metric(mid, min_items=2)
    assert (m.string_value(), m.float_value()) == ("N/A", Decimal(-1))
    m.add(ev("1", AnswerTime="2014-07-14T14:25:00Z", Usage="10s", Cost="1.5", PDD="3s",
             Destination="1002"))
    assert (m.string_value(), m.float_value()) == ("N/A", Decimal(-1))
    m.add(ev("2", AnswerTime="2014-07-14T14:25:00Z", Usage="20s", Cost="2.5", PDD="5s",
             Destination="1003"))
    expected = {
        "*asr": "100%", "*acd": "15s", "*tcd": "30s", "*acc": "2", "*tcc": "4", "*pdd": "4s",
        "*ddc": "2", "*sum:~*req.Cost": "4", "*average:~*req.Cost": "2",
        "*distinct:~*req.Cost": "2",
    }
    assert m.string_value() == expected[mid]


def test_duration_native_na_is_minus_one_ns() -> None:
    m = new_metric("*acd", min_items=1)
    assert m.native_value() == -1
    m.add(ev("1", Usage=90_000_000_000))
    assert m.native_value() == 90_000_000_000
    assert m.float_value() == Decimal(90)
    assert m.string_value() == "1m30s"


def test_acd_integer_division_and_float_seconds() -> None:
    m = new_metric("*acd")
    for i, u in enumerate(["100s", "30s", "30s"]):
        m.add(ev(str(i), Usage=u))
    assert m.value() == 53_333_333_333
    assert m.float_value() == Decimal("53.333333333")
    assert m.string_value() == "53.333333333s"


def test_missing_fields_name_the_field() -> None:
    for mid, msg in [("*acd", "NOT_FOUND:Usage"), ("*tcc", "NOT_FOUND:Cost"),
                     ("*pdd", "NOT_FOUND:PDD"), ("*ddc", "NOT_FOUND"),
                     ("*sum:~*req.Extra", "NOT_FOUND:Extra")]:
        with pytest.raises(MetricError, match=msg):
            new_metric(mid).extract(ev("1"))


def test_bad_metric_ids() -> None:
    with pytest.raises(MetricError, match="unsupported metric type \\*foo"):
        new_metric("*foo")
    with pytest.raises(MetricError, match="Invalid format for field Cost"):
        new_metric("*distinct:Cost")
    with pytest.raises(MetricError, match="Invalid format"):
        new_metric("*sum")


def test_sum_constant_and_duration_text_counts_nanoseconds() -> None:
    s = new_metric("*sum:1")
    s.add(ev("a"))
    s.add(ev("b"))
    assert s.string_value() == "2"
    u = new_metric("*sum:~*req.Usage")
    u.add(ev("a", Usage="135s"))
    u.add(ev("b", Usage=45_000_000_000))
    assert u.string_value() == "180000000000"


def test_same_event_id_merges_and_removal_takes_one_averaged_share() -> None:
    m = new_metric("*tcc")
    m.add(ev("x", Cost="10"))
    m.add(ev("x", Cost="20"))
    m.add(ev("y", Cost="1"))
    assert m.count == 3
    assert m.string_value() == "31"
    m.remove("x")  # removes the average of x's two contributions
    assert m.string_value() == "16"
    m.remove("x")
    assert m.string_value() == "1"
    m.remove("x")  # unknown now: no-op
    assert m.string_value() == "1"


def test_asr_merged_entry_removed_as_answered_when_more_than_half() -> None:
    m = new_metric("*asr")
    m.add(ev("x", AnswerTime="2014-07-14T14:25:00Z"))
    m.add(ev("x", AnswerTime="2014-07-14T14:25:00Z"))
    m.add(ev("x"))
    m.remove("x")  # 2/3 answered > 0.5 -> one answered taken away
    assert m.string_value() == "50%"


def test_distinct_removal_and_state_round_trip() -> None:
    m = new_metric("*ddc")
    m.add(ev("a", Destination="1001"))
    m.add(ev("b", Destination="1001"))
    m.add(ev("c", Destination=1002))
    assert m.string_value() == "2"
    m.remove("a")
    assert m.string_value() == "2"
    m.remove("b")
    assert m.string_value() == "1"
    n = new_metric("*ddc")
    n.load_state(m.state())
    assert n.string_value() == "1"


def test_v010_json_shapes():
    """StatSv1.GetStatQueue's SQMetrics: v0.10's exported fields of each metric struct."""
    asr = new_metric("*asr")
    asr.add(ev("e1", AnswerTime="2014-08-04T13:00:00Z"))
    asr.add(ev("e2"))
    assert asr.v010_json() == {"FilterIDs": [], "Answered": Decimal(1), "Count": 2, "MinItems": 0, "Events": {
        "e1": {"Stat": Decimal(1), "CompressFactor": 1}, "e2": {"Stat": Decimal(0), "CompressFactor": 1}}}
    acd = new_metric("*acd", min_items=2)
    acd.add(ev("e1", Usage="10s"))
    acd.add(ev("e1", Usage="20s"))
    assert acd.v010_json() == {"FilterIDs": [], "Sum": 30_000_000_000, "Count": 2, "MinItems": 2,
                               "Events": {"e1": {"Duration": 15_000_000_000, "CompressFactor": 2}}}
    total = new_metric("*sum:~*req.Cost")
    total.add(ev("e1", Cost="1.25"))
    assert total.v010_json()["FieldName"] == "~*req.Cost" and total.v010_json()["Sum"] == Decimal("1.25")
    ddc = new_metric("*ddc")
    for eid, dst in (("e1", "1002"), ("e2", "1002"), ("e3", "1003")):
        ddc.add(ev(eid, Destination=dst))
    assert ddc.v010_json() == {"FilterIDs": [], "MinItems": 0, "Count": 3,
                               "FieldValues": {"1002": {"e1": {}, "e2": {}}, "1003": {"e3": {}}},
                               "Events": {"e1": {"1002": 1}, "e2": {"1002": 1}, "e3": {"1003": 1}}}
    assert new_metric("*distinct:~*req.Account").v010_json()["FieldName"] == "~*req.Account"
