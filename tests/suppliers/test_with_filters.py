"""The three engines with the real FilterS (not the test stand-in) on the tutorial plan."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cgrpy.event import CGREvent
from cgrpy.filters.filters import FilterS
from cgrpy.tariffplan.csvread import read_folder
from services.stats.engine import StatEngine
from services.suppliers.engine import SupplierEngine
from services.thresholds.engine import ThresholdEngine
from tests.conftest import TARIFFPLANS
from tests.stats.test_engine import FILTERS, STATS1, STATS1_PDD, e1, e2, e3

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TUTORIAL = read_folder(TARIFFPLANS / "tutorial")


def test_stats1_example_with_real_filters() -> None:
    fs = FilterS.from_rows(FILTERS)
    eng = StatEngine.from_rows({"Stats": [dict(STATS1), STATS1_PDD]}, fs.passes)
    for e in (e1(), e2(), e3()):
        assert eng.process_event(e, now=T0).queue_ids == ["Stats1"]
    m = eng.get_string_metrics("cgrates.org", "Stats1", now=T0)
    assert (m["*asr"], m["*acc"], m["*pdd"], m["*tcd"]) == ("66.66667%", "45.03333", "N/A", "3m0s")


def test_tutorial_engines_with_real_filters() -> None:
    fs = FilterS.from_rows(TUTORIAL["Filters"])
    stats = StatEngine.from_rows(TUTORIAL, fs.passes)
    r = stats.process_event(CGREvent("cgrates.org", "c1", None, {
        "Account": "1001", "Destination": "1002", "RunID": "*default", "Usage": "60s",
        "Cost": Decimal("0.6")}), now=T0)
    assert r.queue_ids == ["Stats2"]

    calls: list[tuple[str, str | None, list[str]]] = []
    th = ThresholdEngine.from_rows(TUTORIAL, fs.passes, lambda t, a, ids: calls.append((t, a, ids)),
                                   spawn=lambda fn: fn())
    assert th.process_event(CGREvent("cgrates.org", "t1", None, {"Account": "1001"}),
                            now=T0).fired == ["THD_ACNT_1001"]
    assert calls == [("cgrates.org", "1001", ["ACT_LOG_WARNING"])]

    spl = SupplierEngine.from_rows(
        TUTORIAL, fs.passes, lambda s, e: Decimal("0.3") if s.id == "supplier1" else Decimal("0.6"),
        lambda tenant, ids: stats.get_float_metrics(tenant, ids[0], now=T0))
    assert spl.get_suppliers(CGREvent("cgrates.org", "s1", None, {"Account": "1001"}),
                             now=T0).digest() == "supplier2,supplier1"
    assert spl.get_suppliers(CGREvent("cgrates.org", "s2", None, {"Account": "1003"}),
                             now=T0).digest() == "supplier1,supplier2"


def test_supplier_vars_filter_with_real_filters() -> None:
    rows = {"Suppliers": [dict(r) for r in TUTORIAL["Suppliers"]]}
    rows["Suppliers"][2]["SupplierFilterIDs"] = "*gte:~*vars.Cost:0.5"
    fs = FilterS.from_rows(TUTORIAL["Filters"])
    spl = SupplierEngine.from_rows(
        rows, fs.passes, lambda s, e: Decimal("0.3") if s.id == "supplier1" else Decimal("0.6"),
        lambda tenant, ids: {})
    r = spl.get_suppliers(CGREvent("cgrates.org", "s1", None, {
        "Account": "1002", "Destination": "1001", "SetupTime": "2024-05-01T11:59:00Z"}), now=T0)
    assert [s.supplier_id for s in r.sorted_suppliers] == ["supplier2"]


def test_candidate_ids_from_filters_profile_index() -> None:
    """With FilterS's index as candidate lookup the v0.10 index semantics apply: a queue whose
    filters have no *string/*prefix rule is never a candidate."""
    from cgrpy.filters.selection import ProfileEntry, ProfileIndex

    rows = {"Stats": [dict(r) for r in TUTORIAL["Stats"]] + [
        dict(TUTORIAL["Stats"][0], Id="ExistsOnly", FilterIDs="*exists:~*req.Account:",
             Blocker="false", Weight="5")]}
    fs = FilterS.from_rows(TUTORIAL["Filters"])
    plain = StatEngine.from_rows(rows, fs.passes)
    ev = CGREvent("cgrates.org", "c1", None, {
        "Account": "1001", "Destination": "1002", "RunID": "*default", "Usage": "1s", "Cost": 1})
    assert plain.queues_for_event(ev, now=T0) == ["Stats2"]  # Stats2 blocks before ExistsOnly
    rows["Stats"][0]["Blocker"] = "false"
    plain = StatEngine.from_rows(rows, fs.passes)
    assert plain.queues_for_event(ev, now=T0) == ["Stats2", "ExistsOnly"]
    index = ProfileIndex(fs, [
        ProfileEntry(q.tenant, q.id, tuple(q.profile.filter_ids), None, q.profile.weight, q.id)
        for q in plain.queues.values()])
    indexed = StatEngine.from_rows(rows, fs.passes, candidate_ids=index.candidate_ids)
    assert indexed.queues_for_event(ev, now=T0) == ["Stats2"]
