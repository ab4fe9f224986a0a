"""StatEngine on the spec's worked examples (docs/profiles.md), expiry, merging and ThresholdS events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cgrpy.errors import MandatoryIEMissingError, NotFoundError
from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from services.stats.engine import StatEngine
from tests.conftest import TARIFFPLANS
from tests.stats.fake_filters import FakeFilters

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ANSWER = "2014-07-14T14:25:00Z"

STATS1 = {
    "Tenant": "cgrates.org", "Id": "Stats1", "FilterIDs": "FLTR_STATS1",
    "ActivationInterval": "2014-07-29T15:00:00Z", "QueueLength": "100", "TTL": "10s",
    "MinItems": "2", "Metrics": "*asr;*acc;*tcc;*acd;*tcd;*sum:~*req.Usage;*average:~*req.Usage",
    "MetricFilterIDs": "", "Stored": "true", "Blocker": "true", "Weight": "20",
    "ThresholdIDs": "",
}
STATS1_PDD = {"Tenant": "cgrates.org", "Id": "Stats1", "FilterIDs": "", "ActivationInterval": "",
              "QueueLength": "", "TTL": "", "MinItems": "", "Metrics": "*pdd",
              "MetricFilterIDs": "*exists:~*req.PDD:", "Stored": "", "Blocker": "", "Weight": "",
              "ThresholdIDs": ""}


# Stats1 in the CGRateS test is set through the API with the inline filter
# *string:~*req.Account:1001;1002, which a CSV FilterIDs cell cannot hold (`;` splits it).
FILTERS = [{"Tenant": "cgrates.org", "ID": "FLTR_STATS1", "Type": "*string",
            "Element": "~*req.Account", "Values": "1001;1002", "ActivationInterval": ""}]


def stats1_engine(**overrides: str) -> StatEngine:
    row = dict(STATS1, **overrides)
    return StatEngine.from_rows({"Stats": [row, STATS1_PDD]}, FakeFilters(FILTERS).passes)


def e1() -> CGREvent:
    return CGREvent("cgrates.org", "event1", None, {
        "Account": "1001", "AnswerTime": ANSWER, "Usage": "135s", "Cost": Decimal("123"),
        "PDD": "12s"})


def e2() -> CGREvent:
    return CGREvent("cgrates.org", "event2", None, {
        "Account": "1002", "AnswerTime": ANSWER, "Usage": 45_000_000_000, "Cost": Decimal("12.1")})


def e3() -> CGREvent:
    return CGREvent("cgrates.org", "event3", None, {
        "Account": "1002", "Usage": 0, "Cost": 0})


def test_spec_7_6_stats1_worked_example() -> None:
    eng = stats1_engine()
    r = eng.process_event(e1(), now=T0)
    assert r.queue_ids == ["Stats1"] and not r.partially_executed
    assert set(eng.get_string_metrics("cgrates.org", "Stats1", now=T0).values()) == {"N/A"}
    assert set(eng.get_float_metrics("cgrates.org", "Stats1", now=T0).values()) == {Decimal(-1)}
    eng.process_event(e2(), now=T0)
    eng.process_event(e3(), now=T0)
    assert eng.get_string_metrics("cgrates.org", "Stats1", now=T0) == {
        "*asr": "66.66667%",
        "*acc": "45.03333",
        "*tcc": "135.1",
        "*acd": "1m0s",
        "*tcd": "3m0s",
        "*sum:~*req.Usage": "180000000000",
        "*average:~*req.Usage": "60000000000",
        "*pdd": "N/A",
    }
    assert eng.get_float_metrics("cgrates.org", "Stats1", now=T0) == {
        "*asr": Decimal("66.66667"),
        "*acc": Decimal("45.03333"),
        "*tcc": Decimal("135.1"),
        "*acd": Decimal(60),
        "*tcd": Decimal(180),
        "*sum:~*req.Usage": Decimal(180000000000),
        "*average:~*req.Usage": Decimal(60000000000),
        "*pdd": Decimal(-1),
    }


def test_ttl_expiry_removes_events_from_every_metric() -> None:
    eng = stats1_engine()
    eng.process_event(e1(), now=T0)
    eng.process_event(e2(), now=T0 + timedelta(seconds=1))
    eng.process_event(e3(), now=T0 + timedelta(seconds=2))
    # e1 expires exactly at T0 + TTL (expiry <= now)
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0 + timedelta(seconds=10))
    assert (m["*asr"], m["*tcd"], m["*acd"], m["*tcc"], m["*acc"]) == (
        "50%", "45s", "22.5s", "12.1", "6.05")
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0 + timedelta(seconds=11))
    assert m["*tcd"] == "N/A"  # only e3 left, MinItems 2
    assert len(eng.get_queue("cgrates.org", "Stats1", now=T0).items) == 1


def test_negative_and_zero_ttl_never_expire() -> None:
    for ttl in ("-1", "", "0", "*unlimited"):
        eng = stats1_engine(TTL=ttl)
        eng.process_event(e1(), now=T0)
        eng.process_event(e2(), now=T0)
        m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0 + timedelta(days=365))
        assert m["*tcd"] == "3m0s", ttl


def test_queue_length_evicts_oldest() -> None:
    eng = stats1_engine(QueueLength="2", MinItems="0")
    for e in (e1(), e2(), e3()):
        eng.process_event(e, now=T0)
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0)
    assert (m["*tcd"], m["*tcc"], m["*asr"], m["*pdd"]) == ("45s", "12.1", "50%", "N/A")
    assert [i.event_id for i in eng.get_queue("cgrates.org", "Stats1", now=T0).items] == [
        "event2", "event3"]


def test_same_event_id_is_merged() -> None:
    eng = stats1_engine(MinItems="0", QueueLength="3")
    a = e2()
    b = e3()
    b.id = a.id
    eng.process_event(a, now=T0)
    eng.process_event(b, now=T0)
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0)
    assert (m["*tcd"], m["*acd"], m["*asr"]) == ("45s", "22.5s", "50%")


def test_missing_field_is_partial_and_leaves_queue_unchanged() -> None:
    eng = stats1_engine(MinItems="0")
    eng.process_event(e2(), now=T0)
    bad = CGREvent("cgrates.org", "nousage", None, {"Account": "1001", "Cost": 1})
    r = eng.process_event(bad, now=T0)
    assert r.partially_executed and "NOT_FOUND:Usage" in r.errors["Stats1"]
    assert r.threshold_events == []
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0)
    assert (m["*tcc"], m["*asr"]) == ("12.1", "100%")  # nothing counted, not even *asr
    assert len(eng.get_queue("cgrates.org", "Stats1", now=T0).items) == 1


def test_threshold_event_carries_native_values() -> None:
    eng = stats1_engine(ThresholdIDs="TH1;TH2")
    r = eng.process_event(e1(), now=T0)
    [te] = r.threshold_events
    assert te.threshold_ids == ["TH1", "TH2"]
    assert te.event.tenant == "cgrates.org" and te.event.id
    assert te.event.event["EventType"] == "StatUpdate"
    assert te.event.event["StatID"] == "Stats1"
    assert te.event.event["*acd"] == -1 and te.event.event["*asr"] == Decimal(-1)
    eng.process_event(e2(), now=T0)
    r = eng.process_event(e3(), now=T0)
    assert r.threshold_events[0].event.event["*tcd"] == 180_000_000_000
    assert r.threshold_events[0].event.event["*asr"] == Decimal("66.66667")


def test_validation_and_not_found() -> None:
    eng = stats1_engine()
    with pytest.raises(MandatoryIEMissingError, match=r"\[Tenant ID\]"):
        eng.process_event(CGREvent("", "", None, {}))
    with pytest.raises(NotFoundError):
        eng.process_event(CGREvent("cgrates.org", "x", None, {"Account": "9999"}))
    with pytest.raises(NotFoundError):
        eng.get_string_metrics("cgrates.org", "nope")
    assert eng.get_queue_ids("cgrates.org") == ["Stats1"]


def test_reset() -> None:
    eng = stats1_engine(MinItems="0")
    eng.process_event(e1(), now=T0)
    eng.reset("cgrates.org", "Stats1")
    assert eng.get_string_metrics("cgrates.org", "Stats1", now=T0)["*tcc"] == "N/A"


def test_activation_interval_checked_against_event_time() -> None:
    eng = stats1_engine()
    old = e1()
    old.time = datetime(2014, 1, 1, tzinfo=UTC)
    with pytest.raises(NotFoundError):
        eng.process_event(old, now=T0)


def test_tutorial_stats2_blocker_and_values() -> None:
    rows = read_folder(TARIFFPLANS / "tutorial")
    eng = StatEngine.from_rows(rows, FakeFilters(rows["Filters"]).passes)
    base = {"Account": "1001", "Destination": "1002", "RunID": "*default"}
    r1 = eng.process_event(CGREvent("cgrates.org", "c1", None, dict(
        base, Usage="60s", Cost=Decimal("0.6"))), now=T0)
    eng.process_event(CGREvent("cgrates.org", "c2", None, dict(
        base, Usage="30s", Cost=Decimal("0.4"))), now=T0)
    assert r1.queue_ids == ["Stats2"] and r1.threshold_events == []  # ThresholdIDs *none
    assert eng.get_string_metrics("cgrates.org", "Stats2") == {"*tcc": "1", "*tcd": "1m30s"}
    assert eng.get_string_metrics("cgrates.org", "Stats2_1") == {"*tcc": "N/A", "*tcd": "N/A"}
    r = eng.process_event(CGREvent("cgrates.org", "c3", None, dict(
        base, Account="1003", Destination="1001", Usage="10s", Cost=1)), now=T0)
    assert r.queue_ids == ["Stats2_1"]
