"""Delivers the outbox: stored CDRs' events to ThresholdS and StatS, in batches, off the reply.

The pipeline writes a stored run's events to ``cdr_outbox`` in the transaction that stores the
run, so an event exists exactly when its CDR does, and nothing is lost if cdre dies before
delivering. This loop claims up to ``batch`` rows at a time (a lease, so several cdre replicas
share one outbox without sending a row twice while its claimer lives), sends one
``ProcessEvents`` per target and deletes the rows the target accepted. It sends when woken by a
ProcessCDR, at most every ``interval_s`` (so events that arrive together travel together), or at
once while a full batch is waiting; it also polls every ``poll_s`` for rows another replica or a
crashed run left behind.

Delivery is at least once: a crash after the target counted an event but before its row was
deleted (or a lease that ran out) sends it again. The event id is ``<CGRID>:<RunID>``, and
every stat queue and threshold skips an id it has already counted, whichever replica gets the
repeat (its recent ids are saved with its state: ``cgrpy.storage.applied``), so a repeat within
that window (10 minutes) is not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from services.cdre.backends import BackendError, CdrBackends
from services.cdre.store import OUTBOX_TARGETS, CdrStore, OutboxItem

log = logging.getLogger("cgrpy.cdre")


class OutboxDeliverer:
    def __init__(
        self,
        store: CdrStore,
        backends: CdrBackends,
        *,
        interval_s: float = 0.25,
        batch: int = 500,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.store = store
        self.backends = backends
        self.interval_s = interval_s
        self.batch = batch
        self.lease_ns = int(lease_s * 1e9)
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = 0.0
        self._claimed: list[int] = []  # rows this deliverer holds right now
        self.delivered = 0

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
            # let events that arrive together travel together
            await asyncio.sleep(max(0.0, last + self.interval_s - time.monotonic()))
            last = time.monotonic()
            try:
                claimed = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - StorDB down: rows stay, try again later
                log.warning("cdr outbox delivery failed: %s", exc)
                claimed = 0
            if claimed >= self.batch:
                self._wake.set()  # more waiting
            if self._backoff:
                await asyncio.sleep(self._backoff)

    async def deliver_once(self) -> int:
        """Claim and deliver one batch; returns how many rows were claimed."""
        items = await asyncio.to_thread(self.store.claim_outbox, self.batch, self.lease_ns)
        if not items:
            return 0
        self._claimed = [i.id for i in items]
        by_target: dict[str, list[OutboxItem]] = defaultdict(list)
        for it in items:
            by_target[it.target].append(it)
        done: list[int] = []
        failed: list[int] = []
        for target in OUTBOX_TARGETS:
            group = by_target.pop(target, [])
            if group:
                (done if await self._send(target, group) else failed).extend(i.id for i in group)
        for target, group in by_target.items():  # written by a newer cdre: keep for it
            log.warning("cdr outbox: unknown target %r, %d events kept", target, len(group))
            failed.extend(i.id for i in group)
        await asyncio.to_thread(self.store.ack_outbox, done)
        self.delivered += len(done)
        if failed:
            self._backoff = min(max(self._backoff * 2, 0.2), self.max_backoff_s)
            await asyncio.to_thread(self.store.release_outbox, failed,
                                    int(self._backoff * 1e9))
        else:
            self._backoff = 0.0
        self._claimed = []
        return len(items)

    async def _send(self, target: str, group: list[OutboxItem]) -> bool:
        events = [i.event for i in group]
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


__all__ = ["OutboxDeliverer"]
