"""CallCost JSON (CGRateS v0.10 ``engine.CallCost``, what Responder.GetCost answers) on the
spec's worked examples."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, get_cost
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
T0 = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))


def rate(data: RatingData, usage_s: int, dest: str = "1002", **kw) -> dict:
    cd = CallDescriptor(tenant="cgrates.org", category="call", subject="1001", account="1001",
                        destination=dest, tor="*voice", time_start=T0, usage_ns=usage_s * S, **kw)
    cc = get_cost(data, cd, rounding_decimals=5)
    # through exact JSON and back: what a client reads
    return loads_exact(dumps_exact(cc.to_call_cost_json()))


def test_ex2_85s_callcost_and_timespans(tutorial):
    cc = rate(tutorial, 85)
    assert (cc["Tenant"], cc["Category"], cc["Subject"], cc["Account"], cc["Destination"], cc["ToR"]) == (
        "cgrates.org", "call", "1001", "1001", "1002", "*voice")
    assert cc["Cost"] == D("0.6418")  # CallCost.Cost: Round(0.64175, 4, *up), not the EventCost 0.64175
    assert cc["RatedUsage"] == 85 * S
    assert cc["AccountSummary"] is None
    first, second = cc["Timespans"]
    # span 1: [0, 60 s] at slot 1 (0.2 per 60 s in 60 s increments): one increment of 0.2
    assert (first["TimeStart"], first["TimeEnd"]) == ("2014-08-04T13:00:00Z", "2014-08-04T13:01:00Z")
    assert first["DurationIndex"] == 60 * S
    assert first["Cost"] == D("0.2")
    assert first["Increments"] == [
        {"Duration": 60 * S, "Cost": D("0.2"), "BalanceInfo": {"Unit": None, "Monetary": None, "AccountID": ""},
         "CompressFactor": 1}]
    # span 2: [60 s, 85 s] at slot 2: 25 x 0.00167 = 0.04175
    assert (second["TimeStart"], second["TimeEnd"]) == ("2014-08-04T13:01:00Z", "2014-08-04T13:01:25Z")
    assert second["DurationIndex"] == 85 * S
    assert second["Cost"] == D("0.04175")
    [inc] = second["Increments"]
    assert (inc["Duration"], inc["Cost"], inc["CompressFactor"]) == (S, D("0.00167"), 25)
    for ts in (first, second):
        assert (ts["MatchedSubject"], ts["MatchedPrefix"], ts["MatchedDestId"], ts["RatingPlanId"]) == (
            "*out:cgrates.org:call:1001", "1002", "DST_1002", "RP_1001")
        assert ts["CompressFactor"] == 1 and ts["RoundIncrement"] is None
        ri = ts["RateInterval"]
        assert ri["Rating"] == {
            "ConnectFee": D("0.4"), "RoundingMethod": "*up", "RoundingDecimals": 4, "MaxCost": 0,
            "MaxCostStrategy": "",
            "Rates": [{"GroupIntervalStart": 0, "Value": D("0.2"), "RateIncrement": 60 * S, "RateUnit": 60 * S},
                      {"GroupIntervalStart": 60 * S, "Value": D("0.1"), "RateIncrement": S, "RateUnit": 60 * S}],
        }
        assert ri["Timing"]["StartTime"] == "00:00:00"
        assert ri["Timing"]["Years"] == [] and ri["Timing"]["WeekDays"] == []
    # connect fee is in Cost and in the rating, never an increment: 0.4 + 0.2 + 0.04175 rounded
    assert sum(ts["Cost"] for ts in cc["Timespans"]) + D("0.4") == D("0.64175")


def test_ex1_20s_rounded_up_to_increment(tutorial):
    cc = rate(tutorial, 20)
    assert cc["Cost"] == D("0.6")
    assert cc["RatedUsage"] == 60 * S
    [ts] = cc["Timespans"]
    assert ts["TimeEnd"] == "2014-08-04T13:01:00Z" and ts["DurationIndex"] == 60 * S


def test_later_piece_has_no_connect_fee_in_cost(tutorial):
    cc = rate(tutorial, 25, duration_index_ns=85 * S, loop_index=1)
    [ts] = cc["Timespans"]
    assert ts["Cost"] == D("0.04175")
    assert cc["Cost"] == D("0.0418")  # Round(0.04175, 4, *up), no 0.4 connect fee


def test_ex4_disconnect_maxcost_not_applied(tutorial):
    cc = rate(tutorial, 85, dest="1003")
    assert cc["Cost"] == D("0.85")
    [ts] = cc["Timespans"]
    assert ts["RateInterval"]["Rating"]["MaxCost"] == D("0.12")
    assert ts["RateInterval"]["Rating"]["MaxCostStrategy"] == "*disconnect"
    assert ts["MatchedDestId"] == "DST_1003"
