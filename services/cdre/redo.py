"""``CDRsV1.ProcessEvent`` with ``*refund`` / ``*rerate`` for a run already stored (same CGRID
and RunID): v0.10 skips the duplicate guard for these flags.

* ``*refund``: give back what this service debited for the stored run (RALs ``Refund`` of its
  debit request id); the run loses its cost (Cost -1, no CostDetails) unless it is rated again.
* ``*rerate`` (= ``*refund`` + ``*rals``, row updated): after the refund, the run is rated anew
  *with the event's fields* (a corrected Usage, Destination, ...) — debited for
  *prepaid/*postpaid/*pseudoprepaid, GetCost for other types, nothing for ``*none`` — and the
  stored row takes the new fields and cost.

Each redo n of a row uses the keys ``<CGRID>:<RunID>:rerate<n>`` (debit) and ``...:refund``
(refund) and bumps the row's ``rerate_count`` only when written, so a failure half-way (RALs
unreachable) changes no row and the same request again refunds and debits once.

Refused (``ProcessError``): an accounted run whose money the session moved (``CostSource
*sessions`` without a debit of this service): SM's debits are not known here.
"""

from __future__ import annotations

import asyncio

from services.cdre.backends import BackendError, CallDescriptor, CdrBackends, MissingRatingTime
from services.cdre.cdr import (
    ACCOUNTED,
    CDR,
    COST_SOURCE_CDRS,
    COST_SOURCE_SESSIONS,
    NONE,
    NOT_RATED,
)
from services.cdre.store import CdrStore, RunOutcome, StoredCdr


class RedoError(Exception):
    """The stored run cannot be refunded/re-rated here (message says why)."""


class RedoUnavailable(Exception):
    """RALs could not be reached: nothing was written; the same request may be sent again."""


def redo_key(cdr: CDR, n: int) -> str:
    return f"{cdr.cgrid}:{cdr.run_id}:rerate{n}"


async def redo_run(stored: StoredCdr, cdr: CDR, *, rate: bool, backends: CdrBackends, store: CdrStore) -> CDR:
    """Refund ``stored`` and (``rate``) rate ``cdr`` in its place; returns the run as stored."""
    old = stored.cdr
    if old.request_type in ACCOUNTED and not stored.debit_request_id \
            and old.cost_source == COST_SOURCE_SESSIONS and old.cost != NOT_RATED:
        raise RedoError(f"cannot refund CDR {old.cgrid}:{old.run_id}: its cost was charged by the session")
    n = stored.rerate_count + 1
    key = redo_key(cdr, n)
    try:
        if stored.debit_request_id:
            await backends.rals_refund(stored.debit_request_id, f"{key}:refund")
        outcome = await _rate(cdr, key, backends) if rate else RunOutcome(
            NOT_RATED, COST_SOURCE_CDRS, None, "refunded", "")
    except BackendError as exc:
        if exc.transient:
            raise RedoUnavailable(f"RALS_ERROR:{exc}") from exc
        outcome = RunOutcome(NOT_RATED, COST_SOURCE_CDRS, None, str(exc), "")
    new = cdr.copy(order_id=old.order_id, cost=outcome.cost, cost_source=outcome.cost_source,
                   cost_details=outcome.cost_details, extra_info=outcome.extra_info)
    await asyncio.to_thread(store.rewrite, old.order_id, new, outcome, rerate_count=n)
    return new


async def _rate(cdr: CDR, key: str, backends: CdrBackends) -> RunOutcome:
    if cdr.request_type == NONE or cdr.pre_rated:
        return RunOutcome(cdr.cost if cdr.pre_rated else NOT_RATED, COST_SOURCE_CDRS, None, "", "")
    try:
        cd = CallDescriptor.from_cdr(cdr)
    except MissingRatingTime as exc:
        return RunOutcome(NOT_RATED, COST_SOURCE_CDRS, None, str(exc), "")
    if cdr.request_type in ACCOUNTED:
        res = await backends.rals_debit(cd, key, cdr.request_type)
        return RunOutcome(res.cost, COST_SOURCE_CDRS, res.cost_details, "", key)
    res = await backends.rals_get_cost(cd)
    return RunOutcome(res.cost, COST_SOURCE_CDRS, res.cost_details, "", "")
