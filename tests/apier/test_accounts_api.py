"""Accounts and action plans over JSON-RPC, against a real suite (Postgres, tutorial plan):
APIerSv2.GetAccounts, SetAccount with action plans and triggers, the action-plan API."""

from __future__ import annotations

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
