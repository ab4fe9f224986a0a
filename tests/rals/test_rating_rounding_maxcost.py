"""Final rounding methods (incl. negative amounts), per-increment rounding and MaxCost strategies
(docs/rating.md)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, get_cost, rating_max_usage
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
T0 = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)
SIGNS = ("POS", "NEG")
METHODS = ("up", "down", "middle")


def tp(**files: str) -> TariffPlanRows:
    return {
        name: [dict(zip(FILE_COLUMNS[name], r, strict=True)) for r in csv.reader(io.StringIO(text.strip())) if r]
        for name, text in files.items()
    }


ROUNDING_PLAN = tp(
    Destinations="D49,49",
    Rates="POS,0,0.1,60s,1s,0s\nNEG,0,-0.1,60s,1s,0s",
    DestinationRates="\n".join(f"DR_{s}_{m},D49,{s},*{m},2,0," for s in SIGNS for m in METHODS),
    RatingPlans="\n".join(f"RP_{s}_{m},DR_{s}_{m},*any,10" for s in SIGNS for m in METHODS),
    RatingProfiles="\n".join(
        f"t,call,{s}_{m},2014-01-01T00:00:00Z,RP_{s}_{m}," for s in SIGNS for m in METHODS
    ),
)


@pytest.fixture(scope="module")
def rounding() -> RatingData:
    return RatingData.from_rows(ROUNDING_PLAN)


@pytest.fixture(scope="module")
def oldtutorial() -> RatingData:
    return RatingData.from_rows(read_folder(TARIFFPLANS / "oldtutorial"))


@pytest.mark.parametrize(
    ("subject", "increment", "raw", "final"),
    [
        ("POS_up", D("0.00167"), D("0.14195"), D("0.15")),
        ("POS_down", D("0.00167"), D("0.14195"), D("0.14")),
        ("POS_middle", D("0.00167"), D("0.14195"), D("0.14")),
        # CGRateS's Round on negatives: floor/ceil as written, so *up and *middle go to -inf
        ("NEG_up", D("-0.00167"), D("-0.14195"), D("-0.15")),
        ("NEG_down", D("-0.00167"), D("-0.14195"), D("-0.15")),
        ("NEG_middle", D("-0.00167"), D("-0.14195"), D("-0.15")),
    ],
)
def test_final_rounding_methods(rounding, subject, increment, raw, final):
    cd = CallDescriptor(tenant="t", subject=subject, destination="49", time_start=T0, usage_ns=85 * S)
    cc = get_cost(rounding, cd)
    [ts] = cc.timespans
    assert [(i.cost, i.compress_factor) for i in ts.increments] == [(increment, 85)]
    assert cc.raw_cost == raw
    assert cc.cost == final
    assert cc.event_cost_amount() == raw  # EventCost ignores the DestinationRate rounding


def test_per_increment_rounding_depends_on_global_decimals(rounding):
    # 0.1/min charged per second, 180 s: 180 x 0.00167 at G=5, 180 x 0.001667 at G=6
    cd = CallDescriptor(tenant="t", subject="POS_middle", destination="49", time_start=T0, usage_ns=180 * S)
    assert get_cost(rounding, cd).raw_cost == D("0.3006")
    assert get_cost(rounding, cd, rounding_decimals=6).raw_cost == D("0.30006")


def test_max_cost_free_caps_cost(oldtutorial):
    # 1001 -> RP_RETAIL2 -> DST_1007: RT_1CNT_PER_SEC 0.01/s, MaxCost 0.62 *free
    cd = CallDescriptor(account="1001", destination="1007", time_start=T0, usage_ns=100 * S)
    cc = get_cost(oldtutorial, cd)
    [ts] = cc.timespans
    assert ts.rate_interval.rating.max_cost_strategy == "*free"
    assert [(i.cost, i.compress_factor) for i in ts.increments] == [(D("0.01"), 62), (D("0"), 38)]
    assert cc.cost == D("0.62")
    assert cc.event_cost_amount() == D("0.62")
    assert cc.max_cost_so_far == D("0.62")
    assert cc.usage_ns == 100 * S


def test_max_cost_free_below_cap_is_full_cost(oldtutorial):
    cd = CallDescriptor(account="1001", destination="1007", time_start=T0, usage_ns=30 * S)
    assert get_cost(oldtutorial, cd).cost == D("0.3")


def test_max_cost_free_carried_max_cost_so_far(oldtutorial):
    # a later session piece: 0.5 already spent, so only 0.12 more is charged
    cd = CallDescriptor(account="1001", destination="1007", time_start=T0, usage_ns=30 * S,
                        duration_index_ns=80 * S, loop_index=1, max_cost_so_far=D("0.5"))
    cc = get_cost(oldtutorial, cd)
    assert cc.cost == D("0.12")
    assert cc.max_cost_so_far == D("0.62")


def test_max_cost_free_partial_increment():
    plan = tp(Destinations="D,1", Rates="R,0,0.25,1s,1s,0s",
              DestinationRates="DR,D,R,*up,4,1,*free", RatingPlans="RP,DR,*any,10",
              RatingProfiles="t,call,a,2014-01-01T00:00:00Z,RP,")
    cd = CallDescriptor(tenant="t", subject="a", destination="1", time_start=T0, usage_ns=10 * S,
                        max_cost_so_far=D("0.1"))
    cc = get_cost(RatingData.from_rows(plan), cd)
    assert [(i.cost, i.compress_factor) for i in cc.timespans[0].increments] == [
        (D("0.25"), 3), (D("0.15"), 1), (D("0"), 6)
    ]
    assert cc.cost == D("0.9")


def test_max_cost_disconnect_ignored_by_get_cost(oldtutorial):
    # any subject -> RP_RETAIL1 -> DST_1007 MaxCost 0.62 *disconnect
    cd = CallDescriptor(account="2000", destination="1007", time_start=T0, usage_ns=100 * S)
    cc = get_cost(oldtutorial, cd)
    assert cc.timespans[0].rate_interval.rating.max_cost_strategy == "*disconnect"
    assert cc.cost == D("1")


def test_max_cost_disconnect_max_usage(oldtutorial):
    cd = CallDescriptor(account="2000", destination="1007", time_start=T0, usage_ns=100 * S)
    assert rating_max_usage(oldtutorial, cd) == 62 * S


def test_max_rate_cuts_max_usage():
    plan = tp(Destinations="D,1", Rates="R,0,0.5,1s,1s,0s\nR,0,2,1s,1s,10s",
              DestinationRates="DR,D,R,*up,4,0,", RatingPlans="RP,DR,*any,10",
              RatingProfiles="t,call,a,2014-01-01T00:00:00Z,RP,")
    data = RatingData.from_rows(plan)
    cd = CallDescriptor(tenant="t", subject="a", destination="1", time_start=T0, usage_ns=60 * S,
                        max_rate=D(1), max_rate_unit_ns=S)
    assert rating_max_usage(data, cd) == 10 * S
