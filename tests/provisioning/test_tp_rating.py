"""The CGRateS v0.10 rating TP API over JSON-RPC against a real suite (`cgr up`, tutorial plan,
its own Postgres database): a portal builds or changes prices in a TPid, loads it with
LoadTariffPlanFromStorDb and the next GetCost uses them without a restart; bad input is refused
naming the field and changes nothing; the live rating-profile methods act on the loaded plan."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import replace_tariffplan
from tests.apier.conftest import TUTORIAL, start_suite
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.provisioning.common import dump
from tests.suite import Suite

T0 = "2014-08-04T13:00:00Z"
ACTIVE = "2014-01-14T00:00:00Z"


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    yield from start_suite(pg_databases, "--tariffplan", str(TUTORIAL))


@pytest.fixture
def api(suite) -> Iterator[TcpClient]:
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


def cost(api: TcpClient, subject: str, destination: str = "1002", usage: str = "85s") -> Decimal:
    return ok(api.call("APIerSv1.GetCost", {"Tenant": "cgrates.org", "Category": "call", "Subject": subject,
                                            "AnswerTime": T0, "Destination": destination, "Usage": usage}))["Cost"]


def build_portal_plan(api: TcpClient, tpid: str, rate: str) -> None:
    """What a portal sends to price calls of 1001 to 1002 at ``rate`` per minute."""
    calls = [
        ("APIerSv1.SetTPTiming", {"TPid": tpid, "ID": "TM_ALWAYS", "Years": "*any", "Months": "*any",
                                  "MonthDays": "*any", "WeekDays": "*any", "Time": "00:00:00"}),
        ("APIerSv1.SetTPDestination", {"TPid": tpid, "ID": "DST_PORTAL", "Prefixes": ["1002"]}),
        ("APIerSv1.SetTPRate", {"TPid": tpid, "ID": "RT_PORTAL", "RateSlots": [
            {"ConnectFee": Decimal("0.1"), "Rate": Decimal(rate), "RateUnit": "60s", "RateIncrement": "60s",
             "GroupIntervalStart": "0s"}]}),
        ("APIerSv1.SetTPDestinationRate", {"TPid": tpid, "ID": "DR_PORTAL", "DestinationRates": [
            {"DestinationId": "DST_PORTAL", "RateId": "RT_PORTAL", "RoundingMethod": "*up", "RoundingDecimals": 4,
             "MaxCost": 0, "MaxCostStrategy": ""}]}),
        ("APIerSv1.SetTPRatingPlan", {"TPid": tpid, "ID": "RP_PORTAL", "RatingPlanBindings": [
            {"DestinationRatesId": "DR_PORTAL", "TimingId": "TM_ALWAYS", "Weight": 10}]}),
        ("APIerSv1.SetTPRatingProfile", {"TPid": tpid, "LoadId": "portal", "Tenant": "cgrates.org",
                                         "Category": "call", "Subject": "1001", "RatingPlanActivations": [
                                             {"ActivationTime": ACTIVE, "RatingPlanId": "RP_PORTAL",
                                              "FallbackSubjects": ""}]}),
    ]
    for name, args in calls:
        assert ok(api.call(name, args)) == "OK", name


def test_portal_changes_a_price_and_loads_it(api, suite):
    before = cost(api, "1001")
    assert before == Decimal("0.64175")  # the tutorial's RP_1001
    build_portal_plan(api, "portal", "1.2")
    assert cost(api, "1001") == before  # stored in its TPid only: nothing live yet
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "portal", "DryRun": True})) == "OK"
    assert cost(api, "1001") == before
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "portal"})) == "OK"
    assert cost(api, "1001") == Decimal("2.5")  # 0.1 + 2 minutes at 1.2, exact
    assert cost(api, "1002", "1001") == Decimal("0.64175")  # the rest of the live plan stays
    # the portal changes the price and loads again: no restart, the next GetCost uses it
    assert ok(api.call("APIerSv1.SetTPRate", {"TPid": "portal", "ID": "RT_PORTAL", "RateSlots": [
        {"ConnectFee": 0, "Rate": Decimal("0.33333"), "RateUnit": "60s", "RateIncrement": "60s",
         "GroupIntervalStart": "0s"}]})) == "OK"
    assert cost(api, "1001") == Decimal("2.5")
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "portal"})) == "OK"
    assert cost(api, "1001") == Decimal("0.66666")
    live = dump(suite.env["CGRPY_STORDB_URL"])
    assert [r["RatingPlanId"] for r in live["RatingProfiles"] if r["Subject"] == "1001"] == ["RP_PORTAL"]
    assert any(r["Id"] == "RT_20CNT" for r in live["Rates"])


def test_tp_objects_round_trip_in_v010_shapes(api):
    build_portal_plan(api, "shapes", "0.5")
    assert ok(api.call("APIerSv1.GetTPTiming", {"TPid": "shapes", "ID": "TM_ALWAYS"})) == {
        "TPid": "shapes", "ID": "TM_ALWAYS", "Years": "*any", "Months": "*any", "MonthDays": "*any",
        "WeekDays": "*any", "Time": "00:00:00"}
    assert ok(api.call("APIerSv1.GetTPDestination", {"TPid": "shapes", "ID": "DST_PORTAL"})) == {
        "TPid": "shapes", "ID": "DST_PORTAL", "Prefixes": ["1002"]}
    assert ok(api.call("APIerSv1.GetTPRate", {"TPid": "shapes", "ID": "RT_PORTAL"})) == {
        "TPid": "shapes", "ID": "RT_PORTAL", "RateSlots": [
            {"ConnectFee": Decimal("0.1"), "Rate": Decimal("0.5"), "RateUnit": "60s", "RateIncrement": "60s",
             "GroupIntervalStart": "0s"}]}
    assert ok(api.call("APIerSv1.GetTPDestinationRate", {"TPid": "shapes", "ID": "DR_PORTAL"})) == {
        "TPid": "shapes", "ID": "DR_PORTAL", "DestinationRates": [
            {"DestinationId": "DST_PORTAL", "RateId": "RT_PORTAL", "Rate": None, "RoundingMethod": "*up",
             "RoundingDecimals": 4, "MaxCost": 0, "MaxCostStrategy": ""}]}
    assert ok(api.call("APIerSv1.GetTPRatingPlan", {"TPid": "shapes", "ID": "RP_PORTAL"})) == {
        "TPid": "shapes", "ID": "RP_PORTAL", "RatingPlanBindings": [
            {"DestinationRatesId": "DR_PORTAL", "TimingId": "TM_ALWAYS", "Weight": 10}]}
    prof = ok(api.call("APIerSv1.GetTPRatingProfile", {"TPid": "shapes", "RatingProfileID": "portal:cgrates.org:call:1001"}))
    assert prof == {"TPid": "shapes", "LoadId": "portal", "Tenant": "cgrates.org", "Category": "call",
                    "Subject": "1001", "RatingPlanActivations": [
                        {"ActivationTime": ACTIVE, "RatingPlanId": "RP_PORTAL", "FallbackSubjects": ""}]}
    ids = {
        "GetTPTimingIds": ["TM_ALWAYS"], "GetTPDestinationIDs": ["DST_PORTAL"], "GetTPRateIds": ["RT_PORTAL"],
        "GetTPDestinationRateIds": ["DR_PORTAL"], "GetTPRatingPlanIds": ["RP_PORTAL"],
        "GetTPRatingProfileIds": [":cgrates.org:call:1001"],
    }
    for name, want in ids.items():
        assert ok(api.call(f"APIerSv1.{name}", {"TPid": "shapes"})) == want, name
    # taken apart in reverse order of dependency; each gone answers NOT_FOUND
    assert ok(api.call("APIerSv1.RemoveTPRatingProfile", {"TPid": "shapes",
                                                          "RatingProfileID": "cgrates.org:call:1001"})) == "OK"
    assert err(api.call("APIerSv1.GetTPRatingProfileIds", {"TPid": "shapes"})) == "NOT_FOUND"
    for kind, ident in (("RatingPlan", "RP_PORTAL"), ("DestinationRate", "DR_PORTAL"), ("Rate", "RT_PORTAL"),
                        ("Destination", "DST_PORTAL"), ("Timing", "TM_ALWAYS")):
        assert ok(api.call(f"APIerSv1.RemoveTP{kind}", {"TPid": "shapes", "ID": ident})) == "OK"
        assert err(api.call(f"APIerSv1.GetTP{kind}", {"TPid": "shapes", "ID": ident})) == "NOT_FOUND"
        assert err(api.call(f"APIerSv1.RemoveTP{kind}", {"TPid": "shapes", "ID": ident})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.GetTPRateIds", {"TPid": "shapes"})) == "NOT_FOUND"


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(api, suite):
    build_portal_plan(api, "bad", "0.5")
    url = suite.env["CGRPY_STORDB_URL"]
    stored, live = dump(url, "bad"), dump(url)
    before = cost(api, "1001")
    bad = err(api.call("APIerSv1.SetTPRate", {"TPid": "bad", "ID": "RT_PORTAL", "RateSlots": [
        {"ConnectFee": 0, "Rate": "abc", "RateUnit": "60s", "RateIncrement": "60s", "GroupIntervalStart": "0s"}]}))
    assert bad.startswith("INVALID_ARGUMENT:") and "column Rate: not a number" in bad
    bad = err(api.call("APIerSv1.SetTPRate", {"TPid": "bad", "ID": "RT_PORTAL", "RateSlots": [
        {"Rate": 1, "RateUnit": "60s", "RateIncrement": "0s", "GroupIntervalStart": "0s"}]}))
    assert "column RateIncrement: must be greater than zero" in bad
    bad = err(api.call("APIerSv1.SetTPDestinationRate", {"TPid": "bad", "ID": "DR_PORTAL", "DestinationRates": [
        {"DestinationId": "DST_PORTAL", "RateId": "RT_NOPE", "RoundingMethod": "*up", "RoundingDecimals": 4}]}))
    assert "column RatesTag: unknown Rates ID 'RT_NOPE'" in bad
    assert "RoundingMethod" in err(api.call("APIerSv1.SetTPDestinationRate", {
        "TPid": "bad", "ID": "DR_PORTAL", "DestinationRates": [
            {"DestinationId": "DST_PORTAL", "RateId": "RT_PORTAL", "RoundingMethod": "*sideways"}]}))
    assert err(api.call("APIerSv1.SetTPDestination", {"TPid": "bad", "ID": "DST_X"})) == \
        "MANDATORY_IE_MISSING: [Prefixes]"
    assert "Prefixes[0]" in err(api.call("APIerSv1.SetTPDestination", {"TPid": "bad", "ID": "DST_X", "Prefixes": [7]}))
    assert err(api.call("APIerSv1.SetTPRate", {"ID": "RT_X", "RateSlots": [{}]})) == "MANDATORY_IE_MISSING: [TPid]"
    assert "ActivationTime" in err(api.call("APIerSv1.SetTPRatingProfile", {
        "TPid": "bad", "Category": "call", "Subject": "1001",
        "RatingPlanActivations": [{"ActivationTime": "yesterday-ish", "RatingPlanId": "RP_PORTAL"}]}))
    # still in use: a rate a destination rate names cannot go
    assert "unknown Rates ID 'RT_PORTAL'" in err(api.call("APIerSv1.RemoveTPRate", {"TPid": "bad", "ID": "RT_PORTAL"}))
    assert dump(url, "bad") == stored

    # a TPid broken behind the API's back (written straight into the StorDB) does not load
    broken = {**stored, "DestinationRates": [{**stored["DestinationRates"][0], "RatesTag": "RT_GHOST"}]}
    engine = make_engine(url)
    try:
        replace_tariffplan(engine, "broken", broken)
    finally:
        engine.dispose()
    refused = err(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "broken"}))
    assert refused == ("SERVER_ERROR: 1 problem(s), nothing loaded: DestinationRates DR_PORTAL: column RatesTag: "
                       "unknown Rates ID 'RT_GHOST' (got 'RT_GHOST')")
    assert err(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "nosuch"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.LoadTariffPlanFromStorDb", {})) == "MANDATORY_IE_MISSING: [TPid]"
    assert dump(url) == live
    assert cost(api, "1001") == before
