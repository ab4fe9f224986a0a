"""The gRPC server metrics as tallies (``cgrpy.runtime.metrics.RpcMetrics``): what a scrape reads
is what prometheus_client's own counters and histogram would have held, names, labels, bucket
edges and codes (enum or raw value) alike."""

from __future__ import annotations

import threading
import time

import grpc
from prometheus_client import REGISTRY, generate_latest

from cgrpy.runtime.metrics import RpcMetrics

LABELS = {"grpc_type": "unary", "grpc_service": "cgrpy.test.Tallies", "grpc_method": "Count"}


def _value(name: str, **extra: str) -> float | None:
    return REGISTRY.get_sample_value(name, {**LABELS, **extra})


def test_a_scrape_reads_the_tallies_as_prometheus_would_have_counted_them():
    m = RpcMetrics.of("unary", "/cgrpy.test.Tallies/Count")
    assert RpcMetrics.of("unary", "/cgrpy.test.Tallies/Count") is m  # one per label set
    # listed (at zero) from the guard on, before any call
    assert _value("grpc_server_started_total") == 0.0
    assert _value("grpc_server_handling_seconds_count") == 0.0
    m.finish(grpc.StatusCode.OK, m.start())
    m.finish(0, m.start())  # a raw status value counts under the same name
    m.start()
    m.finish(grpc.StatusCode.NOT_FOUND, time.perf_counter() - 0.3)  # lands in the le=0.5 bucket
    assert _value("grpc_server_started_total") == 3.0
    assert _value("grpc_server_handled_total", grpc_code="OK") == 2.0
    assert _value("grpc_server_handled_total", grpc_code="NOT_FOUND") == 1.0
    assert _value("grpc_server_handling_seconds_bucket", le="0.25") == 2.0
    assert _value("grpc_server_handling_seconds_bucket", le="0.5") == 3.0
    assert _value("grpc_server_handling_seconds_bucket", le="+Inf") == 3.0
    assert _value("grpc_server_handling_seconds_count") == 3.0
    assert 0.3 <= _value("grpc_server_handling_seconds_sum") < 1.0
    text = generate_latest(REGISTRY).decode()  # the /metrics endpoint's rendering
    assert ('grpc_server_handled_total{grpc_code="NOT_FOUND",grpc_method="Count",'
            'grpc_service="cgrpy.test.Tallies",grpc_type="unary"} 1.0') in text


def test_a_scrape_from_another_thread_sees_every_finished_call():
    m = RpcMetrics.of("unary", "/cgrpy.test.Tallies/Threads")
    for _ in range(1000):
        m.finish(grpc.StatusCode.OK, m.start())
    seen: list[float | None] = []
    t = threading.Thread(target=lambda: seen.append(REGISTRY.get_sample_value(
        "grpc_server_handled_total", {**LABELS, "grpc_method": "Threads", "grpc_code": "OK"})))
    t.start()
    t.join()
    assert seen == [1000.0]
