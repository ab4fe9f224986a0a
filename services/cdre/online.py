"""Online CDR export (CGRateS ``cdrs.online_cdr_exports``): every stored run is posted to each
configured exporter, from the outbox, off the ProcessCDR reply.

How a CDR gets out, and why it is never lost:

* The pipeline writes one ``cdr_outbox`` row per exporter (target ``export:<id>``) in the very
  transaction that stores the run (the same insert statement as the StatS/ThresholdS rows), so
  an export exists exactly when its CDR does, and a ``kill -9`` of cdre loses nothing.
* :class:`ExportDeliverer` claims due export rows (a lease; ``FOR UPDATE SKIP LOCKED`` on
  Postgres, so several cdre replicas on one StorDB never post the same row while its claimer
  lives), posts each one in its exporter's format, and deletes the row once the receiver
  accepted it (HTTP 2xx; AMQP: the broker confirmed the publish).
* A post that fails is retried with exponential backoff (``backoff_s`` doubling per attempt, up
  to ``max_backoff_s``). Once the exporter's ``attempts`` are used up the row is marked failed,
  with the last error: it stays in the table, is listed by ``cgr cdrs list --export-failed``,
  is retried every ``failed_retry_s`` (0 = only on demand) and at once by ``cgr cdrs
  retry-exports``. A row of an exporter that is no longer configured is failed the same way.

Delivery is at least once: a crash after the receiver took a CDR but before its row was
deleted, or a lease that ran out, posts it again; receivers can tell a repeat by CGRID + RunID.

Formats (the bodies CGRateS v0.10 sends):

* ``*http_post``: the profile's ``*exp`` fields (the ``*default`` template unless the profile
  has its own), form-encoded as ``<field name>=<value>``, as in a CSV export line.
* ``*http_json_cdr``: the CDR as JSON with CGRateS's field names (Go's ``json.Marshal`` of its
  CDR: times RFC3339Nano, ``Usage`` integer nanoseconds), money written as an exact decimal
  number (``"Cost":0.6084``, never a binary float's digits).
* ``*amqp_json_cdr``: the same JSON, published persistent with content type
  ``application/json`` to an AMQP 0-9-1 broker. ``export_path`` is CGRateS's AMQP URL:
  ``amqp://user:pass@host:5672/vhost?queue_id=cgrates_cdrs&exchange=X&exchange_type=direct&
  routing_key=K``; the queue is declared durable (and bound to the exchange when one is named).

``synchronous: true`` posts one exporter's CDRs one at a time in OrderID order and stops the
round at the first failure (the rest wait for the next round); otherwise up to
``concurrency`` posts run at once, after a first one showed the receiver is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.connection import make_url

from cgrpy.event import CGREvent, dumps_exact
from cgrpy.gotime import go_time
from cgrpy.httppost import JSON_CONTENT_TYPE, DeliveryError, http_post
from services.cdre.cdr import CDR, cdr_from_event
from services.cdre.export import (
    AMQP_JSON_CDR,
    HTTP_JSON_CDR,
    HTTP_POST,
    ONLINE_FORMATS,
    ExportError,
    ExportProfile,
    fit_width,
    record_field,
)
from services.cdre.metrics import CDR_EXPORTS, CDR_EXPORTS_FAILED
from services.cdre.store import EXPORT_PREFIX, CdrStore, ExportOutcome, OutboxItem

log = logging.getLogger("cgrpy.cdre")

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
DEFAULT_QUEUE = "cgrates_cdrs"  # CGRateS's queue when the URL names none
# A failed row with automatic retries off waits until asked (about 146 years).
NEVER_NS = 1 << 62
GAUGE_EVERY_S = 30.0


def exporter_target(exporter_id: str) -> str:
    """The outbox target of an exporter."""
    return EXPORT_PREFIX + exporter_id


def check_exporters(ids: Sequence[str], profiles: Mapping[str, ExportProfile]) -> dict[str, ExportProfile]:
    """The configured online exporters by id; an id that names no profile, or a profile that is
    not in an online format, is an :class:`ExportError` (start-up stops with it)."""
    out: dict[str, ExportProfile] = {}
    for eid in ids:
        profile = profiles.get(eid)
        if profile is None:
            raise ExportError(f"online_cdr_exports: no CDRe profile {eid!r} in cdre_profiles_file")
        if profile.export_format not in ONLINE_FORMATS:
            raise ExportError(f"online_cdr_exports: profile {eid!r} has export_format "
                              f"{profile.export_format!r}, not one of {', '.join(ONLINE_FORMATS)}")
        if len(exporter_target(eid)) > 80:
            raise ExportError(f"online_cdr_exports: exporter id {eid!r} is too long")
        if profile.export_format == AMQP_JSON_CDR:
            parse_amqp_url(profile.export_path)
        out[eid] = profile
    return out


# --- bodies ---------------------------------------------------------------------------------


def cdr_from_outbox(ev: CGREvent) -> CDR:
    """The CDR an outbox event was made of (:func:`services.cdre.cdr.to_event` with
    ``EventType``), OrderID included."""
    cdr = cdr_from_event(ev)
    cdr.extra_fields.pop("EventType", None)
    cdr.order_id = int(ev.event.get("OrderID") or 0)
    return cdr


def json_cdr(cdr: CDR) -> dict[str, Any]:
    """The CDR as CGRateS v0.10 marshals its ``engine.CDR`` (field order and names kept)."""
    return {
        "CGRID": cdr.cgrid,
        "RunID": cdr.run_id,
        "OrderID": cdr.order_id,
        "OriginHost": cdr.origin_host,
        "Source": cdr.source,
        "OriginID": cdr.origin_id,
        "ToR": cdr.tor,
        "RequestType": cdr.request_type,
        "Tenant": cdr.tenant,
        "Category": cdr.category,
        "Account": cdr.account,
        "Subject": cdr.subject,
        "Destination": cdr.destination,
        "SetupTime": go_time(cdr.setup_time),
        "AnswerTime": go_time(cdr.answer_time),
        "Usage": cdr.usage_ns,
        "ExtraFields": dict(cdr.extra_fields),
        "ExtraInfo": cdr.extra_info,
        "Partial": cdr.partial,
        "PreRated": cdr.pre_rated,
        "CostSource": cdr.cost_source,
        "Cost": cdr.cost,
        "CostDetails": cdr.cost_details,
    }


def form_fields(cdr: CDR, profile: ExportProfile) -> list[tuple[str, str]]:
    """``*http_post``: the profile's record fields, named by their path without ``*exp.``."""
    out = []
    for t in profile.fields:
        if t.section == "*exp":
            out.append((t.name, fit_width(record_field(cdr, t), t)))
    return out


