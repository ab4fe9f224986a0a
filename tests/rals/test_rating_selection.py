"""Profile / plan / destination selection (docs/rating.md) on small synthetic tariff plans."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import (
    RATING_PLAN_NOT_FOUND,
    UNAUTHORIZED_DESTINATION,
    CallDescriptor,
    RatingData,
    RatingError,
    get_cost,
)
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
T0 = datetime(2014, 8, 4, 13, 0, tzinfo=UTC)


def tp(**files: str) -> TariffPlanRows:
    out: TariffPlanRows = {}
    for name, text in files.items():
        cols = FILE_COLUMNS[name]
        out[name] = [dict(zip(cols, r, strict=True)) for r in csv.reader(io.StringIO(text.strip())) if r]
    return out


RATES = """
RT_A,0,1,1s,1s,0s
RT_B,0,2,1s,1s,0s
RT_C,0,3,1s,1s,0s
"""

PLAN = tp(
    Destinations="""
DST_49,49
DST_491,491
DST_X,33
DST_Y,33
""",
    Rates=RATES,
    DestinationRates="""
DR_49,DST_49,RT_A,*up,4,0,
DR_491,DST_491,RT_B,*up,4,0,
DR_X,DST_X,RT_A,*up,4,0,
DR_Y,DST_Y,RT_B,*up,4,0,
DR_ANY,*any,RT_C,*up,4,0,
DR_DE,DST_49,RT_A,*up,4,0,
DR_DE2,DST_49,RT_B,*up,4,0,
DR_FR,DST_X,RT_B,*up,4,0,
""",
    RatingPlans="""
RP_W,DR_49,*any,20
RP_W,DR_491,*any,10
RP_W,DR_X,*any,10
RP_W,DR_Y,*any,20
RP_W,DR_ANY,*any,10
RP_DE,DR_DE,*any,10
RP_DE2,DR_DE2,*any,10
RP_FR,DR_FR,*any,10
RP_ALL,DR_ANY,*any,10
""",
    RatingProfiles="""
