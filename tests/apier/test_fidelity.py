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


def _rated_cdr(api, origin_id: str) -> None:
    ev = {"Tenant": "cgrates.org", "Flags": ["*rals"],
          "Event": {"OriginID": origin_id, "OriginHost": "10.0.0.9", "RequestType": "*rated", "Account": "1003",
                    "Destination": "1001", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": "1s"}}
    assert ok(api.call("CDRsV1.ProcessEvent", ev)) == "OK"


def test_export_cdrs_file_name_export_id_separator(tcp, tmp_path):
    _rated_cdr(tcp, "fid-exp-1")
    _rated_cdr(tcp, "fid-exp-2")
    one = {"ExportPath": str(tmp_path), "ExportFormat": "*file_csv", "OriginIDs": ["fid-exp-1"],
           "RunIDs": ["*default"]}
    # bad arguments: refused, nothing written
    assert err(tcp.call("APIerSv1.ExportCDRs", {**one, "ExportFileName": "../up.csv"})) == \
        "SERVER_ERROR: ExportFileName: '../up.csv' must be a plain file name"
    assert "field_separator" in err(tcp.call("APIerSv1.ExportCDRs", {**one, "FieldSeparator": ";;"}))
    assert list(tmp_path.iterdir()) == []
    rep = ok(tcp.call("APIerSv1.ExportCDRs", {**one, "ExportFileName": "fid.csv", "FieldSeparator": ";"}))
    assert rep["ExportedPath"] == str(tmp_path / "fid.csv") and rep["TotalRecords"] == 1
    lines = [ln for ln in (tmp_path / "fid.csv").read_text().splitlines() if "fid-exp-1" in ln]
    assert len(lines) == 1 and ";" in lines[0] and "," not in lines[0]
    assert lines[0].split(";")[-1] == "0.3000"
    rep2 = ok(tcp.call("APIerSv1.ExportCDRs", {**one, "OriginIDs": ["fid-exp-2"], "ExportID": "fidexp"}))
    assert rep2["ExportedPath"] == str(tmp_path / "cdre_fidexp.csv")
    assert "fid-exp-2" in (tmp_path / "cdre_fidexp.csv").read_text()


def test_least_cost_sorting_data_cost_is_the_rounded_callcost(api):
    # v0.10 prices a supplier with Responder.GetCostOnRatingPlans = CallCost.Cost, rounded by the
    # DestinationRate (*up, 4 decimals): 85 s of RT_20CNT -> 0.6418, not the EventCost's 0.64175
    assert ok(api.call("APIerSv1.SetSupplierProfile", {
        "Tenant": "cgrates.org", "ID": "SPP_FID_LC", "FilterIDs": ["*string:~*req.Account:fid_lc"],
        "Sorting": "*lc", "Suppliers": [{"ID": "s1", "RatingPlanIDs": ["RP_1001"], "Weight": 10}],
        "Weight": 10})) == "OK"
    ev = {"Tenant": "cgrates.org", "Event": {"Account": "fid_lc", "Destination": "1002",
                                             "SetupTime": "2014-08-04T13:00:00Z", "Usage": "85s"}}
    [s1] = ok(api.call("SupplierSv1.GetSuppliers", ev))["SortedSuppliers"]
    assert s1["SortingData"]["Cost"] == Decimal("0.6418")
    assert s1["SortingData"]["RatingPlanID"] == "RP_1001"


def test_cdrs_process_event_rerate_and_refund(tcp):
    acc = "fid_rr"
    assert ok(tcp.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": acc})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Tenant": "cgrates.org", "Account": acc, "BalanceType": "*monetary",
                                               "Value": 10, "Balance": {"ID": "main", "Weight": 10}})) == "OK"

    def cdr_event(flags: list[str], usage: str) -> dict:
        # rated as subject 1003 (RT_10CNT: connect 0.2, 0.1 the first minute, then 0.05/min per second: 0.05/60 rounds to 0.00083 a second, so 60 s cost 0.0498)
        return {"Tenant": "cgrates.org", "Flags": flags, "Event": {
            "OriginID": "fid-rr-1", "OriginHost": "10.0.0.9", "RequestType": "*postpaid", "Account": acc,
            "Subject": "1003", "Destination": "1001", "AnswerTime": "2014-08-04T13:00:00Z", "Usage": usage}}

    def stored() -> dict:
        return ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["fid-rr-1"], "RunIDs": ["*default"]}))[0]

    assert ok(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*rals"], "60s"))) == "OK"
    assert _balance(tcp, acc, "main")["Value"] == Decimal("9.7")
    assert err(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*rals"], "60s"))) == "EXISTS"
    # *rerate: refund the first debit, debit the corrected usage, update the stored CDR
    assert ok(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*rerate"], "120s"))) == "OK"
    assert _balance(tcp, acc, "main")["Value"] == Decimal("9.6502")
    row = stored()
    assert (row["Cost"], row["Usage"]) == (Decimal("0.3498"), "2m0s")
    # the same rerate again moves the account by nothing (refund 0.3498, debit 0.3498)
    assert ok(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*rerate"], "120s"))) == "OK"
    assert _balance(tcp, acc, "main")["Value"] == Decimal("9.6502")
    # *refund without rating: the money back, the CDR unrated
    assert ok(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*refund", "*rals:false"], "120s"))) == "OK"
    assert _balance(tcp, acc, "main")["Value"] == Decimal("10")
    assert stored()["Cost"] == -1
    assert "value must be true or false" in err(tcp.call("CDRsV1.ProcessEvent", cdr_event(["*rerate:maybe"], "60s")))
    assert _balance(tcp, acc, "main")["Value"] == Decimal("10")
