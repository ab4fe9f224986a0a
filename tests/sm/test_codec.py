"""Streaming decoder: split reads, several objects per read, UTF-8 split across reads."""

from __future__ import annotations

import json
from decimal import Decimal

from services.sm.opensips.codec import BadFrame, StreamDecoder
from services.sm.opensips.jsonrpc import (
    Invalid,
    Reply,
    Request,
    classify,
    encode_error,
    encode_result,
)
from tests.conftest import TRACES


def _opensips_stream() -> tuple[bytes, list[dict]]:
    raws = []
    for line in (TRACES / "authorized_call.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["direction"] == "opensips->engine":
            raws.append(rec["raw"])
    return "".join(raws).encode(), [json.loads(r) for r in raws]


def test_split_at_every_byte_of_a_real_conversation() -> None:
    stream, expected = _opensips_stream()
    assert len(expected) == 4
    for cut in range(1, len(stream)):
        dec = StreamDecoder()
        got = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
        assert got == expected, cut
        assert dec.pending == 0


def test_one_byte_at_a_time() -> None:
    stream, expected = _opensips_stream()
    dec = StreamDecoder()
    got = []
    for i in range(len(stream)):
        got += dec.feed(stream[i : i + 1])
    assert got == expected


def test_many_objects_in_one_read_with_and_without_separators() -> None:
    data = b'{"a":1}{"b":2}\n{ "c" : [1,{"d":3}] }  \r\n{"e":"}"}'
    assert StreamDecoder().feed(data) == [{"a": 1}, {"b": 2}, {"c": [1, {"d": 3}]}, {"e": "}"}]


def test_strings_with_braces_escapes_and_json_c_slashes() -> None:
    obj = b'{"x":"a{b}[c]\\"}\\\\","y":"sip:1001@127.0.0.1\\/x"}'
    dec = StreamDecoder()
    assert dec.feed(obj[:9]) == []
    assert dec.feed(obj[9:]) == [{"x": 'a{b}[c]"}\\', "y": "sip:1001@127.0.0.1/x"}]


def test_utf8_split_across_reads() -> None:
    data = '{"Account":"Zoë €"}'.encode()
    for cut in range(1, len(data)):
        dec = StreamDecoder()
        assert dec.feed(data[:cut]) + dec.feed(data[cut:]) == [{"Account": "Zoë €"}]


def test_fractions_are_decimal_never_float() -> None:
    (v,) = StreamDecoder().feed(b'{"MaxUsage":10800.5,"n":3}')
    assert v["MaxUsage"] == Decimal("10800.5") and isinstance(v["n"], int)


def test_garbage_reported_and_decoder_recovers() -> None:
    dec = StreamDecoder()
    out = dec.feed(b'garbage!{"ok":1}{"bad":tru}{"ok":2}')
    assert isinstance(out[0], BadFrame) and out[0].text == b"garbage!"
    assert out[1] == {"ok": 1}
    assert isinstance(out[2], BadFrame) and "invalid JSON" in out[2].reason
    assert out[3] == {"ok": 2}


def test_oversize_frame_is_dropped() -> None:
    dec = StreamDecoder(max_frame=100)
    out = dec.feed(b'{"x":"' + b"a" * 200)
    assert len(out) == 1 and isinstance(out[0], BadFrame)
    assert dec.feed(b'{"y":1}') == [{"y": 1}]


def test_classify_envelopes() -> None:
    req = classify({"method": "SessionSv1.InitiateSession", "id": 5, "params": [{"a": 1}]})
    assert isinstance(req, Request) and req.arg == {"a": 1} and req.id == 5
    assert isinstance(classify({"error": None, "result": "OK", "id": 1}), Reply)
    assert isinstance(classify({"error": None, "result": None, "id": 1}), Invalid)
    assert isinstance(classify({"error": {"code": 1}, "result": None}), Invalid)
    assert isinstance(classify({"method": "X"}), Invalid)
    no_id = classify({"method": "X", "params": [""]})
    assert isinstance(no_id, Request) and not no_id.has_id


def test_encoded_replies_match_cgrates_shape() -> None:
    assert encode_result(448117112) == b'{"id":448117112,"result":"OK","error":null}\n'
    assert encode_result(1, None) == b'{"id":1,"result":"OK","error":null}\n'
    assert (
        encode_error(697311095, "RALS_ERROR:INSUFFICIENT_CREDIT")
        == b'{"id":697311095,"result":null,"error":"RALS_ERROR:INSUFFICIENT_CREDIT"}\n'
    )
