"""Golden shape: a *prepaid session run's CDR keeps CGRateS v0.10's EventCost as its CostDetails
(its debits' EventCosts merged, trimmed to the usage kept when the unused part is refunded), in
a real suite on Postgres with the tutorial plan. The suite debits at Initiate and Update only
(debit_interval 0s), so two debits and a refund happen without waiting for the debit loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from cgrpy.event import loads_exact
from tests.apier.conftest import TUTORIAL, start_suite
from tests.apier.jsonrpc_client import TcpClient, ok
from tests.suite import Suite

pytestmark = pytest.mark.e2e

ORG = "cgrates.org"
S = 1_000_000_000


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    yield from start_suite(pg_databases, "--tariffplan", str(TUTORIAL), CGRPY_DEBIT_INTERVAL="0s")


@pytest.fixture
def tcp(suite):
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


def _cdr(tcp, origin_id: str) -> dict:
    deadline = time.monotonic() + 15
    while True:  # SM's spool hands the CDR to cdre a moment after ProcessCDR
        if ok(tcp.call("APIerSv1.CountCDRs", {"OriginIDs": [origin_id], "RunIDs": ["*default"]})) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [cdr] = ok(tcp.call("APIerSv2.GetCDRs", {"OriginIDs": [origin_id], "RunIDs": ["*default"]}))
    return cdr


def test_prepaid_cdr_cost_details_is_the_sessions_merged_event_cost(tcp):
    assert ok(tcp.call("APIerSv1.SetAccount", {"Tenant": ORG, "Account": "g_sc"})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {"Tenant": ORG, "Account": "g_sc", "BalanceType": "*monetary",
                                               "Value": 10, "Balance": {"ID": "main", "Weight": 10}})) == "OK"
    ev = {"OriginID": "g-sc-1", "OriginHost": "10.0.0.9", "ToR": "*voice", "RequestType": "*prepaid",
          "Tenant": ORG, "Category": "call", "Account": "g_sc", "Subject": "1001", "Destination": "1002",
          "SetupTime": "2014-08-04T13:00:00Z", "AnswerTime": "2014-08-04T13:00:00Z"}
    call = {"Tenant": ORG, "ID": "g-sc", "Event": ev}
    # debit 1: 70 s (connect fee 0.4, the first minute 0.2, 10 x 0.00167); debit 2: 30 s more
    init = ok(tcp.call("SessionSv1.InitiateSession", {"InitSession": True, "GetMaxUsage": True,
                                                      "CGREvent": {**call, "Event": {**ev, "Usage": 70 * S}}}))
    assert init["MaxUsage"] == 70 * S
    upd = ok(tcp.call("SessionSv1.UpdateSession", {"UpdateSession": True, "CGREvent": {
        **call, "Event": {**ev, "Usage": 30 * S}}}))
    assert upd["MaxUsage"] == 30 * S
    # the call lasted 85 s: the last 15 one-second increments are refunded, what is kept is
    # rounded *up to 4 decimals (0.64175 -> 0.6418)
    done = {**call, "Event": {**ev, "Usage": 85 * S}}
    assert ok(tcp.call("SessionSv1.TerminateSession", {"TerminateSession": True, "CGREvent": done})) == "OK"
    assert ok(tcp.call("SessionSv1.ProcessCDR", done)) == "OK"
    cdr = _cdr(tcp, "g-sc-1")
    assert (cdr["Cost"], cdr["Usage"], cdr["CostSource"]) == (Decimal("0.6418"), "1m25s", "*sessions")
    ec = loads_exact(cdr["CostDetails"])
    assert set(ec) == {"CGRID", "RunID", "StartTime", "Usage", "Cost", "Charges", "AccountSummary", "Rating",
                       "Accounting", "RatingFilters", "Rates", "Timings"}
    assert (ec["CGRID"], ec["RunID"], ec["StartTime"]) == (cdr["CGRID"], "*default", "2014-08-04T13:00:00Z")
    assert (ec["Cost"], ec["Usage"]) == (cdr["Cost"], 85 * S)
    # the two debits' intervals in call order, the second debit's cut to the 15 s kept, the
    # session's rounding a last zero-usage increment
    assert [[(i["Usage"], i["Cost"], i["CompressFactor"]) for i in ch["Increments"]] for ch in ec["Charges"]] == [
        [(0, Decimal("0.4"), 1), (60 * S, Decimal("0.2"), 1)],
        [(S, Decimal("0.00167"), 10)],
        [(S, Decimal("0.00167"), 15), (0, Decimal("0.00005"), 1)]]
    assert len({ch["RatingID"] for ch in ec["Charges"]}) == 1
    assert all(ch["CompressFactor"] == 1 for ch in ec["Charges"])
    [main] = ec["AccountSummary"]["BalanceSummaries"]
    assert (ec["AccountSummary"]["ID"], main["ID"]) == ("g_sc", "main")
    acc = ok(tcp.call("APIerSv2.GetAccount", {"Tenant": ORG, "Account": "g_sc"}))
    [bal] = acc["BalanceMap"]["*monetary"]
    assert bal["Value"] == Decimal(10) - cdr["Cost"]
    entries = [ec["Accounting"][i["AccountingID"]] for ch in ec["Charges"] for i in ch["Increments"]]
    assert {(a["AccountID"], a["BalanceUUID"]) for a in entries} == {(f"{ORG}:g_sc", main["UUID"])}
    assert entries[-1]["RatingID"] == "*rounding" and entries[-1]["Units"] == Decimal("0.00005")
    rating = ec["Rating"][ec["Charges"][0]["RatingID"]]
    assert ec["RatingFilters"][rating["RatingFiltersID"]]["RatingPlanID"] == "RP_1001"
    assert rating["RatesID"] in ec["Rates"] and rating["TimingID"] in ec["Timings"]
