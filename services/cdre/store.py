"""CDR repository over the StorDB (Postgres or SQLite, same code): idempotent insert, queries,
session costs, the export log.

How a CDR is charged exactly once (the pipeline drives this; the store gives the primitives):

1. :meth:`CdrStore.reserve` inserts the run's row in state ``pending`` with
   ``INSERT ... ON CONFLICT (cgrid, run_id) DO NOTHING`` in its own committed transaction. Only the
   caller whose insert created the row goes on to charge; every other post of the same
   (CGRID, RunID) - concurrent or later - gets ``duplicate=True`` and charges nothing.
2. The charge is a RALs ``Debit`` whose idempotency key is ``<CGRID>:<RunID>`` (the proto's
   ``request_id``): RALs applies a given key at most once.
3. :meth:`CdrStore.finish` writes the cost and state ``rated``.

A crash between 1 and 3 leaves a ``pending`` row. Retrying the debit with the same key cannot
charge twice, so :func:`services.cdre.pipeline.resume_pending` simply redoes 2-3 for rows that
stayed pending too long. The alternative - rate first, insert after, refund on a duplicate -
has a window where a crash leaves money taken and no CDR, and a refund that may itself fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.storage.models.cdrs import (
    CdrExportedRow,
    CdrExportRow,
    CdrOutboxRow,
    CdrRow,
    SessionCostRow,
)
from cgrpy.storage.outbox import claim_statement
from cgrpy.storage.pgconn import CoreConn
from cgrpy.units import from_unix_nano, to_unix_nano
from services.cdre.cdr import CDR, cost_details_json, set_cost_details, to_event
from services.cdre.writer import GroupCommitter, Tx

PENDING = "pending"
RATED_STATE = "rated"

# Public sort keys → columns (CGRateS OrderID is our id).
ORDER_COLUMNS = {
    "order_id": CdrRow.id,
    "setup_time": CdrRow.setup_time,
    "answer_time": CdrRow.answer_time,
    "usage": CdrRow.usage_ns,
    "cost": CdrRow.cost,
    "account": CdrRow.account,
    "destination": CdrRow.destination,
    "created_at": CdrRow.created_at,
}


class StoreError(ValueError):
    """Bad query input (unknown order key, inverted range...): nothing was read or written."""


@dataclass
class CdrFilter:
    """What ``GetCDRs`` / ``CountCDRs`` / ``RateCDRs`` / ``ExportCDRs`` select.

    Time ranges are [start, end) like CGRateS; ``min_cost`` is inclusive, ``max_cost`` exclusive
    (CGRateS ``cost >= MinCost AND cost < MaxCost``). ``destination_prefixes`` match by prefix.
    Empty sequences mean "any".
    """

    cgrids: Sequence[str] = ()
    run_ids: Sequence[str] = ()
    origin_ids: Sequence[str] = ()
    request_types: Sequence[str] = ()
    tenants: Sequence[str] = ()
    accounts: Sequence[str] = ()
    subjects: Sequence[str] = ()
    destination_prefixes: Sequence[str] = ()
    setup_time_start: datetime | None = None
    setup_time_end: datetime | None = None
    answer_time_start: datetime | None = None
    answer_time_end: datetime | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    order_by: str = "order_id"
    limit: int | None = None
    offset: int = 0
    # Only CDRs not yet exported with this CDRe profile.
    not_exported_by: str | None = None
    # Only rows in this rating state (None = any).
    rating_state: str | None = None


@dataclass
class StoredCdr:
    """A CDR with the bookkeeping the pipeline needs."""

    cdr: CDR
    rating_state: str
    debit_request_id: str
    rerate_count: int
    updated_at: datetime


@dataclass
class SessionCost:
    cgrid: str
    run_id: str
    cost: Decimal
    usage_ns: int = 0
    origin_host: str = ""
    origin_id: str = ""
    cost_source: str = "*sessions"
    cost_details: dict[str, Any] | None = None


@dataclass
class ExportRecord:
    export_id: str
    profile: str
    path: str
    order_ids: Sequence[int] = field(default_factory=list)
    total_cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    target: str
    event: CGREvent
    attempts: int


@dataclass(frozen=True)
class OutboxBatch:
    """A StatS/ThresholdS outbox row: the events of one group-committed transaction and the
    receivers still owed them (a row left by an earlier cdre holds one event, one receiver)."""

    id: int
    targets: tuple[str, ...]
    events: list[CGREvent]
    attempts: int


def _outbox_event(body: str) -> CGREvent:
    return _event_of(loads_exact(body))


def _event_of(d: dict[str, Any]) -> CGREvent:
    return CGREvent(d["Tenant"], d["ID"], from_unix_nano(d["Time"]), d["Event"])


def _outbox_batch(r: Any) -> OutboxBatch:
    if r.target.startswith(BATCH_PREFIX):
        targets = tuple(r.target[len(BATCH_PREFIX):].split(","))
        return OutboxBatch(r.id, targets, [_event_of(d) for d in loads_exact(r.event)], r.attempts)
    # one event for one receiver, as cdre wrote them before the batch rows
    return OutboxBatch(r.id, (r.target,), [_outbox_event(r.event)], r.attempts)


def batch_target(targets: Sequence[str]) -> str:
    """The ``target`` of a batch row owed to ``targets``."""
    return BATCH_PREFIX + ",".join(targets)


@dataclass
class RunOutcome:
    """What rating decided for a run: written by :meth:`CdrStore.finish_in` and
    :meth:`CdrStore.insert_final_in`."""

    cost: Decimal
    cost_source: str
    cost_details: dict[str, Any] | None
    extra_info: str = ""
    debit_request_id: str = ""


@dataclass(frozen=True)
class ExportOutcome:
    """An export row not delivered this round: when to try again, and whether it is failed."""

    id: int
    retry_at_ns: int
    failed: bool
    error: str


@dataclass(frozen=True)
class FailedExport:
    id: int
    exporter: str
    event: CGREvent
    attempts: int
    last_error: str
    retry_at_ns: int  # unix ns of the next automatic retry (0 = due now)


# The receivers of a stored CDR's event, in the order they are fed (ThresholdS first, as
# CGRateS's CDRs do).
OUTBOX_TARGETS = ("thresholds", "stats")
# Outbox target of an online CDR exporter: this prefix + the exporter's id.
EXPORT_PREFIX = "export:"
# Target of a StatS/ThresholdS row holding a batch of events: this prefix + the receivers still
# owed them, comma-separated ("batch:thresholds,stats"). Rows an earlier cdre wrote (one event
# each, target "thresholds" or "stats") are still claimed and delivered; an earlier cdre does
# not claim batch rows (it would not read them).
BATCH_PREFIX = "batch:"

_CDRS = CdrRow.__table__
_SESSION_COSTS = SessionCostRow.__table__
_OUTBOX = CdrOutboxRow.__table__
# the writer hands its writes a Tx; the synchronous methods use a SQLAlchemy Connection
Conn = Connection | CoreConn | Tx
# "not serialised yet" (None is the JSON of no cost details: SQL NULL)
_UNSET: Any = object()


class CdrStore:
    """Synchronous repository; async callers use the ``a*`` methods (group-committed writes)
    or wrap the rest in ``asyncio.to_thread``.

    The hot-path writes (reserve, finish, final insert, session cost, outbox) are SQLAlchemy Core
    statements built once here, not ORM units of work: statement building and ORM bookkeeping
    cost more CPU than Postgres spends running them.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self.writer = GroupCommitter(engine)
        ins = self._insert(_CDRS)
        self._ins_cdr = ins.on_conflict_do_nothing(index_elements=["cgrid", "run_id"]).returning(
            _CDRS.c.id
        )
        self._sel_run = select(_CDRS).where(
            _CDRS.c.cgrid == bindparam("b_cgrid"), _CDRS.c.run_id == bindparam("b_run_id")
        )
        self._upd_cdr = update(_CDRS).where(_CDRS.c.id == bindparam("b_id"))
        self._ins_sc = self._insert(_SESSION_COSTS).on_conflict_do_nothing(
            index_elements=["cgrid", "run_id"]
        ).returning(_SESSION_COSTS.c.id)
        self._ins_outbox = insert(_OUTBOX)
        # built once: the deliverers run them every poll, mostly finding nothing. StatS/
        # ThresholdS events and online exports are claimed apart, so an export receiver that
        # is down never holds up the events (nor the other way round).
        self._claim = _claim_stmt(or_(_OUTBOX.c.target.in_(OUTBOX_TARGETS),
                                      _OUTBOX.c.target.startswith(BATCH_PREFIX)))
        self._claim_exports = _claim_stmt(_OUTBOX.c.target.startswith(EXPORT_PREFIX))
        self._narrow = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam("b_id"))
            .values(target=bindparam("b_target"), lease_until_ns=bindparam("b_until"))
        )
        self._ack = delete(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
        self._release = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
            .values(lease_until_ns=bindparam("b_until"))
        )
        self._settle_export = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam("b_id"))
            .values(lease_until_ns=bindparam("b_until"), failed=bindparam("b_failed"),
                    last_error=bindparam("b_error"))
        )

    def close(self) -> None:
        self.writer.close()

    # --- insert / update ----------------------------------------------------------------------

    def reserve(self, cdr: CDR) -> tuple[StoredCdr, bool]:
        """Insert ``cdr`` as ``pending`` unless (CGRID, RunID) exists.

        Returns ``(stored, duplicate)``: the new row, or the row already there and ``True``.
        """
        with self.engine.begin() as conn:
            return self.reserve_in(conn, cdr)

    async def areserve(self, cdr: CDR) -> tuple[StoredCdr, bool]:
        return await self.writer.run(lambda conn: self.reserve_in(conn, cdr))

    def reserve_in(self, conn: Conn, cdr: CDR) -> tuple[StoredCdr, bool]:
        values = _row_values(cdr)
        values["rating_state"] = PENDING
        return self._insert_run(conn, cdr, values)

    def _insert_run(
        self, conn: Conn, cdr: CDR, values: dict[str, Any]
    ) -> tuple[StoredCdr, bool]:
        new_id = conn.execute(self._ins_cdr, values).scalar_one_or_none()
        if new_id is None:
            row = conn.execute(
                self._sel_run, {"b_cgrid": cdr.cgrid, "b_run_id": cdr.run_id}
            ).one()
            return _stored(row), True
        # the row is what we wrote: no read-back
        mine = cdr.copy(order_id=new_id)
        return StoredCdr(mine, values["rating_state"], values.get("debit_request_id", ""), 0,
                         values["updated_at"]), False

    def insert_final_in(
        self,
        conn: Conn,
        cdr: CDR,
        outcome: RunOutcome,
        *,
        session_cost: SessionCost | None = None,
        notify: Sequence[str] = (),
    ) -> tuple[StoredCdr, bool]:
        """Store a run whose rating needed no debit, already final, in one statement; plus its
        session cost and its outbox events in the same transaction. A duplicate changes
        nothing and returns the row already there."""
        # the cost details (an EventCost: the biggest value of a run) serialised once for the
        # row, the session cost and the outbox event, which all carry the same object
        details = (cost_details_json(cdr) if outcome.cost_details is cdr.cost_details
                   else _json_or_none(outcome.cost_details))
        values = _row_values(cdr, cost_details=details)
        values.update(_outcome_values(outcome, details))
        stored, dup = self._insert_run(conn, cdr, values)
        if dup:
            return stored, True
        _apply_outcome(stored.cdr, outcome, details)
        if session_cost is not None:
            self.store_session_cost_in(conn, session_cost, details if (
                session_cost.cost_details is outcome.cost_details) else _UNSET)
        self.add_outbox_in(conn, stored.cdr, notify)
        return stored, False

    async def ainsert_final(
        self,
        cdr: CDR,
        outcome: RunOutcome,
        *,
        session_cost: SessionCost | None = None,
        notify: Sequence[str] = (),
    ) -> tuple[StoredCdr, bool]:
        return await self.writer.run(lambda conn: self.insert_final_in(
            conn, cdr, outcome, session_cost=session_cost, notify=notify))

    def finish(
        self,
        order_id: int,
        *,
        cost: Decimal,
        cost_source: str,
        cost_details: dict[str, Any] | None,
        extra_info: str,
        debit_request_id: str = "",
        rerate_count: int | None = None,
    ) -> None:
        """Write the rating outcome of a reserved (or re-rated) row and mark it final."""
        outcome = RunOutcome(cost, cost_source, cost_details, extra_info, debit_request_id)
        with self.engine.begin() as conn:
            self.finish_in(conn, order_id, outcome, rerate_count=rerate_count)

    def finish_in(
        self,
        conn: Conn,
        order_id: int,
        outcome: RunOutcome,
        *,
        rerate_count: int | None = None,
        cdr: CDR | None = None,
        session_cost: SessionCost | None = None,
        notify: Sequence[str] = (),
    ) -> None:
        """:meth:`finish` inside ``conn``; with ``cdr`` (already carrying the outcome) its
        outbox events and session cost are written in the same transaction."""
        values = _outcome_values(outcome, cost_details_json(cdr) if (
            cdr is not None and cdr.cost_details is outcome.cost_details) else _UNSET)
        if rerate_count is not None:
            values["rerate_count"] = rerate_count
        values["b_id"] = order_id
        done = conn.execute(self._upd_cdr, values)
        if done.rowcount != 1:
            raise StoreError(f"NOT_FOUND: no CDR with OrderID {order_id}")
        if session_cost is not None:
            self.store_session_cost_in(conn, session_cost)
        if cdr is not None:
            self.add_outbox_in(conn, cdr, notify)

    async def afinish(
        self,
        cdr: CDR,
        outcome: RunOutcome,
        *,
        session_cost: SessionCost | None = None,
        notify: Sequence[str] = (),
    ) -> None:
        await self.writer.run(lambda conn: self.finish_in(
            conn, cdr.order_id, outcome, cdr=cdr, session_cost=session_cost, notify=notify))

    def get_run(self, cgrid: str, run_id: str) -> StoredCdr | None:
        """The stored run (CGRID, RunID), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._sel_run, {"b_cgrid": cgrid, "b_run_id": run_id}).one_or_none()
        return None if row is None else _stored(row)

    def rewrite(self, order_id: int, cdr: CDR, outcome: RunOutcome, *, rerate_count: int) -> None:
        """Replace a stored run's fields by ``cdr``'s and its rating by ``outcome`` (a CDR
        processed again with ``*rerate``: v0.10 updates the existing row)."""
        values = {k: v for k, v in _row_values(cdr).items() if k not in ("cgrid", "run_id", "created_at")}
        values.update(_outcome_values(outcome), rerate_count=rerate_count, b_id=order_id)
        with self.engine.begin() as conn:
            if conn.execute(self._upd_cdr, values).rowcount != 1:
                raise StoreError(f"NOT_FOUND: no CDR with OrderID {order_id}")

    def add_outbox_in(self, conn: Conn, cdr: CDR, targets: Sequence[str]) -> None:
        """Queue the CDR's event for StatS/ThresholdS and the online exporters (``targets``,
        ``export:<id>`` for an exporter) in ``conn``'s transaction, its body serialised once.

        StatS/ThresholdS events of a group-committed batch share one row (written at the end
        of the batch, :meth:`Tx.defer`): per CDR run that saves a row and an INSERT per
        receiver, and the deliverer claims, sends and deletes in batches anyway. Exports stay
        one row each: each has its own attempts and failed state."""
        if not targets:
            return
        ev = to_event(cdr, EventType="CDR")
        body = _outbox_body(ev, cdr)
        receivers = tuple(t for t in targets if t in OUTBOX_TARGETS)
        exports = [t for t in targets if t not in OUTBOX_TARGETS]
        if exports:
            conn.execute(self._ins_outbox, [
                {"target": t, "event_id": ev.id, "event": body, "lease_until_ns": 0,
                 "attempts": 0} for t in exports
            ])
        if not receivers:
            return
        if isinstance(conn, Tx):
            conn.defer(("cdr_outbox", receivers), partial(self._insert_batch, receivers),
                       (ev.id, body))
        else:
            self._insert_batch(receivers, conn, [(ev.id, body)])

    def _insert_batch(self, targets: tuple[str, ...], conn: Conn,
                      events: list[tuple[str, str]]) -> None:
        # the bodies are JSON objects already: joined, not parsed and written again. event_id
        # names the first event (the column is for a person reading the table).
        conn.execute(self._ins_outbox, {
            "target": batch_target(targets), "event_id": events[0][0],
            "event": "[" + ",".join(body for _id, body in events) + "]",
            "lease_until_ns": 0, "attempts": 0,
        })

    def claim_outbox(self, limit: int, lease_ns: int) -> list[OutboxBatch]:
        """Take up to ``limit`` free StatS/ThresholdS outbox rows (oldest first) for
        ``lease_ns``: other deliverers (other cdre replicas) skip them meanwhile (``FOR UPDATE
        SKIP LOCKED`` on Postgres); a deliverer that dies lets the lease run out and the rows
        are delivered again (hence the receivers dedup by id)."""
        now = time.time_ns()
        params = {"b_now": now, "b_limit": limit, "b_until": now + lease_ns}
        with self.engine.begin() as conn:
            rows = conn.execute(self._claim, params).all()
        return sorted((_outbox_batch(r) for r in rows), key=lambda b: b.id)

    def settle_outbox(self, done: Sequence[int], narrowed: Sequence[tuple[int, tuple[str, ...]]],
                      failed: Sequence[int], retry_in_ns: int) -> None:
        """After a delivery round, in one transaction: forget the rows every receiver took
        (``done``); keep a row only for the receivers that did not take it (``narrowed``: id,
        receivers still owed) and retry it, and the rows nobody took (``failed``), after
        ``retry_in_ns``. A receiver that took a batch is not sent it again."""
        until = time.time_ns() + retry_in_ns
        with self.engine.begin() as conn:
            if done:
                conn.execute(self._ack, {"ids": list(done)})
            if narrowed:
                conn.execute(self._narrow, [{"b_id": i, "b_target": batch_target(t),
                                             "b_until": until} for i, t in narrowed])
            if failed:
                conn.execute(self._release, {"ids": list(failed), "b_until": until})

    def claim_exports(self, limit: int, lease_ns: int) -> list[OutboxItem]:
        """:meth:`claim_outbox` for the online-export rows (``export:<exporter>`` targets)."""
        now = time.time_ns()
        params = {"b_now": now, "b_limit": limit, "b_until": now + lease_ns}
        with self.engine.begin() as conn:
            rows = conn.execute(self._claim_exports, params).all()
        return sorted((OutboxItem(r.id, r.target, _outbox_event(r.event), r.attempts)
                       for r in rows), key=lambda i: i.id)

    def settle_exports(self, outcomes: Sequence[ExportOutcome]) -> None:
        """Exports that were not delivered: each row waits until its ``retry_at_ns``, keeps
        its error, and is marked failed once its exporter's attempts are used up (kept, never
        deleted: only a delivery deletes a row)."""
        if not outcomes:
            return
        with self.engine.begin() as conn:
            conn.execute(self._settle_export, [
                {"b_id": o.id, "b_until": o.retry_at_ns, "b_failed": o.failed,
                 "b_error": o.error[:2000]} for o in outcomes
            ])

    def failed_exports(self, exporter: str = "", limit: int | None = None) -> list[FailedExport]:
        """Exports marked failed (oldest first), of one exporter or all."""
        q = select(_OUTBOX).where(_OUTBOX.c.failed.is_(True), *_export_target(exporter))
        q = q.order_by(_OUTBOX.c.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [FailedExport(r.id, r.target.removeprefix(EXPORT_PREFIX), _outbox_event(r.event),
                             r.attempts, r.last_error, r.lease_until_ns) for r in rows]

    def retry_failed_exports(self, exporter: str = "") -> int:
        """Make failed exports (of one exporter or all) due now; returns how many. They stay
        marked failed until delivered (a delivery deletes the row)."""
        stmt = (update(_OUTBOX)
                .where(_OUTBOX.c.failed.is_(True), *_export_target(exporter))
                .values(lease_until_ns=0))
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def count_failed_exports(self) -> dict[str, int]:
        """Failed exports per exporter id (for the metrics gauge)."""
        q = (select(_OUTBOX.c.target, func.count())
             .where(_OUTBOX.c.failed.is_(True), _OUTBOX.c.target.startswith(EXPORT_PREFIX))
             .group_by(_OUTBOX.c.target))
        with self.engine.connect() as conn:
            return {t.removeprefix(EXPORT_PREFIX): int(n) for t, n in conn.execute(q).all()}

    def ack_outbox(self, ids: Sequence[int]) -> None:
        """Delivered: forget these rows."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(self._ack, {"ids": list(ids)})

    def release_outbox(self, ids: Sequence[int], retry_in_ns: int) -> None:
        """Delivery failed: try these rows again after ``retry_in_ns``."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(self._release, {"ids": list(ids), "b_until": time.time_ns() + retry_in_ns})

    def outbox_depth(self) -> int:
        """Rows waiting in the outbox (a StatS/ThresholdS row may hold many events)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_OUTBOX)).scalar_one())

    # --- queries ------------------------------------------------------------------------------

    def get_cdrs(self, flt: CdrFilter | None = None) -> list[CDR]:
        """CDRs matching ``flt`` in its order (default OrderID ascending)."""
        return [st.cdr for st in self.get_stored(flt)]

    def get_stored(self, flt: CdrFilter | None = None) -> list[StoredCdr]:
        flt = flt or CdrFilter()
        q = _apply_filter(select(CdrRow), flt)
        q = q.order_by(*_order(flt.order_by))
        if flt.offset:
            q = q.offset(flt.offset)
        if flt.limit is not None:
            q = q.limit(flt.limit)
        with Session(self.engine) as s:
            return [_stored(r) for r in s.execute(q).scalars()]

    def count_cdrs(self, flt: CdrFilter | None = None) -> int:
        """How many CDRs match ``flt`` (limit/offset/order ignored)."""
        q = _apply_filter(select(func.count(CdrRow.id)), flt or CdrFilter())
        with Session(self.engine) as s:
            return int(s.execute(q).scalar_one())

    def pending_older_than(self, age: timedelta) -> list[StoredCdr]:
        """Rows reserved but never finished (a crash mid-charge), older than ``age``."""
        cutoff = datetime.now(UTC) - age
        q = select(CdrRow).where(CdrRow.rating_state == PENDING, CdrRow.updated_at < cutoff)
        with Session(self.engine) as s:
            return [_stored(r) for r in s.execute(q.order_by(CdrRow.id)).scalars()]

    # --- session costs ------------------------------------------------------------------------

    def store_session_cost(self, sc: SessionCost) -> bool:
        """Keep a *prepaid run's cost; returns ``True`` when (CGRID, RunID) was already there."""
        with self.engine.begin() as conn:
            return self.store_session_cost_in(conn, sc)

    async def astore_session_cost(self, sc: SessionCost) -> bool:
        return await self.writer.run(lambda conn: self.store_session_cost_in(conn, sc))

    def store_session_cost_in(self, conn: Conn, sc: SessionCost,
                              details: str | None | object = _UNSET) -> bool:
        """``details``: ``sc.cost_details`` already serialised (``_UNSET``: not given)."""
        if details is _UNSET:
            details = _json_or_none(sc.cost_details)
        values = {
            "cgrid": sc.cgrid,
            "run_id": sc.run_id,
            "origin_host": sc.origin_host,
            "origin_id": sc.origin_id,
            "cost_source": sc.cost_source,
            "usage_ns": sc.usage_ns,
            "cost": sc.cost,
            "cost_details": details,
            "created_at": datetime.now(UTC),
        }
        return conn.execute(self._ins_sc, values).scalar_one_or_none() is None

    def get_session_cost(self, cgrid: str, run_id: str) -> SessionCost | None:
        q = select(SessionCostRow).where(
            SessionCostRow.cgrid == cgrid, SessionCostRow.run_id == run_id
        )
        with Session(self.engine) as s:
            r = s.execute(q).scalar_one_or_none()
            if r is None:
                return None
            return SessionCost(
                cgrid=r.cgrid,
                run_id=r.run_id,
                cost=r.cost,
                usage_ns=r.usage_ns,
                origin_host=r.origin_host,
                origin_id=r.origin_id,
                cost_source=r.cost_source,
                cost_details=None if r.cost_details is None else loads_exact(r.cost_details),
            )

    # --- export log ---------------------------------------------------------------------------

    def record_export(self, rec: ExportRecord) -> int:
        """Log one written export file and the CDRs in it; returns the export's row id."""
        with Session(self.engine) as s, s.begin():
            exp = CdrExportRow(
                export_id=rec.export_id,
                profile=rec.profile,
                path=rec.path,
                records=len(rec.order_ids),
                total_cost=rec.total_cost,
                created_at=datetime.now(UTC),
            )
            s.add(exp)
            s.flush()
            if rec.order_ids:
                ins = self._insert(CdrExportedRow).on_conflict_do_nothing(
                    index_elements=["cdr_id", "profile"]
                )
                s.execute(
                    ins,
                    [
                        {"cdr_id": oid, "profile": rec.profile, "export_pk": exp.id}
                        for oid in rec.order_ids
                    ],
                )
            return exp.id

    # --- helpers ------------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        if self._dialect == "sqlite":
            return sqlite.insert(table)
        raise StoreError(f"unsupported StorDB dialect {self._dialect!r}")


