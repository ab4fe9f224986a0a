"""Delivers the outbox: stored CDRs' events to ThresholdS and StatS, in batches, off the reply.

The pipeline writes a stored run's events to ``cdr_outbox`` in the transaction that stores the
run, so an event exists exactly when its CDR does, and nothing is lost if cdre dies before
delivering. One row holds the events of one group-committed transaction and the receivers
still owed them (``batch:thresholds,stats``); a row left by an earlier cdre holds one event for
one receiver and is delivered the same way. This loop claims up to ``claim_rows`` rows at a time
(a lease, so several cdre replicas share one outbox without sending a row twice while its
claimer lives), sends their events in ``ProcessEvents`` of at most ``batch`` events per target,
deletes the rows every receiver took, and keeps a row that only some took for the others (a
receiver is not sent a batch it took again). It sends when woken by a ProcessCDR, at most every
``interval_s`` (so events that arrive together travel together), or at once while more rows are
waiting; it also polls every ``poll_s`` for rows another replica or a crashed run left behind.

Delivery is at least once: a crash after the target counted an event but before its row was
deleted (or a lease that ran out) sends it again, and so does a batch a receiver took only in
part (the client splits a batch by tenant and owner; one part failing fails the batch, whose
parts that arrived are then sent again). The event id is ``<CGRID>:<RunID>``, and
every stat queue and threshold skips an id it has already counted, whichever replica gets the
repeat (its recent ids are saved with its state: ``cgrpy.storage.applied``), so a repeat within
that window (10 minutes) is not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

from cgrpy.event import CGREvent
from services.cdre.backends import BackendError, CdrBackends
from services.cdre.store import OUTBOX_TARGETS, CdrStore, OutboxBatch

log = logging.getLogger("cgrpy.cdre")


class OutboxDeliverer:
    def __init__(
        self,
        store: CdrStore,
        backends: CdrBackends,
        *,
        interval_s: float = 0.25,
        batch: int = 500,
        claim_rows: int = 100,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.store = store
        self.backends = backends
        self.interval_s = interval_s
        self.batch = batch
        # rows, not events: a row holds up to one writer batch (256) of events
        self.claim_rows = claim_rows
        self.lease_ns = int(lease_s * 1e9)
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = 0.0
        self._claimed: list[int] = []  # rows this deliverer holds right now
        self.delivered = 0  # events taken by a receiver (an event for two receivers: 2)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cdre-outbox")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._claimed:
            # stopped mid-delivery: hand the rows back at once rather than let the lease run
            # out (a crash cannot do this; then the lease does it)
            claimed, self._claimed = self._claimed, []
            try:
                await asyncio.to_thread(self.store.release_outbox, claimed, 0)
            except Exception as exc:  # noqa: BLE001 - the lease still frees them later
                log.warning("cdr outbox: could not release %d claimed rows: %s", len(claimed), exc)

    async def _loop(self) -> None:
        last = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
            # let events that arrive together travel together (a backlog goes at once)
            await asyncio.sleep(max(0.0, last + self.interval_s - time.monotonic()))
            last = time.monotonic()
            try:
                claimed = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - StorDB down: rows stay, try again later
                log.warning("cdr outbox delivery failed: %s", exc)
                claimed = 0
            if claimed >= self.claim_rows:
                self._wake.set()  # more waiting
                last = 0.0
            if self._backoff:
                await asyncio.sleep(self._backoff)

    async def deliver_once(self) -> int:
        """Claim and deliver one round of rows; returns how many rows were claimed."""
        rows = await asyncio.to_thread(self.store.claim_outbox, self.claim_rows, self.lease_ns)
        if not rows:
            return 0
        self._claimed = [r.id for r in rows]
        took: dict[int, set[str]] = {r.id: set() for r in rows}  # receivers that took a row
        for target in OUTBOX_TARGETS:
            for part in _parts([r for r in rows if target in r.targets], self.batch):
                if await self._send(target, [e for r in part for e in r.events]):
                    for r in part:
                        took[r.id].add(target)
        done, narrowed, failed = _settle(rows, took)
        if narrowed or failed:
            self._backoff = min(max(self._backoff * 2, 0.2), self.max_backoff_s)
        else:
            self._backoff = 0.0
        await asyncio.to_thread(self.store.settle_outbox, done, narrowed, failed,
                                int(self._backoff * 1e9))
        self.delivered += sum(len(r.events) * len(took[r.id]) for r in rows)
        self._claimed = []
        return len(rows)

    async def _send(self, target: str, events: list[CGREvent]) -> bool:
        try:
            if target == "stats":
                await self.backends.stats_process_events(events)
            else:
                await self.backends.thresholds_process_events(events)
        except BackendError as exc:
            log.warning("cdr outbox: %s unavailable, %d events kept for retry: %s",
                        target, len(events), exc)
            return False
        return True


def _parts(rows: list[OutboxBatch], most: int) -> list[list[OutboxBatch]]:
    """Consecutive rows grouped so a group holds at most ``most`` events (a bigger row alone)."""
    parts: list[list[OutboxBatch]] = []
    size = most
    for r in rows:
        if size + len(r.events) > most:
            parts.append([])
            size = 0
        parts[-1].append(r)
        size += len(r.events)
    return parts


def _settle(rows: list[OutboxBatch], took: dict[int, set[str]]
            ) -> tuple[list[int], list[tuple[int, tuple[str, ...]]], list[int]]:
    """Rows every receiver took (delete), rows some took (keep for the rest), rows none took."""
    done: list[int] = []
    narrowed: list[tuple[int, tuple[str, ...]]] = []
    failed: list[int] = []
    for r in rows:
        rest = tuple(t for t in r.targets if t not in took[r.id])
        unknown = [t for t in rest if t not in OUTBOX_TARGETS]
        if unknown:  # written by a newer cdre: keep for it
            log.warning("cdr outbox: unknown targets %r, %d events kept", unknown, len(r.events))
        if not rest:
            done.append(r.id)
        elif len(rest) < len(r.targets):
            narrowed.append((r.id, rest))
        else:
            failed.append(r.id)
    return done, narrowed, failed


__all__ = ["OutboxDeliverer"]
