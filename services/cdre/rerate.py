"""RateCDRs: price stored CDRs again after a tariff change (the ``*rerate`` flag, docs/rating.md).

For every selected, already final CDR (``*none`` and PreRated ones are left alone):

* accounted request types (*prepaid/*postpaid/*pseudoprepaid) that this service debited: refund
  the previous debit (by its request id) and debit again at today's tariff, so the account moves
  by exactly the difference; *rated and other types: GetCost, no money moves.
* ``dry_run``: only GetCost, nothing refunded, debited or written; the report gives old, new and
  the difference per CDR. GetCost is the tariff price without the DestinationRate rounding a
  debit applies and without unit balances, so a dry run can differ from the real run by
  that rounding (< 10^-RoundingDecimals per CDR) and for calls paid from free units.

Each re-rating n of a row uses the idempotency keys ``<CGRID>:<RunID>:rerate<n>`` (debit) and
``...:rerate<n>:refund`` (refund) and bumps ``rerate_count`` only when done, so a crash half-way
is repaired by running the same rerate again, with no double refund or charge.

Not done (reported per CDR instead): *prepaid CDRs whose cost came from the session
(``CostSource *sessions``): their money was debited by SM in pieces under SM's request ids,
which this service does not know; refunding them needs a refund-by-EventCost RPC on RALs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from services.cdre.backends import BackendError, CallDescriptor, CdrBackends, MissingRatingTime
from services.cdre.cdr import (
    ACCOUNTED,
    CDR,
    COST_SOURCE_CDRS,
    COST_SOURCE_SESSIONS,
    NONE,
    NOT_RATED,
)
from services.cdre.pipeline import debit_request_id
from services.cdre.store import RATED_STATE, CdrFilter, CdrStore, StoredCdr


@dataclass
class RerateItem:
    cdr: CDR  # as it is after the rerate (unchanged in a dry run, except ``cost`` shown as new)
    old_cost: Decimal
    new_cost: Decimal
    error: str = ""

    @property
    def difference(self) -> Decimal:
        """Money difference (new − old); an unrated side counts as 0."""
        return _money(self.new_cost) - _money(self.old_cost)


@dataclass
class RerateReport:
    dry_run: bool
    items: list[RerateItem] = field(default_factory=list)

    @property
    def rerated(self) -> int:
        return sum(1 for i in self.items if not i.error)

    @property
    def total_difference(self) -> Decimal:
        return sum((i.difference for i in self.items if not i.error), Decimal(0))


def _money(cost: Decimal) -> Decimal:
    return Decimal(0) if cost == NOT_RATED else cost


async def rerate_cdrs(
    store: CdrStore, backends: CdrBackends, flt: CdrFilter, *, dry_run: bool = False
) -> RerateReport:
    """Re-rate the CDRs selected by ``flt``; see the module doc."""
    sel = CdrFilter(**{**flt.__dict__, "rating_state": RATED_STATE})
    stored = await asyncio.to_thread(store.get_stored, sel)
    report = RerateReport(dry_run=dry_run)
    for st in stored:
        cdr = st.cdr
        if cdr.request_type == NONE or cdr.pre_rated:
            continue
        report.items.append(await _rerate_one(st, store, backends, dry_run))
    return report


async def _rerate_one(
    st: StoredCdr, store: CdrStore, backends: CdrBackends, dry_run: bool
) -> RerateItem:
    cdr = st.cdr
    old = cdr.cost
    accounted = cdr.request_type in ACCOUNTED
    if accounted and not st.debit_request_id and cdr.cost_source == COST_SOURCE_SESSIONS:
        return RerateItem(cdr, old, old, "cannot rerate a *prepaid CDR charged by the session")
    try:
        cd = CallDescriptor.from_cdr(cdr)
        if dry_run or not accounted:
            res = await backends.rals_get_cost(cd)
            new_cost, details, rid = res.cost, res.cost_details, ""
        else:
            n = st.rerate_count + 1
            rid = debit_request_id(cdr, n)
            if st.debit_request_id:
                await backends.rals_refund(st.debit_request_id, f"{rid}:refund")
            res = await backends.rals_debit(cd, rid, cdr.request_type)
            new_cost, details = res.cost, res.cost_details
    except (BackendError, MissingRatingTime) as exc:
        if dry_run:
            return RerateItem(cdr, old, old, str(exc))
        new_cost, details, rid, info = NOT_RATED, None, "", str(exc)
    else:
        info = ""
    if not dry_run:
        await asyncio.to_thread(
            store.finish,
            cdr.order_id,
            cost=new_cost,
            cost_source=COST_SOURCE_CDRS,
            cost_details=details,
            extra_info=info,
            debit_request_id=rid if accounted else st.debit_request_id,
            rerate_count=st.rerate_count + 1,
        )
        cdr = cdr.copy(cost=new_cost, cost_details=details, extra_info=info,
                       cost_source=COST_SOURCE_CDRS)
    return RerateItem(cdr, old, new_cost, info)
