"""The CGRateS JSON-RPC provisioning methods against a real suite (`cgr up`, tutorial plan, real
Postgres): set/get/remove of filters and profiles take effect at once, bad ones are refused with
the field named, and the GetTP* reads answer the CGRateS shapes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.apier.conftest import TUTORIAL, start_suite
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.suite import Suite


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    yield from start_suite(pg_databases, "--tariffplan", str(TUTORIAL))


@pytest.fixture
def api(suite) -> Iterator[TcpClient]:
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


EVENT = {"Tenant": "cgrates.org", "ID": "ev1", "Context": "*sessions", "Event": {"Account": "1020", "Destination": "1002"}}


def test_attribute_profile_lifecycle(api):
    assert err(api.call("AttributeSv1.ProcessEvent", EVENT)).startswith("NOT_FOUND")
    assert ok(api.call("APIerSv1.SetFilter", {
        "Tenant": "cgrates.org", "ID": "FLTR_API",
        "Rules": [{"Type": "*string", "Element": "~*req.Account", "Values": ["1020"]}]})) == "OK"
    assert ok(api.call("APIerSv2.SetAttributeProfile", {
        "Tenant": "cgrates.org", "ID": "ATTR_API", "Contexts": ["*sessions"], "FilterIDs": ["FLTR_API"],
        "Attributes": [{"FilterIDs": [], "Path": "*req.RequestType", "Type": "*constant", "Value": "*postpaid"}],
        "Weight": 10, "Cache": "*reload"})) == "OK"
    rep = ok(api.call("AttributeSv1.ProcessEvent", EVENT))
    assert rep["MatchedProfiles"] == ["ATTR_API"]
    assert rep["CGREvent"]["Event"]["RequestType"] == "*postpaid"
    prof = ok(api.call("APIerSv1.GetAttributeProfile", {"Tenant": "cgrates.org", "ID": "ATTR_API"}))
    assert prof["Attributes"] == [{"FilterIDs": [], "Path": "*req.RequestType", "Type": "*constant",
                                   "Value": [{"Rules": "*postpaid", "AllFiltersMatch": False}]}]
    assert prof["Weight"] == 10
    assert "ATTR_API" in ok(api.call("APIerSv1.GetAttributeProfileIDs", {"Tenant": "cgrates.org"}))
    assert ok(api.call("APIerSv1.GetFilter", {"ID": "FLTR_API"}))["Rules"][0]["Values"] == ["1020"]

    bad = err(api.call("APIerSv1.SetAttributeProfile", {
        "Tenant": "cgrates.org", "ID": "ATTR_BAD", "FilterIDs": ["FLTR_MISSING"],
        "Attributes": [{"Path": "*req.X", "Type": "*constant", "Value": "1"}]}))
    assert bad.startswith("INVALID_ARGUMENT:") and "column FilterIDs: unknown Filters ID 'FLTR_MISSING'" in bad
    assert err(api.call("APIerSv1.GetAttributeProfile", {"ID": "ATTR_BAD"})) == "NOT_FOUND"
    # the filter is in use: refused
    assert "unknown Filters ID 'FLTR_API'" in err(api.call("APIerSv1.RemoveFilter", {"ID": "FLTR_API"}))

    assert ok(api.call("APIerSv1.RemoveAttributeProfile", {"Tenant": "cgrates.org", "ID": "ATTR_API"})) == "OK"
    assert err(api.call("AttributeSv1.ProcessEvent", EVENT)).startswith("NOT_FOUND")
    assert ok(api.call("APIerSv1.RemoveFilter", {"ID": "FLTR_API"})) == "OK"


def test_charger_and_threshold_profiles(api):
    assert ok(api.call("APIerSv1.SetChargerProfile", {
        "Tenant": "cgrates.org", "ID": "CRG_API", "FilterIDs": ["*string:~*req.Account:1020"],
        "RunID": "*api", "AttributeIDs": ["*none"], "Weight": 0})) == "OK"
    runs = ok(api.call("ChargerSv1.ProcessEvent", {"Tenant": "cgrates.org", "Event": {"Account": "1020"}}))
    assert {r["ChargerSProfile"] for r in runs} >= {"CRG_API", "DEFAULT"}
    assert ok(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_API", "Overwrite": True, "Actions": [
        {"Identifier": "*log", "Weight": 10}]})) == "OK"
    assert err(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_API", "Actions": [{"Identifier": "*log"}]})) == "EXISTS"
    assert ok(api.call("APIerSv2.GetActions", {"ActionIDs": ["ACT_API"]}))["ACT_API"][0]["ActionType"] == "*log"
    assert ok(api.call("APIerSv1.SetThresholdProfile", {
        "Tenant": "cgrates.org", "ID": "THD_API", "FilterIDs": ["*string:~*req.Account:1020"], "MaxHits": -1,
        "MinHits": 1, "MinSleep": 0, "Weight": 10, "ActionIDs": ["ACT_API"]})) == "OK"
    found = ok(api.call("ThresholdSv1.GetThresholdsForEvent", {"Tenant": "cgrates.org", "Event": {"Account": "1020"}}))
    assert [t["ID"] for t in found] == ["THD_API"]
    bad = err(api.call("APIerSv1.SetThresholdProfile", {"ID": "THD_BAD", "MinSleep": "soon"}))
    assert "column MinSleep: not a duration" in bad
    assert ok(api.call("APIerSv1.SetActionPlan", {"Id": "AP_API", "ActionPlan": [
        {"ActionsId": "ACT_API", "Years": "*any", "Months": "*any", "MonthDays": "*any", "WeekDays": "1;2",
         "Time": "10:00:00", "Weight": 10}], "Overwrite": True})) == "OK"


def test_tp_reads(api):
    assert "cgrpy" in ok(api.call("APIerSv1.GetTPIds", {}))
    rate = ok(api.call("APIerSv1.GetTPRate", {"TPid": "cgrpy", "ID": "RT_20CNT"}))
    assert rate["RateSlots"] == [
        {"ConnectFee": Decimal("0.4"), "Rate": Decimal("0.2"), "RateUnit": "60s", "RateIncrement": "60s",
         "GroupIntervalStart": "0s"},
        {"ConnectFee": 0, "Rate": Decimal("0.1"), "RateUnit": "60s", "RateIncrement": "1s",
         "GroupIntervalStart": "60s"}]
    assert "RT_20CNT" in ok(api.call("APIerSv1.GetTPRateIds", {"TPid": "cgrpy"}))
    assert ok(api.call("APIerSv1.GetTPDestination", {"TPid": "cgrpy", "ID": "DST_1002"}))["Prefixes"] == ["1002"]
    plan = ok(api.call("APIerSv1.GetTPRatingPlan", {"TPid": "cgrpy", "ID": "RP_1001"}))
    assert {b["DestinationRatesId"] for b in plan["RatingPlanBindings"]} == {"DR_1002_20CNT", "DR_1003_MAXCOST_DISC"}
    prof = ok(api.call("APIerSv1.GetTPRatingProfile", {"TPid": "cgrpy", "RatingProfileId": "cgrates.org:call:1001"}))
    assert prof["RatingPlanActivations"][0]["RatingPlanId"] == "RP_1001"
    assert err(api.call("APIerSv1.GetTPRate", {"TPid": "cgrpy", "ID": "NOPE"})) == "NOT_FOUND"
