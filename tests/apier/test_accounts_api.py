"""Accounts and action plans over JSON-RPC, against a real suite (Postgres, tutorial plan):
APIerSv2.GetAccounts, SetAccount with action plans and triggers, the action-plan API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e


def _ids(reply: list[dict] | None) -> list[str]:
    return [a["ID"].removeprefix("cgrates.org:") for a in reply or []]


def test_get_accounts_pages_and_filters(tcp, http):
    for name, neg in (("ga_a", True), ("ga_b", False), ("ga_c", True)):
        assert ok(tcp.call("APIerSv2.SetAccount", {"Account": name, "ExtraOptions": {"AllowNegative": neg}})) == "OK"
    everything = _ids(ok(http.call("APIerSv2.GetAccounts", {"Tenant": "cgrates.org"})))
    assert everything == sorted(everything)
    assert {"1001", "1002", "1003", "ga_a", "ga_b", "ga_c"} <= set(everything)

    page = ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", "ga_b", "ga_c"], "Offset": 1, "Limit": 1}))
    assert _ids(page) == ["ga_b"]
    # the same shape as APIerSv2.GetAccount, balances exact
    assert page[0] == ok(tcp.call("APIerSv2.GetAccount", {"Account": "ga_b"}))
    acc = ok(http.call("APIerSv2.GetAccounts", {"AccountIDs": ["1001"]}))[0]
    assert acc["BalanceMap"]["*monetary"][0]["Value"] == Decimal("10")

    flt = ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", "ga_b", "ga_c", "nobody"],
                                               "Filter": {"AllowNegative": True}}))
    assert _ids(flt) == ["ga_a", "ga_c"]
    assert ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["nobody"]})) == []
    assert ok(tcp.call("APIerSv2.GetAccounts", {"Tenant": "no.such.tenant"})) == []
    assert ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a"], "Offset": 5})) == []


def test_get_accounts_bad_arguments(api):
    assert err(api.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", ""]})) == "MANDATORY_IE_MISSING: [AccountIDs]"
    assert "Filter: unknown field 'Blocked'" in err(api.call("APIerSv2.GetAccounts", {"Filter": {"Blocked": True}}))
    assert "Limit: must not be negative" in err(api.call("APIerSv2.GetAccounts", {"Limit": -1}))
    assert "Offset" in err(api.call("APIerSv2.GetAccounts", {"Offset": "x"}))


def _balance(acc: dict, bid: str) -> Decimal | None:
    return next((b["Value"] for b in acc["BalanceMap"].get("*monetary", []) if b["ID"] == bid), None)


def _setup_plans(api) -> None:
    assert ok(api.call("APIerSv1.SetActions", {"ActionsId": "ACT_SA_EXTRA5", "Overwrite": True, "Actions": [
        {"Identifier": "*topup", "BalanceId": "extra", "BalanceType": "*monetary", "Units": "5.125",
         "Weight": 10}]})) == "OK"
    assert ok(api.call("APIerSv1.SetActionPlan", {"Id": "AP_SA_EXTRA", "Overwrite": True, "ActionPlan": [
        {"ActionsId": "ACT_SA_EXTRA5", "Time": "*asap", "Weight": 10}]})) == "OK"
    assert ok(api.call("APIerSv1.SetActionTriggers", {"GroupID": "TRG_SA", "ActionTriggers": [
        {"UniqueID": "low", "ThresholdType": "*min_balance", "ThresholdValue": 2, "BalanceType": "*monetary",
         "ActionsId": "ACT_LOG_WARNING", "Weight": 10}]})) == "OK"


def test_set_account_v2_plans_triggers_and_flags(tcp, http):
    _setup_plans(tcp)
    assert ok(http.call("APIerSv2.SetAccount", {
        "Account": "sa_1", "ActionPlanIDs": ["AP_PACKAGE_10"], "ActionTriggerIDs": ["TRG_SA"],
        "ExtraOptions": {"AllowNegative": True}, "ReloadScheduler": True})) == "OK"
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "sa_1"}))
    assert _balance(acc, "test") == Decimal("10")  # AP_PACKAGE_10's *asap *topup_reset ran
    assert acc["AllowNegative"] is True and acc["Disabled"] is False
    trigs = ok(tcp.call("APIerSv1.GetAccountActionTriggers", {"Account": "sa_1"}))
    assert [(t["ID"], t["UniqueID"]) for t in trigs] == [("TRG_SA", "low")]

    # a second plan is added (no overwrite): its *asap runs, the first one does not run again
    assert ok(tcp.call("APIerSv1.DebitBalance", {"Account": "sa_1", "BalanceType": "*monetary",
                                                 "Value": 1, "Balance": {"ID": "test"}})) == "OK"
    assert ok(http.call("APIerSv2.SetAccount", {"Account": "sa_1", "ActionPlanIDs": ["AP_SA_EXTRA"]})) == "OK"
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "sa_1"}))
    assert (_balance(acc, "test"), _balance(acc, "extra")) == (Decimal("9"), Decimal("5.125"))
    assert acc["AllowNegative"] is True  # not asked: kept

    # disabling through ExtraOptions keeps the plans
    assert ok(http.call("APIerSv2.SetAccount", {"Account": "sa_1", "ExtraOptions": {"Disabled": True}})) == "OK"
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "sa_1"}))
    assert acc["Disabled"] is True and _balance(acc, "extra") == Decimal("5.125")

    # overwrite with no trigger groups: none left
    assert ok(tcp.call("APIerSv2.SetAccount", {"Account": "sa_1", "ActionTriggerIDs": [],
                                               "ActionTriggerOverwrite": True})) == "OK"
    assert ok(tcp.call("APIerSv1.GetAccountActionTriggers", {"Account": "sa_1"})) == []


def test_set_account_unknown_ids_change_nothing(api):
    _setup_plans(api)
    before = ok(api.call("APIerSv2.GetAccounts", {}))
    e = err(api.call("APIerSv2.SetAccount", {"Account": "sa_ghost", "ActionPlanIDs": ["AP_SA_EXTRA", "AP_NOPE"]}))
    assert e == "SERVER_ERROR: NOT_FOUND: ActionPlan 'AP_NOPE'"
    e = err(api.call("APIerSv1.SetAccount", {"Account": "sa_ghost", "ActionTriggersID": "TRG_NOPE"}))
    assert e == "SERVER_ERROR: NOT_FOUND: ActionTriggers 'TRG_NOPE'"
    assert err(api.call("APIerSv2.GetAccount", {"Account": "sa_ghost"})) == "NOT_FOUND"
    assert ok(api.call("APIerSv2.GetAccounts", {})) == before
    assert "ActionPlanIDs" in err(api.call("APIerSv2.SetAccount", {"Account": "x", "ActionPlanIDs": [1]}))
    assert "ReloadScheduler" in err(api.call("APIerSv2.SetAccount", {"Account": "x", "ReloadScheduler": "yes"}))


def test_set_account_v1_replaces_plan_and_remove_account_detaches(tcp):
    _setup_plans(tcp)
    assert ok(tcp.call("APIerSv1.SetAccount", {"Account": "sa_v1", "ActionPlanID": "AP_PACKAGE_10",
                                               "ExtraOptions": {"AllowNegative": True}})) == "OK"
    assert ok(tcp.call("APIerSv1.SetAccount", {"Account": "sa_v1", "ActionPlanID": "AP_SA_EXTRA"})) == "OK"
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Account": "sa_v1"}))
    assert (_balance(acc, "test"), _balance(acc, "extra"), acc["AllowNegative"]) == (10, Decimal("5.125"), True)
    assert ok(tcp.call("APIerSv1.RemoveAccount", {"Account": "sa_v1"})) == "OK"
    # a reload of RALs (any action-plan change) does not bring the account back
    _setup_plans(tcp)
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": "sa_v1"})) == "NOT_FOUND"


def test_action_plan_get_remove_and_accounts_leave(tcp, http):
    _setup_plans(tcp)
    assert ok(tcp.call("APIerSv1.SetActionPlan", {"Id": "AP_SA_MONTHLY", "Overwrite": True, "ActionPlan": [
        {"ActionsId": "ACT_SA_EXTRA5", "MonthDays": "1", "Time": "00:00:00", "Weight": 20},
        {"ActionsId": "ACT_LOG_WARNING", "Time": "*asap", "Weight": 10}]})) == "OK"
    assert ok(http.call("APIerSv2.SetAccount", {"Account": "ap_1", "ActionPlanIDs": ["AP_SA_MONTHLY", "AP_SA_EXTRA"]})) == "OK"

    plans = ok(tcp.call("APIerSv1.GetActionPlan", {"ID": "AP_SA_MONTHLY"}))
    assert len(plans) == 1 and plans[0]["Id"] == "AP_SA_MONTHLY"
    assert plans[0]["AccountIDs"] == {"cgrates.org:ap_1": True}
    monthly, asap = plans[0]["ActionTimings"]
    assert (monthly["ActionsID"], monthly["Weight"]) == ("ACT_SA_EXTRA5", 20)
    assert (monthly["Timing"]["Timing"]["MonthDays"], monthly["Timing"]["Timing"]["StartTime"]) == ([1], "00:00:00")
    assert (asap["ActionsID"], asap["Timing"]["Timing"]["StartTime"]) == ("ACT_LOG_WARNING", "*asap")
    assert monthly["Uuid"] != asap["Uuid"]
    assert plans == ok(http.call("APIerSv1.GetActionPlan", {"ID": "AP_SA_MONTHLY"}))  # stable UUIDs
    every = {p["Id"] for p in ok(http.call("APIerSv1.GetActionPlan", {}))}
    assert {"AP_PACKAGE_10", "AP_SA_EXTRA", "AP_SA_MONTHLY"} <= every
    assert err(tcp.call("APIerSv1.GetActionPlan", {"ID": "AP_NOPE"})) == "NOT_FOUND"

    assert ok(tcp.call("APIerSv1.RemoveActionPlan", {"ID": "AP_SA_MONTHLY"})) == "OK"
    assert err(tcp.call("APIerSv1.GetActionPlan", {"ID": "AP_SA_MONTHLY"})) == "NOT_FOUND"
    assert err(tcp.call("APIerSv1.RemoveActionPlan", {"ID": "AP_SA_MONTHLY"})) == "NOT_FOUND"
    # the account left the removed plan and stays in the other one
    assert ok(tcp.call("APIerSv1.GetActionPlan", {"ID": "AP_SA_EXTRA"}))[0]["AccountIDs"]["cgrates.org:ap_1"] is True
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": "ap_1"}))["ID"] == "cgrates.org:ap_1"
    assert err(tcp.call("APIerSv1.RemoveActionPlan", {})) == "MANDATORY_IE_MISSING: [ID]"


def test_get_set_remove_actions_v1(tcp, http):
    _setup_plans(tcp)
    acts = ok(tcp.call("APIerSv1.GetActions", "ACT_SA_EXTRA5"))
    assert [(x["Identifier"], x["BalanceId"], x["Units"]) for x in acts] == [("*topup", "extra", "5.125")]
    assert err(tcp.call("APIerSv1.GetActions", "ACT_NOPE")) == "SERVER_ERROR: NOT_FOUND"
    assert err(http.call("APIerSv1.GetActions", "")).startswith("MANDATORY_IE_MISSING")
    assert err(http.call("APIerSv1.SetActions", {"ActionsId": "ACT_SA_EXTRA5", "Actions": [
        {"Identifier": "*log", "Weight": 10}]})) == "EXISTS"
    assert ok(http.call("APIerSv1.SetActions", {"ActionsId": "ACT_SA_TMP", "Actions": [
        {"Identifier": "*log", "Weight": 10}]})) == "OK"
    # a set a plan uses is refused, naming the plan, and nothing of the call is removed
    e = err(tcp.call("APIerSv1.RemoveActions", {"ActionIDs": ["ACT_SA_TMP", "ACT_SA_EXTRA5"]}))
    assert e.startswith("SERVER_ERROR: actions ACT_SA_EXTRA5 used by action plan AP_SA_EXTRA")
    assert ok(tcp.call("APIerSv1.GetActions", "ACT_SA_TMP"))[0]["Identifier"] == "*log"
    assert err(tcp.call("APIerSv1.RemoveActions", {"ActionIDs": ["ACT_SA_TMP", "ACT_GHOST"]})) == "NOT_FOUND:ACT_GHOST"
    assert ok(tcp.call("APIerSv1.RemoveActions", {"ActionIDs": ["ACT_SA_TMP"]})) == "OK"
    assert err(tcp.call("APIerSv1.GetActions", "ACT_SA_TMP")) == "SERVER_ERROR: NOT_FOUND"


def test_remove_balances(api):
    acc = f"rb_{type(api).__name__}"
    for bid, value in (("a", 1), ("b", 2)):
        assert ok(api.call("APIerSv1.SetBalance", {"Account": acc, "BalanceType": "*monetary", "BalanceID": bid,
                                                   "Value": value})) == "OK"
    assert ok(api.call("APIerSv1.SetBalance", {"Account": acc, "BalanceType": "*sms", "BalanceID": "s",
                                               "Value": 10})) == "OK"
    assert ok(api.call("APIerSv1.RemoveBalances", {"Account": acc, "BalanceType": "*monetary", "BalanceID": "a"})) == "OK"
    doc = ok(api.call("APIerSv2.GetAccount", {"Account": acc}))
    assert [b["ID"] for b in doc["BalanceMap"]["*monetary"]] == ["b"]
    assert err(api.call("APIerSv1.RemoveBalances", {"Account": acc, "BalanceType": "*monetary",
                                                    "BalanceID": "a"})).startswith("NOT_FOUND")
    assert err(api.call("APIerSv1.RemoveBalances", {"Account": acc, "BalanceType": "*monetary",
                                                    "Weight": 10})) == "NOT_IMPLEMENTED:Weight"
    assert err(api.call("APIerSv1.RemoveBalances", {"Account": "rb_ghost", "BalanceType": "*monetary"})) == "NOT_FOUND"
    assert err(api.call("APIerSv1.RemoveBalances", {"Account": acc})) == "MANDATORY_IE_MISSING: [BalanceType]"
    # no ID: every balance of the type; the other types stay
    assert ok(api.call("APIerSv1.RemoveBalances", {"Account": acc, "BalanceType": "*monetary"})) == "OK"
    doc = ok(api.call("APIerSv2.GetAccount", {"Account": acc}))
    assert not doc["BalanceMap"].get("*monetary") and doc["BalanceMap"]["*sms"][0]["Value"] == 10


def test_get_scheduled_actions(tcp, http):
    _setup_plans(tcp)
    assert ok(tcp.call("APIerSv1.SetActionPlan", {"Id": "AP_SA_SCHED", "Overwrite": True, "ActionPlan": [
        {"ActionsId": "ACT_SA_EXTRA5", "MonthDays": "1", "Time": "00:00:00", "Weight": 20},
        {"ActionsId": "ACT_LOG_WARNING", "Time": "*asap", "Weight": 10}]})) == "OK"
    assert ok(http.call("APIerSv2.SetAccount", {"Account": "sched_1", "ActionPlanIDs": ["AP_SA_SCHED"]})) == "OK"
    now = datetime.now(UTC)
    first = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)

    mine = ok(tcp.call("APIerSv1.GetScheduledActions", {"Tenant": "cgrates.org", "Account": "sched_1"}))
    assert [(s["ActionPlanID"], s["ActionsID"], s["Accounts"]) for s in mine] == [("AP_SA_SCHED", "ACT_SA_EXTRA5", 1)]
    assert mine[0]["NextRunTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    plan = ok(http.call("APIerSv1.GetActionPlan", {"ID": "AP_SA_SCHED"}))[0]
    assert mine[0]["ActionTimingUUID"] == plan["ActionTimings"][0]["Uuid"]

    everything = ok(http.call("APIerSv1.GetScheduledActions", {}))
    assert mine[0] in everything
    assert ok(tcp.call("APIerSv1.GetScheduledActions", {"Account": "sched_1",
                                                        "TimeEnd": (first - timedelta(seconds=1)).isoformat()})) == []
    assert ok(tcp.call("APIerSv1.GetScheduledActions", {"Account": "1001"})) == []  # only *asap plans
    assert ok(tcp.call("APIerSv1.GetScheduledActions", {"Account": "sched_1", "Offset": 1})) == []
    assert "TimeStart" in err(tcp.call("APIerSv1.GetScheduledActions", {"TimeStart": "soon"}))


def _cd(account: str, **kw) -> dict:
    return {"Tenant": "cgrates.org", "Category": "call", "Account": account, "Subject": "1001",
            "Destination": "1002", "TimeStart": "2014-08-04T13:00:00Z", "TimeEnd": "2014-08-04T13:01:00Z", **kw}


def test_disable_enable_and_remove_account_actions(tcp, http):
    for aid, act in (("ACT_SA_DIS", "*disable_account"), ("ACT_SA_EN", "*enable_account"),
                     ("ACT_SA_RM", "*remove_account")):
        assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": aid, "Overwrite": True, "Actions": [
            {"Identifier": act, "Weight": 10}]})) == "OK"
    acc = "dis_1"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Account": acc, "BalanceType": "*monetary", "BalanceID": "main",
                                               "Value": Decimal("7.5")})) == "OK"
    assert ok(tcp.call("Responder.GetMaxSessionTime", _cd(acc))) > 0
    assert ok(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_SA_DIS"})) == "OK"
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))["Disabled"] is True
    # a disabled account is refused, authorized or debited, with v0.10's word; nothing is taken
    assert err(tcp.call("Responder.GetMaxSessionTime", _cd(acc))) == "ACCOUNT_DISABLED"
    assert err(tcp.call("Responder.Debit", _cd(acc))) == "ACCOUNT_DISABLED"
    auth = {"GetMaxUsage": True, "Tenant": "cgrates.org", "Event": {
        "Account": acc, "Subject": "1001", "Destination": "1002", "OriginID": "dis-1", "RequestType": "*prepaid",
        "SetupTime": "2014-08-04T13:00:00Z", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": "60s"}}
    assert err(http.call("SessionSv1.AuthorizeEvent", auth)) == "RALS_ERROR:ACCOUNT_DISABLED"
    assert _balance(ok(tcp.call("APIerSv2.GetAccount", {"Account": acc})), "main") == Decimal("7.5")

    assert ok(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_SA_EN"})) == "OK"
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))["Disabled"] is False
    assert ok(tcp.call("Responder.GetMaxSessionTime", _cd(acc))) > 0

    assert ok(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_SA_RM"})) == "OK"
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": acc})) == "NOT_FOUND"
    assert err(tcp.call("Responder.GetMaxSessionTime", _cd(acc))) == "ACCOUNT_NOT_FOUND"
    # on no account the action fails and creates nothing
    assert err(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_SA_RM"})).startswith("NOT_FOUND")
    assert err(tcp.call("APIerSv2.GetAccount", {"Account": acc})) == "NOT_FOUND"


def test_balance_timing_ids(tcp, http):
    for tid, years in (("TM_SA_2014", "2014"), ("TM_SA_2015", "2015")):
        assert ok(tcp.call("APIerSv1.SetTPTiming", {"TPid": "sa_timings", "ID": tid, "Years": years, "Months": "*any",
                                                    "MonthDays": "*any", "WeekDays": "*any", "Time": "00:00:00"})) == "OK"
    assert ok(tcp.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "sa_timings"})) == "OK"
    acc = "tm_1"
    assert ok(http.call("APIerSv1.SetBalance", {"Account": acc, "BalanceType": "*monetary", "Value": 5, "Balance": {
        "ID": "in2014", "Weight": 20, "TimingIDs": ["TM_SA_2014"]}})) == "OK"
    assert ok(http.call("APIerSv2.SetBalance", {"Account": acc, "BalanceType": "*monetary", "Value": 5,
                                                "BalanceID": "in2015", "Weight": 30, "TimingIDs": "TM_SA_2015"})) == "OK"
    doc = ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))
    assert {b["ID"]: b["TimingIDs"] for b in doc["BalanceMap"]["*monetary"]} == {
        "in2014": {"TM_SA_2014": True}, "in2015": {"TM_SA_2015": True}}
    # a 2014 call: the heavier 2015 balance is not active, the 2014 one pays (0.4 + 60 s at 0.2/min)
    cc = ok(tcp.call("Responder.Debit", _cd(acc)))
    assert cc["Cost"] == Decimal("0.6")
    doc = ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))
    assert (_balance(doc, "in2014"), _balance(doc, "in2015")) == (Decimal("4.4"), Decimal("5"))
    # a 2015 call: the other way round
    ok(tcp.call("Responder.Debit", _cd(acc, TimeStart="2015-08-05T13:00:00Z", TimeEnd="2015-08-05T13:01:00Z")))
    doc = ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))
    assert (_balance(doc, "in2014"), _balance(doc, "in2015")) == (Decimal("4.4"), Decimal("4.4"))
    # an unknown timing changes nothing
    e = err(http.call("APIerSv1.SetBalance", {"Account": acc, "BalanceType": "*monetary", "Value": 1, "Balance": {
        "ID": "in2014", "TimingIDs": ["TM_NOPE"]}}))
    assert e == "NOT_FOUND:TimingIDs TM_NOPE"
    assert _balance(ok(tcp.call("APIerSv2.GetAccount", {"Account": acc})), "in2014") == Decimal("4.4")