t,call,w,2014-01-01T00:00:00Z,RP_W,
t,call,alice,2014-01-01T00:00:00Z,RP_DE,bob
t,call,bob,2014-01-01T00:00:00Z,RP_FR,
t,call,carol,2014-01-01T00:00:00Z,RP_DE,
t,call,erin,2014-01-01T00:00:00Z,RP_DE,zed;bob;zed
t,call,zed,2014-01-01T00:00:00Z,RP_ALL,
t,call,*any,2014-01-01T00:00:00Z,RP_ALL,
t,call,frank,2014-01-01T00:00:00Z,RP_DE,
t,call,frank,2014-08-04T13:00:30Z,RP_DE2,
t,call,gina,2014-08-04T13:00:30Z,RP_DE2,
t,call,lea,2014-01-01T00:00:00Z,RP_DE,
t,call,lea,2014-08-04T13:00:30Z,RP_FR,
""",
)


@pytest.fixture(scope="module")
def data() -> RatingData:
    return RatingData.from_rows(PLAN)


def cost(data, subject, dest, seconds=10, start=T0, **kw):
    cd = CallDescriptor(tenant="t", category="call", subject=subject, destination=dest,
                        time_start=start, usage_ns=seconds * S, **kw)
    return get_cost(data, cd)


def test_longer_prefix_beats_weight(data):
    cc = cost(data, "w", "4915")
    assert (cc.matched_prefix, cc.matched_dest_id) == ("491", "DST_491")
    assert cc.cost == D(20)


def test_same_prefix_length_highest_weight_wins(data):
    cc = cost(data, "w", "331234")
    assert (cc.matched_prefix, cc.matched_dest_id) == ("33", "DST_Y")
    assert cc.cost == D(20)


def test_shorter_prefix_when_longer_not_in_plan(data):
    cc = cost(data, "w", "4900")
    assert (cc.matched_prefix, cc.matched_dest_id) == ("49", "DST_49")
    assert cc.cost == D(10)


@pytest.mark.parametrize("dest", ["4400", "", "*any"])
def test_any_destination_fallback(data, dest):
    cc = cost(data, "w", dest)
    assert (cc.matched_prefix, cc.matched_dest_id) == ("*any", "*any")
    assert cc.cost == D(30)


def test_any_subject_when_subject_has_no_profile(data):
    cc = cost(data, "nobody", "33")
    assert cc.matched_subject == "*out:t:call:*any"
    assert cc.rating_plan_id == "RP_ALL"
    assert cc.cost == D(30)


def test_fallback_subject_when_plan_lacks_destination(data):
    cc = cost(data, "alice", "33")
    assert cc.matched_subject == "*out:t:call:bob"
    assert cc.rating_plan_id == "RP_FR"
    assert cc.cost == D(20)


def test_profile_without_fallback_does_not_use_any_subject(data):
    # carol has a profile, so *any (which would rate 33) is not consulted: rule 2 vs rule 5.
    with pytest.raises(RatingError) as err:
        cost(data, "carol", "33")
    assert err.value.word == UNAUTHORIZED_DESTINATION


def test_fallback_chain_not_covering_is_unauthorized(data):
    with pytest.raises(RatingError) as err:
        cost(data, "alice", "44")
    assert err.value.word == UNAUTHORIZED_DESTINATION


def test_fallback_keys_stored_sorted_and_deduplicated(data):
    [act] = data.rating_profiles["*out:t:call:erin"].activations
    assert act.fallback_keys == ("*out:t:call:bob", "*out:t:call:zed")
    # sorted order: bob (RP_FR) is tried before zed although zed comes first in the CSV
    assert cost(data, "erin", "33").matched_subject == "*out:t:call:bob"
    assert cost(data, "erin", "44").matched_subject == "*out:t:call:zed"


def test_unknown_tenant_is_rating_plan_not_found(data):
    cd = CallDescriptor(tenant="other", subject="x", destination="49", time_start=T0, usage_ns=S)
    with pytest.raises(RatingError) as err:
        get_cost(data, cd)
    assert err.value.word == RATING_PLAN_NOT_FOUND


def test_subject_prefix_matching_option(data):
    cd = CallDescriptor(tenant="t", category="call", subject="alice123", destination="49",
                        time_start=T0, usage_ns=S)
    assert get_cost(data, cd).matched_subject == "*out:t:call:*any"
    assert get_cost(data, cd, subject_prefix_matching=True).matched_subject == "*out:t:call:alice"


def test_activation_change_mid_call_splits_the_call(data):
    cc = cost(data, "frank", "49", seconds=60)
    assert [ts.rating_plan_id for ts in cc.timespans] == ["RP_DE", "RP_DE2"]
    assert [ts.duration_ns for ts in cc.timespans] == [30 * S, 30 * S]
    assert cc.timespans[1].time_start == datetime(2014, 8, 4, 13, 0, 30, tzinfo=UTC)
    assert cc.cost == D(30 + 60)


def test_activation_change_to_plan_without_destination_is_unauthorized(data):
    with pytest.raises(RatingError) as err:
        cost(data, "lea", "49", seconds=60)
    assert err.value.word == UNAUTHORIZED_DESTINATION
    assert cost(data, "lea", "49", seconds=30).cost == D(30)  # ends before the change


def test_head_before_first_activation_rated_via_any_subject(data):
    cc = cost(data, "gina", "49", seconds=60)
    assert [ts.matched_subject for ts in cc.timespans] == ["*out:t:call:*any", "*out:t:call:gina"]
    assert cc.cost == D(30 * 3 + 30 * 2)


def test_engine_libtest_fallback_subject_rif():
    data = RatingData.from_rows(read_folder(TARIFFPLANS / "engine_libtest"))
    cd = CallDescriptor(tenant="vdf", category="0", subject="fall", destination="0256",
                        time_start=datetime(2013, 2, 7, 10, tzinfo=UTC), usage_ns=60 * S)
    cc = get_cost(data, cd, rounding_decimals=6)
    assert cc.matched_subject == "*out:vdf:0:rif"
    assert cc.rating_plan_id == "EVENING"
    assert cc.cost == D(61)  # connect 1 + 60 x 1/s (R4, Thursday morning)


def test_max_computed_usage_exceeded(data):
    from services.rals.rating import MAX_USAGE_EXCEEDED

    with pytest.raises(RatingError) as err:
        cost(data, "w", "49", seconds=72 * 3600 + 1)
    assert err.value.word == MAX_USAGE_EXCEEDED
    assert cost(data, "w", "49", seconds=72 * 3600).cost == D(72 * 3600)
    sms = CallDescriptor(tenant="t", category="call", subject="w", destination="49", tor="*sms",
                         time_start=T0, usage_ns=10_001)
    with pytest.raises(RatingError) as err:
        get_cost(data, sms)
    assert err.value.word == MAX_USAGE_EXCEEDED


def test_bad_descriptor_is_invalid_argument():
    with pytest.raises(RatingError) as err:
        CallDescriptor(subject="a", time_start=datetime(2014, 1, 1), usage_ns=1)
    assert err.value.word == "INVALID_ARGUMENT" and "aware" in str(err.value)
    with pytest.raises(RatingError) as err:
        CallDescriptor(subject="a", time_start=T0, usage_ns=-1)
    assert err.value.word == "INVALID_ARGUMENT" and "negative" in str(err.value)