def encode(cdr: CDR, profile: ExportProfile) -> bytes:
    if profile.export_format == HTTP_POST:
        return urllib.parse.urlencode(form_fields(cdr, profile)).encode()
    return dumps_exact(json_cdr(cdr)).encode()


# --- transports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AmqpTarget:
    url: str  # what the client dials: the export_path without CGRateS's own parameters
    queue_id: str
    exchange: str
    exchange_type: str
    routing_key: str


_AMQP_PARAMS = ("queue_id", "exchange", "exchange_type", "routing_key")


def parse_amqp_url(export_path: str) -> AmqpTarget:
    u = urllib.parse.urlsplit(export_path)
    if u.scheme not in ("amqp", "amqps") or not u.hostname:
        raise ExportError(f"{AMQP_JSON_CDR}: export_path {export_path!r} is not an amqp:// URL")
    query = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _AMQP_PARAMS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _AMQP_PARAMS])
    etype = ours.get("exchange_type") or "direct"
    if etype not in ("direct", "fanout", "topic", "headers"):
        raise ExportError(f"{AMQP_JSON_CDR}: exchange_type {etype!r} is not an AMQP exchange type")
    return AmqpTarget(
        url=urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, rest, "")),
        queue_id=ours.get("queue_id") or DEFAULT_QUEUE,
        exchange=ours.get("exchange", ""),
        exchange_type=etype,
        routing_key=ours.get("routing_key", ""),
    )


async def _connect(url: str, timeout_s: float) -> AbstractConnection:
    """``aio_pika.connect`` that closes its connection object when the connect fails (the
    library's leaves it to the garbage collector, which warns)."""
    conn = aio_pika.Connection(make_url(url))
    try:
        await conn.connect(timeout=timeout_s)
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.close()
        raise
    return conn


