"""Responder.*, APIerSv1.GetEventCost, RALsV1.GetRatingPlansCost and the account action-trigger
methods over JSON-RPC, against one real suite (`cgr up`, tutorial plan, Postgres) for this module.
Numbers from the tutorial examples of docs/rating.md. Each test owns its accounts (balances are shared
state within the module's suite)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from tests.apier.conftest import TUTORIAL, start_suite
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.suite import Suite

pytestmark = pytest.mark.e2e

S = 1_000_000_000
T0 = "2014-08-04T13:00:00Z"


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    yield from start_suite(pg_databases, "--tariffplan", str(TUTORIAL))


@pytest.fixture
def api(suite) -> Iterator[TcpClient]:
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


def cd(account: str, dest: str, end: str, **kw) -> dict:
    return {"Tenant": "cgrates.org", "Category": "call", "Account": account, "Subject": account,
            "Destination": dest, "TimeStart": T0, "TimeEnd": end, **kw}


def balance(api, account: str) -> D:
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": account}))
    return next(b["Value"] for b in acc["BalanceMap"]["*monetary"] if b["ID"] == "test")


def test_responder_get_cost_callcost(api):
    # Ex.2: CallCost.Cost 0.6418 (not the EventCost 0.64175), two timespans; no account touched
    cc = ok(api.call("Responder.GetCost", cd("1001", "1002", "2014-08-04T13:01:25Z", DurationIndex=85 * S)))
    assert cc["Cost"] == D("0.6418")
    assert (cc["Account"], cc["Subject"], cc["Destination"], cc["ToR"]) == ("1001", "1001", "1002", "*voice")
    assert [(ts["TimeStart"], ts["TimeEnd"], ts["Cost"], ts["DurationIndex"]) for ts in cc["Timespans"]] == [
        ("2014-08-04T13:00:00Z", "2014-08-04T13:01:00Z", D("0.2"), 60 * S),
        ("2014-08-04T13:01:00Z", "2014-08-04T13:01:25Z", D("0.04175"), 85 * S)]
    assert cc["Timespans"][1]["Increments"][0]["CompressFactor"] == 25
    assert cc["Timespans"][0]["RateInterval"]["Rating"]["ConnectFee"] == D("0.4")
    assert cc["RatedUsage"] == 85 * S
    # a later piece (LoopIndex 1) of the same call: no connect fee
    piece = ok(api.call("Responder.GetCost", cd("1001", "1002", "2014-08-04T13:00:25Z", DurationIndex=85 * S,
                                                LoopIndex=1)))
    assert piece["Cost"] == D("0.0418")
    # Subject defaults to Account; 20 s is rated as 60 s (Ex.1)
    short = ok(api.call("Responder.GetCost", {"Account": "1001", "Destination": "1002", "TimeStart": T0,
                                               "TimeEnd": "2014-08-04T13:00:20Z"}))
    assert (short["Cost"], short["RatedUsage"], short["Subject"]) == (D("0.6"), 60 * S, "1001")
    assert balance(api, "1001") == D("10")


def test_responder_errors(api):
    assert err(api.call("Responder.GetCost", cd("nobody", "1002", "2014-08-04T13:00:20Z"))) == "RATING_PLAN_NOT_FOUND"
    assert err(api.call("Responder.GetCost", cd("1001", "99999", "2014-08-04T13:00:20Z"))) == "UNAUTHORIZED_DESTINATION"
    assert err(api.call("Responder.GetCost", {"Account": "1001", "Destination": "1002"})) == "MANDATORY_IE_MISSING: [TimeStart]"
    assert err(api.call("Responder.GetCost", cd("1001", "1002", "2014-08-04T12:00:00Z"))) == "SERVER_ERROR: TimeEnd: before TimeStart"
    assert err(api.call("Responder.GetMaxSessionTime", cd("ghost", "1002", "2014-08-04T13:01:00Z"))) == "ACCOUNT_NOT_FOUND"
    assert err(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", "2014-08-04T13:01:00Z", MaxRate=-1,
                                                          MaxRateUnit="60s"))) == \
        "SERVER_ERROR: MaxRate: must not be negative"
    assert err(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", "2014-08-04T13:01:00Z",
                                                          MaxRateUnit="soon"))).startswith("SERVER_ERROR: MaxRateUnit")


def test_get_max_session_time(api):
    # Ex.5 (1002 -> 1001 is RT_20CNT too): balance 10, 3 h requested -> 5688 s
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", "2014-08-04T16:00:00Z"))) == 5688 * S
    # Ex.4: MaxCost 0.12 *disconnect -> 12 s; a request under the limit is granted whole
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", "2014-08-04T13:00:30Z"))) == 30 * S
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1001", "1003", "2014-08-04T14:00:00Z"))) == 12 * S
    assert balance(api, "1002") == D("10")


def test_get_max_session_time_max_rate(api):
    # 1002 -> 1001 is RT_20CNT: 0.2/min for the first minute, then 0.1/min. MaxRate is compared
    # per nanosecond (rate/unit): a span above it ends the usage there.
    two_min = "2014-08-04T13:02:00Z"
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", two_min, MaxRate=D("0.2"),
                                                          MaxRateUnit="60s"))) == 120 * S
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", two_min, MaxRate=D("0.15"),
                                                          MaxRateUnit="60s"))) == 0
    # 0.2/min = 0.0033/s: a per-second limit of 0.004 lets both spans through, 0.003 none
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", two_min, MaxRate=D("0.004"),
                                                          MaxRateUnit=S))) == 120 * S
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", two_min, MaxRate=D("0.003"),
                                                          MaxRateUnit=S))) == 0
    # v0.10 ignores MaxRate without a MaxRateUnit
    assert ok(api.call("Responder.GetMaxSessionTime", cd("1002", "1001", two_min, MaxRate=D("0.15")))) == 120 * S
    assert balance(api, "1002") == D("10")


def test_max_debit_perform_rounding(api):
    # MaxDebit with PerformRounding charges the DestinationRate-rounded cost (*up, 4 decimals):
    # 85 s of RT_20CNT = 0.64175 unrounded, 0.6418 rounded; the retry charges nothing more.
    arg = cd("1002", "1001", "2014-08-04T13:01:25Z", DurationIndex=85 * S, CgrID="cgr-resp-pr", RunID="*default",
             PerformRounding=True)
    first = ok(api.call("Responder.MaxDebit", arg))
    assert (first["Cost"], first["RatedUsage"]) == (D("0.6418"), 85 * S)
    assert balance(api, "1002") == D("9.3582")
    assert ok(api.call("Responder.MaxDebit", arg)) == first
    assert balance(api, "1002") == D("9.3582")
    # without PerformRounding the same piece is charged unrounded
    plain = {**arg, "CgrID": "cgr-resp-pr2", "PerformRounding": False}
    assert ok(api.call("Responder.MaxDebit", plain))["Cost"] == D("0.64175")
    assert balance(api, "1002") == D("8.71645")


def test_debit_idempotent_and_max_debit(api):
    # PerformRounding (a CDR debit): CallCost.Cost 0.6418 charged; the retry (same CgrID, RunID,
    # LoopIndex, TimeStart) answers the same CallCost and charges nothing more
    arg = cd("1001", "1002", "2014-08-04T13:01:25Z", DurationIndex=85 * S, CgrID="cgr-resp-1", RunID="*default",
             PerformRounding=True)
    first = ok(api.call("Responder.Debit", arg))
    assert first["Cost"] == D("0.6418") and len(first["Timespans"]) == 2
    summary = first["AccountSummary"]
    assert summary["ID"] == "1001" and summary["BalanceSummaries"][0]["Value"] == D("9.3582")
    assert ok(api.call("Responder.Debit", arg)) == first
    assert balance(api, "1001") == D("9.3582")
    # MaxDebit 1001 -> 1003 for 20 s: MaxCost *disconnect allows 12 s = 0.12 (Ex.4)
    md = cd("1001", "1003", "2014-08-04T13:00:20Z", CgrID="cgr-resp-2", RunID="*default")
    part = ok(api.call("Responder.MaxDebit", md))
    assert (part["Cost"], part["RatedUsage"]) == (D("0.12"), 12 * S)
    assert part["Timespans"][0]["TimeEnd"] == "2014-08-04T13:00:12Z"
    assert balance(api, "1001") == D("9.2382")
    # ForceDuration: all or INSUFFICIENT_CREDIT, nothing charged
    forced = {**md, "CgrID": "cgr-resp-3", "ForceDuration": True}
    assert err(api.call("Responder.MaxDebit", forced)) == "INSUFFICIENT_CREDIT"
    assert balance(api, "1001") == D("9.2382")


def test_debit_without_cgrid_is_a_new_debit_each_time(api):
    # Ex.6: 1003 -> 1001 for 1 s = connect 0.2 + first 60 s increment 0.1 = 0.3 (rounded, CDR-style)
    arg = cd("1003", "1001", "2014-08-04T13:00:01Z", PerformRounding=True)
    assert ok(api.call("Responder.Debit", arg))["Cost"] == D("0.3")
    assert ok(api.call("Responder.Debit", arg))["Cost"] == D("0.3")
    assert balance(api, "1003") == D("9.4")
    # an explicit RequestID makes it idempotent even without a CgrID
    keyed = {**arg, "RequestID": "resp-key-1"}
    ok(api.call("Responder.Debit", keyed))
    ok(api.call("Responder.Debit", keyed))
    assert balance(api, "1003") == D("9.1")


def test_get_event_cost(api):
    ec = ok(api.call("APIerSv1.GetEventCost", {"Tenant": "cgrates.org", "Account": "1001", "Destination": "1002",
                                               "AnswerTime": T0, "Usage": "85s"}))
    assert (ec["Cost"], ec["Usage"]) == (D("0.64175"), 85 * S)  # EventCost
    assert err(api.call("APIerSv1.GetEventCost", {"Account": "1001", "Destination": "99999", "AnswerTime": T0,
                                                  "Usage": "10s"})) == "SERVER_ERROR: UNAUTHORIZED_DESTINATION"
    assert err(api.call("APIerSv1.GetEventCost", {"Destination": "1002", "Usage": "10s"})) == "MANDATORY_IE_MISSING: [Subject]"


def test_get_rating_plans_cost(api):
    # RP_1003 does not rate 1002 (only DST_1001): the next plan, RP_1001 (RT_20CNT), does
    res = ok(api.call("RALsV1.GetRatingPlansCost", {"RatingPlanIDs": ["RP_1003", "RP_1001"], "Destination": "1002",
                                                    "SetupTime": T0, "Usage": "85s"}))
    assert (res["RatingPlanID"], res["Cost"]) == ("RP_1001", D("0.64175"))
    assert res["EventCost"]["Cost"] == D("0.64175") and res["EventCost"]["Usage"] == 85 * S
    [filters] = res["EventCost"]["RatingFilters"].values()
    assert filters["RatingPlanID"] == "RP_1001" and filters["DestinationID"] == "DST_1002"
    assert err(api.call("RALsV1.GetRatingPlansCost", {"RatingPlanIDs": ["RP_1003"], "Destination": "1002",
                                                      "SetupTime": T0, "Usage": "1m"})) == "UNAUTHORIZED_DESTINATION"
    assert err(api.call("RALsV1.GetRatingPlansCost", {"RatingPlanIDs": ["NOPE"], "Destination": "1002",
                                                      "SetupTime": T0, "Usage": "1m"})) == "RATING_PLAN_NOT_FOUND"
    assert err(api.call("RALsV1.GetRatingPlansCost", {"RatingPlanIDs": ["RP_1001"], "Destination": "1002"})) == \
        "MANDATORY_IE_MISSING: [SetupTime Usage]"


def test_account_action_triggers(api):
    assert ok(api.call("APIerSv1.SetActionTriggers", {"GroupID": "TRG_API", "ActionTriggers": [
        {"UniqueID": "t1", "ThresholdType": "*min_balance", "ThresholdValue": 2, "BalanceType": "*monetary",
         "ActionsId": "ACT_LOG_WARNING", "Weight": 10},
        {"UniqueID": "t2", "ThresholdType": "*max_balance", "ThresholdValue": 100, "BalanceType": "*monetary",
         "ActionsId": "ACT_LOG_WARNING", "Weight": 5}]})) == "OK"
    assert ok(api.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": "trig1"})) == "OK"
    assert ok(api.call("APIerSv1.AddAccountActionTriggers", {"Tenant": "cgrates.org", "Account": "trig1",
                                                             "ActionTriggerIDs": ["TRG_API"]})) == "OK"
    assert ok(api.call("APIerSv1.SetAccountActionTriggers", {
        "Tenant": "cgrates.org", "Account": "trig1", "GroupID": "TRG_API", "UniqueID": "t1",
        "ActionTrigger": {"ThresholdValue": D("3.5"), "Recurrent": True, "MinSleep": "10s"}})) == "OK"
    trigs = ok(api.call("APIerSv1.GetAccountActionTriggers", {"Tenant": "cgrates.org", "Account": "trig1"}))
    assert [(t["ID"], t["UniqueID"], t["ThresholdType"], t["ThresholdValue"], t["Recurrent"], t["MinSleep"])
            for t in trigs] == [("TRG_API", "t1", "*min_balance", D("3.5"), True, 10 * S),
                                ("TRG_API", "t2", "*max_balance", 100, False, 0)]
    assert trigs[0]["ActionsID"] == "ACT_LOG_WARNING" and trigs[0]["Balance"]["Type"] == "*monetary"
    # errors name what was wrong and change nothing
    base = {"Tenant": "cgrates.org", "Account": "trig1"}
    assert err(api.call("APIerSv1.SetAccountActionTriggers", {**base, "UniqueID": "nope",
                                                              "ActionTrigger": {"Weight": 1}})) == "NOT_FOUND"
    bad = err(api.call("APIerSv1.SetAccountActionTriggers", {**base, "ActionTrigger": {"ThresholdType": "*often"}}))
    assert bad.startswith("INVALID_ARGUMENT") and "ThresholdType" in bad
    assert err(api.call("APIerSv1.SetAccountActionTriggers", {"ActionTrigger": {}})) == "MANDATORY_IE_MISSING: [Account]"
    assert err(api.call("APIerSv1.GetAccountActionTriggers", {"Account": "ghost"})) == "NOT_FOUND"
    assert ok(api.call("APIerSv1.GetAccountActionTriggers", base)) == trigs
    # remove one
    assert ok(api.call("APIerSv1.RemoveAccountActionTriggers", {**base, "UniqueID": "t2"})) == "OK"
    assert [t["UniqueID"] for t in ok(api.call("APIerSv1.GetAccountActionTriggers", base))] == ["t1"]
