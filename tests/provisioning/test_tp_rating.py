"""The CGRateS v0.10 rating TP API over JSON-RPC against a real suite (`cgr up`, tutorial plan,
its own Postgres database): a portal builds or changes prices in a TPid, loads it with
LoadTariffPlanFromStorDb and the next GetCost uses them without a restart; bad input is refused
naming the field and changes nothing; the live rating-profile methods act on the loaded plan."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
        "GetTPRatingProfileIds": ["portal:cgrates.org:call:1001"],
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


def _profile(api: TcpClient, tpid: str, load_id: str, subject: str) -> str:
    return ok(api.call("APIerSv1.SetTPRatingProfile", {
        "TPid": tpid, "LoadId": load_id, "Tenant": "cgrates.org", "Category": "call", "Subject": subject,
        "RatingPlanActivations": [{"ActivationTime": ACTIVE, "RatingPlanId": "RP_PORTAL", "FallbackSubjects": ""}]}))


def test_rating_profile_load_ids_are_stored_and_answered_as_v010(api, suite):
    """TPRatingProfile.LoadId is kept with the profile: the ids are LoadId:Tenant:Category:Subject,
    the LoadIds are the distinct ones stored, ByLoadID answers only that LoadId's profiles, a Get
    naming another LoadId is NOT_FOUND; a load into the live plan keeps them."""
    build_portal_plan(api, "lids", "0.5")  # 1001 under LoadId "portal"
    assert _profile(api, "lids", "A", "lid1") == "OK" and _profile(api, "lids", "B", "lid2") == "OK"
    assert ok(api.call("APIerSv1.GetTPRatingProfileIds", {"TPid": "lids"})) == [
        "portal:cgrates.org:call:1001", "A:cgrates.org:call:lid1", "B:cgrates.org:call:lid2"]
    assert ok(api.call("APIerSv1.GetTPRatingProfileIds", {"TPid": "lids", "Offset": 1, "Limit": 1})) == [
        "A:cgrates.org:call:lid1"]
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "lids"})) == ["portal", "A", "B"]
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "lids", "Subject": "lid2"})) == ["B"]
    [a] = ok(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": "lids", "LoadId": "A"}))
    assert (a["TPid"], a["LoadId"], a["Subject"]) == ("lids", "A", "lid1")
    assert a == ok(api.call("APIerSv1.GetTPRatingProfile", {"TPid": "lids", "RatingProfileID": "A:cgrates.org:call:lid1"}))
    assert ok(api.call("APIerSv1.GetTPRatingProfile", {"TPid": "lids", "RatingProfileID": "cgrates.org:call:lid1"})) == a
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": "lids", "LoadId": "C"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {
        "TPid": "lids", "LoadId": "A", "Tenant": "cgrates.org", "Category": "call", "Subject": "lid2"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.GetTPRatingProfile", {"TPid": "lids", "RatingProfileID": "B:cgrates.org:call:lid1"})) \
        == "NOT_FOUND"
    assert err(api.call("APIerSv1.RemoveTPRatingProfile", {"TPid": "lids", "RatingProfileID": "B:cgrates.org:call:lid1"})) \
        == "NOT_FOUND"
    # set again under another LoadId: the profile and its LoadId are replaced
    assert _profile(api, "lids", "C", "lid1") == "OK"
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "lids", "Subject": "lid1"})) == ["C"]
    # an ID part cannot hold the separator: refused naming the field, nothing changed
    assert "LoadId" in err(api.call("APIerSv1.SetTPRatingProfile", {
        "TPid": "lids", "LoadId": "x:y", "Tenant": "cgrates.org", "Category": "call", "Subject": "lid1",
        "RatingPlanActivations": [{"ActivationTime": ACTIVE, "RatingPlanId": "RP_PORTAL"}]}))
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "lids", "Subject": "lid1"})) == ["C"]
    # loaded into the live plan, the profile keeps its LoadId there
    live = suite.env.get("CGRPY_TPID", "cgrpy")
    assert ok(api.call("APIerSv1.LoadRatingProfile", {"TPid": "lids", "RatingProfileID": "C:cgrates.org:call:lid1"})) \
        == "OK"
    assert ok(api.call("APIerSv1.GetTPRatingProfile", {"TPid": live, "RatingProfileID": "C:cgrates.org:call:lid1"}))[
        "LoadId"] == "C"
    assert "CSVLOAD:cgrates.org:call:1002" in ok(api.call("APIerSv1.GetTPRatingProfileIds", {"TPid": live}))


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


def test_live_rating_profiles(api, suite):
    assert "RATING_PLAN_NOT_FOUND" in err(api.call("APIerSv1.GetCost", {
        "Subject": "1099", "AnswerTime": T0, "Destination": "1002", "Usage": "85s"}))
    assert err(api.call("APIerSv1.GetRatingProfile", {"Category": "call", "Subject": "1099"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.SetRatingProfile", {"Category": "call", "Subject": "1099", "RatingPlanActivations": [
        {"ActivationTime": ACTIVE, "RatingPlanId": "RP_NOPE"}]})) == "NOT_FOUND:RatingPlanId:RP_NOPE"
    assert err(api.call("APIerSv1.SetRatingProfile", {"Category": "call", "Subject": "1099", "RatingPlanActivations": [
        {"RatingPlanId": "RP_1001"}]})) == "MANDATORY_IE_MISSING: [ActivationTime]"
    assert err(api.call("APIerSv1.SetRatingProfile", {"Subject": "1099", "RatingPlanActivations": []})) == \
        "MANDATORY_IE_MISSING: [Category]"
    assert ok(api.call("APIerSv1.SetRatingProfile", {
        "Tenant": "cgrates.org", "Category": "call", "Subject": "1099", "Overwrite": True,
        "RatingPlanActivations": [{"ActivationTime": ACTIVE, "RatingPlanId": "RP_1001", "FallbackSubjects": ""}]})) == "OK"
    assert cost(api, "1099") == Decimal("0.64175")  # RP_1001, live at once
    # without Overwrite an activation is added: from 2014-08-01 1099 pays RP_1002's prices to 1001
    assert ok(api.call("APIerSv1.SetRatingProfile", {"Category": "call", "Subject": "1099", "RatingPlanActivations": [
        {"ActivationTime": "2014-08-01T00:00:00Z", "RatingPlanId": "RP_1002", "FallbackSubjects": "1001;1002"}]})) == "OK"
    assert ok(api.call("APIerSv1.GetRatingProfile", {"Tenant": "cgrates.org", "Category": "call", "Subject": "1099"})) == {
        "Id": "*out:cgrates.org:call:1099", "RatingPlanActivations": [
            {"ActivationTime": "2014-01-14T00:00:00Z", "RatingPlanId": "RP_1001", "FallbackKeys": None},
            {"ActivationTime": "2014-08-01T00:00:00Z", "RatingPlanId": "RP_1002",
             "FallbackKeys": ["*out:cgrates.org:call:1001", "*out:cgrates.org:call:1002"]}]}
    assert cost(api, "1099", "1001") == Decimal("0.64175")  # RP_1002 rates 1001 as RP_1001 rates 1002
    assert ok(api.call("APIerSv1.RemoveRatingProfile", {"Category": "call", "Subject": "1099"})) == "OK"
    assert err(api.call("APIerSv1.GetRatingProfile", {"Category": "call", "Subject": "1099"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.RemoveRatingProfile", {"Category": "call", "Subject": "1099"})) == "NOT_FOUND"
    assert "RATING_PLAN_NOT_FOUND" in err(api.call("APIerSv1.GetCost", {
        "Subject": "1099", "AnswerTime": T0, "Destination": "1002", "Usage": "85s"}))


def test_load_one_rating_profile_or_destination(api, suite):
    build_portal_plan(api, "one", "0.9")
    assert ok(api.call("APIerSv1.SetTPDestination", {"TPid": "one", "ID": "DST_ONE", "Prefixes": ["4420", "4421"]}))
    assert ok(api.call("APIerSv1.SetTPRatingProfile", {"TPid": "one", "Category": "call", "Subject": "1098",
                                                       "RatingPlanActivations": [
                                                           {"ActivationTime": ACTIVE, "RatingPlanId": "RP_PORTAL"}]}))
    url = suite.env["CGRPY_STORDB_URL"]
    assert err(api.call("APIerSv1.LoadRatingProfile", {"TPid": "one", "RatingProfileID": "cgrates.org:call:1097"})) \
        == "NOT_FOUND"
    assert ok(api.call("APIerSv1.LoadRatingProfile", {"TPid": "one", "RatingProfileID": "cgrates.org:call:1098"})) \
        == "OK"
    assert cost(api, "1098") == Decimal("1.9")  # 0.1 + 2 minutes at 0.9: the plan came with its profile
    live = dump(url)
    assert [r["Rate"] for r in live["Rates"] if r["Id"] == "RT_PORTAL"] == ["0.9"]  # its rate came too
    assert not any(r["Id"] == "DST_ONE" for r in live["Destinations"])  # not needed by the profile
    assert ok(api.call("APIerSv1.LoadDestination", {"TPid": "one", "ID": "DST_ONE"})) == "OK"
    assert ok(api.call("APIerSv1.GetTPDestination", {"TPid": "cgrpy", "ID": "DST_ONE"}))["Prefixes"] == ["4420", "4421"]
    assert err(api.call("APIerSv1.LoadDestination", {"TPid": "one", "ID": "DST_NONE"})) == "NOT_FOUND"
    assert ok(api.call("APIerSv1.LoadRatingPlan", {"TPid": "one", "RatingPlanId": "RP_PORTAL"})) == "OK"


def test_concurrent_rating_profile_adds_are_all_kept(suite):
    """SetRatingProfile without Overwrite adds under the TariffPlanService's lock: five portals
    adding an activation each at the same moment leave five activations, none lost."""

    def add(day: int) -> object:
        c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
        try:
            return c.call("APIerSv1.SetRatingProfile", {"Category": "call", "Subject": "1096", "RatingPlanActivations": [
                {"ActivationTime": f"2014-02-0{day}T00:00:00Z", "RatingPlanId": "RP_1001"}]})
        finally:
            c.close()

    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(add, range(1, 6)))
    assert [ok(r) for r in replies] == ["OK"] * 5
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        prof = ok(c.call("APIerSv1.GetRatingProfile", {"Category": "call", "Subject": "1096"}))
    finally:
        c.close()
    assert sorted(a["ActivationTime"] for a in prof["RatingPlanActivations"]) == [
        f"2014-02-0{d}T00:00:00Z" for d in range(1, 6)]


def test_import_a_folder_as_a_tpid_then_change_and_load_it(api, suite):
    live = dump(suite.env["CGRPY_STORDB_URL"])
    assert ok(api.call("APIerSv1.ImportTariffPlanFromFolder", {"TPid": "imported", "FolderPath": str(TUTORIAL)})) \
        == "OK"
    assert dump(suite.env["CGRPY_STORDB_URL"]) == live  # stored as its TPid only
    # its rating profiles carry the import's LoadId, CSVLOAD[_<RunId>] as v0.10's import gives
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "imported"})) == ["CSVLOAD"]
    assert ok(api.call("APIerSv1.ImportTariffPlanFromFolder", {
        "TPid": "imported_run", "FolderPath": str(TUTORIAL), "RunId": "r7"})) == "OK"
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "imported_run"})) == ["CSVLOAD_r7"]
    assert ok(api.call("APIerSv1.GetTPRate", {"TPid": "imported", "ID": "RT_20CNT"}))["RateSlots"][0]["Rate"] == \
        Decimal("0.2")
    assert err(api.call("APIerSv1.ImportTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) == \
        "MANDATORY_IE_MISSING: [TPid]"
    assert err(api.call("APIerSv1.ImportTariffPlanFromFolder", {"TPid": "x", "FolderPath": "/etc"})).startswith(
        "SERVER_ERROR: FolderPath")
    assert err(api.call("APIerSv1.ImportTariffPlanFromFolder", {
        "TPid": "x", "FolderPath": str(TUTORIAL), "CsvSeparator": ";"})) == "NOT_IMPLEMENTED:CsvSeparator"
    assert "at most 64 characters" in err(api.call("APIerSv1.SetTPDestination", {
        "TPid": "t" * 65, "ID": "DST_X", "Prefixes": ["1"]}))
    assert ok(api.call("APIerSv1.SetTPRate", {"TPid": "imported", "ID": "RT_20CNT", "RateSlots": [
        {"ConnectFee": Decimal("0.4"), "Rate": Decimal("0.3"), "RateUnit": "60s", "RateIncrement": "60s",
         "GroupIntervalStart": "0s"}]})) == "OK"
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "imported"})) == "OK"
    assert cost(api, "1001") == Decimal("1")  # RP_1001 again (the folder's profile), 0.4 + 2 minutes at 0.3


def test_a_live_destination_change_reaches_the_filters_of_every_service(api):
    """Destinations feed every FilterS (``*destinations`` rules), not only RALs: a prefix added to
    a live destination over the TP API changes what an attribute profile matches at once."""

    def matched(number: str) -> bool:
        rep = api.call("AttributeSv1.ProcessEvent", {"Tenant": "cgrates.org", "ID": "ev", "Context": "*sessions",
                                                     "Event": {"Account": "1030", "Destination": number}})
        return rep.get("error") is None and "ATTR_TP_DST" in rep["result"]["MatchedProfiles"]

    assert ok(api.call("APIerSv1.SetTPDestination", {"TPid": "cgrpy", "ID": "DST_TP_API", "Prefixes": ["555"]}))
    assert ok(api.call("APIerSv1.SetAttributeProfile", {
        "Tenant": "cgrates.org", "ID": "ATTR_TP_DST", "Contexts": ["*sessions"],
        # the *string rule makes it a candidate (only *string/*prefix rules are indexed, as in v0.10)
        "FilterIDs": ["*string:~*req.Account:1030", "*destinations:~*req.Destination:DST_TP_API"],
        "Attributes": [{"Path": "*req.Category", "Type": "*constant", "Value": "tp_api"}], "Weight": 90})) == "OK"
    assert matched("5551") and not matched("5561")
    assert ok(api.call("APIerSv1.SetTPDestination", {"TPid": "cgrpy", "ID": "DST_TP_API", "Prefixes": ["556"]}))
    assert matched("5561") and not matched("5551")
    assert ok(api.call("APIerSv1.RemoveAttributeProfile", {"Tenant": "cgrates.org", "ID": "ATTR_TP_DST"})) == "OK"
    assert ok(api.call("APIerSv1.RemoveTPDestination", {"TPid": "cgrpy", "ID": "DST_TP_API"})) == "OK"


def test_set_in_the_live_tpid_is_live_and_flush_replaces(api, suite):
    """A TP object set in the configured TPID takes effect at once; FlushDb makes the live plan
    the TPid (what CGRateS's flush of its DataDB does). Last: it leaves the tutorial behind."""
    before = cost(api, "1002", "1001")
    assert ok(api.call("APIerSv1.SetTPRate", {"TPid": "cgrpy", "ID": "RT_20CNT", "RateSlots": [
        {"ConnectFee": Decimal("0.4"), "Rate": Decimal("0.4"), "RateUnit": "60s", "RateIncrement": "60s",
         "GroupIntervalStart": "0s"}]})) == "OK"
    assert cost(api, "1002", "1001") == Decimal("1.2") != before  # 0.4 + 2 minutes at 0.4
    # the live TPID itself: validated and reloaded, nothing else changes
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "cgrpy"})) == "OK"
    assert cost(api, "1002", "1001") == Decimal("1.2")
    build_portal_plan(api, "flush", "0.6")
    assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "flush", "FlushDb": True})) == "OK"
    assert cost(api, "1001") == Decimal("1.3")
    assert "RATING_PLAN_NOT_FOUND" in err(api.call("APIerSv1.GetCost", {
        "Subject": "1002", "AnswerTime": T0, "Destination": "1001", "Usage": "85s"}))
    assert dump(suite.env["CGRPY_STORDB_URL"])["Rates"] == dump(suite.env["CGRPY_STORDB_URL"], "flush")["Rates"]
