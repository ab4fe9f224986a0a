"""The seed tutorial walk-through done entirely through the CGRateS JSON-RPC API, as a script
written for CGRateS v0.10 would: load the plan, check accounts, cost queries, a prepaid and a
postpaid session, CDR read-back, re-rating and export. The suite starts with no tariff plan."""

from __future__ import annotations

import csv
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.apier.conftest import TUTORIAL, start_suite
from tests.apier.jsonrpc_client import HttpClient, TcpClient, err, ok

pytestmark = pytest.mark.e2e

T0 = "2014-08-04T13:00:00Z"


@pytest.fixture(scope="module")
def empty_suite(pg_databases):
    yield from start_suite(pg_databases, CGRPY_DEBIT_INTERVAL="1s")


def monetary(api, account: str) -> Decimal:
    acc = ok(api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": account}))
    return sum((b["Value"] for b in acc["BalanceMap"]["*monetary"]), Decimal(0))


def wait_count(api, flt: dict, n: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = ok(api.call("APIerSv1.CountCDRs", flt))
        if count >= n or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def test_tutorial_walkthrough(empty_suite, tmp_path: Path):
    tcp = TcpClient(empty_suite.env["CGRPY_JSONRPC_LISTEN"])
    http = HttpClient(empty_suite.env["CGRPY_HTTP_LISTEN"])

    # 1. load the tariff plan
    assert err(http.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": "/no/such/dir"})) \
        .startswith("SERVER_ERROR: FolderPath")
    assert ok(http.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) == "OK"

    # 2. accounts provisioned by AP_PACKAGE_10 (*asap): 10 each
    for account in ("1001", "1002", "1003"):
        assert monetary(tcp, account) == 10

    # 3. cost queries
    q = {"Tenant": "cgrates.org", "Category": "call", "Subject": "1001", "AnswerTime": T0, "Destination": "1002"}
    assert ok(tcp.call("APIerSv1.GetCost", {**q, "Usage": "85s"}))["Cost"] == Decimal("0.64175")
    assert ok(http.call("APIerSv1.GetCost", {**q, "Usage": "1h"}))["Cost"] == Decimal("6.5118")

    # 4. a prepaid session 1001 -> 1002, 2 s
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    call = {"Tenant": "cgrates.org", "Category": "call", "ToR": "*voice", "OriginID": "api-prepaid-1",
            "OriginHost": "127.0.0.1", "RequestType": "*prepaid", "Account": "1001", "Subject": "1001",
            "Destination": "1002", "SetupTime": now, "AnswerTime": now}
    auth = ok(tcp.call("SessionSv1.AuthorizeEvent", {"GetMaxUsage": True, "Tenant": "cgrates.org", "ID": "a1",
                                                     "Event": {**call, "Usage": 3 * 3600 * 10**9}}))
    assert auth["MaxUsage"] == 5688 * 10**9  # 1h34m48s
    init = ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "GetMaxUsage": True,
                                                      "Tenant": "cgrates.org", "ID": "i1", "Event": call}))
    assert init["MaxUsage"] > 0
    active = ok(http.call("SessionSv1.GetActiveSessions", {"Filters": ["*string:~*req.OriginID:api-prepaid-1"]}))
    assert {s["RunID"] for s in active} >= {"*default"}
    assert all(s["Account"] == "1001" and s["OriginID"] == "api-prepaid-1" for s in active)
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "Tenant": "cgrates.org",
                                                       "ID": "t1", "Event": {**call, "Usage": 2 * 10**9}})) == "OK"
    assert ok(tcp.call("SessionSv1.ProcessCDR", {"Tenant": "cgrates.org", "ID": "c1",
                                                 "Event": {**call, "Usage": 2 * 10**9}})) == "OK"
    assert monetary(http, "1001") == Decimal("9.4")  # connect 0.4 + one 60 s increment 0.2
    assert err(http.call("SessionSv1.GetActiveSessions", {"Filters": ["*string:~*req.OriginID:api-prepaid-1"]})) \
        == "NOT_FOUND"

    # 5. a postpaid session 1002 -> 1001, 85 s: charged at CDR time (Debit with PerformRounding)
    post = {**call, "OriginID": "api-postpaid-1", "RequestType": "*postpaid", "Account": "1002",
            "Subject": "1002", "Destination": "1001"}
    ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "Tenant": "cgrates.org", "Event": post}))
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "Tenant": "cgrates.org",
                                                       "Event": {**post, "Usage": 85 * 10**9}})) == "OK"
    assert ok(http.call("SessionSv1.ProcessCDR", {"Tenant": "cgrates.org",
                                                  "Event": {**post, "Usage": 85 * 10**9}})) == "OK"

    # 6. CDR read-back (the SM spool hands CDRs to cdre a moment later)
    assert wait_count(http, {"OriginIDs": ["api-prepaid-1", "api-postpaid-1"]}, 4) == 4
    cdrs = ok(http.call("APIerSv2.GetCDRs", {"OriginIDs": ["api-prepaid-1", "api-postpaid-1"],
                                             "RunIDs": ["*default"], "OrderBy": "order_id"}))
    by_origin = {c["OriginID"]: c for c in cdrs}
    pre, postc = by_origin["api-prepaid-1"], by_origin["api-postpaid-1"]
    assert (pre["Cost"], pre["Usage"], pre["RequestType"], pre["Account"]) == (Decimal("0.6"), "2s", "*prepaid", "1001")
    assert (postc["Cost"], postc["Usage"], postc["RequestType"]) == (Decimal("0.6418"), "1m25s", "*postpaid")
    assert pre["AnswerTime"] == now and isinstance(pre["CostDetails"], str)
    assert monetary(tcp, "1002") == Decimal("9.3582")
    v1 = ok(tcp.call("APIerSv1.GetCDRs", {"Accounts": ["1001"], "MediationRunIds": ["*raw"]}))
    assert [c["OriginID"] for c in v1] == ["api-prepaid-1"] and v1[0]["Cost"] == -1  # *none: not rated
    assert err(tcp.call("APIerSv2.GetCDRs", {"Accounts": ["nobody"]})) == "NOT_FOUND"
    assert err(tcp.call("APIerSv2.GetCDRs", {"ToRs": ["*sms"]})).startswith("NOT_IMPLEMENTED")

    # 7. CDRs posted by a billing front-end; a repeat is refused; re-rating keeps the numbers
    ext = {"Tenant": "cgrates.org", "ID": "e1", "Flags": ["*rals"],
           "Event": {"OriginID": "api-rated-1", "OriginHost": "10.0.0.1", "RequestType": "*rated",
                     "Account": "1003", "Destination": "1001", "AnswerTime": T0, "Usage": "1s"}}
    assert ok(http.call("CDRsV1.ProcessEvent", ext)) == "OK"
    assert err(http.call("CDRsV1.ProcessEvent", ext)) == "EXISTS"
    rated = ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["api-rated-1"], "RunIDs": ["*default"]}))
    assert rated[0]["Cost"] == Decimal("0.3")  # 0.2 connect fee + one 60 s increment
    assert ok(tcp.call("CDRsV1.ProcessCDR", {"OriginID": "api-rated-2", "OriginHost": "10.0.0.1",
                                             "RequestType": "*rated", "Tenant": "cgrates.org", "Account": "1003",
                                             "Destination": "1001", "AnswerTime": T0, "Usage": 1_000_000_000,
                                             "SetupTime": "0001-01-01T00:00:00Z", "ExtraFields": {"Note": "x"}})) == "OK"
    r2 = ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["api-rated-2"], "RunIDs": ["*default"]}))
    assert r2[0]["Cost"] == Decimal("0.3") and r2[0]["ExtraFields"]["Note"] == "x"
    assert ok(http.call("CDRsV1.RateCDRs", {"OriginIDs": ["api-rated-1"], "RunIDs": ["*default"]})) == "OK"
    assert ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["api-rated-1"], "RunIDs": ["*default"]}))[0]["Cost"] \
        == Decimal("0.3")

    # 8. export
    rep = ok(http.call("APIerSv1.ExportCDRs", {"ExportPath": str(tmp_path), "ExportFormat": "*file_csv",
                                               "RunIDs": ["*default"], "Accounts": ["1001", "1002"],
                                               "Verbose": True}))
    assert rep["TotalRecords"] == 2
    assert rep["TotalCost"] == Decimal("1.2418")
    assert len(rep["ExportedCGRIDs"]) == 2 and rep["UnexportedCGRIDs"] == {}
    rows = list(csv.reader(Path(rep["ExportedPath"]).read_text().splitlines()))
    assert Path(rep["ExportedPath"]).parent == tmp_path
    costs = sorted(r[-1] for r in rows if r and r[-1] not in ("Cost",))
    assert costs[-2:] == ["0.6000", "0.6418"] or "0.6418" in costs

    tcp.close()


def test_force_disconnect(empty_suite):
    tcp = TcpClient(empty_suite.env["CGRPY_JSONRPC_LISTEN"])
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    call = {"Tenant": "cgrates.org", "OriginID": "api-fd-1", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "Account": "1003", "Destination": "1001", "SetupTime": now, "AnswerTime": now}
    ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "Tenant": "cgrates.org", "Event": call}))
    assert ok(tcp.call("SessionSv1.GetActiveSessionsCount", {"Filters": ["*string:~*req.OriginID:api-fd-1"]})) >= 1
    assert ok(tcp.call("SessionSv1.ForceDisconnect", {"Filters": ["*string:~*req.OriginID:api-fd-1"]})) == "OK"
    assert ok(tcp.call("SessionSv1.GetActiveSessionsCount", {"Filters": ["*string:~*req.OriginID:api-fd-1"]})) == 0
    assert err(tcp.call("SessionSv1.ForceDisconnect", {"Filters": ["*string:~*req.OriginID:api-fd-1"]})) == "NOT_FOUND"
    assert err(tcp.call("SessionSv1.GetActiveSessions", {"Filters": ["*prefix:~*req.OriginID:api"]})) \
        .startswith("NOT_IMPLEMENTED")
    tcp.close()
