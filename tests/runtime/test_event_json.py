"""cgrpy.event's exact JSON: the fast paths give what the slow, obviously exact ones give.

``dumps_exact`` lets the C encoder write and checks its text for floats; ``copy_exact`` copies an
event without a JSON round trip. Both are compared here with the definitions they shortcut: the
recursive encoder ``_encode`` (which refuses floats) and ``loads_exact(dumps_exact(v))``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy import event as ev
from cgrpy.event import CGREvent, copy_exact, dumps_exact, json_roundtrip, loads_exact

# A CDR's CostDetails is an EventCost JSON carried as a string field: its numbers look like floats
# to a scan that does not know where strings start and end.
_COST_DETAILS = json.dumps({"Cost": 0.01, "Usage": 60000000000, "Charges": [{"Units": 1.5e-07}]})

VALUES = [
    {},
    {"a": "x", "n": 1, "b": True, "z": None},
    {"Cost": Decimal("0.0100"), "Usage": 20000000000, "CostDetails": _COST_DETAILS},
    {"t": "2026-12-07 18:24:03.123456789 +0000 UTC", "s": ":1.5,", "q": 'say "1.5", then \\'},
    {"nested": [{"d": Decimal("1.50")}, [Decimal("-0.0"), Decimal("100.000"), Decimal("1E+3")]]},
    {"big": Decimal("123456789012345678901234567890.123456789012345678901234567890")},
    {"unicode": "Zürich ☎", "ctl": "a\nb\tc\u0001", "keyless": ["1.5", "2e5"]},
    {"when": datetime(2026, 12, 7, 18, 0, 0, 120000, tzinfo=UTC)},
    {"tuple": (1, "a", Decimal("2.5"))},
    {1: "int key", "x": [1, 2]},
    [Decimal("0.1"), "0.1", 0, -5, [], {}],
    Decimal("3.14"),
    "1.5",
    7,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_exact_writes_what_the_recursive_encoder_writes(value):
    assert dumps_exact(value) == ev._encode(value)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_copy_exact_gives_what_a_round_trip_gives(value):
    got, want = copy_exact(value), json_roundtrip(value)
    assert got == want
    assert _types(got) == _types(want)  # 100.000 comes back int 100, 1.50 as Decimal 1.5, ...
    assert dumps_exact(got) == dumps_exact(want)


def test_copy_exact_is_deep():
    fields = {"runs": [{"Cost": Decimal("1.5")}], "m": {"k": "v"}}
    copied = copy_exact(fields)
    copied["runs"][0]["Cost"] = Decimal("9")
    copied["m"]["k"] = "changed"
    assert fields == {"runs": [{"Cost": Decimal("1.5")}], "m": {"k": "v"}}


def test_event_copy_keeps_header_and_copies_fields():
    e = CGREvent("t", "id1", None, {"Usage": 10, "Cost": Decimal("0.50"), "When": "now"})
    c = e.copy()
    assert (c.tenant, c.id, c.time) == ("t", "id1", None)
    assert c.event == {"Usage": 10, "Cost": Decimal("0.5"), "When": "now"}
    assert c.event is not e.event


@pytest.mark.parametrize("value", [
    {"x": 1.5}, [0.1], {"a": {"b": [1, 2, 3.0]}}, 1e-07, {"s": _COST_DETAILS, "f": 2.5},
])
def test_floats_are_still_refused(value):
    with pytest.raises(TypeError, match="float"):
        dumps_exact(value)
    with pytest.raises(TypeError, match="float"):
        copy_exact(value)


def test_a_float_looking_string_takes_the_fast_path():
    # CostDetails text has "Cost":0.01 inside a string: not a float, so no slow path is needed.
    out = ev._C_ENCODER.encode({"CostDetails": _COST_DETAILS, "T": "18:24:03.5"})
    assert ev._FLOAT_CANDIDATE.search(out)  # the cheap scan hits ...
    assert not ev._looks_like_float(out)  # ... and the strings are recognised as strings


def test_loads_exact_inverse():
    text = dumps_exact({"c": Decimal("0.0100"), "s": _COST_DETAILS})
    assert loads_exact(text) == {"c": Decimal("0.01"), "s": _COST_DETAILS}


def _types(v):
    if isinstance(v, dict):
        return {k: _types(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_types(x) for x in v]
    return type(v).__name__
