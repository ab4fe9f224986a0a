"""Endpoints and codec: TCP objects back to back, HTTP POST /jsonrpc, error words, garbage."""

from __future__ import annotations

import socket

import pytest

from cgrpy.event import loads_exact
from tests.apier.jsonrpc_client import TcpClient, err, http_post, ok

pytestmark = pytest.mark.e2e


def test_ping_every_service(api):
    for name in ("CoreSv1", "APIerSv1", "APIerSv2", "SessionSv1", "AttributeSv1", "ChargerSv1",
                 "CDRsV1", "SupplierSv1", "StatSv1", "ThresholdSv1", "RALsV1", "ResourceSv1"):
        assert ok(api.call(f"{name}.Ping")) == "Pong", name


def test_status_reports_every_service_serving(api):
    st = ok(api.call("CoreSv1.Status"))
    assert set(st) >= {"NodeID", "MemoryUsage", "ActiveGoroutines", "Footprint", "Version", "RunningSince", "GoVersion"}
    assert st["Services"] == {n: "SERVING" for n in
                              ("attributes", "chargers", "rals", "suppliers", "stats", "thresholds", "cdre", "resources")}


def test_unknown_method(api):
    assert err(api.call("APIerSv1.NoSuchThing")) == "rpc: can't find method APIerSv1.NoSuchThing"


def test_tcp_objects_back_to_back_in_one_write_and_split_across_writes(tcp):
    tcp.send_raw(b'{"method":"CoreSv1.Ping","params":[{}],"id":"a"}{"method":"APIerSv1.Ping","params":[{}],"id":"b"}'
                 b'{"method":"StatSv1.Ping","par')
    tcp.send_raw(b'ams":[{}],"id":"c"}')
    got = {r["id"]: r for r in (tcp.read_reply() for _ in range(3))}
    assert got == {i: {"id": i, "result": "Pong", "error": None} for i in "abc"}


def test_tcp_garbage_gets_an_error_and_the_connection_keeps_working(tcp):
    tcp.send_raw(b'{"method": "CoreSv1.Ping", "params": [{}], "id": 1,,}')
    bad = tcp.read_reply()
    assert bad["result"] is None and bad["error"].startswith("SERVER_ERROR: invalid JSON")
    tcp.send_raw(b'{"id": 7, "params": []}')  # no method: not a request
    assert tcp.read_reply()["error"].startswith("SERVER_ERROR")
    assert ok(tcp.call("CoreSv1.Ping")) == "Pong"


def test_tcp_huge_frame_is_refused_without_crashing(suite, tcp):
    tcp.send_raw(b'{"method":"CoreSv1.Ping","params":[{"x":"' + b"A" * (2 << 20))
    try:
        reply = tcp.read_reply()
        assert reply["error"].startswith("SERVER_ERROR: frame larger than")
    except (ConnectionError, OSError):
        pass  # closing the connection is as good
    # the server still serves others
    fresh = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    assert ok(fresh.call("CoreSv1.Ping")) == "Pong"
    fresh.close()


def test_http_errors(suite):
    url = f"http://{suite.env['CGRPY_HTTP_LISTEN']}/jsonrpc"
    status, body = http_post(url, b"not json at all")
    assert status == 200 and loads_exact(body)["error"].startswith("SERVER_ERROR")
    status, _ = http_post(url.replace("/jsonrpc", "/other"), b"{}")
    assert status == 404
    # Too large: the server answers from the headers and closes without reading the body, so
    # send the headers and only the start of the body (a client still writing 2 MiB could meet
    # the closed connection before it reads the 413).
    host, port = suite.env["CGRPY_HTTP_LISTEN"].split(":")
    head = b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 << 20)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + b"{" * 10)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 413 "), data


def test_http_keep_alive_two_requests_on_one_connection(suite):
    host, port = suite.env["CGRPY_HTTP_LISTEN"].split(":")
    body = b'{"method":"CoreSv1.Ping","params":[{}],"id":1}'
    req = b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(req + req)
        data = b""
        while data.count(b'"result":"Pong"') < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