def _claim_stmt(which: Any) -> Any:
    return claim_statement(_OUTBOX, which, returning=(_OUTBOX.c.target, _OUTBOX.c.event))


def _export_target(exporter: str) -> list[Any]:
    if exporter:
        return [_OUTBOX.c.target == EXPORT_PREFIX + exporter]
    return [_OUTBOX.c.target.startswith(EXPORT_PREFIX)]


def _json_or_none(value: Any) -> str | None:
    return None if value is None else dumps_exact(value)


def _outbox_body(ev: CGREvent, cdr: CDR) -> str:
    """The outbox JSON of ``cdr``'s event ``ev``, its cost details written as already encoded
    for the row (:func:`cost_details_json`), not encoded again."""
    fields = ev.event
    if cdr.cost_details is None or fields.get("CostDetails") is not cdr.cost_details:
        return dumps_exact({"Tenant": ev.tenant, "ID": ev.id, "Time": to_unix_nano(ev.time),
                            "Event": fields})
    rest = {k: v for k, v in fields.items() if k != "CostDetails"}
    head = dumps_exact({"Tenant": ev.tenant, "ID": ev.id, "Time": to_unix_nano(ev.time),
                        "Event": rest})
    # compact JSON ending in the two objects' closing braces ("Event" is the last key; its
    # object is never empty: to_event writes every main field)
    return f'{head[:-2]},"CostDetails":{cost_details_json(cdr)}}}}}'