class AmqpPublisher:
    """One connection and confirming channel per broker URL, opened on first use and dropped
    after any error (the next publish dials again)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._conns: dict[str, AbstractConnection] = {}
        self._channels: dict[str, AbstractChannel] = {}
        self._exchanges: dict[AmqpTarget, AbstractExchange] = {}
        self._lock = asyncio.Lock()

    async def publish(self, target: AmqpTarget, body: bytes) -> None:
        try:
            exchange = await self._exchange(target)
            msg = aio_pika.Message(body, content_type=JSON_CONTENT_TYPE,
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            key = target.routing_key if target.exchange else target.queue_id
            # publisher confirms: returns once the broker has the message (or raises)
            await exchange.publish(msg, routing_key=key, mandatory=True, timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure: drop the connection, retry later
            await self._drop(target.url)
            raise DeliveryError(f"amqp {target.queue_id}: {type(exc).__name__}: {exc}") from None

    async def _exchange(self, target: AmqpTarget) -> AbstractExchange:
        async with self._lock:
            ex = self._exchanges.get(target)
            if ex is not None:
                return ex
            ch = self._channels.get(target.url)
            if ch is None or ch.is_closed:
                conn = await _connect(target.url, self.timeout_s)
                self._conns[target.url] = conn
                ch = self._channels[target.url] = await conn.channel(publisher_confirms=True)
            # each step with its own timeout rather than one wait_for around them all: a
            # cancelled connect would leave a connection object nobody closes
            t = self.timeout_s
            queue = await ch.declare_queue(target.queue_id, durable=True, timeout=t)
            if target.exchange:
                ex = await ch.declare_exchange(target.exchange, target.exchange_type,
                                               durable=True, timeout=t)
                await queue.bind(ex, target.routing_key, timeout=t)
            else:
                ex = ch.default_exchange
            self._exchanges[target] = ex
            return ex

    async def _drop(self, url: str) -> None:
        async with self._lock:
            self._exchanges = {t: e for t, e in self._exchanges.items() if t.url != url}
            self._channels.pop(url, None)
            conn = self._conns.pop(url, None)
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001, S110 - already broken: nothing more to do
                pass

    async def close(self) -> None:
        for url in list(self._conns):
            await self._drop(url)


# --- the deliverer --------------------------------------------------------------------------


class ExportDeliverer:
    """Claims export rows from the outbox and posts them; see the module doc."""

    def __init__(
        self,
        store: CdrStore,
        exporters: Mapping[str, ExportProfile],
        *,
        batch: int = 50,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        failed_retry_s: float = 300.0,
        timeout_s: float = 5.0,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.exporters = dict(exporters)
        self.batch = batch
        self.lease_ns = int(lease_s * 1e9)
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.failed_retry_ns = int(failed_retry_s * 1e9)
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.amqp = AmqpPublisher(timeout_s)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._claimed: list[int] = []
        self.delivered = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cdre-online-export")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._claimed:  # stopped mid-round: hand the rows back now rather than at lease end
            claimed, self._claimed = self._claimed, []
            try:
                await asyncio.to_thread(self.store.release_outbox, claimed, 0)
            except Exception as exc:  # noqa: BLE001 - the lease still frees them later
                log.warning("cdr export: could not release %d claimed rows: %s", len(claimed), exc)
        await self.amqp.close()

    async def _loop(self) -> None:
        gauge_at = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                claimed = await self.deliver_once()
                if not claimed and time.monotonic() - gauge_at > GAUGE_EVERY_S:
                    # failed rows another replica settled, or retried on demand
                    await self._update_failed_gauge()
                    gauge_at = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - StorDB down: rows stay, try again later
                log.warning("cdr export round failed: %s", exc)
                claimed = 0
            if claimed >= self.batch:
                self._wake.set()  # more waiting

    async def deliver_once(self) -> int:
        """Claim and post one batch; returns how many rows were claimed."""
        items = await asyncio.to_thread(self.store.claim_exports, self.batch, self.lease_ns)
        if not items:
            return 0
        self._claimed = [i.id for i in items]
        by_exporter: dict[str, list[OutboxItem]] = defaultdict(list)
        for it in items:
            by_exporter[it.target.removeprefix(EXPORT_PREFIX)].append(it)
        done: list[int] = []
        settled: list[ExportOutcome] = []
        for eid, group in by_exporter.items():
            profile = self.exporters.get(eid)
            if profile is None:
                err = f"exporter {eid!r} is not configured (online_cdr_exports)"
                settled += [self._outcome(it, 1, err) for it in group]
                continue
            ok, errors = await self._post_group(profile, group)
            done += ok
            settled += [self._outcome(it, profile.attempts, errors[it.id]) for it in group
                        if it.id in errors]
            CDR_EXPORTS.labels(exporter=eid, result="delivered").inc(len(ok))
        await asyncio.to_thread(self.store.ack_outbox, done)
        await asyncio.to_thread(self.store.settle_exports, settled)
        self._claimed = []
        self.delivered += len(done)
        exporter_of = {i.id: i.target.removeprefix(EXPORT_PREFIX) for i in items}
        for o in settled:
            eid = exporter_of[o.id]
            CDR_EXPORTS.labels(exporter=eid, result="failed" if o.failed else "retry").inc()
            if o.failed:
                log.warning("cdr export to %s failed, kept for retry: %s", eid, o.error)
        await self._update_failed_gauge()
        return len(items)

    def _outcome(self, it: OutboxItem, attempts: int, error: str) -> ExportOutcome:
        now = time.time_ns()
        if it.attempts >= attempts:
            until = now + self.failed_retry_ns if self.failed_retry_ns > 0 else NEVER_NS
            return ExportOutcome(it.id, until, True, error)
        wait = min(self.backoff_s * 2 ** (it.attempts - 1), self.max_backoff_s)
        return ExportOutcome(it.id, now + int(wait * 1e9), False, error)

    async def _post_group(
        self, profile: ExportProfile, group: list[OutboxItem]
    ) -> tuple[list[int], dict[int, str]]:
        """Post one exporter's rows: (delivered ids, {id: error} of the others)."""
        ok: list[int] = []
        errors: dict[int, str] = {}
        if profile.synchronous:
            for n, it in enumerate(group):
                err = await self._post_one(profile, it)
                if err is None:
                    ok.append(it.id)
                    continue
                # keep the order: what comes after a failure waits for the next round
                errors.update({later.id: err for later in group[n:]})
                break
            return ok, errors
        first_err = await self._post_one(profile, group[0])
        if first_err is not None:  # receiver down: do not knock once per CDR
            return ok, {it.id: first_err for it in group}
        ok.append(group[0].id)
        sem = asyncio.Semaphore(self.concurrency)

        async def one(it: OutboxItem) -> tuple[OutboxItem, str | None]:
            async with sem:
                return it, await self._post_one(profile, it)

        for it, err in await asyncio.gather(*(one(it) for it in group[1:])):
            if err is None:
                ok.append(it.id)
            else:
                errors[it.id] = err
        return ok, errors

    async def _post_one(self, profile: ExportProfile, it: OutboxItem) -> str | None:
        """Post one row; None when the receiver took it, else the error text."""
        try:
            body = encode(cdr_from_outbox(it.event), profile)
        except (ExportError, ValueError) as exc:
            return f"cannot format the CDR: {exc}"
        try:
            if profile.export_format == AMQP_JSON_CDR:
                await self.amqp.publish(parse_amqp_url(profile.export_path), body)
            else:
                ctype = FORM_CONTENT_TYPE if profile.export_format == HTTP_POST else JSON_CONTENT_TYPE
                await asyncio.to_thread(http_post, profile.export_path, body, ctype, self.timeout_s)
        except DeliveryError as exc:
            return str(exc)
        return None

    async def _update_failed_gauge(self) -> None:
        counts = await asyncio.to_thread(self.store.count_failed_exports)
        for eid in set(self.exporters) | set(counts):
            CDR_EXPORTS_FAILED.labels(exporter=eid).set(counts.get(eid, 0))


__all__ = [
    "AmqpTarget",
    "DeliveryError",
    "ExportDeliverer",
    "HTTP_JSON_CDR",
    "check_exporters",
    "cdr_from_outbox",
    "encode",
    "exporter_target",
    "form_fields",
    "json_cdr",
    "parse_amqp_url",
]
