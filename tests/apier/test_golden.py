"""Golden shapes: replies whose field names, nesting and types follow CGRateS v0.10 where cgrpy
answered differently (a real suite on Postgres, tutorial plan), and a trigger's *remove_account."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cgrpy.event import loads_exact
from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e

ORG = "cgrates.org"
# engine.RITiming: no ID field in v0.10
RITIMING_KEYS = {"Years", "Months", "MonthDays", "WeekDays", "StartTime", "EndTime"}


def test_get_accounts_v1_answers_the_old_structure(api):
    accs = ok(api.call("APIerSv1.GetAccounts", {"Tenant": ORG, "AccountIDs": ["1003", "nobody"]}))
    old = ok(api.call("APIerSv1.GetAccount", {"Tenant": ORG, "Account": "1003"}))
    assert accs == [old]
    assert accs[0]["Id"] == "*out:cgrates.org:1003" and list(accs[0]["BalanceMap"]) == ["*monetary*out"]
    assert [a["Id"] for a in ok(api.call("APIerSv1.GetAccounts", {"Tenant": ORG, "AccountIDs": ["1001", "1002"],
                                                                  "Limit": 1}))] == ["*out:cgrates.org:1001"]
    assert err(api.call("APIerSv1.GetAccounts", {"AccountIDs": ["1003"]})) == "MANDATORY_IE_MISSING: [Tenant]"


def test_attribute_values_are_rsr_parsers(api):
    rsr = {"Rules": "CGRateS.org", "AllFiltersMatch": False}  # config.RSRParser's exported fields
    prof = ok(api.call("APIerSv1.GetAttributeProfile", {"Tenant": ORG, "ID": "ATTR_1001_SESSIONAUTH"}))
    assert prof["Attributes"][0] == {"FilterIDs": [], "Path": "*req.Password", "Type": "*constant", "Value": [rsr]}
    ev = {"Tenant": ORG, "ID": "g1", "Context": "*sessions", "Event": {"Account": "1001", "Destination": "1002"}}
    assert ok(api.call("AttributeSv1.GetAttributeForEvent", ev))["Attributes"][0]["Value"] == [rsr]


def test_action_plan_timing_is_an_ritiming(api):
    [plan] = ok(api.call("APIerSv1.GetActionPlan", {"ID": "AP_PACKAGE_10"}))
    [at] = plan["ActionTimings"]
    assert at["Timing"] == {"Timing": {"Years": [], "Months": [], "MonthDays": [], "WeekDays": [],
                                       "StartTime": "*asap", "EndTime": ""}, "Rating": None, "Weight": 0}
    assert set(at) == {"Uuid", "Timing", "ActionsID", "ExtraData", "Weight"}


def test_call_cost_timing_is_an_ritiming(api):
    cc = ok(api.call("Responder.GetCost", {"Tenant": ORG, "Category": "call", "Subject": "1001", "Account": "1001",
                                           "Destination": "1002", "TimeStart": "2014-08-04T13:00:00Z",
                                           "TimeEnd": "2014-08-04T13:01:25Z"}))
    assert cc["Cost"] == Decimal("0.6418")
    for ts in cc["Timespans"]:
        assert set(ts["RateInterval"]["Timing"]) == RITIMING_KEYS


def test_get_actions_v2_answers_engine_actions(api):
    acts = ok(api.call("APIerSv2.GetActions", {"ActionIDs": ["ACT_TOPUP_RST_10", "ACT_LOG_WARNING"]}))
    null_filter = {k: None for k in ("Uuid", "ID", "Type", "Value", "ExpirationDate", "Weight", "DestinationIDs",
                                     "RatingSubject", "Categories", "SharedGroups", "TimingIDs", "Timings",
                                     "Disabled", "Factor", "Blocker")}
    assert acts["ACT_TOPUP_RST_10"] == [{
        "Id": "ACT_TOPUP_RST_10", "ActionType": "*topup_reset", "ExtraParameters": "", "Filter": "",
        "ExpirationString": "*unlimited", "Weight": 10,
        # DestinationIds *any leaves the filter's DestinationIDs unset, as v0.10's loader does
        "Balance": {**null_filter, "ID": "test", "Type": "*monetary", "Weight": 10, "Disabled": False,
                    "Blocker": False, "Value": {"Method": "", "Params": None, "Static": 10}},
    }]
    assert acts["ACT_LOG_WARNING"][0]["Balance"] == {**null_filter, "Disabled": False, "Blocker": False}
    # a *voice Units cell is a duration in ns; an ID list a StringMap with ! as false
    assert ok(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_G_VOICE", "Overwrite": True, "Actions": [
        {"Identifier": "*topup", "BalanceId": "free", "BalanceType": "*voice", "Units": "90s",
         "DestinationIds": "DST_1002;!DST_1003", "Weight": 20}]})) == "OK"
    [voice] = ok(api.call("APIerSv2.GetActions", {"ActionIDs": ["ACT_G_VOICE"]}))["ACT_G_VOICE"]
    assert voice["Balance"]["Value"] == {"Method": "", "Params": None, "Static": 90_000_000_000}
    assert voice["Balance"]["DestinationIDs"] == {"DST_1002": True, "DST_1003": False}
    # a value formula (the engine test plan's *incremental debit) is a ValueFormula with its Method
    formula = '{"Method":"*incremental","Params":{"Units":1,"Interval":"month","Increment":"day"}}'
    assert ok(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_G_DID", "Overwrite": True, "Actions": [
        {"Identifier": "*debit", "BalanceType": "*monetary", "Units": formula, "Weight": 10}]})) == "OK"
    [did] = ok(api.call("APIerSv2.GetActions", {"ActionIDs": ["ACT_G_DID"]}))["ACT_G_DID"]
    assert did["Balance"]["Value"] == {"Method": "*incremental", "Static": 0,
                                       "Params": {"Units": 1, "Interval": "month", "Increment": "day"}}
    assert err(api.call("APIerSv2.GetActions", {"ActionIDs": ["ACT_NOPE"]})) == "SERVER_ERROR: NOT_FOUND"


def test_tp_rating_profiles_by_load_id(api):
    """The tutorial folder was loaded by `cgr up --tariffplan`: its rating profiles carry the
    load's LoadId, CSVLOAD, as v0.10's import to the StorDB gives them."""
    [tpid] = ok(api.call("APIerSv1.GetTPIds", {}))
    key = {"TPid": tpid, "Tenant": ORG, "Category": "call"}
    for name in ("APIerSv1.GetTPRatingProfilesByLoadID", "APIerSv1.GetTPRatingProfilesByLoadId"):
        [one] = ok(api.call(name, {**key, "LoadId": "CSVLOAD", "Subject": "1001"}))
        assert one == {**ok(api.call("APIerSv1.GetTPRatingProfile", {
            "TPid": tpid, "RatingProfileID": "CSVLOAD:cgrates.org:call:1001"}))}
        assert one["RatingPlanActivations"][0]["RatingPlanId"] == "RP_1001" and one["LoadId"] == "CSVLOAD"
    every = ok(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": tpid, "LoadId": "CSVLOAD"}))
    assert sorted((p["Category"], p["Subject"]) for p in every) == [
        ("call", "1001"), ("call", "1002"), ("call", "1003"), ("sms", "*any")]
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": tpid, "LoadId": "L1"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.GetTPRatingProfile", {
        "TPid": tpid, "RatingProfileID": "L1:cgrates.org:call:1001"})) == "NOT_FOUND"
    assert ok(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": tpid, "Subject": "1001"})) == ["CSVLOAD"]
    assert "CSVLOAD:cgrates.org:call:1001" in ok(api.call("APIerSv1.GetTPRatingProfileIds", {"TPid": tpid}))
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": tpid})) == "MANDATORY_IE_MISSING: [LoadId]"
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {"TPid": tpid, "LoadId": "L1", "Subject": "1001"})) \
        == "MANDATORY_IE_MISSING: [Tenant Category]"
    assert err(api.call("APIerSv1.GetTPRatingProfilesByLoadID", {**key, "LoadId": "L1", "Subject": "nobody"})) \
        == "NOT_FOUND"
    assert err(api.call("APIerSv1.GetTPRatingProfileLoadIds", {"TPid": "no_such_tp"})) == "NOT_FOUND"


def _trigger_removes(tcp, account: str) -> None:
    assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_G_RM", "Overwrite": True, "Actions": [
        {"Identifier": "*remove_account", "Weight": 10}]})) == "OK"
    assert ok(tcp.call("APIerSv1.SetActionTriggers", {"GroupID": "TRG_G_RM", "ActionTriggers": [
        {"UniqueID": "low", "ThresholdType": "*min_balance", "ThresholdValue": Decimal("0.5"),
         "BalanceType": "*monetary", "ActionsId": "ACT_G_RM", "Weight": 10}]})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Tenant": ORG, "Account": account, "BalanceType": "*monetary",
                                               "BalanceID": "main", "Value": 1})) == "OK"
    assert ok(tcp.call("APIerSv1.AddAccountActionTriggers", {"Tenant": ORG, "Account": account,
                                                             "ActionTriggerIDs": ["TRG_G_RM"]})) == "OK"
    # the account shows its triggers as engine.ActionTrigger objects (not their group ids)
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Tenant": ORG, "Account": account}))
    assert acc["ActionTriggers"] == ok(tcp.call("APIerSv1.GetAccountActionTriggers", {"Tenant": ORG,
                                                                                     "Account": account}))
    [trig] = acc["ActionTriggers"]
    assert (trig["ID"], trig["UniqueID"], trig["ActionsID"], trig["Balance"]["Type"]) == \
        ("TRG_G_RM", "low", "ACT_G_RM", "*monetary")
    [old] = ok(tcp.call("APIerSv1.GetAccount", {"Tenant": ORG, "Account": account}))["ActionTriggers"]
    assert (old["Id"], old["ActionsId"], old["BalanceType"], old["ThresholdValue"]) == \
        ("TRG_G_RM", "ACT_G_RM", "*monetary", Decimal("0.5"))
    assert set(old) == {"Id", "ThresholdType", "ThresholdValue", "Recurrent", "MinSleep", "BalanceId", "BalanceType",
                        "BalanceDestinationIds", "BalanceWeight", "BalanceExpirationDate", "BalanceTimingTags",
                        "BalanceRatingSubject", "BalanceCategory", "BalanceSharedGroup", "BalanceDisabled", "Weight",
                        "ActionsId", "MinQueuedItems", "Executed"}


def test_trigger_remove_account_after_a_balance_change(tcp, http):
    _trigger_removes(tcp, "g_rm_bal")
    assert ok(http.call("APIerSv1.DebitBalance", {"Tenant": ORG, "Account": "g_rm_bal", "BalanceType": "*monetary",
                                                  "Value": Decimal("0.25"), "Balance": {"ID": "main"}})) == "OK"
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": "g_rm_bal"}))["BalanceMap"]["*monetary"][0]["Value"] == \
        Decimal("0.75")
    assert ok(http.call("APIerSv1.DebitBalance", {"Tenant": ORG, "Account": "g_rm_bal", "BalanceType": "*monetary",
                                                  "Value": Decimal("0.5"), "Balance": {"ID": "main"}})) == "OK"
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": "g_rm_bal"})) == "NOT_FOUND"
    assert ok(tcp.call("APIerSv1.GetAccounts", {"Tenant": ORG, "AccountIDs": ["g_rm_bal"]})) == []


def test_trigger_remove_account_after_a_call_debit(tcp):
    _trigger_removes(tcp, "g_rm_call")
    cd = {"Tenant": ORG, "Category": "call", "Account": "g_rm_call", "Subject": "1001", "Destination": "1002",
          "TimeStart": "2014-08-04T13:00:00Z", "TimeEnd": "2014-08-04T13:01:00Z", "RequestID": "g-rm-call-1"}
    cc = ok(tcp.call("Responder.Debit", cd))  # 0.4 connect fee + 0.2 for the first minute: 0.4 left
    assert cc["Cost"] == Decimal("0.6")
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": "g_rm_call"})) == "NOT_FOUND"
    # the same debit asked again answers the first charge and does not bring the account back
    assert ok(tcp.call("Responder.Debit", cd))["Cost"] == Decimal("0.6")
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": "g_rm_call"})) == "NOT_FOUND"
    assert err(tcp.call("Responder.GetMaxSessionTime", cd)) == "ACCOUNT_NOT_FOUND"


def test_stat_queues_for_event_counts_nothing(api):
    ev = {"Tenant": ORG, "ID": "gsq", "Event": {"Account": "1001", "Destination": "1002", "RunID": "*default",
                                                "Usage": 60_000_000_000, "Cost": Decimal("0.6")}}
    before = ok(api.call("StatSv1.GetQueueStringMetrics", {"Tenant": ORG, "ID": "Stats2"}))
    assert ok(api.call("StatSv1.GetStatQueuesForEvent", ev)) == ["Stats2"]
    assert ok(api.call("StatSv1.GetQueueStringMetrics", {"Tenant": ORG, "ID": "Stats2"})) == before
    assert err(api.call("StatSv1.GetStatQueuesForEvent", {"Tenant": ORG, "ID": "gsq2",
                                                          "Event": {"Account": "9999"}})) == "NOT_FOUND"


def test_active_sessions_usage_is_total_usage_and_extra_fields(tcp):
    ev = {"OriginID": "g-sess-1", "ToR": "*voice", "RequestType": "*prepaid", "Tenant": ORG, "Category": "call",
          "Account": "1001", "Subject": "1001", "Destination": "1002", "SetupTime": 1407157200,
          "AnswerTime": "2014-08-04 13:00:05", "Usage": 60_000_000_000, "ExtraX": "y", "ExtraN": 7}
    rep = ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "GetMaxUsage": True,
                                                     "CGREvent": {"Tenant": ORG, "ID": "g-s1", "Event": ev}}))
    assert rep["MaxUsage"] == 60_000_000_000
    rows = ok(tcp.call("SessionSv1.GetActiveSessions", {"Filters": ["*string:~*req.OriginID:g-sess-1"]}))
    by_run = {r["RunID"]: r for r in rows}
    # sessions.ExternalSession: Usage is the run's TotalUsage (what the debit loop has consumed:
    # its first interval), not the time elapsed since the answer; a run not debited shows 0
    dflt = by_run["*default"]
    assert dflt["Usage"] == dflt["DebitInterval"] == 10_000_000_000 and by_run["*raw"]["Usage"] == 0
    for r in rows:
        # time.Time fields as Go marshals them, whatever form the event gave
        assert (r["SetupTime"], r["AnswerTime"]) == ("2014-08-04T13:00:00Z", "2014-08-04T13:00:05Z")
        assert (r["ExtraFields"]["ExtraX"], r["ExtraFields"]["ExtraN"]) == ("y", "7")
        assert not {"OriginID", "Account", "Usage", "RunID"} & set(r["ExtraFields"])
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "CGREvent": {
        "Tenant": ORG, "ID": "g-s2", "Event": ev}})) == "OK"


def test_core_status_running_since_is_go_unix_date(api):
    st = ok(api.call("CoreSv1.Status", {}))
    since = st["RunningSince"]
    assert re.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d UTC \d{4}", since), since
    started = datetime.strptime(" ".join(since.split()), "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=UTC)
    assert timedelta(0) <= datetime.now(UTC) - started < timedelta(hours=1)
    assert re.fullmatch(r"\d+\.\dMiB", st["MemoryUsage"])


def test_session_attributes_altered_fields_are_paths(tcp):
    ev = {"Tenant": ORG, "ID": "g-auth", "Event": {
        "Account": "1001", "Subject": "1001", "Destination": "1002", "OriginID": "g-auth-1", "ToR": "*voice",
        "SetupTime": "2014-08-04T13:00:00Z", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": 60_000_000_000}}
    direct = ok(tcp.call("AttributeSv1.ProcessEvent", {"Context": "*sessions", **ev}))
    paths = ["*req.Password", "*req.RequestType", "*req.PaypalAccount", "*req.LCRProfile"]
    assert direct["AlteredFields"] == paths
    auth = ok(tcp.call("SessionSv1.AuthorizeEvent", {"GetAttributes": True, "GetMaxUsage": True, **ev}))
    assert auth["Attributes"]["AlteredFields"] == paths  # as AttributeS gave them, not bare names
    digest = ok(tcp.call("SessionSv1.AuthorizeEventWithDigest", {"GetAttributes": True, "GetMaxUsage": True, **ev}))
    assert digest["AttributesDigest"].startswith("Password:CGRateS.org,RequestType:*prepaid")


def test_get_stat_queue_is_an_engine_stat_queue(api):
    ev_id = f"gq-{type(api).__name__}"
    before = ok(api.call("StatSv1.GetStatQueue", {"Tenant": ORG, "ID": "Stats2"}))
    assert set(before) == {"Tenant", "ID", "SQItems", "SQMetrics", "MinItems"}
    ev = {"Tenant": ORG, "ID": ev_id, "Event": {"Account": "1001", "Destination": "1002", "RunID": "*default",
                                                "Usage": 90_000_000_000, "Cost": Decimal("1.5")}}
    assert ok(api.call("StatSv1.ProcessEvent", ev)) == ["Stats2"]
    sq = ok(api.call("StatSv1.GetStatQueue", {"Tenant": ORG, "ID": "Stats2"}))
    assert (sq["Tenant"], sq["ID"], sq["MinItems"]) == (ORG, "Stats2", 0)
    assert sq["SQItems"][-1] == {"EventID": ev_id, "ExpiryTime": None}  # TTL -1: no expiry
    tcc, tcd = sq["SQMetrics"]["*tcc"], sq["SQMetrics"]["*tcd"]
    assert set(tcc) == set(tcd) == {"FilterIDs", "Sum", "Count", "Events", "MinItems"}
    assert tcc["Events"][ev_id] == {"Stat": Decimal("1.5"), "CompressFactor": 1}
    assert tcd["Events"][ev_id] == {"Duration": 90_000_000_000, "CompressFactor": 1}
    assert tcc["Count"] == before["SQMetrics"]["*tcc"]["Count"] + 1
    assert tcd["Sum"] == before["SQMetrics"]["*tcd"]["Sum"] + 90_000_000_000
    assert err(api.call("StatSv1.GetStatQueue", {"Tenant": ORG, "ID": "nope"})) == "NOT_FOUND"


def test_balance_timings_are_ritimings(tcp):
    assert ok(tcp.call("APIerSv1.SetTPTiming", {"TPid": "g_timings", "ID": "TM_G_WKD", "Years": "*any", "Months": "*any",
                                                "MonthDays": "*any", "WeekDays": "1;2;3;4;5", "Time": "08:00:00"})) == "OK"
    assert ok(tcp.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "g_timings"})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Account": "g_tm", "BalanceType": "*monetary", "Value": 5, "Balance": {
        "ID": "weekdays", "TimingIDs": ["TM_G_WKD"]}})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Account": "g_tm", "BalanceType": "*monetary", "Value": 1,
                                               "BalanceID": "plain"})) == "OK"
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "g_tm"}))
    bals = {b["ID"]: b for b in acc["BalanceMap"]["*monetary"]}
    # engine.Balance.Timings: the RITiming of each TimingID (null without any)
    assert bals["weekdays"]["Timings"] == [{"Years": [], "Months": [], "MonthDays": [], "WeekDays": [1, 2, 3, 4, 5],
                                            "StartTime": "08:00:00", "EndTime": ""}]
    assert bals["plain"]["Timings"] is None
    assert ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["g_tm"]})) == [acc]
    [old] = [b for b in ok(tcp.call("APIerSv1.GetAccount", {"Account": "g_tm"}))["BalanceMap"]["*monetary*out"]
             if b["Id"] == "weekdays"]
    assert (old["Timings"], old["TimingIDs"]) == (bals["weekdays"]["Timings"], "TM_G_WKD")


def test_unit_counters_of_counter_triggers(tcp):
    assert ok(tcp.call("APIerSv1.SetActionTriggers", {"GroupID": "TRG_G_CNT", "ActionTriggers": [
        {"UniqueID": "spent", "ThresholdType": "*max_event_counter", "ThresholdValue": 100,
         "BalanceType": "*monetary", "ActionsId": "ACT_LOG_WARNING", "Weight": 10}]})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Account": "g_cnt", "BalanceType": "*monetary", "BalanceID": "main",
                                               "Value": 5})) == "OK"
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": "g_cnt"}))["UnitCounters"] is None  # no counter trigger
    assert ok(tcp.call("APIerSv1.AddAccountActionTriggers", {"Account": "g_cnt",
                                                             "ActionTriggerIDs": ["TRG_G_CNT"]})) == "OK"
    cd = {"Tenant": ORG, "Category": "call", "Account": "g_cnt", "Subject": "1001", "Destination": "1002",
          "TimeStart": "2014-08-04T13:00:00Z", "TimeEnd": "2014-08-04T13:01:00Z", "RequestID": "g-cnt-1"}
    assert ok(tcp.call("Responder.Debit", cd))["Cost"] == Decimal("0.6")
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "g_cnt"}))
    # engine.UnitCounters: per balance type, a CounterType and each trigger's filter with its count
    [uc] = acc["UnitCounters"]["*monetary"]
    assert uc["CounterType"] == "*event"
    [c] = uc["Counters"]
    assert c["Value"] == Decimal("0.6") and (c["Filter"]["ID"], c["Filter"]["Type"]) == ("spent", "*monetary")
    assert c["Filter"] == {**acc["ActionTriggers"][0]["Balance"], "ID": "spent"}
    [old] = ok(tcp.call("APIerSv1.GetAccount", {"Account": "g_cnt"}))["UnitCounters"]
    assert old["BalanceType"] == "*monetary" and old["Balances"][0]["Value"] == Decimal("0.6")


def _postpaid_cdr(tcp, account: str, origin_id: str, usage: str) -> None:
    assert ok(tcp.call("APIerSv1.SetAccount", {"Tenant": ORG, "Account": account})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Tenant": ORG, "Account": account, "BalanceType": "*monetary",
                                               "Value": 10, "Balance": {"ID": "main", "Weight": 10}})) == "OK"
    ev = {"Tenant": ORG, "Flags": ["*rals"], "Event": {
        "OriginID": origin_id, "OriginHost": "10.0.0.9", "RequestType": "*postpaid", "Account": account,
        "Subject": "1001", "Destination": "1002", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": usage}}
    assert ok(tcp.call("CDRsV1.ProcessEvent", ev)) == "OK"


def test_cdr_cost_details_is_the_v010_event_cost(tcp):
    _postpaid_cdr(tcp, "g_ec", "g-ec-1", "85s")
    [v2] = ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["g-ec-1"], "RunIDs": ["*default"]}))
    [v1] = ok(tcp.call("APIerSv1.GetCDRs", {"CgrIds": [v2["CGRID"]], "MediationRunIds": ["*default"]}))
    assert v1["CostDetails"] == v2["CostDetails"]  # both answer ExternalCDR: the EventCost as JSON text
    ec = loads_exact(v2["CostDetails"])
    assert set(ec) == {"CGRID", "RunID", "StartTime", "Usage", "Cost", "Charges", "AccountSummary", "Rating",
                       "Accounting", "RatingFilters", "Rates", "Timings"}
    assert (ec["CGRID"], ec["RunID"], ec["StartTime"]) == (v2["CGRID"], "*default", "2014-08-04T13:00:00Z")
    # RT_20CNT: connect fee 0.4, the first 60 s one increment of 0.2, then 1 s increments of
    # 0.1/60 (0.00167 with the 5 global decimals): 0.64175, and the CDR debit's *up 4-decimal
    # rounding (0.00005) is a last zero-usage increment, so Cost is the CDR's 0.6418
    assert (ec["Usage"], ec["Cost"], v2["Cost"]) == (85_000_000_000, Decimal("0.6418"), Decimal("0.6418"))
    first, second = ec["Charges"]
    assert first["RatingID"] == second["RatingID"] and first["CompressFactor"] == second["CompressFactor"] == 1
    incs = [(i["Usage"], i["Cost"], i["CompressFactor"]) for ch in (first, second) for i in ch["Increments"]]
    assert incs == [(0, Decimal("0.4"), 1), (60_000_000_000, Decimal("0.2"), 1),
                    (1_000_000_000, Decimal("0.00167"), 25), (0, Decimal("0.00005"), 1)]
    [main] = ec["AccountSummary"]["BalanceSummaries"]
    assert (ec["AccountSummary"]["ID"], main["ID"], main["Value"]) == ("g_ec", "main", Decimal("9.3582"))
    acc = [ec["Accounting"][i["AccountingID"]] for ch in (first, second) for i in ch["Increments"]]
    assert [(a["AccountID"], a["BalanceUUID"], a["RatingID"], a["Units"], a["ExtraChargeID"]) for a in acc] == [
        (f"{ORG}:g_ec", main["UUID"], rid, units, "")
        for rid, units in (("", Decimal("0.4")), ("", Decimal("0.2")), ("", Decimal("0.00167")),
                           ("*rounding", Decimal("0.00005")))]
    rating = ec["Rating"][first["RatingID"]]
    assert rating == {"ConnectFee": Decimal("0.4"), "RoundingMethod": "*up", "RoundingDecimals": 4,
                      "MaxCost": 0, "MaxCostStrategy": "", "TimingID": rating["TimingID"],
                      "RatesID": rating["RatesID"], "RatingFiltersID": rating["RatingFiltersID"]}
    assert ec["RatingFilters"][rating["RatingFiltersID"]] == {
        "Subject": "*out:cgrates.org:call:1001", "DestinationPrefix": "1002", "DestinationID": "DST_1002",
        "RatingPlanID": "RP_1001"}
    assert ec["Rates"][rating["RatesID"]] == [
        {"GroupIntervalStart": 0, "Value": Decimal("0.2"), "RateIncrement": 60_000_000_000,
         "RateUnit": 60_000_000_000},
        {"GroupIntervalStart": 60_000_000_000, "Value": Decimal("0.1"), "RateIncrement": 1_000_000_000,
         "RateUnit": 60_000_000_000}]
    assert ec["Timings"][rating["TimingID"]] == {"Years": [], "Months": [], "MonthDays": [], "WeekDays": [],
                                                 "StartTime": "00:00:00"}


def test_active_sessions_max_rate_and_next_auto_debit(tcp):
    ev = {"OriginID": "g-sess-mr", "ToR": "*voice", "RequestType": "*prepaid", "Tenant": ORG, "Category": "call",
          "Account": "1001", "Subject": "1001", "Destination": "1002", "AnswerTime": "2014-08-04T13:00:05Z",
          "Usage": 60_000_000_000}
    before = datetime.now(UTC)
    assert ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "GetMaxUsage": True, "CGREvent": {
        "Tenant": ORG, "ID": "g-mr1", "Event": ev}}))["MaxUsage"] == 60_000_000_000
    rows = ok(tcp.call("SessionSv1.GetActiveSessions", {"Filters": ["*string:~*req.OriginID:g-sess-mr"]}))
    by_run = {r["RunID"]: r for r in rows}
    dflt, raw = by_run["*default"], by_run["*raw"]
    # the first debit of the loop was rated on RT_20CNT's first slot: 0.2 per 60 s
    assert (dflt["MaxRate"], dflt["MaxRateUnit"]) == (Decimal("0.2"), 60_000_000_000)
    # the loop debits again one DebitInterval after its first debit
    nxt = datetime.strptime(dflt["NextAutoDebit"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    interval = timedelta(microseconds=dflt["DebitInterval"] // 1000)
    assert before - timedelta(seconds=1) < nxt <= datetime.now(UTC) + interval
    # a run the session does not debit has no rate and no next debit
    assert (raw["MaxRate"], raw["MaxRateUnit"], raw["NextAutoDebit"]) == (0, 0, "0001-01-01T00:00:00Z")
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "CGREvent": {
        "Tenant": ORG, "ID": "g-mr2", "Event": ev}})) == "OK"


def test_update_session_of_a_held_session_answers_its_attributes(tcp):
    ev = {"OriginID": "g-upd-attr", "ToR": "*voice", "RequestType": "*prepaid", "Tenant": ORG, "Category": "call",
          "Account": "1001", "Subject": "1001", "Destination": "1002", "AnswerTime": "2014-08-04T13:00:05Z",
          "Usage": 30_000_000_000}
    cge = {"Tenant": ORG, "ID": "g-ua", "Event": ev}
    assert ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "GetMaxUsage": True, "CGREvent": cge}))
    # without the flag: no AttributeS hop, no Attributes
    plain = ok(tcp.call("SessionSv1.UpdateSession", {"UpdateSession": True, "CGREvent": cge}))
    assert plain["Attributes"] is None and plain["MaxUsage"] == 30_000_000_000
    # v0.10 runs AttributeS on the update event of a session it holds and answers them
    upd = ok(tcp.call("SessionSv1.UpdateSession", {"UpdateSession": True, "GetAttributes": True, "CGREvent": cge}))
    attrs = upd["Attributes"]
    assert attrs["MatchedProfiles"] == ["ATTR_1001_SESSIONAUTH"]
    assert attrs["AlteredFields"] == ["*req.Password", "*req.RequestType", "*req.PaypalAccount", "*req.LCRProfile"]
    assert attrs["CGREvent"]["Event"]["Password"] == "CGRateS.org" and upd["MaxUsage"] == 30_000_000_000
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "CGREvent": cge})) == "OK"