def _row_values(cdr: CDR, *, cost_details: str | None | object = _UNSET) -> dict[str, Any]:
    """``cost_details``: the column's value when the caller has it (``_UNSET``: serialise
    ``cdr.cost_details``)."""
    now = datetime.now(UTC)
    return {
        "cgrid": cdr.cgrid,
        "run_id": cdr.run_id,
        "origin_host": cdr.origin_host,
        "source": cdr.source,
        "origin_id": cdr.origin_id,
        "tor": cdr.tor,
        "request_type": cdr.request_type,
        "tenant": cdr.tenant,
        "category": cdr.category,
        "account": cdr.account,
        "subject": cdr.subject,
        "destination": cdr.destination,
        "setup_time": cdr.setup_time,
        "answer_time": cdr.answer_time,
        "usage_ns": cdr.usage_ns,
        "extra_fields": dumps_exact(cdr.extra_fields),
        "cost_source": cdr.cost_source,
        "cost": cdr.cost,
        "cost_details": cost_details_json(cdr) if cost_details is _UNSET else cost_details,
        "extra_info": cdr.extra_info,
        "pre_rated": cdr.pre_rated,
        "partial": cdr.partial,
        "created_at": now,
        "updated_at": now,
    }


def _outcome_values(o: RunOutcome, details: str | None | object = _UNSET) -> dict[str, Any]:
    """``details``: ``o.cost_details`` serialised already (``_UNSET``: not given)."""
    return {
        "cost": o.cost,
        "cost_source": o.cost_source,
        "cost_details": _json_or_none(o.cost_details) if details is _UNSET else details,
        "extra_info": o.extra_info,
        "debit_request_id": o.debit_request_id,
        "rating_state": RATED_STATE,
        "updated_at": datetime.now(UTC),
    }


