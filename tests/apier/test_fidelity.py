"""CGRateS v0.10 answers where cgrpy used to answer an error or another number: APIerSv2.SetBalance,
unsupported sorting strategies, filter types v0.10 does not implement. Against the real suite
(tutorial plan, Postgres), over both transports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e


def _balance(api, account: str, bid: str) -> dict:
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": account}))
    return next(b for b in acc["BalanceMap"]["*monetary"] if b["ID"] == bid)


def test_set_balance_v2_flat_args(api):
    account = f"fid_v2_{type(api).__name__}"
    assert ok(api.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": account})) == "OK"
    assert ok(api.call("APIerSv2.SetBalance", {
        "Tenant": "cgrates.org", "Account": account, "BalanceType": "*monetary", "BalanceID": "b2",
        "Value": Decimal("2.345"), "Weight": 15})) == "OK"
    b2 = _balance(api, account, "b2")
    assert (b2["Value"], b2["Weight"]) == (Decimal("2.345"), 15)
    # set again: the value is replaced, not added
    assert ok(api.call("APIerSv2.SetBalance", {
        "Tenant": "cgrates.org", "Account": account, "BalanceType": "*monetary", "BalanceID": "b2",
        "Value": Decimal("0.10")})) == "OK"
    assert _balance(api, account, "b2")["Value"] == Decimal("0.1")
    # bad arguments name what is missing and change nothing
    assert err(api.call("APIerSv2.SetBalance", {"Account": account, "BalanceType": "*monetary",
                                                "BalanceID": "b2"})) == "MANDATORY_IE_MISSING: [Value]"
    assert err(api.call("APIerSv2.SetBalance", {"Account": account, "BalanceType": "*monetary",
                                                "Value": 5})) == "MANDATORY_IE_MISSING: [BalanceID or BalanceUUID]"
    assert err(api.call("APIerSv2.SetBalance", {"BalanceType": "*monetary", "BalanceID": "b2",
                                                "Value": 5})) == "MANDATORY_IE_MISSING: [Account]"
    assert _balance(api, account, "b2")["Value"] == Decimal("0.1")


def test_unsupported_sorting_strategy(api):
    assert ok(api.call("APIerSv1.SetSupplierProfile", {
        "Tenant": "cgrates.org", "ID": "SPP_FID_SORT", "FilterIDs": ["*string:~*req.Account:fid_sort"],
        "Sorting": "*least_cost", "Suppliers": [{"ID": "s1", "Weight": 10}], "Weight": 10})) == "OK"
    ev = {"Tenant": "cgrates.org", "Event": {"Account": "fid_sort", "Destination": "1002",
                                             "SetupTime": "2014-08-04T13:00:00Z", "Usage": "1m"}}
    assert err(api.call("SupplierSv1.GetSuppliers", ev)) == \
        "SERVER_ERROR: unsupported sorting strategy: *least_cost"


def test_filter_type_v010_does_not_implement(api):
    # *timings: v0.10 answers NOT_IMPLEMENTED for every such rule (not a silent non-match)
    assert ok(api.call("APIerSv1.SetThresholdProfile", {
        "Tenant": "cgrates.org", "ID": "TH_FID_TIM", "FilterIDs": ["*timings:~*req.AnswerTime:*any"],
        "MaxHits": -1, "MinHits": 1, "Weight": 10, "ActionIDs": ["ACT_LOG_WARNING"]})) == "OK"
    th = {"Tenant": "cgrates.org", "ThresholdIDs": ["TH_FID_TIM"],
          "Event": {"Account": "1001", "AnswerTime": "2014-08-04T13:00:00Z"}}
    assert err(api.call("ThresholdSv1.ProcessEvent", th)) == "SERVER_ERROR: NOT_IMPLEMENTED"
    assert ok(api.call("APIerSv1.SetFilter", {"Tenant": "cgrates.org", "ID": "FLT_FID_TIM", "Rules": [
        {"Type": "*string", "Element": "~*req.Account", "Values": ["fid_tim"]},
        {"Type": "*timings", "Element": "~*req.AnswerTime", "Values": ["*any"]}]})) == "OK"
    assert ok(api.call("APIerSv1.SetAttributeProfile", {
        "Tenant": "cgrates.org", "ID": "ATTR_FID_TIM", "Contexts": ["*any"], "FilterIDs": ["FLT_FID_TIM"],
        "Attributes": [{"Path": "*req.Subject", "Type": "*constant", "Value": "x"}], "Weight": 50})) == "OK"
    attr = {"Tenant": "cgrates.org", "Event": {"Account": "fid_tim", "AnswerTime": "2014-08-04T13:00:00Z"}}
    assert err(api.call("AttributeSv1.ProcessEvent", attr)) == "SERVER_ERROR: NOT_IMPLEMENTED"
