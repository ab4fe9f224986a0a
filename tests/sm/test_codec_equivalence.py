"""The raw_decode stream decoder gives what the byte-by-byte bracket scan it replaced gave.

``_ReferenceDecoder`` is that scan, kept here as the oracle: both decoders get the same inputs
(every replayed trace, garbage, invalid JSON and invalid UTF-8 between frames) cut into the same
random pieces, and must return the same values and the same bad frames in the same order.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cgrpy.event import loads_exact
from services.sm.opensips.codec import BadFrame, StreamDecoder
from tests.conftest import TRACES

_OPEN, _CLOSE = {ord("{"), ord("[")}, {ord("}"), ord("]")}
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_WS = {ord(" "), ord("\t"), ord("\r"), ord("\n")}


class _ReferenceDecoder:
    """The previous decoder: a byte-by-byte scan counting brackets outside strings."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.depth, self.in_string, self.escape = 0, False, False
        self.pos = 0  # next byte to scan

    def feed(self, data: bytes) -> list[Any]:
        self.buf += data
        buf, out = self.buf, []
        i = self.pos
        while i < len(buf):
            b = buf[i]
            if self.depth == 0:
                if b in _WS:
                    del buf[: i + 1]
                    i = 0
                    continue
                if b not in _OPEN:
                    j = i
                    while j < len(buf) and buf[j] not in _OPEN:
                        j += 1
                    out.append(BadFrame(bytes(buf[:j]), "not a JSON object"))
                    del buf[:j]
                    i = 0
                    continue
                self.depth = 1
            elif self.in_string:
                if self.escape:
                    self.escape = False
                elif b == _BACKSLASH:
                    self.escape = True
                elif b == _QUOTE:
                    self.in_string = False
            elif b == _QUOTE:
                self.in_string = True
            elif b in _OPEN:
                self.depth += 1
            elif b in _CLOSE:
                self.depth -= 1
                if self.depth == 0:
                    frame = bytes(buf[: i + 1])
                    del buf[: i + 1]
                    i = 0
                    try:
                        out.append(loads_exact(frame.decode("utf-8")))
                    except (UnicodeDecodeError, ValueError):
                        out.append(BadFrame(frame, "invalid JSON"))
                    continue
            i += 1
        self.pos = i
        return out


def _trace_stream(name: str) -> bytes:
    recs = [json.loads(line) for line in (TRACES / name).read_text().splitlines() if line.strip()]
    raws = "".join(r["raw"] for r in recs if isinstance(r.get("raw"), str)).encode()
    assert raws, name
    return raws


def _normal(values: list[Any]) -> list[Any]:
    """Bad frames as (bytes, kind): the wording differs (the C scanner says where it failed).
    Garbage that arrives in several reads is reported piece by piece, and where a piece ends
    depends on the reads (a split UTF-8 byte waits for the next one): adjacent garbage is joined."""
    out: list[Any] = []
    for v in values:
        if not isinstance(v, BadFrame):
            out.append(v)
            continue
        kind = v.reason.split(":")[0]
        if kind == "not a JSON object" and out and isinstance(out[-1], tuple) and out[-1][1] == kind:
            out[-1] = (out[-1][0] + v.text, kind)
        else:
            out.append((v.text, kind))
    return out


def _feed_in_pieces(dec: Any, data: bytes, rng: random.Random) -> list[Any]:
    out, i = [], 0
    while i < len(data):
        step = rng.choice((1, 2, 3, 7, 50, 400, 5000))
        out += dec.feed(data[i : i + step])
        i += step
    return out


TRACE_FILES = sorted(p.name for p in TRACES.glob("*.jsonl"))
NOISE = [
    b"garbage!", b'{"bad":tru}', b'{"x":"\xff\xfe"}', b'{"s":"a}\\"{[", "n":[1,{"m":2.50}]}',
    b"  \r\n", b'{"esc":"\\\\"}', b"]]", b'{"u":"Zo\xc3\xab \xe2\x82\xac"}', b'[1,2,]', b"\x00\x01",
]


def test_all_seventeen_traces_are_covered() -> None:
    assert len(TRACE_FILES) == 17


@pytest.mark.parametrize("name", TRACE_FILES)
def test_same_values_as_the_reference_scan_for_every_trace(name: str) -> None:
    stream = _trace_stream(name)
    rng = random.Random(name)
    for _ in range(20):
        noisy = b"".join(rng.choice((stream, *NOISE)) for _ in range(8))
        want = _feed_in_pieces(_ReferenceDecoder(), noisy, random.Random(1))
        dec = StreamDecoder()
        got = _feed_in_pieces(dec, noisy, random.Random(1))
        assert _normal(got) == _normal(want)


def test_invalid_utf8_refuses_only_its_own_frame() -> None:
    out = StreamDecoder().feed(b'{"a":"\xff"}{"b":1}')
    assert isinstance(out[0], BadFrame) and out[0].text == b'{"a":"\xff"}'
    assert out[1] == {"b": 1}


def test_escaped_quote_before_a_brace_keeps_the_frame_open() -> None:
    dec = StreamDecoder()
    assert dec.feed(b'{"a":"x\\"}') == [] and dec.pending == 10
    assert dec.feed(b'"}') == [{"a": 'x"}'}] and dec.pending == 0