def _apply_outcome(cdr: CDR, o: RunOutcome, details: str | None) -> None:
    """``details``: ``o.cost_details`` encoded (kept with the CDR for its event and reply)."""
    cdr.cost, cdr.cost_source, cdr.extra_info = o.cost, o.cost_source, o.extra_info
    set_cost_details(cdr, o.cost_details, details)


def _stored(r: Any) -> StoredCdr:
    cdr = CDR(
        cgrid=r.cgrid,
        run_id=r.run_id,
        order_id=r.id,
        origin_host=r.origin_host,
        source=r.source,
        origin_id=r.origin_id,
        tor=r.tor,
        request_type=r.request_type,
        tenant=r.tenant,
        category=r.category,
        account=r.account,
        subject=r.subject,
        destination=r.destination,
        setup_time=r.setup_time,
        answer_time=r.answer_time,
        usage_ns=r.usage_ns,
        extra_fields=loads_exact(r.extra_fields) if r.extra_fields else {},
        cost_source=r.cost_source,
        cost=r.cost,
        cost_details=None if r.cost_details is None else loads_exact(r.cost_details),
        extra_info=r.extra_info,
        pre_rated=r.pre_rated,
        partial=r.partial,
    )
    return StoredCdr(cdr, r.rating_state, r.debit_request_id, r.rerate_count, r.updated_at)


