"""Online CDR export from the outbox: a real HTTP receiver on loopback, the real RabbitMQ on
127.0.0.1:5672, real StorDBs (SQLite and Postgres). The deliverer is driven round by round
here; tests/cdre/test_online_export_service.py runs it inside the cdre server."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import aio_pika
import pytest
from prometheus_client import REGISTRY

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.cdre.cdr import CDR
from services.cdre.export import ExportError, profile_from_dict
from services.cdre.online import ExportDeliverer, check_exporters, parse_amqp_url
from services.cdre.store import CdrStore, RunOutcome
from tests.cdre.receiver import Receiver

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
ANSWER = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)


def a_cdr(n: int = 1, **kw: object) -> CDR:
    return CDR(cgrid=f"{n:040x}", origin_id=f"call-{n}", origin_host="127.0.0.1",
               source="OpenSIPS", request_type="*postpaid", account="1001", subject="1001",
               destination="1002", setup_time=ANSWER, answer_time=ANSWER, usage_ns=65 * 10**9,
               extra_fields={"DisconnectCause": "Downstream BYE"}, **kw)  # type: ignore[arg-type]


async def store_cdr(store: CdrStore, cdr: CDR, targets: tuple[str, ...],
                    cost: str = "0.60835") -> CDR:
    stored, dup = await store.ainsert_final(
        cdr, RunOutcome(Decimal(cost), "*cdrs", None), notify=targets)
    assert not dup
    return stored.cdr


def exported(result: str, exporter: str = "web") -> float:
    return REGISTRY.get_sample_value(
        "cgrpy_cdr_exports_total", {"exporter": exporter, "result": result}) or 0.0


def profile(eid: str, fmt: str, path: str, **kw: object):
    return profile_from_dict({"id": eid, "export_format": fmt, "export_path": path, **kw})


async def until(cond: Callable[[], bool], step: Callable[[], Awaitable[object]],
                timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await step()
        await asyncio.sleep(0.02)


async def test_http_json_cdr_retried_with_backoff_and_delivered_once(store: CdrStore):
    before = {r: exported(r) for r in ("delivered", "retry", "failed")}
    with Receiver(fail_first=2) as rx:
        web = profile("web", "*http_json_cdr", rx.url, attempts=5)
        dlv = ExportDeliverer(store, {"web": web}, backoff_s=0.2)
        cdr = await store_cdr(store, a_cdr(), ("export:web",))
        t0 = time.monotonic()
        await until(lambda: bool(rx.accepted()), dlv.deliver_once)
        waited = time.monotonic() - t0
        for _ in range(5):  # nothing more goes out
            await dlv.deliver_once()
        await dlv.close()
    assert [p.status for p in rx.posts] == [500, 500, 200]
    assert waited >= 0.2 + 0.4 - 0.05  # backoff doubled between attempts
    post, = rx.accepted()
    assert post.content_type == "application/json"
    assert b'"Cost":0.60835,' in post.body  # exact decimal, not a float's digits
    body = json.loads(post.body)
    assert body["CGRID"] == cdr.cgrid and body["RunID"] == "*default"
    assert body["OrderID"] == cdr.order_id > 0
    assert body["Usage"] == 65_000_000_000
    assert body["AnswerTime"] == "2014-08-04T13:00:00Z"
    assert body["ExtraFields"] == {"DisconnectCause": "Downstream BYE"}
    assert body["CostDetails"] is None and body["PreRated"] is False
    assert list(body)[:3] == ["CGRID", "RunID", "OrderID"]
    assert store.outbox_depth() == 0
    assert store.failed_exports() == []
    assert {r: exported(r) - before[r] for r in before} == {"delivered": 1, "retry": 2, "failed": 0}


async def test_receiver_down_is_knocked_once_per_round_not_once_per_cdr(store: CdrStore):
    with Receiver(fail_first=1) as rx:
        web = profile("web", "*http_json_cdr", rx.url, attempts=3)
        dlv = ExportDeliverer(store, {"web": web}, backoff_s=0.05)
        for n in range(1, 6):
            await store_cdr(store, a_cdr(n), ("export:web",))
        assert await dlv.deliver_once() == 5
        assert [p.status for p in rx.posts] == [500]  # one probe, the other four not tried
        await until(lambda: store.outbox_depth() == 0, dlv.deliver_once)
        await dlv.close()
    assert [p.status for p in rx.posts] == [500] + [200] * 5


async def test_synchronous_posts_in_order_and_stops_at_a_failure(store: CdrStore):
    with Receiver(fail_first=1) as rx:
        web = profile("web", "*http_json_cdr", rx.url, attempts=3, synchronous=True)
        dlv = ExportDeliverer(store, {"web": web}, backoff_s=0.05)
        cdrs = [await store_cdr(store, a_cdr(n), ("export:web",)) for n in range(1, 5)]
        await until(lambda: store.outbox_depth() == 0, dlv.deliver_once)
        await dlv.close()
    assert [p.status for p in rx.posts] == [500, 200, 200, 200, 200]
    assert [json.loads(p.body)["OrderID"] for p in rx.accepted()] == [c.order_id for c in cdrs]


async def test_http_post_is_the_template_form_encoded(store: CdrStore):
    with Receiver() as rx:
        form = profile("form", "*http_post", rx.url)
        dlv = ExportDeliverer(store, {"form": form})
        await store_cdr(store, a_cdr(7), ("export:form",))
        await until(lambda: bool(rx.accepted()), dlv.deliver_once)
        await dlv.close()
    post, = rx.accepted()
    assert post.content_type == "application/x-www-form-urlencoded"
    fields = dict(urllib.parse.parse_qsl(post.body.decode()))
    assert fields["CGRID"] == f"{7:040x}"
    assert fields["Usage"] == "1m5s"
    assert fields["Cost"] == "0.6084"  # the *default template's 4 decimals, half up
    assert fields["AnswerTime"] == "2014-08-04T13:00:00Z"
    assert fields["Account"] == "1001" and fields["Destination"] == "1002"


async def test_failed_after_attempts_kept_listed_and_delivered_when_back(store: CdrStore):
    rx = Receiver()  # not started: connection refused
    web = profile("web", "*http_json_cdr", rx.url, attempts=2)
    dlv = ExportDeliverer(store, {"web": web}, backoff_s=0.05, failed_retry_s=3600)
    cdr = await store_cdr(store, a_cdr(3), ("export:web",))
    await until(lambda: bool(store.failed_exports()), dlv.deliver_once)
    failed, = store.failed_exports("web")
    assert failed.exporter == "web" and failed.attempts == 2
    assert REGISTRY.get_sample_value("cgrpy_cdr_exports_failed", {"exporter": "web"}) == 1
    assert "Connection refused" in failed.last_error or "refused" in failed.last_error.lower()
    assert failed.retry_at_ns > time.time_ns() + 3000 * 10**9  # waits failed_retry_s
    assert failed.event.event["CGRID"] == cdr.cgrid
    assert await dlv.deliver_once() == 0  # not due: nothing claimed
    assert store.failed_exports("other") == []
    with rx:
        assert store.retry_failed_exports("web") == 1
        await until(lambda: bool(rx.accepted()), dlv.deliver_once)
        await dlv.close()
    assert len(rx.posts) == 1 and json.loads(rx.posts[0].body)["CGRID"] == cdr.cgrid
    assert store.failed_exports() == [] and store.outbox_depth() == 0


async def test_unconfigured_exporter_rows_are_kept_failed(store: CdrStore):
    dlv = ExportDeliverer(store, {}, failed_retry_s=0)
    await store_cdr(store, a_cdr(4), ("export:gone",))
    await dlv.deliver_once()
    failed, = store.failed_exports()
    assert failed.exporter == "gone" and "not configured" in failed.last_error
    assert await dlv.deliver_once() == 0  # failed_retry 0: only on demand
    assert store.outbox_depth() == 1


async def test_amqp_json_cdr_reaches_a_real_rabbitmq_queue(store: CdrStore):
    queue = f"cgrpy_test_{uuid.uuid4().hex[:10]}"
    amqp = profile("mq", "*amqp_json_cdr", f"{AMQP}?queue_id={queue}")
    dlv = ExportDeliverer(store, {"mq": amqp})
    cdrs = [await store_cdr(store, a_cdr(n), ("export:mq",), cost=f"0.{n}0835")
            for n in (1, 2)]
    await until(lambda: store.outbox_depth() == 0, dlv.deliver_once)
    await dlv.close()
    conn = await aio_pika.connect(AMQP)
    try:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, durable=True)
        got = []
        for _ in range(2):
            msg = await q.get(timeout=5)
            assert msg.content_type == "application/json"
            assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            got.append(msg.body)
            await msg.ack()
        assert await q.get(fail=False) is None  # exactly the two
        await q.delete(if_unused=False, if_empty=False)
    finally:
        await conn.close()
    bodies = sorted((json.loads(b, parse_float=Decimal) for b in got), key=lambda b: b["CGRID"])
    assert [b["CGRID"] for b in bodies] == [c.cgrid for c in cdrs]
    assert [str(b["Cost"]) for b in bodies] == ["0.10835", "0.20835"]  # exact text on the wire
    assert [b["OrderID"] for b in bodies] == [c.order_id for c in cdrs]


async def test_amqp_broker_unreachable_is_retried_not_lost(store: CdrStore):
    amqp = profile("mq", "*amqp_json_cdr", "amqp://guest:guest@127.0.0.1:1/?queue_id=nowhere",
                   attempts=1)
    dlv = ExportDeliverer(store, {"mq": amqp}, failed_retry_s=3600, timeout_s=2)
    await store_cdr(store, a_cdr(5), ("export:mq",))
    await dlv.deliver_once()
    await dlv.close()
    failed, = store.failed_exports()
    assert failed.exporter == "mq" and failed.last_error.startswith("amqp nowhere")


@pytest.mark.postgres
async def test_two_replicas_on_one_postgres_never_post_a_row_twice(pg_url: str):
    engines = [make_engine(pg_url) for _ in range(2)]
    Base.metadata.create_all(engines[0])
    stores = [CdrStore(e) for e in engines]
    try:
        with Receiver() as rx:
            web = profile("web", "*http_json_cdr", rx.url)
            for n in range(1, 121):
                await store_cdr(stores[0], a_cdr(n), ("export:web",))
            dlvs = [ExportDeliverer(s, {"web": web}, batch=10) for s in stores]

            async def drain(d: ExportDeliverer) -> None:
                while stores[0].outbox_depth():
                    await d.deliver_once()

            await asyncio.wait_for(asyncio.gather(*(drain(d) for d in dlvs)), 60)
            for d in dlvs:
                await d.close()
        per_cgrid = Counter(json.loads(p.body)["CGRID"] for p in rx.posts)
        assert len(per_cgrid) == 120 and set(per_cgrid.values()) == {1}
        assert all(d.delivered > 0 for d in dlvs)  # both replicas took part
    finally:
        for s in stores:
            s.close()
        for e in engines:
            e.dispose()


def test_exporter_configuration_is_checked():
    good = {"web": profile("web", "*http_post", "http://127.0.0.1:1/x", attempts=3,
                           synchronous=True),
            "file": profile("file", "*file_csv", "/tmp")}
    assert check_exporters(["web"], good)["web"].attempts == 3
    with pytest.raises(ExportError, match="no CDRe profile 'nope'"):
        check_exporters(["nope"], good)
    with pytest.raises(ExportError, match="not one of"):
        check_exporters(["file"], good)
    with pytest.raises(ExportError, match="needs an export_path"):
        profile("x", "*http_json_cdr", "")
    with pytest.raises(ExportError, match="attempts must be an integer"):
        profile("x", "*http_json_cdr", "http://h/", attempts="3")
    with pytest.raises(ExportError, match="not an amqp"):
        check_exporters(["mq"], {"mq": profile("mq", "*amqp_json_cdr", "http://h/")})
    t = parse_amqp_url("amqp://u:p@mq:5672/vh?queue_id=q1&exchange=ex&exchange_type=fanout"
                       "&routing_key=rk&heartbeat=30")
    assert (t.url, t.queue_id, t.exchange, t.exchange_type, t.routing_key) == (
        "amqp://u:p@mq:5672/vh?heartbeat=30", "q1", "ex", "fanout", "rk")
    assert parse_amqp_url("amqp://mq/").queue_id == "cgrates_cdrs"


async def test_amqp_exchange_and_routing_key_from_the_url(store: CdrStore):
    u = uuid.uuid4().hex[:10]
    queue, exchange = f"cgrpy_test_{u}", f"cgrpy_test_ex_{u}"
    amqp = profile("mq", "*amqp_json_cdr",
                   f"{AMQP}?queue_id={queue}&exchange={exchange}&exchange_type=direct"
                   "&routing_key=cdr")
    dlv = ExportDeliverer(store, {"mq": amqp})
    cdr = await store_cdr(store, a_cdr(9), ("export:mq",))
    await until(lambda: store.outbox_depth() == 0, dlv.deliver_once)
    await dlv.close()
    conn = await aio_pika.connect(AMQP)
    try:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, durable=True)
        msg = await q.get(timeout=5)
        await msg.ack()
        assert (msg.exchange, msg.routing_key) == (exchange, "cdr")
        assert json.loads(msg.body)["CGRID"] == cdr.cgrid
        await q.delete(if_unused=False, if_empty=False)
        await ch.exchange_delete(exchange)
    finally:
        await conn.close()
