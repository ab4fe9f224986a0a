"""Loading a TPid into the live plan (cgrpy/tariffplan/merge.py), on the tutorial's rows: the
merge by object key, the part one rating profile / plan / destination needs, problem wording."""

from __future__ import annotations

import pytest

from cgrpy.tariffplan import merge
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.tariffplan.validate import Problem, validate_rows
from tests.conftest import TARIFFPLANS


@pytest.fixture(scope="module")
def live() -> dict:
    return read_folder(TARIFFPLANS / "tutorial")


def test_merge_replaces_objects_of_the_same_key_and_keeps_the_rest(live):
    src = {"Rates": [{"Id": "RT_20CNT", "ConnectFee": "0", "Rate": "0.5", "RateUnit": "60s", "RateIncrement": "60s",
                      "GroupIntervalStart": "0s"}],
           "RatingProfiles": [{"Tenant": "cgrates.org", "Category": "call", "Subject": "1001",
                               "ActivationTime": "2015-01-01T00:00:00Z", "RatingPlanId": "RP_1002",
                               "RatesFallbackSubject": ""}]}
    out = merge.merge(live, src)
    assert [r["Rate"] for r in out["Rates"] if r["Id"] == "RT_20CNT"] == ["0.5"]  # both old slots gone
    assert len(out["Rates"]) == len(live["Rates"]) - 1
    assert [r["RatingPlanId"] for r in out["RatingProfiles"] if r["Subject"] == "1001"] == ["RP_1002"]
    assert [r for r in out["RatingProfiles"] if r["Subject"] != "1001"] == \
        [r for r in live["RatingProfiles"] if r["Subject"] != "1001"]
    assert out["Attributes"] == live["Attributes"]
    assert validate_rows(out).ok


def test_select_takes_what_a_rating_profile_needs(live):
    part = merge.select(live, "RatingProfile", "cgrates.org:call:1001")
    assert {r["RatingPlanId"] for r in part["RatingProfiles"]} == {"RP_1001"}
    assert {r["Id"] for r in part["DestinationRates"]} == {"DR_1002_20CNT", "DR_1003_MAXCOST_DISC"}
    assert {r["Id"] for r in part["Destinations"]} == {"DST_1002", "DST_1003"}
    assert {r["Id"] for r in part["Rates"]} == {r["RatesTag"] for r in part["DestinationRates"]}
    assert not part["Attributes"] and not part["Actions"]
    assert merge.select(live, "Destination", "DST_1002")["Destinations"] == \
        [r for r in live["Destinations"] if r["Id"] == "DST_1002"]
    with pytest.raises(LookupError):
        merge.select(live, "RatingPlan", "RP_NOPE")
    with pytest.raises(ValueError, match="kind: expected one of"):
        merge.select(live, "Rate", "RT_20CNT")


def test_a_problem_is_named_by_its_object(live):
    problem = Problem("DestinationRates.csv", 2, "RatesTag", "unknown Rates ID 'X'", "X")
    assert merge.describe(problem, live) == \
        f"DestinationRates {live['DestinationRates'][1]['Id']}: column RatesTag: unknown Rates ID 'X' (got 'X')"
    assert merge.describe(Problem("Rates.csv", None, None, "bad file"), live) == "Rates.csv: bad file"
