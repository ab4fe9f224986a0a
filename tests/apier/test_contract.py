"""A contract test per method group, against the real suite (Postgres, tutorial tariff plan),
with the request shapes of CGRateS v0.10 and the numbers of the specs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e

T0 = "2014-08-04T13:00:00Z"


def monetary(acc: dict, bid: str = "test") -> Decimal:
    return next(b["Value"] for b in acc["BalanceMap"]["*monetary"] if b["ID"] == bid)


# --- APIerSv1.GetCost -------------------------------------------------


@pytest.mark.parametrize(("usage", "cost", "rated_ns"), [
    ("85s", Decimal("0.64175"), 85_000_000_000),  # Ex.2: EventCost, not the 0.6418 CallCost
    ("20s", Decimal("0.6"), 60_000_000_000),       # Ex.1: rated usage rounded up to 60 s
    ("2m10s", Decimal("0.7169"), 130_000_000_000),  # Ex.3
])
def test_get_cost_tutorial(api, usage, cost, rated_ns):
    ec = ok(api.call("APIerSv1.GetCost", {"Tenant": "cgrates.org", "Category": "call", "Subject": "1001",
                                         "AnswerTime": T0, "Destination": "1002", "Usage": usage}))
    assert ec["Cost"] == cost
    assert ec["Usage"] == rated_ns
    assert ec["Charges"] and ec["Rating"]


def test_get_cost_disconnect_maxcost_not_applied_and_lowercase_keys(api):
    ec = ok(api.call("APIerSv1.GetCost", {"subject": "1001", "answertime": T0, "destination": "1003", "usage": "85s"}))
    assert ec["Cost"] == Decimal("0.85")  # Ex.4


def test_get_cost_errors(api):
    assert err(api.call("APIerSv1.GetCost", {"Subject": "1001", "AnswerTime": T0, "Destination": "1002",
                                             "Usage": "bogus"})).startswith("SERVER_ERROR: Usage")
    assert err(api.call("APIerSv1.GetCost", {"Subject": "1001", "AnswerTime": T0, "Destination": "99999",
                                             "Usage": "10s"})) == "SERVER_ERROR: UNAUTHORIZED_DESTINATION"


# --- accounts and balances -----------------------------------------------------------------------


def test_get_account_v1_and_v2(api):
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1003"}))
    assert acc["ID"] == "cgrates.org:1003"
    [bal] = acc["BalanceMap"]["*monetary"]
    assert (bal["ID"], bal["Value"], bal["Weight"]) == ("test", 10, 10)
    assert acc["AllowNegative"] is False and acc["Disabled"] is False
    # APIerSv1.GetAccount: v0.10's legacy Account.AsOldStructure() shape
    old = ok(api.call("APIerSv1.GetAccount", {"Tenant": "cgrates.org", "Account": "1003"}))
    assert set(old) == {"Id", "BalanceMap", "UnitCounters", "ActionTriggers", "AllowNegative", "Disabled"}
    assert old["Id"] == "*out:cgrates.org:1003"
    [obal] = old["BalanceMap"]["*monetary*out"]
    assert (obal["Id"], obal["Uuid"], obal["Value"], obal["Weight"]) == ("test", bal["Uuid"], 10, 10)
    assert obal["DestinationIds"] == ";".join(sorted(bal["DestinationIDs"] or {}))
    assert set(obal) == {"Uuid", "Id", "Value", "ExpirationDate", "Weight", "DestinationIds", "RatingSubject",
                         "Category", "SharedGroup", "Timings", "TimingIDs", "Disabled"}
    assert old["AllowNegative"] is False and old["Disabled"] is False
    assert err(api.call("APIerSv1.GetAccount", {"Tenant": "cgrates.org", "Account": "nobody"})) == "NOT_FOUND"


def test_get_account_errors(api):
    assert err(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "nobody"})) == "NOT_FOUND"
    assert err(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org"})) == "MANDATORY_IE_MISSING: [Account]"


def test_set_account_balances_and_actions(tcp, http):
    acc_id = "api_acc_1"
    assert ok(tcp.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": acc_id})) == "OK"
    assert ok(http.call("APIerSv2.SetAccount", {"Tenant": "cgrates.org", "Account": acc_id,
                                                "ExtraOptions": {"AllowNegative": True}})) == "OK"
    assert ok(tcp.call("APIerSv2.GetAccount", {"Account": acc_id}))["AllowNegative"] is True

    assert ok(tcp.call("APIerSv1.SetBalance", {"Tenant": "cgrates.org", "Account": acc_id, "BalanceType": "*monetary",
                                               "Value": Decimal("5.5"), "Balance": {"ID": "b1", "Weight": 20}})) == "OK"
    acc = ok(http.call("APIerSv2.GetAccount", {"Account": acc_id}))
    b1 = next(b for b in acc["BalanceMap"]["*monetary"] if b["ID"] == "b1")
    assert (b1["Value"], b1["Weight"]) == (Decimal("5.5"), 20)

    assert ok(http.call("APIerSv1.AddBalance", {"Account": acc_id, "BalanceType": "*monetary",
                                                "Value": Decimal("1.25"), "Balance": {"ID": "b1"}})) == "OK"
    assert monetary(ok(tcp.call("APIerSv2.GetAccount", {"Account": acc_id})), "b1") == Decimal("6.75")
    assert ok(tcp.call("APIerSv1.DebitBalance", {"Account": acc_id, "BalanceType": "*monetary",
                                                 "Value": Decimal("0.75"), "Balance": {"ID": "b1"}})) == "OK"
    assert monetary(ok(tcp.call("APIerSv2.GetAccount", {"Account": acc_id})), "b1") == Decimal("6")

    # the tutorial's *topup_reset action: balance "test" = 10
    assert ok(http.call("APIerSv1.ExecuteAction", {"Tenant": "cgrates.org", "Account": acc_id,
                                                   "ActionsId": "ACT_TOPUP_RST_10"})) == "OK"
    assert monetary(ok(tcp.call("APIerSv2.GetAccount", {"Account": acc_id})), "test") == 10


def test_balance_errors(api):
    assert err(api.call("APIerSv1.SetBalance", {"BalanceType": "*monetary", "Value": 1})) == \
        "MANDATORY_IE_MISSING: [Account]"
    assert err(api.call("APIerSv1.SetBalance", {"Account": "x", "BalanceType": "*monetary", "Value": 1})) == \
        "MANDATORY_IE_MISSING: [BalanceID or BalanceUUID]"
    assert err(api.call("APIerSv1.AddBalance", {"Account": "x", "BalanceType": "*monetary"})) == \
        "MANDATORY_IE_MISSING: [Value]"



def test_remove_account(api):
    acc_id = f"rm-{type(api).__name__}"
    assert ok(api.call("APIerSv1.SetBalance", {"Account": acc_id, "BalanceType": "*monetary",
                                               "BalanceID": "main", "Value": 3})) == "OK"
    assert ok(api.call("APIerSv1.RemoveAccount", {"Tenant": "cgrates.org", "Account": acc_id})) == "OK"
    assert err(api.call("APIerSv2.GetAccount", {"Account": acc_id})).startswith("NOT_FOUND")


# --- AttributeS / ChargerS -----------------------------------------------------------------------


def test_attributes(api):
    ev = {"Tenant": "cgrates.org", "ID": "ev1", "Context": "*sessions",
          "Event": {"Account": "1001", "Destination": "1002"}}
    rep = ok(api.call("AttributeSv1.ProcessEvent", ev))
    assert rep["MatchedProfiles"] == ["ATTR_1001_SESSIONAUTH"]
    assert rep["CGREvent"]["Event"]["RequestType"] == "*prepaid"
    assert rep["CGREvent"]["Event"]["LCRProfile"] == "premium_cli"
    assert rep["CGREvent"]["ID"] == "ev1"
    prof = ok(api.call("AttributeSv1.GetAttributeForEvent", ev))
    assert prof["ID"] == "ATTR_1001_SESSIONAUTH"
    assert err(api.call("AttributeSv1.ProcessEvent", {"Context": "*sessions", "Event": {"Account": "9999"}})) \
        .startswith("NOT_FOUND")


def test_chargers(api):
    ev = {"Tenant": "cgrates.org", "ID": "ev2", "Event": {"Account": "1001", "RequestType": "*prepaid"}}
    runs = ok(api.call("ChargerSv1.ProcessEvent", ev))
    by_run = {r["CGREvent"]["Event"]["RunID"]: r for r in runs}
    assert set(by_run) == {"*default", "*raw"}
    assert by_run["*raw"]["CGREvent"]["Event"]["RequestType"] == "*none"
    assert by_run["*default"]["ChargerSProfile"] == "DEFAULT"
    profiles = ok(api.call("ChargerSv1.GetChargersForEvent", ev))
    assert sorted(p["ID"] for p in profiles) == ["DEFAULT", "Raw"]


# --- SupplierS / StatS / ThresholdS --------------------------------------------------------------


def test_suppliers_weight(api):
    rep = ok(api.call("SupplierSv1.GetSuppliers", {"Tenant": "cgrates.org", "ID": "s1",
                                                   "Event": {"Account": "1001", "Destination": "1002"}}))
    assert rep["ProfileID"] == "SPL_ACNT_1001"
    assert rep["Sorting"] == "*weight"
    assert [s["SupplierID"] for s in rep["SortedSuppliers"]] == ["supplier2", "supplier1"]


def test_stats(tcp, http):
    ids = ok(tcp.call("StatSv1.GetQueueIDs", {"Tenant": "cgrates.org"}))
    assert sorted(ids) == ["Stats2", "Stats2_1"]
    ev = {"Tenant": "cgrates.org", "ID": "st1", "Event": {"Account": "1001", "Destination": "1002", "RunID": "*default",
                                                          "Usage": 90_000_000_000, "Cost": Decimal("1.5")}}
    assert ok(http.call("StatSv1.ProcessEvent", ev)) == ["Stats2"]
    smetrics = ok(tcp.call("StatSv1.GetQueueStringMetrics", {"Tenant": "cgrates.org", "ID": "Stats2"}))
    fmetrics = ok(http.call("StatSv1.GetQueueFloatMetrics", {"Tenant": "cgrates.org", "ID": "Stats2"}))
    assert set(smetrics) == set(fmetrics) == {"*tcc", "*tcd"}
    assert fmetrics["*tcc"] == Decimal("1.5")
    assert err(tcp.call("StatSv1.GetQueueStringMetrics", {"Tenant": "cgrates.org", "ID": "nope"})).startswith("NOT_FOUND")


def test_thresholds(api):
    assert sorted(ok(api.call("ThresholdSv1.GetThresholdIDs", {"Tenant": "cgrates.org"}))) == \
        ["THD_ACNT_1001", "THD_ACNT_1002"]
    th = ok(api.call("ThresholdSv1.GetThreshold", {"Tenant": "cgrates.org", "ID": "THD_ACNT_1002"}))
    assert th["ID"] == "THD_ACNT_1002"
    hits = th["Hits"]
    assert ok(api.call("ThresholdSv1.ProcessEvent", {"Tenant": "cgrates.org", "ID": "th1",
                                                     "Event": {"Account": "1002"}})) == ["THD_ACNT_1002"]
    assert ok(api.call("ThresholdSv1.GetThreshold", {"Tenant": "cgrates.org", "ID": "THD_ACNT_1002"}))["Hits"] == hits + 1
    assert err(api.call("ThresholdSv1.GetThreshold", {"Tenant": "cgrates.org"})) == "MANDATORY_IE_MISSING: [ID]"
