"""Decoding JSON that comes from outside (OpenSIPS, the CGRateS JSON-RPC API) within bounds.

The stdlib decoder is linear in its input but not everything about a decoded value is cheap:
``Decimal`` of a 1 MiB number literal takes a tenth of a second, a value nested a few hundred
levels deep makes every recursive consumer (the encoder, protobuf conversion, the session
store) hit Python's recursion limit later, in places that cannot answer the sender, and nesting
deeper than the limit makes the decoder itself raise ``RecursionError``. So:

- a number literal longer than :data:`MAX_NUMBER_LITERAL` characters is refused while decoding
  (before ``Decimal`` sees it; integers longer than that are refused too);
- a value nested deeper than :data:`MAX_JSON_DEPTH` levels is refused, whether the decoder
  noticed (``RecursionError``) or the check after it did.

Both raise :class:`JSONLimitError` (a ``ValueError``), so callers answer it like invalid JSON.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

MAX_JSON_DEPTH = 64  # an OpenSIPS event is 2-3 levels deep, a CDR with CostDetails about 8
MAX_NUMBER_LITERAL = 100  # characters of one JSON number (money and durations need < 40)


class JSONLimitError(ValueError):
    """JSON that is well-formed but beyond the bounds above; the message says which."""


def _number(text: str) -> str:
    return f"number literal of {len(text)} characters (at most {MAX_NUMBER_LITERAL}): {text[:20]}..."


def _bounded_decimal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_LITERAL:
        raise JSONLimitError(_number(text))
    return Decimal(text)


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_LITERAL:
        raise JSONLimitError(_number(text))
    return int(text)


# Fractions become Decimal (never float), as everywhere in cgrpy; integers stay int.
DECODER = json.JSONDecoder(parse_float=_bounded_decimal, parse_int=_bounded_int)
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def too_deep(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True if ``value`` nests lists/objects deeper than ``max_depth`` (iterative: a deep value
    must not make the check itself recurse)."""
    if type(value) not in (dict, list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


def raw_decode(text: str, start: int) -> tuple[Any, int]:
    """``DECODER.raw_decode`` within the bounds; raises ``ValueError`` (plain for invalid JSON,
    :class:`JSONLimitError` for out of bounds)."""
    try:
        value, end = DECODER.raw_decode(text, start)
    except RecursionError:
        raise JSONLimitError(TOO_DEEP) from None
    # a value can only be deeper than the limit if it has more brackets than the limit: the
    # count runs in C and spares the walk for every ordinary message
    if text.count("{", start, end) + text.count("[", start, end) > MAX_JSON_DEPTH and too_deep(value):
        raise JSONLimitError(TOO_DEEP)
    return value, end


def loads(text: str | bytes) -> Any:
    """``json.loads`` within the bounds (whitespace around the value allowed)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip())
    value, end = raw_decode(text, start)
    if text[end:].strip():
        raise ValueError(f"Extra data: line 1 column {end + 1} (char {end})")
    return value
