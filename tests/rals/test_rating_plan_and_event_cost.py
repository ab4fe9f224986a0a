"""Compiling tariff plans and the EventCost cost-details shape (docs/rating.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, RatingDataError, get_cost
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
T0 = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "tutorial"))


@pytest.mark.parametrize("name", ["tutorial", "oldtutorial", "testtp", "engine_libtest"])
def test_every_repo_plan_compiles(name):
    data = RatingData.from_rows(read_folder(TARIFFPLANS / name))
    assert data.rating_profiles and data.rating_plans
    assert {"*any", "*asap"} <= set(data.timings)


def test_rates_slots_sorted_and_connect_fee_from_first_loaded_row():
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows["Rates"] = [
        {"Id": "RT_X", "ConnectFee": "0.3", "Rate": "0.1", "RateUnit": "60s", "RateIncrement": "1s",
         "GroupIntervalStart": "60s"},
        {"Id": "RT_X", "ConnectFee": "0.5", "Rate": "0.2", "RateUnit": "60s", "RateIncrement": "60s",
         "GroupIntervalStart": "0s"},
        *rows["Rates"],
    ]
    rate = RatingData.from_rows(rows).rates["RT_X"]
    assert rate.connect_fee == D("0.3")
    assert [s.group_interval_start_ns for s in rate.slots] == [0, 60 * S]
    assert rate.slots[0].value == D("0.2")


def test_tutorial_rt_20cnt(tutorial):
    rate = tutorial.rates["RT_20CNT"]
    assert rate.connect_fee == D("0.4")
    assert [(s.group_interval_start_ns, s.value, s.unit_ns, s.increment_ns) for s in rate.slots] == [
        (0, D("0.2"), 60 * S, 60 * S),
        (60 * S, D("0.1"), 60 * S, S),
    ]
    # bare numbers are nanoseconds / units
    sms = tutorial.rates["RT_SMS"].slots[0]
    assert (sms.unit_ns, sms.increment_ns) == (1, 1)


def test_timings_weekdays_and_prefix_index():
    data = RatingData.from_rows(read_folder(TARIFFPLANS / "oldtutorial"))
    assert data.timings["OFFPEAK_WEEKEND"].week_days == (6, 0)  # 7 normalised to Sunday
    assert data.timings["PEAK"].start_tod_ns == 8 * 3600 * S
    assert data.destinations["DST_DE_MOBILE"] == ("+49151", "+49161", "+49171")
    lib = RatingData.from_rows(read_folder(TARIFFPLANS / "engine_libtest"))
    assert lib.prefix_index["49"] == ("GERMANY", "ALL")
    assert lib.prefix_index["0723"] == ("NAT", "RET")


def test_activation_history_sorted_and_fallbacks_sorted():
    lib = RatingData.from_rows(read_folder(TARIFFPLANS / "engine_libtest"))
    acts = lib.rating_profiles["*out:CUSTOMER_1:0:rif:from:tm"].activations
    assert [a.rating_plan_id for a in acts] == ["PREMIUM", "STANDARD"]
    [trp] = lib.rating_profiles["*out:test:0:trp"].activations
    assert trp.fallback_keys == ("*out:test:0:danb", "*out:test:0:rif")


@pytest.mark.parametrize(
    ("file", "row", "message"),
    [
        ("DestinationRates", {"Id": "DR_BAD", "DestinationId": "NOPE", "RatesTag": "RT_20CNT"}, "unknown destination"),
        ("DestinationRates", {"Id": "DR_BAD", "DestinationId": "DST_1001", "RatesTag": "NOPE"}, "unknown rate"),
        ("RatingPlans", {"Id": "RP_BAD", "DestinationRatesId": "NOPE", "TimingTag": "*any", "Weight": "10"}, "unknown destination rates"),
        ("RatingPlans", {"Id": "RP_BAD", "DestinationRatesId": "DR_SMS", "TimingTag": "NOPE", "Weight": "10"}, "unknown timing"),
        ("RatingProfiles", {"Tenant": "t", "Category": "call", "Subject": "x", "ActivationTime": "2014-01-01T00:00:00Z", "RatingPlanId": "NOPE"}, "unknown rating plan"),
        ("Rates", {"Id": "RT_BAD", "ConnectFee": "0", "Rate": "abc", "RateUnit": "1s", "RateIncrement": "1s", "GroupIntervalStart": "0"}, "not a number"),
        ("Rates", {"Id": "RT_BAD", "ConnectFee": "0", "Rate": "1", "RateUnit": "1 sec", "RateIncrement": "1s", "GroupIntervalStart": "0"}, "not a duration"),
    ],
)
def test_bad_references_are_named_errors(file, row, message):
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows[file] = [*rows[file], row]
    with pytest.raises(RatingDataError) as err:
        RatingData.from_rows(rows)
    assert message in str(err.value)
    assert err.value.file == f"{file}.csv"


def test_event_cost_shape_85s(tutorial):
    cd = CallDescriptor(account="1001", destination="1002", time_start=T0, usage_ns=85 * S,
                        cgrid="abc", run_id="*default")
    ec = get_cost(tutorial, cd).to_event_cost()
    assert (ec["CGRID"], ec["RunID"], ec["StartTime"]) == ("abc", "*default", T0)
    assert ec["Usage"] == 85 * S
    assert ec["Cost"] == D("0.64175")
    assert ec["Accounting"] == {} and ec["AccountSummary"] is None
    first, second = ec["Charges"]
    assert first["Increments"][0] == {"Usage": 0, "Cost": D("0.4"), "AccountingID": "", "CompressFactor": 1}
    assert first["Increments"][1]["Usage"] == 60 * S and first["Increments"][1]["Cost"] == D("0.2")
    assert second["Increments"] == [{"Usage": S, "Cost": D("0.00167"), "AccountingID": "", "CompressFactor": 25}]
    # both intervals use the same rating -> one shared, de-duplicated Rating entry
    assert first["RatingID"] == second["RatingID"]
    rating = ec["Rating"][first["RatingID"]]
    assert rating["ConnectFee"] == D("0.4") and rating["RoundingMethod"] == "*up"
    assert rating["RoundingDecimals"] == 4 and rating["MaxCostStrategy"] == ""
    assert ec["Rates"][rating["RatesID"]] == [
        {"GroupIntervalStart": 0, "Value": D("0.2"), "RateIncrement": 60 * S, "RateUnit": 60 * S},
        {"GroupIntervalStart": 60 * S, "Value": D("0.1"), "RateIncrement": S, "RateUnit": 60 * S},
    ]
    assert ec["RatingFilters"][rating["RatingFiltersID"]] == {
        "Subject": "*out:cgrates.org:call:1001", "DestinationPrefix": "1002",
        "DestinationID": "DST_1002", "RatingPlanID": "RP_1001",
    }
    assert ec["Timings"][rating["TimingID"]]["StartTime"] == "00:00:00"
    # serialises with exact numbers and reads back equal
    again = loads_exact(dumps_exact(ec))
    assert again["Cost"] == D("0.64175") and again["Usage"] == 85 * S


def test_event_cost_compresses_identical_intervals(tutorial):
    start = datetime(2014, 8, 4, 23, 59, tzinfo=UTC)
    cc = get_cost(tutorial, CallDescriptor(account="1001", destination="1003", time_start=start,
                                           usage_ns=120 * S))
    assert len(cc.timespans) == 2  # split at midnight
    ec = cc.to_event_cost()
    [charge] = ec["Charges"]
    assert charge["CompressFactor"] == 2
    assert charge["Increments"] == [{"Usage": S, "Cost": D("0.01"), "AccountingID": "", "CompressFactor": 60}]
    assert ec["Usage"] == 120 * S
    assert ec["Cost"] == D("1.2")


def test_event_cost_ids_are_deterministic(tutorial):
    cd = CallDescriptor(account="1001", destination="1002", time_start=T0, usage_ns=85 * S)
    assert get_cost(tutorial, cd).to_event_cost() == get_cost(tutorial, cd).to_event_cost()


@pytest.mark.parametrize("name", ["tutorial", "oldtutorial", "testtp", "engine_libtest"])
def test_repo_plans_have_sane_rates(name):
    assert RatingData.from_rows(read_folder(TARIFFPLANS / name)).unsane_rates() == []


def test_unsane_rates_are_reported():
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows["Rates"] = [
        {"Id": "RT_U", "ConnectFee": "0", "Rate": "1", "RateUnit": "60s", "RateIncrement": "60s", "GroupIntervalStart": "0s"},
        {"Id": "RT_U", "ConnectFee": "0", "Rate": "1", "RateUnit": "60s", "RateIncrement": "0", "GroupIntervalStart": "30s"},
    ]
    rows["DestinationRates"] = rows["RatingPlans"] = rows["RatingProfiles"] = []
    problems = RatingData.from_rows(rows).unsane_rates()
    assert [p for _, p in problems] == [
        "RateUnit and RateIncrement must be positive",
        "GroupIntervalStart 30000000000ns is not a multiple of the previous increment 60000000000ns",
    ]
