"""SupplierEngine on the tutorial examples plus every strategy and request option."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.errors import NotFoundError, ServerError
from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from services.stats.engine import StatEngine
from services.suppliers.digest import suppliers_digest
from services.suppliers.engine import Supplier, SupplierEngine, sorted_suppliers_to_dict
from tests.conftest import TARIFFPLANS
from tests.stats.fake_filters import FakeFilters

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SETUP = "2024-05-01T11:59:00Z"
COLS = ("Tenant", "ID", "FilterIDs", "ActivationInterval", "Sorting", "SortingParameters",
        "SupplierID", "SupplierFilterIDs", "SupplierAccountIDs", "SupplierRatingPlanIDs",
        "SupplierResourceIDs", "SupplierStatIDs", "SupplierWeight", "SupplierBlocker",
        "SupplierParameters", "Weight")
TUTORIAL = read_folder(TARIFFPLANS / "tutorial")

# Tutorial rates per rating plan to destination 1001: (connect fee, price per minute).
PLAN_RATES = {"RP_1002_LOW": (Decimal("0.2"), Decimal("0.1")),
              "RP_1002": (Decimal("0.4"), Decimal("0.2"))}


class Costs:
    """Stand-in for RALs GetCostOnRatingPlans: first plan that has a rate wins."""

    def __init__(self, fail_for: set[str] | None = None) -> None:
        self.fail_for = fail_for or set()
        self.seen_usage: list[object] = []

    def __call__(self, supplier: Supplier, event: CGREvent) -> tuple[Decimal, str]:
        self.seen_usage.append(event.event["Usage"])
        if supplier.id in self.fail_for:
            raise RuntimeError("RALS_ERROR:NOT_FOUND")
        minutes = Decimal(event.event["Usage"]) / Decimal(60_000_000_000)
        for plan in supplier.rating_plan_ids:
            if plan in PLAN_RATES:
                fee, per_min = PLAN_RATES[plan]
                return fee + per_min * minutes, plan
        raise RuntimeError("NOT_FOUND")


def no_metrics(tenant: str, stat_ids: list[str]) -> dict[str, Decimal]:
    raise AssertionError("metrics not expected")


def engine(rows: dict | None = None, cost_of=None, metrics_of=no_metrics, **kw) -> SupplierEngine:  # noqa: ANN001
    rows = rows or TUTORIAL
    return SupplierEngine.from_rows(
        rows, FakeFilters(TUTORIAL["Filters"]).passes, cost_of or Costs(), metrics_of, **kw)


def ev(**fields: object) -> CGREvent:
    return CGREvent("cgrates.org", "spl1", None, dict(fields))


def order(result) -> list[str]:  # noqa: ANN001
    return [s.supplier_id for s in result.sorted_suppliers]


def row(*cells: str) -> dict[str, str]:
    return dict(zip(COLS, cells, strict=True))


def test_spl_acnt_1001_weight_and_digest() -> None:
    r = engine().get_suppliers(ev(Account="1001"), now=T0)
    assert (r.profile_id, r.sorting, r.count) == ("SPL_ACNT_1001", "*weight", 2)
    assert [(s.supplier_id, s.sorting_data) for s in r.sorted_suppliers] == [
        ("supplier2", {"Weight": Decimal(20)}), ("supplier1", {"Weight": Decimal(10)})]
    assert r.digest() == "supplier2,supplier1"
    assert sorted_suppliers_to_dict(r)["Count"] == 2


def test_spl_acnt_1002_least_cost_with_default_usage() -> None:
    costs = Costs()
    r = engine(cost_of=costs).get_suppliers(
        ev(Account="1002", Destination="1001", SetupTime=SETUP), now=T0)
    assert order(r) == ["supplier1", "supplier2"]
    assert [s.sorting_data for s in r.sorted_suppliers] == [
        {"Weight": Decimal(10), "Cost": Decimal("0.3"), "RatingPlanID": "RP_1002_LOW"},
        {"Weight": Decimal(20), "Cost": Decimal("0.6"), "RatingPlanID": "RP_1002"},
    ]
    assert costs.seen_usage == [60_000_000_000, 60_000_000_000]  # Usage defaulted to 1m


def test_highest_cost_and_equal_costs_fall_back_to_weight() -> None:
    rows = {"Suppliers": [dict(r, Sorting=r["Sorting"] and "*hc") for r in TUTORIAL["Suppliers"]]}
    r = engine(rows).get_suppliers(ev(Account="1002", Destination="1001", SetupTime=SETUP), now=T0)
    assert order(r) == ["supplier2", "supplier1"]
    r = engine(rows, cost_of=lambda s, e: Decimal("0.5")).get_suppliers(
        ev(Account="1002", Destination="1001", SetupTime=SETUP), now=T0)
    assert order(r) == ["supplier2", "supplier1"]  # same cost -> weight 20 first


def test_max_cost_limit_offset() -> None:
    e = ev(Account="1002", Destination="1001", SetupTime=SETUP)
    eng = engine()
    assert order(eng.get_suppliers(e, max_cost="0.5", now=T0)) == ["supplier1"]
    assert order(eng.get_suppliers(e, max_cost="0", now=T0)) == ["supplier1", "supplier2"]
    assert order(eng.get_suppliers(e, max_cost=Decimal("0.6"), now=T0)) == [
        "supplier1", "supplier2"]
    assert order(eng.get_suppliers(e, limit=1, now=T0)) == ["supplier1"]
    assert order(eng.get_suppliers(e, offset=1, now=T0)) == ["supplier2"]
    assert order(eng.get_suppliers(e, offset=1, limit=5, now=T0)) == ["supplier2"]
    assert order(eng.get_suppliers(e, offset=3, now=T0)) == ["supplier1", "supplier2"]  # v0.10
    r = eng.get_suppliers(e, offset=2, now=T0)
    assert (r.count, r.digest()) == (0, "")
    with pytest.raises(ServerError, match="SERVER_ERROR: MaxCost"):
        eng.get_suppliers(e, max_cost="cheap", now=T0)
    with pytest.raises(NotFoundError):  # *lc with every supplier over MaxCost
        eng.get_suppliers(e, max_cost="0.1", now=T0)


def test_max_cost_event_cost() -> None:
    e = ev(Account="1002", Destination="1001", SetupTime=SETUP)
    eng = engine(event_cost_of=lambda event: Decimal("0.45"))
    assert order(eng.get_suppliers(e, max_cost="*event_cost", now=T0)) == ["supplier1"]


def test_errors_and_ignore_errors() -> None:
    e = ev(Account="1002", Destination="1001", SetupTime=SETUP)
    eng = engine(cost_of=Costs(fail_for={"supplier1"}))
    with pytest.raises(ServerError, match="SERVER_ERROR: RALS_ERROR:NOT_FOUND"):
        eng.get_suppliers(e, now=T0)
    assert order(eng.get_suppliers(e, ignore_errors=True, now=T0)) == ["supplier2"]
    with pytest.raises(ServerError, match=r"SERVER_ERROR: MANDATORY_IE_MISSING: \[SetupTime\]"):
        engine().get_suppliers(ev(Account="1002", Destination="1001"), now=T0)
    with pytest.raises(NotFoundError):
        engine().get_suppliers(ev(Account="9999"), now=T0)


def test_cost_strategy_requires_rating_plans() -> None:
    rows = {"Suppliers": [
        row("cgrates.org", "SPL", "", "", "*lc", "", "s1", "", "", "RP_1002", "", "", "10", "", "",
            "10"),
        row("cgrates.org", "SPL", "", "", "", "", "s2", "", "", "", "", "", "20", "", "", ""),
    ]}
    with pytest.raises(ServerError, match=r"MANDATORY_IE_MISSING: \[RatingPlanIDs\]"):
        engine(rows).get_suppliers(ev(Account="1", Destination="1001", SetupTime=SETUP), now=T0)


def test_supplier_filters_see_sorting_data_as_vars() -> None:
    rows = {"Suppliers": [dict(r) for r in TUTORIAL["Suppliers"]]}
    rows["Suppliers"][3]["SupplierFilterIDs"] = "*gte:~*vars.Cost:0.5"  # SPL_ACNT_1002 supplier2
    rows["Suppliers"][2]["SupplierFilterIDs"] = "*gte:~*vars.Cost:0.5"  # supplier1 (0.3) dropped
    r = engine(rows).get_suppliers(ev(Account="1002", Destination="1001", SetupTime=SETUP), now=T0)
    assert order(r) == ["supplier2"]


def test_spl_acnt_1003_qos_from_real_stat_queues() -> None:
    stats = StatEngine.from_rows(TUTORIAL, FakeFilters(TUTORIAL["Filters"]).passes)

    def metrics_of(tenant: str, stat_ids: list[str]) -> dict[str, Decimal]:
        [sid] = stat_ids
        return stats.get_float_metrics(tenant, sid, now=T0)

    eng = engine(metrics_of=metrics_of)
    # No events yet: both queues report -1 for *tcc and *tcd -> weight decides.
    r = eng.get_suppliers(ev(Account="1003"), now=T0)
    assert order(r) == ["supplier2", "supplier1"]
    assert r.sorted_suppliers[0].sorting_data == {
        "Weight": Decimal(20), "*tcc": Decimal(-1), "*tcd": Decimal(-1)}
    # Stats2 (supplier1) gets two CDRs: total cost 1, total duration 90s -> supplier1 first.
    for i, (usage, cost) in enumerate([("60s", "0.6"), ("30s", "0.4")]):
        stats.process_event(CGREvent("cgrates.org", f"cdr{i}", None, {
            "Account": "1001", "Destination": "1002", "RunID": "*default", "Usage": usage,
            "Cost": Decimal(cost)}), now=T0)
    r = eng.get_suppliers(ev(Account="1003"), now=T0)
    assert order(r) == ["supplier1", "supplier2"]
    assert r.sorted_suppliers[0].sorting_data == {
        "Weight": Decimal(10), "*tcc": Decimal(1), "*tcd": Decimal(90)}


def qos_rows(params: str, stat1: str, stat2: str) -> dict:
    return {"Suppliers": [
        row("cgrates.org", "Q", "", "", "*qos", params, "s1", "", "", "", "", stat1, "10", "", "p1",
            "10"),
        row("cgrates.org", "Q", "", "", "", "", "s2", "", "", "", "", stat2, "20", "", "p2", ""),
    ]}


def test_qos_pdd_lower_wins_metric_mean_and_missing_defaults() -> None:
    queues = {"A": {"*pdd": Decimal(3), "*acd": Decimal(50)},
              "B": {"*pdd": Decimal(5), "*acd": Decimal(70)},
              "C": {"*pdd": Decimal(1), "*acd": Decimal(10)}}

    def metrics_of(tenant: str, ids: list[str]) -> dict[str, Decimal]:
        if ids[0] not in queues:
            raise NotFoundError()
        return queues[ids[0]]

    r = engine(qos_rows("*pdd;*acd", "A;B", "C"), metrics_of=metrics_of).get_suppliers(
        ev(Account="x"), now=T0)
    assert order(r) == ["s2", "s1"]  # pdd 1 < mean(3,5)=4
    assert r.sorted_suppliers[1].sorting_data["*acd"] == Decimal(60)
    assert r.digest() == "s2:p2,s1:p1"
    r = engine(qos_rows("*acd;*pdd", "A;B", "C"), metrics_of=metrics_of).get_suppliers(
        ev(Account="x"), now=T0)
    assert order(r) == ["s1", "s2"]  # acd 60 > 10
    # s2 has no StatIDs, s1's queue is unknown (logged): both get defaults, no crash
    r = engine(qos_rows("*acd;*pdd", "Z", ""), metrics_of=metrics_of).get_suppliers(
        ev(Account="x"), now=T0)
    assert order(r) == ["s2", "s1"]
    assert r.sorted_suppliers[0].sorting_data == {
        "Weight": Decimal(20), "*acd": Decimal(-1), "*pdd": Decimal(10_000_000)}


def test_load_distribution_without_crash() -> None:
    rows = {"Suppliers": [
        row("cgrates.org", "L", "", "", "*load", "s1:2;*default:1", "s1", "", "", "", "",
            "Q1", "10", "", "", "10"),
        row("cgrates.org", "L", "", "", "", "", "s2", "", "", "", "", "Q2:*sum:~*req.Calls",
            "20", "", "", ""),
    ]}
    queues = {"Q1": {"*asr": Decimal(4), "*acd": Decimal(2)},
              "Q2": {"*sum:~*req.Calls": Decimal(4), "*acd": Decimal(100)}}
    eng = engine(rows, metrics_of=lambda t, ids: queues[ids[0]])
    r = eng.get_suppliers(ev(Account="x"), now=T0)
    # s1: load 6 / ratio 2 = 3; s2: load 4 (only the named metric) / default ratio 1 = 4
    assert order(r) == ["s1", "s2"]
    assert r.sorted_suppliers[0].sorting_data == {
        "Weight": Decimal(10), "Load": Decimal(6), "Ratio": Decimal(2)}
    queues["Q2"] = {"*acd": Decimal(1)}
    with pytest.raises(ServerError, match="NOT_FOUND metric \\*sum:~\\*req.Calls for statID: Q2"):
        eng.get_suppliers(ev(Account="x"), now=T0)
    assert order(eng.get_suppliers(ev(Account="x"), ignore_errors=True, now=T0)) == ["s1"]


def test_unknown_sorting_loads_and_fails_when_asked() -> None:
    # v0.10 stores a profile with any Sorting; GetSuppliers then answers
    # SERVER_ERROR: unsupported sorting strategy: <name> (before any cost is asked)
    bad = {"Suppliers": [row("cgrates.org", "B", "", "", "*least_cost", "", "s1", "", "", "", "",
                             "", "10", "", "", "")]}
    eng = engine(bad)
    with pytest.raises(ServerError, match="unsupported sorting strategy: \\*least_cost"):
        eng.get_suppliers(ev(Account="x"), now=T0)


def test_digest_examples() -> None:
    assert suppliers_digest([("supplier2", "param2"), ("supplier1", "param1")]) == (
        "supplier2:param2,supplier1:param1")
    assert suppliers_digest([("supplier2", ""), ("supplier1", "")]) == "supplier2,supplier1"
    assert suppliers_digest([]) == ""
