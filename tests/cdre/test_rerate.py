"""RateCDRs after a tariff change: dry run changes nothing, real run moves balances by the
difference, a repeated/crashed rerate never double-charges."""

from __future__ import annotations

import copy
from decimal import Decimal

from services.cdre.pipeline import PipelineConfig, ProcessFlags, process_cdr
from services.cdre.rerate import rerate_cdrs
from services.cdre.store import CdrFilter, CdrStore
from tests.cdre.fakes import RATES, FakeBackends
from tests.cdre.test_pipeline import _event

NO_WAIT = PipelineConfig(session_cost_retries=0)


async def _seed(store: CdrStore) -> FakeBackends:
    be = FakeBackends(with_raw_run=False)
    await process_cdr(_event("*postpaid", origin="p"), ProcessFlags(), be, store, NO_WAIT)
    await process_cdr(_event("*rated", usage="1s", origin="r", Account="1003",
                             Destination="1001"), ProcessFlags(), be, store, NO_WAIT)
    await process_cdr(_event("*none", origin="n"), ProcessFlags(), be, store, NO_WAIT)
    assert [c.cost for c in store.get_cdrs()] == [Decimal("0.6418"), Decimal("0.3"), Decimal(-1)]
    assert be.balances["1001"] == Decimal("9.3582")
    # Tariff change: RT_20CNT connect fee 0.4 -> 0.5.
    rates = copy.deepcopy(RATES)
    first = rates["RT_20CNT"][0]
    rates["RT_20CNT"][0] = (Decimal("0.5"),) + first[1:]
    be.rates = rates
    return be


async def test_dry_run_reports_difference_and_changes_nothing(store: CdrStore):
    be = await _seed(store)
    before = store.get_stored()
    report = await rerate_cdrs(store, be, CdrFilter(), dry_run=True)
    assert [(i.old_cost, i.new_cost) for i in report.items] == [
        (Decimal("0.6418"), Decimal("0.74175")),  # GetCost: EventCost, no DR rounding
        (Decimal("0.3"), Decimal("0.3")),
    ]
    assert report.total_difference == Decimal("0.09995") and report.rerated == 2
    assert store.get_stored() == before
    assert be.balances["1001"] == Decimal("9.3582") and be.debit_calls == 1


async def test_real_rerate_moves_the_balance_by_the_difference(store: CdrStore):
    be = await _seed(store)
    report = await rerate_cdrs(store, be, CdrFilter())
    assert report.total_difference == Decimal("0.1")
    assert [c.cost for c in store.get_cdrs()] == [Decimal("0.7418"), Decimal("0.3"), Decimal(-1)]
    assert be.balances["1001"] == Decimal("9.2582")
    p = store.get_stored(CdrFilter(origin_ids=["p"]))[0]
    assert p.rerate_count == 1 and p.debit_request_id.endswith(":rerate1")
    # A second rerate at the same tariff moves nothing.
    again = await rerate_cdrs(store, be, CdrFilter(accounts=["1001"]))
    assert again.total_difference == Decimal(0) and be.balances["1001"] == Decimal("9.2582")
    assert store.get_stored(CdrFilter(origin_ids=["p"]))[0].rerate_count == 2


async def test_rerate_filter_selects_only_matching_cdrs(store: CdrStore):
    be = await _seed(store)
    report = await rerate_cdrs(store, be, CdrFilter(request_types=["*rated"]))
    assert len(report.items) == 1 and report.items[0].difference == 0
    assert be.balances["1001"] == Decimal("9.3582")
