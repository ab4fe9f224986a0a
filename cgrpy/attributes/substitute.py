"""AttributeS substitution types of v0.10 (docs/profiles.md).

Each function turns an attribute's value parsers into the substitute *string* (AttributeS always
writes strings). Errors are FilterError: a dynamic read of a missing field is ``NOT_FOUND``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cgrpy.filters.compare import (
    ConversionError,
    Duration,
    parse_time_detect,
    smart_parse,
    to_duration,
    to_float,
)
from cgrpy.filters.errors import FilterError
from cgrpy.filters.paths import DataProvider
from cgrpy.filters.rsr import RSRParser
from cgrpy.iface import iface_as_string

VALUE_EXPONENT_DECIMALS = 5  # config general.rounding_decimals default

SUBSTITUTION_TYPES = ("*constant", "*variable", "*composed", "", "*usage_difference", "*sum",
                      "*value_exponent", "*sipcid")


def _texts(parsers: Sequence[RSRParser], dp: DataProvider) -> list[str]:
    return [p.text_value(dp) for p in parsers]


def _args_error(rule_text: str) -> FilterError:
    return FilterError(f"invalid arguments <{rule_text}>")


def substitute(type_: str, parsers: Sequence[RSRParser], rule_text: str, dp: DataProvider) -> str:
    """The substitute text for one attribute (before ``*composed`` prepends the old value)."""
    if type_ == "*constant":
        # Dynamic parsers contribute nothing: *constant never reads the event.
        return "".join(p.constant for p in parsers if not p.is_dynamic)
    if type_ in ("*variable", "*composed", ""):
        return "".join(_texts(parsers, dp))
    if type_ == "*usage_difference":
        if len(parsers) != 2:
            raise _args_error(rule_text)
        a, b = (_time(t) for t in _texts(parsers, dp))
        return iface_as_string(Duration(_ns(a - b)))
    if type_ == "*sum":
        vals = _texts(parsers, dp)
        if len(vals) < 2:
            raise _args_error(rule_text)
        return iface_as_string(_sum([smart_parse(v) for v in vals]))
    if type_ == "*value_exponent":
        if len(parsers) != 2:
            raise _args_error(rule_text)
        mant_text, exp_text = _texts(parsers, dp)
        try:
            mantissa = to_float(mant_text)
            exponent = int(exp_text)
        except (ConversionError, ValueError):
            raise FilterError(f"invalid value for *value_exponent <{rule_text}>") from None
        q = Decimal(1).scaleb(-VALUE_EXPONENT_DECIMALS)
        return iface_as_string((mantissa.scaleb(exponent)).quantize(q, rounding=ROUND_HALF_UP))
    if type_ == "*sipcid":
        vals = _texts(parsers, dp)
        if not vals:
            raise _args_error(rule_text)
        return ";".join([vals[0], *sorted(v for v in vals[1:] if v != "")])
    raise FilterError(f"unsupported type: <{type_}>")


def _time(text: str) -> datetime:
    try:
        return parse_time_detect(text)
    except ConversionError as exc:
        raise FilterError(str(exc)) from None


def _ns(td: timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000


def _sum(vals: list[object]) -> object:
    """Go ``utils.Sum``: the first operand's type decides how the rest are read."""
    first = vals[0]
    try:
        if isinstance(first, Duration):
            return Duration(sum(int(to_duration(v)) for v in vals))
        if isinstance(first, bool):
            raise FilterError(f"unsupported type for *sum: {iface_as_string(first)}")
        if isinstance(first, int):
            return sum(int(to_float(v)) for v in vals)
        if isinstance(first, Decimal):
            return sum((to_float(v) for v in vals), Decimal(0))
        if isinstance(first, datetime):
            total = first
            for v in vals[1:]:
                total += timedelta(microseconds=int(to_duration(v)) // 1000)
            return total
    except ConversionError as exc:
        raise FilterError(str(exc)) from None
    raise FilterError(f"unsupported type for *sum: {iface_as_string(first)}")
