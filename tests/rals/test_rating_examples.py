"""The worked examples of rating on the tutorial plan, one test each, with the exact numbers (tutorial plan, G = 5)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, get_cost, rating_max_usage
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
ANSWER = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))


@pytest.fixture(scope="module")
def libtest() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "engine_libtest"))


def call(account: str, dest: str, seconds: int, **kw) -> CallDescriptor:
    return CallDescriptor(
        account=account, destination=dest, time_start=ANSWER, usage_ns=seconds * S, **kw
    )


def test_ex1_1001_to_1002_20s_rounded_up_to_60s(tutorial):
    cc = get_cost(tutorial, call("1001", "1002", 20))
    assert cc.matched_prefix == "1002"
    assert cc.matched_dest_id == "DST_1002"
    assert cc.rating_plan_id == "RP_1001"
    assert cc.matched_subject == "*out:cgrates.org:call:1001"
    [ts] = cc.timespans
    assert ts.time_start == ANSWER
    assert ts.duration_ns == 60 * S
    assert ts.rate_interval.rating.rates_id == "RT_20CNT"
    assert [(i.duration_ns, i.cost, i.compress_factor) for i in ts.increments] == [(60 * S, D("0.2"), 1)]
    assert cc.connect_fee == D("0.4")
    assert cc.cost == D("0.6")
    assert cc.event_cost_amount() == D("0.6")
    assert cc.to_event_cost()["Usage"] == 60 * S


def test_ex2_1001_to_1002_85s_callcost_vs_eventcost(tutorial):
    cc = get_cost(tutorial, call("1001", "1002", 85))
    assert [ts.duration_ns for ts in cc.timespans] == [60 * S, 25 * S]
    assert [ts.group_start_ns for ts in cc.timespans] == [0, 60 * S]
    second = cc.timespans[1]
    assert second.rate_slot.value == D("0.1")
    assert [(i.duration_ns, i.cost, i.compress_factor) for i in second.increments] == [(S, D("0.00167"), 25)]
    assert second.cost == D("0.04175")
    assert cc.raw_cost == D("0.64175")
    assert cc.cost == D("0.6418")
    assert cc.event_cost_amount() == D("0.64175")
    assert cc.usage_ns == 85 * S


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(130, D("0.7169")), (120, D("0.7002")), (3600, D("6.5118"))],
)
def test_ex3_1001_to_1002_longer_calls(tutorial, seconds, expected):
    assert get_cost(tutorial, call("1001", "1002", seconds)).cost == expected


@pytest.mark.parametrize(("seconds", "expected"), [(20, D("0.2")), (85, D("0.85")), (3600, D("36"))])
def test_ex4_1001_to_1003_disconnect_max_cost_not_applied_by_get_cost(tutorial, seconds, expected):
    cc = get_cost(tutorial, call("1001", "1003", seconds))
    assert cc.matched_dest_id == "DST_1003"
    assert cc.timespans[0].rate_interval.rating.max_cost == D("0.12")
    assert cc.timespans[0].rate_interval.rating.max_cost_strategy == "*disconnect"
    assert cc.connect_fee == 0
    assert cc.cost == expected


@pytest.mark.parametrize("seconds", [12, 13, 60, 3 * 3600])
def test_ex4_max_usage_1001_to_1003_is_12s(tutorial, seconds):
    assert rating_max_usage(tutorial, call("1001", "1003", seconds)) == 12 * S


def test_ex4_max_usage_below_the_cut_is_the_request(tutorial):
    assert rating_max_usage(tutorial, call("1001", "1003", 5)) == 5 * S


def test_ex6_1003_to_1001_1s(tutorial):
    cc = get_cost(tutorial, call("1003", "1001", 1))
    assert cc.rating_plan_id == "RP_1003"
    assert cc.cost == D("0.3")
    assert cc.event_cost_amount() == D("0.3")


def test_ex6_1003_to_1001_85s(tutorial):
    cc = get_cost(tutorial, call("1003", "1001", 85))
    assert cc.timespans[1].increments[0].cost == D("0.00083")
    assert cc.timespans[1].cost == D("0.02075")
    assert cc.cost == D("0.3208")
    assert cc.event_cost_amount() == D("0.32075")


def test_ex7_engine_libtest_two_time_of_day_intervals(libtest):
    start = datetime(2012, 2, 2, 17, 30, tzinfo=UTC)  # a Thursday
    cd = CallDescriptor(
        tenant="vdf", category="0", subject="rif", destination="0256",
        time_start=start, time_end=datetime(2012, 2, 2, 18, 30, tzinfo=UTC),
    )
    cc = get_cost(libtest, cd, rounding_decimals=6)
    assert [(ts.time_start.hour, ts.time_start.minute) for ts in cc.timespans] == [(17, 30), (18, 0)]
    assert [ts.rate_interval.rating.rates_id for ts in cc.timespans] == ["R4", "R5"]
    assert [ts.cost for ts in cc.timespans] == [D(1800), D(900)]
    assert cc.connect_fee == 1
    assert cc.cost == D(2701)


def test_ex7_loop_index_1_has_no_connect_fee(libtest):
    cd = CallDescriptor(
        tenant="vdf", category="0", subject="rif", destination="0256", loop_index=1,
        time_start=datetime(2012, 2, 2, 17, 30, tzinfo=UTC),
        time_end=datetime(2012, 2, 2, 18, 30, tzinfo=UTC),
    )
    cc = get_cost(libtest, cd, rounding_decimals=6)
    assert cc.connect_fee == 0
    assert cc.cost == D(2700)


def test_ex7_starting_at_2350_first_span_r5_no_connect_fee(libtest):
    cd = CallDescriptor(
        tenant="vdf", category="0", subject="rif", destination="0256",
        time_start=datetime(2012, 2, 2, 23, 50, tzinfo=UTC),
        time_end=datetime(2012, 2, 3, 0, 30, tzinfo=UTC),
    )
    cc = get_cost(libtest, cd, rounding_decimals=6)
    assert [ts.rate_interval.rating.rates_id for ts in cc.timespans] == ["R5", "R4"]
    assert cc.timespans[1].time_start == datetime(2012, 2, 3, tzinfo=UTC)
    assert cc.connect_fee == 0
    assert cc.cost == D(2100)
