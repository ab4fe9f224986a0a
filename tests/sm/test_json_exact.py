"""``dumps_exact`` through the C encoder writes what the recursive encoder writes, digit for digit.

SM writes every reply to OpenSIPS and every session record with it: Decimals must come out as JSON
numbers with exactly their digits, and a float anywhere must still be refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgrpy.event import _encode, dumps_exact, loads_exact

_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), _decimals,
    st.text(),  # any text, including digits after ":" or "," that look like a float
    st.from_regex(r"[:,\[]-?\d+\.\d+(e-?\d+)?[,\]}]", fullmatch=True),
    st.datetimes(timezones=st.just(UTC)),
)
_trees = st.recursive(
    _leaves,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(alphabet="abcXYZ:,.1 "), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_trees)
def test_same_text_as_the_recursive_encoder(value: Any) -> None:
    assert dumps_exact(value) == _encode(value)


@settings(max_examples=200, deadline=None)
@given(_decimals)
def test_decimal_round_trips_exactly(d: Decimal) -> None:
    back = loads_exact(dumps_exact({"Cost": d}))["Cost"]
    assert Decimal(back) == d


@pytest.mark.parametrize("bad", [1.5, [1e16], {"a": {"b": [0.1]}}, {"x": float("nan")}, float("inf")])
def test_floats_are_still_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match="refusing float"):
        dumps_exact(bad)


def test_text_that_looks_like_a_number_or_a_marker_stays_text() -> None:
    assert dumps_exact({"t": "12:00:00.5", "s": ":1.5,"}) == '{"t":"12:00:00.5","s":":1.5,"}'
    assert dumps_exact(["\x00" + "0" * 16 + ":1.5"]) == '["\\u00000000000000000000:1.5"]'
    assert dumps_exact(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == '"2026-01-02T03:04:05Z"'
    assert dumps_exact(Decimal("1E+3")) == "1000" and dumps_exact(Decimal("-0.000")) == "0"
