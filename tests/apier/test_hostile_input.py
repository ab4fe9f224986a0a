"""Hostile frames against the real listeners of a running suite (:2014 OpenSIPS, :2012 TCP and
:2080 HTTP JSON-RPC): each gets an error reply fast (well under 50 ms of work), changes nothing,
and the connection keeps working where the protocol allows (TCP; HTTP answers and may close).

The corpus holds the frames a fault-injection run found harmful (deep nesting, top-level
arrays, a 20,000-digit Usage, ``1e300000``, ``1e30000000``), truncated frames and wrong types;
Hypothesis adds random JSON events on top."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgrpy.event import dumps_exact, loads_exact
from tests.apier.jsonrpc_client import TcpClient, err, ok

pytestmark = pytest.mark.e2e

LIMIT_S = 0.050


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _osips(method: str, event: str) -> bytes:
    return (f'{{"method":"{method}","params":[{{"Event":{event}}}],"id":1}}').encode()


def _api(method: str, arg: str, rid: int = 1) -> bytes:
    return ('{"method":"' + method + '","params":[' + arg + '],"id":' + str(rid) + "}").encode()


EVENT = '{"OriginID":"h1","OriginHost":"127.0.0.1","Account":"1001","Destination":"1002","Usage":%s}'

# (name, frame, words the error must contain, or None: any answer); each frame is complete (or
# invalid) JSON
OPENSIPS_CORPUS: list[tuple[str, bytes, tuple[str, ...] | None]] = [
    ("nested_deep_200k", _osips("SessionSv1.AuthorizeEvent", f'{{"x":{_deep(100_000)}}}'),
     ("nested deeper than",)),
    ("nested_100", _osips("SessionSv1.AuthorizeEvent", f'{{"x":{_deep(100)}}}'), ("nested deeper than",)),
    ("top_level_array", b'[1,2,3]', ("not a JSON object",)),
    ("top_level_array_of_requests", b'[{"method":"SessionSv1.Ping","params":[{}],"id":1}]', ("not a JSON object",)),
    ("usage_20000_digits_text", _osips("SessionSv1.InitiateSession", EVENT % ('"' + "9" * 20_000 + '"')),
     ("Usage", "too long")),
    ("usage_1e300000", _osips("SessionSv1.InitiateSession", EVENT % "1e300000"), ("Usage", "too large")),
    # short and malformed: SM treats it as no Usage (the default), as before; only the time counts
    ("usage_1e300000_text", _osips("SessionSv1.UpdateSession", EVENT % '"1e300000"'), None),
    ("usage_20000_digit_literal", _osips("SessionSv1.InitiateSession", EVENT % ("9" * 20_000)),
     ("number literal",)),
    ("answer_time_huge", _osips("SessionSv1.InitiateSession",
                                EVENT % ('"1s","AnswerTime":' + "9" * 90)), ("AnswerTime",)),
    # brackets that balance in number but not in kind: complete, and invalid
    ("mismatched_brackets", b'{"method":"SessionSv1.InitiateSession","params":[{"Event":{"a":1]}]}',
     ("invalid JSON",)),
    ("params_string", b'{"method":"SessionSv1.InitiateSession","params":"x","id":2}', ("Event",)),
    ("method_number", b'{"method":7,"params":[{}],"id":3}', ("method",)),
    ("event_list", b'{"method":"SessionSv1.InitiateSession","params":[{"Event":[1]}],"id":4}', ("Event",)),
    ("garbage", b"\x00\xff garbage", ("not a JSON object",)),
]

API_CORPUS: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("nested_deep_200k", _api("APIerSv1.GetCost", f'{{"Tenant":{_deep(100_000)}}}'), ("nested deeper than",)),
    ("nested_100", _api("APIerSv1.GetCost", f'{{"Tenant":{_deep(100)}}}'), ("nested deeper than",)),
    ("getcost_usage_1e300000", _api("APIerSv1.GetCost", '{"Subject":"1001","Destination":"1002",'
                                    '"AnswerTime":"2014-01-14T00:00:00Z","Usage":1e300000}'), ("Usage",)),
    ("getcost_usage_1e1000000_text", _api("APIerSv1.GetCost", '{"Subject":"1001","Destination":"1002",'
                                          '"AnswerTime":"2014-01-14T00:00:00Z","Usage":"1e1000000"}'), ("Usage",)),
    ("getcost_usage_20000_digits", _api("APIerSv1.GetCost", '{"Subject":"1001","Destination":"1002",'
                                        '"Usage":"%s"}' % ("9" * 20_000)), ("Usage", "too long")),
    ("setbalance_1e30000000", _api("APIerSv1.SetBalance", '{"Tenant":"cgrates.org","Account":"1001",'
                                   '"BalanceType":"*monetary","BalanceID":"h","Value":1e30000000}'), ("Value", "too large")),
    ("setbalance_1e-1000000", _api("APIerSv1.SetBalance", '{"Tenant":"cgrates.org","Account":"1001",'
                                   '"BalanceType":"*monetary","BalanceID":"h","Value":1e-1000000}'), ("Value",)),
    ("addbalance_20000_digit_text", _api("APIerSv1.AddBalance", '{"Tenant":"cgrates.org","Account":"1001",'
                                         '"BalanceType":"*monetary","BalanceID":"h","Value":"%s"}' % ("1" * 20_000)), ("Value",)),
    ("cdr_cost_huge", _api("CDRsV1.ProcessEvent", '{"Event":' + EVENT % '"1s","Cost":1e999999' + "}"), ("Cost",)),
    ("top_level_array", b"[1,2,3]", ("SERVER_ERROR",)),
    ("mismatched_brackets", b'{"method":"APIerSv1.GetCost","params":[{"a":1}]]', ("SERVER_ERROR",)),
    ("params_wrong_type", b'{"method":"APIerSv1.GetCost","params":[7],"id":9}', ("params",)),
]


def _floor(fn: Callable[[], Any]) -> float:
    """The best of three round trips of a trivial request on the same connection: what the
    loaded machine costs by itself, allowed on top of the 50 ms (a frame that costs SM seconds
    still fails by far)."""
    return _timed(fn, attempts=3, stop_early=False)[1]


def _timed(fn: Callable[[], Any], attempts: int = 3, stop_early: bool = True) -> tuple[Any, float]:
    """``fn()`` and the shortest time it took over up to ``attempts`` tries (stopping at the
    first under the limit). The machine running the tests is shared and the time includes the
    client sending up to 200 KB: a frame that really costs SM seconds (as the quadratic
    conversions did) is slow every time, a scheduling hiccup is not."""
    best = float("inf")
    out: Any = None
    for _ in range(attempts):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
        if stop_early and best < LIMIT_S:
            break
    return out, best


class OsipsConn:
    """A raw OpenSIPS-side connection to :2014 (replies come in request order)."""

    def __init__(self, addr: str) -> None:
        self.c = TcpClient(addr, timeout=10)

    def exchange(self, frame: bytes) -> Any:
        self.c.send_raw(frame)
        return self.c.read_reply()

    def ping(self) -> None:
        reply = self.exchange(b'{"method":"SessionSv1.Ping","params":[{}],"id":99}')
        assert reply["result"] == "Pong", reply


@pytest.fixture(scope="module")
def osips(suite):
    conn = OsipsConn(suite.env["CGRPY_OPENSIPS_LISTEN"])
    yield conn
    conn.c.close()


def _assert_error(reply: Any, words: tuple[str, ...] | None, took: float, name: str, floor: float = 0.0) -> None:
    assert took < LIMIT_S + floor, f"{name}: reply took {took * 1000:.1f} ms (trivial request: {floor * 1000:.1f} ms)"
    if words is None:
        return
    assert isinstance(reply, dict) and reply.get("result") is None and reply.get("error"), (name, reply)
    for w in words:
        assert w in reply["error"], (name, reply["error"][:300])


@pytest.mark.parametrize("name,frame,words", OPENSIPS_CORPUS, ids=[c[0] for c in OPENSIPS_CORPUS])
def test_opensips_hostile_frame_gets_an_error_fast_and_the_connection_stays(osips, name, frame, words):
    floor = _floor(osips.ping)
    reply, took = _timed(lambda: osips.exchange(frame))
    _assert_error(reply, words, took, name, floor)
    osips.ping()


@pytest.mark.parametrize("name,frame,words", API_CORPUS, ids=[c[0] for c in API_CORPUS])
def test_api_tcp_hostile_frame(tcp, name, frame, words):
    floor = _floor(lambda: tcp.call("CoreSv1.Ping"))
    reply, took = _timed(lambda: (tcp.send_raw(frame), tcp.read_reply())[1])
    _assert_error(reply, words, took, name, floor)
    assert ok(tcp.call("CoreSv1.Ping")) == "Pong"


class RawHttp:
    """HTTP/1.1 keep-alive on one socket: the time measured is the server's, not urllib's."""

    def __init__(self, addr: str) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.sock.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
        while len(self.buf) < length:
            self.buf += self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(head.split(b" ")[1]), body

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by server")
        return data


@pytest.fixture(scope="module")
def raw_http(suite):
    c = RawHttp(suite.env["CGRPY_HTTP_LISTEN"])
    yield c
    c.sock.close()


@pytest.mark.parametrize("name,frame,words", API_CORPUS, ids=[c[0] for c in API_CORPUS])
def test_api_http_hostile_frame(raw_http, name, frame, words):
    floor = _floor(lambda: raw_http.post(_api("CoreSv1.Ping", "{}")))
    (status, body), took = _timed(lambda: raw_http.post(frame))
    assert status == 200, (name, status, body[:200])
    _assert_error(loads_exact(body), words, took, name, floor)
    status, body = raw_http.post(_api("CoreSv1.Ping", "{}"))  # the same connection goes on
    assert loads_exact(body)["result"] == "Pong"


@pytest.mark.parametrize("listen", ["CGRPY_OPENSIPS_LISTEN", "CGRPY_JSONRPC_LISTEN"])
def test_truncated_frame_then_end_of_input_gets_an_error(suite, listen):
    c = TcpClient(suite.env[listen], timeout=10)
    c.send_raw(b'{"method":"SessionSv1.Ping","params":[{"Event":{"a":')
    c.sock.shutdown(socket.SHUT_WR)
    reply = c.read_reply()
    assert reply["result"] is None and "incomplete" in reply["error"], reply
    c.close()


def test_bad_frames_do_not_overtake_or_lose_pending_requests(osips):
    """OpenSIPS pairs replies with requests by order: an error to a bad frame sent between two
    requests must come between their answers, and neither request is lost."""
    ping = b'{"method":"SessionSv1.Ping","params":[{}],"id":1}'
    osips.c.send_raw(ping + _osips("SessionSv1.AuthorizeEvent", f'{{"x":{_deep(5000)}}}') + b"[1]" + ping)
    replies = [osips.c.read_reply() for _ in range(4)]
    assert [r["result"] for r in replies] == ["Pong", None, None, "Pong"], replies
    assert "nested deeper than" in replies[1]["error"] and "not a JSON object" in replies[2]["error"]


def test_refused_balance_changes_nothing(api):
    arg = {"Tenant": "cgrates.org", "Account": "1001"}
    before = ok(api.call("APIerSv2.GetAccount", arg))
    bad = api.call("APIerSv1.SetBalance", {**arg, "BalanceType": "*monetary", "BalanceID": "h",
                                           "Value": "1e30000000"})
    assert "Value" in err(bad)
    assert ok(api.call("APIerSv2.GetAccount", arg)) == before


_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                     st.text(max_size=30), st.sampled_from(["1e300000", "9" * 5000, "-1s", "*unlimited",
                                                             "1h2m", "2014-01-14T00:00:00Z", "1e-99"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=20)
_events = st.fixed_dictionaries({"OriginID": st.text(min_size=1, max_size=10)}, optional={
    k: _values for k in ("Usage", "AnswerTime", "SetupTime", "Cost", "LastUsed", "Account", "Tenant", "x")})
_methods = st.sampled_from(["SessionSv1.AuthorizeEvent", "SessionSv1.UpdateSession",
                            "SessionSv1.ProcessCDR", "SMGenericV1.GetMaxUsage", "SessionSv1.Nope"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=_methods, event=_events)
def test_random_events_always_get_an_answer_and_the_connection_stays(osips, method, event):
    # UpdateSession/ProcessCDR of an unknown call may reach the backends: answers only, no
    # time bound here (the bound is for what SM refuses on its own)
    frame = _osips(method, dumps_exact(event))
    reply = osips.exchange(frame)
    assert isinstance(reply, dict) and ("result" in reply or "error" in reply)
    osips.ping()


def test_a_fresh_connection_still_works_after_the_corpus(suite):
    sock = socket.create_connection(tuple(suite.env["CGRPY_OPENSIPS_LISTEN"].rsplit(":", 1)), timeout=5)
    sock.close()
    conn = OsipsConn(suite.env["CGRPY_OPENSIPS_LISTEN"])
    conn.ping()
    conn.c.close()
