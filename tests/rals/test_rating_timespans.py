"""Timespan splitting: timings (peak/off-peak), rate slots by call offset, midnights, increments,
session pieces (DurationIndex / LoopIndex), zero usage and non-voice ToRs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, get_cost
from tests.conftest import TARIFFPLANS

S = 1_000_000_000


@pytest.fixture(scope="module")
def tutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))


@pytest.fixture(scope="module")
def oldtutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "oldtutorial"))


@pytest.fixture(scope="module")
def testtp() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "testtp"))


def cd(account, dest, start, usage_ns, **kw) -> CallDescriptor:
    return CallDescriptor(account=account, destination=dest, time_start=start, usage_ns=usage_ns, **kw)


def test_peak_to_offpeak_evening_split_at_1900(oldtutorial):
    start = datetime(2014, 8, 4, 18, 59, tzinfo=UTC)  # Monday
    cc = get_cost(oldtutorial, cd("1001", "1002", start, 120 * S))
    assert [ts.rate_interval.timing.id for ts in cc.timespans] == ["PEAK", "OFFPEAK_EVENING"]
    assert [ts.rate_interval.rating.rates_id for ts in cc.timespans] == ["RT_20CNT", "RT_10CNT"]
    assert cc.timespans[1].time_start == datetime(2014, 8, 4, 19, 0, tzinfo=UTC)
    # second span: call offset 60 s -> RT_10CNT slot 2 (0.05/60 s by 1 s = 0.00083 each)
    assert cc.timespans[1].group_start_ns == 60 * S
    assert cc.timespans[1].cost == D("0.0498")
    assert cc.connect_fee == D("0.4")  # from the first span's rate only
    assert cc.cost == D("0.6498")


def test_offpeak_morning_to_peak_split_at_0800(oldtutorial):
    start = datetime(2014, 8, 4, 7, 59, tzinfo=UTC)
    cc = get_cost(oldtutorial, cd("1001", "1002", start, 120 * S))
    assert [ts.rate_interval.timing.id for ts in cc.timespans] == ["OFFPEAK_MORNING", "PEAK"]
    assert [ts.cost for ts in cc.timespans] == [D("0.1"), D("0.1002")]
    assert cc.connect_fee == D("0.2")
    assert cc.cost == D("0.4002")


def test_weekend_uses_offpeak_weekend(oldtutorial):
    start = datetime(2014, 8, 9, 10, 0, tzinfo=UTC)  # Saturday
    cc = get_cost(oldtutorial, cd("1001", "1002", start, 60 * S))
    [ts] = cc.timespans
    assert ts.rate_interval.timing.id == "OFFPEAK_WEEKEND"
    assert cc.cost == D("0.3")


def test_rate_slot_change_at_gis_rt_10cnt(tutorial):
    start = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)
    cc = get_cost(tutorial, cd("1003", "1001", start, 150 * S))
    first, second = cc.timespans
    assert first.rate_interval.rating.connect_fee == D("0.2")
    assert (first.duration_ns, first.rate_slot.value, first.rate_slot.increment_ns) == (60 * S, D("0.1"), 60 * S)
    assert (second.duration_ns, second.rate_slot.value, second.rate_slot.increment_ns) == (90 * S, D("0.05"), S)
    assert second.time_start == datetime(2014, 8, 4, 13, 1, tzinfo=UTC)
    assert second.cost == 90 * D("0.00083")
    assert cc.raw_cost == D("0.2") + D("0.1") + D("0.0747")
    assert cc.cost == D("0.3747")


def test_session_piece_uses_duration_index_and_no_connect_fee(tutorial):
    start = datetime(2014, 8, 4, 13, 1, tzinfo=UTC)
    piece = cd("1003", "1001", start, 30 * S, duration_index_ns=90 * S, loop_index=1)
    cc = get_cost(tutorial, piece)
    [ts] = cc.timespans
    assert ts.group_start_ns == 60 * S
    assert ts.duration_index_ns == 90 * S
    assert cc.connect_fee == 0
    assert cc.cost == D("0.0249")


def test_piece_straddling_gis_is_rounded_to_first_slot_increment(tutorial):
    # offsets 45..75 s: the 15 s on slot 1 round up to its 60 s increment, swallowing the rest
    piece = cd("1003", "1001", datetime(2014, 8, 4, 13, 0, 45, tzinfo=UTC), 30 * S,
               duration_index_ns=75 * S, loop_index=1)
    cc = get_cost(tutorial, piece)
    [ts] = cc.timespans
    assert ts.duration_ns == 60 * S
    assert ts.duration_index_ns == 105 * S
    assert cc.cost == D("0.1")


def test_midnight_split_for_voice(tutorial):
    start = datetime(2014, 8, 4, 23, 59, tzinfo=UTC)
    cc = get_cost(tutorial, cd("1001", "1003", start, 120 * S))
    assert [ts.time_start for ts in cc.timespans] == [start, datetime(2014, 8, 5, tzinfo=UTC)]
    assert cc.cost == D("1.2")


def test_span_ending_exactly_at_midnight_is_not_split(tutorial):
    start = datetime(2014, 8, 4, 23, 59, tzinfo=UTC)
    cc = get_cost(tutorial, cd("1001", "1003", start, 60 * S))
    assert len(cc.timespans) == 1


def test_zero_usage_one_empty_span_with_match_info(tutorial):
    start = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)
    cc = get_cost(tutorial, CallDescriptor(account="1001", destination="1002", time_start=start,
                                           time_end=start))
    [ts] = cc.timespans
    assert ts.duration_ns == 0 and ts.increments == []
    assert (cc.matched_subject, cc.matched_prefix, cc.matched_dest_id, cc.rating_plan_id) == (
        "*out:cgrates.org:call:1001", "1002", "DST_1002", "RP_1001",
    )
    assert cc.cost == 0 and cc.connect_fee == 0


def test_sms_units_are_nanoseconds_and_not_split_at_midnight(tutorial):
    start = datetime(2014, 8, 4, 23, 59, 59, 999999, tzinfo=UTC)
    cc = get_cost(tutorial, CallDescriptor(category="sms", account="1001", destination="1002",
                                           tor="*sms", time_start=start, usage_ns=5000))
    [ts] = cc.timespans
    assert ts.duration_ns == 5000
    assert cc.matched_dest_id == "*any"
    assert cc.cost == D("50")


def test_data_rounded_to_increment_units(testtp):
    start = datetime(2016, 1, 5, 10, tzinfo=UTC)
    cc = get_cost(testtp, CallDescriptor(category="data", account="x", destination="*any",
                                         tor="*data", time_start=start, usage_ns=1048576))
    [ts] = cc.timespans
    assert ts.duration_ns == 1048580  # RT_DATA_2c increments of 10 units
    assert [(i.duration_ns, i.cost, i.compress_factor) for i in ts.increments] == [(10, D("0.002"), 104858)]
    assert cc.cost == D("209.716")


def test_time_end_and_usage_ns_agree(tutorial):
    start = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)
    a = get_cost(tutorial, cd("1001", "1002", start, 85 * S))
    b = get_cost(tutorial, CallDescriptor(account="1001", destination="1002", time_start=start,
                                          time_end=datetime(2014, 8, 4, 13, 1, 25, tzinfo=UTC)))
    assert a.cost == b.cost == D("0.6418")


def test_timings_follow_the_calls_zone(oldtutorial):
    plus2 = timezone(timedelta(hours=2))
    start = datetime(2014, 8, 4, 18, 59, tzinfo=plus2)  # 16:59 UTC, 18:59 local
    cc = get_cost(oldtutorial, cd("1001", "1002", start, 120 * S))
    assert [ts.rate_interval.timing.id for ts in cc.timespans] == ["PEAK", "OFFPEAK_EVENING"]
    assert cc.timespans[1].time_start == datetime(2014, 8, 4, 17, 0, tzinfo=UTC)
    assert cc.cost == D("0.6498")