def _in(col: Any, values: Sequence[str]) -> Any:
    return col.in_(list(values)) if values else None


def _escape_like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _apply_filter(q: Select, flt: CdrFilter) -> Select:
    for start, end, name in (
        (flt.setup_time_start, flt.setup_time_end, "setup time"),
        (flt.answer_time_start, flt.answer_time_end, "answer time"),
    ):
        if start is not None and end is not None and end < start:
            raise StoreError(f"{name} range ends ({end}) before it starts ({start})")
    if flt.min_cost is not None and flt.max_cost is not None and flt.max_cost < flt.min_cost:
        raise StoreError(f"max cost {flt.max_cost} is below min cost {flt.min_cost}")
    if flt.limit is not None and flt.limit < 0 or flt.offset < 0:
        raise StoreError("limit and offset must not be negative")
    conds: list[Any] = [
        _in(CdrRow.cgrid, flt.cgrids),
        _in(CdrRow.run_id, flt.run_ids),
        _in(CdrRow.origin_id, flt.origin_ids),
        _in(CdrRow.request_type, flt.request_types),
        _in(CdrRow.tenant, flt.tenants),
        _in(CdrRow.account, flt.accounts),
        _in(CdrRow.subject, flt.subjects),
    ]
    if flt.destination_prefixes:
        conds.append(or_(*(
            CdrRow.destination.like(_escape_like(p) + "%", escape="\\")
            for p in flt.destination_prefixes
        )))
    if flt.setup_time_start is not None:
        conds.append(CdrRow.setup_time >= flt.setup_time_start)
    if flt.setup_time_end is not None:
        conds.append(CdrRow.setup_time < flt.setup_time_end)
    if flt.answer_time_start is not None:
        conds.append(CdrRow.answer_time >= flt.answer_time_start)
    if flt.answer_time_end is not None:
        conds.append(CdrRow.answer_time < flt.answer_time_end)
    if flt.min_cost is not None:
        conds.append(CdrRow.cost >= flt.min_cost)
    if flt.max_cost is not None:
        conds.append(CdrRow.cost < flt.max_cost)
    if flt.rating_state is not None:
        conds.append(CdrRow.rating_state == flt.rating_state)
    if flt.not_exported_by is not None:
        conds.append(~exists().where(
            CdrExportedRow.cdr_id == CdrRow.id, CdrExportedRow.profile == flt.not_exported_by
        ))
    conds = [c for c in conds if c is not None]
    return q.where(and_(*conds)) if conds else q


def _order(order_by: str) -> Iterable[Any]:
    """``"answer_time desc"`` → columns; ties broken by OrderID so pages are stable."""
    parts = order_by.strip().lower().split()
    if not parts or len(parts) > 2 or parts[0] not in ORDER_COLUMNS:
        raise StoreError(
            f"cannot order CDRs by {order_by!r}: use one of {', '.join(ORDER_COLUMNS)} "
            "optionally followed by asc/desc"
        )
    direction = parts[1] if len(parts) == 2 else "asc"
    if direction not in ("asc", "desc"):
        raise StoreError(f"cannot order CDRs by {order_by!r}: direction must be asc or desc")
    col = ORDER_COLUMNS[parts[0]]
    main = col.desc() if direction == "desc" else col.asc()
    return (main,) if col is CdrRow.id else (main, CdrRow.id.asc())
