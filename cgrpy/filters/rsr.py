"""The RSR mini language (docs/profiles.md): ``~<path>[:s/re/tpl/…][{*conv&…}][(filter&…)]`` or a constant.

Used by ``*rsr`` filter rules (all parsers of a rule must pass) and by attribute values (the
parsers' texts are concatenated).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from cgrpy.filters.compare import (
    Duration,
    comparable_field,
    compare,
    smart_parse,
    to_duration,
    to_float,
)
from cgrpy.filters.errors import FilterError
from cgrpy.filters.paths import MISSING, DataProvider, resolve
from cgrpy.iface import iface_as_string

_SEARCH_REPLACE = re.compile(r":s/(.+?)/(.*?)/")
_GO_TEMPLATE = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


class RSRFilterNotPassing(FilterError):
    """An RSR parser's own filters rejected the value (attribute values raise this)."""


@dataclass(frozen=True)
class SearchReplace:
    pattern: re.Pattern[str]
    template: str

    def apply(self, source: str) -> str:
        # v0.10 expands the template on the first match only and returns just that expansion;
        # no match leaves the source as it is.
        m = self.pattern.search(source)
        if m is None:
            return source
        return _GO_TEMPLATE.sub(lambda t: _expand(t, m), self.template)


def _expand(t: re.Match[str], m: re.Match[str]) -> str:
    if t.group(0) == "$$":
        return "$"
    name = t.group(1) or t.group(2)
    try:
        grp = m.group(int(name)) if name.isdigit() else m.group(name)
    except IndexError:
        return ""  # Go expands an unknown group name to nothing
    return grp or ""


@dataclass(frozen=True)
class Converter:
    name: str
    params: tuple[str, ...]

    def apply(self, v: Any) -> Any:
        n = self.name
        if n == "*duration_seconds":
            return Decimal(int(to_duration(v))) / Decimal(1_000_000_000)
        if n == "*duration_nanoseconds":
            return int(to_duration(v))
        if n == "*duration":
            return to_duration(v)
        if n == "*round":
            return _round(to_float(v), self.params)
        if n == "*multiply":
            return to_float(v) * to_float(self.params[0])
        if n == "*divide":
            return to_float(v) / to_float(self.params[0])
        if n == "*string2hex":
            text = iface_as_string(v)
            return "0x" + text.encode().hex() if text else ""
        if n == "*ip2hex":
            return _ip2hex(iface_as_string(v))
        raise FilterError(f"NOT_IMPLEMENTED:{n}")


def _round(d: Decimal, params: tuple[str, ...]) -> Decimal:
    decimals = int(params[0]) if params and params[0] else 0
    method = params[1] if len(params) > 1 else "*middle"
    rounding = {"*up": ROUND_CEILING, "*down": ROUND_FLOOR}.get(method, ROUND_HALF_UP)
    return d.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)


def _ip2hex(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return ""
    return "0x" + "".join(f"{int(p):02x}" for p in parts)


_CONVERTERS = {"*duration_seconds", "*duration_nanoseconds", "*duration", "*round", "*multiply",
               "*divide", "*ip2hex", "*string2hex", "*libphonenumber"}


def _parse_converter(text: str, rule: str) -> Converter:
    name, *params = text.split(":")
    if name not in _CONVERTERS:
        raise FilterError(f"unsupported converter definition: <{text}> in string: <{rule}>")
    if name in ("*multiply", "*divide") and (not params or params[0] == ""):
        raise FilterError(f"invalid converter value in string: <{text}>")
    return Converter(name, tuple(params))


@dataclass(frozen=True)
class RSRFilter:
    """One atom inside ``(...)``; ``negate`` comes from a leading ``!``."""

    text: str
    negate: bool

    def passes(self, value: str) -> bool:
        return self._positive(value) != self.negate

    def _positive(self, v: str) -> bool:
        t = self.text
        if t == "":
            return True
        if t.startswith("~"):
            return re.search(t[1:], v) is not None
        if t == "^$":
            return v == ""
        for op, name in ((">=", "*gte"), ("<=", "*lte"), (">", "*gt"), ("<", "*lt")):
            if t.startswith(op):
                try:
                    return compare(name, comparable_field(v), smart_parse(t[len(op):]))
                except FilterError:
                    return False  # comparison errors reject the value, they do not abort
        if t.startswith("^") and t.endswith("$"):
            return v == t[1:-1]
        if t.startswith("^"):
            return v.startswith(t[1:])
        if t.endswith("$"):
            return v.endswith(t[:-1])
        return t in v


@dataclass(frozen=True)
class RSRParser:
    """One compiled RSR rule; ``path`` is None for a constant."""

    rule: str
    path: str | None
    constant: str
    search_replace: tuple[SearchReplace, ...]
    converters: tuple[Converter, ...]
    filters: tuple[RSRFilter, ...]

    @property
    def is_dynamic(self) -> bool:
        return self.path is not None

    def raw_value(self, dp: DataProvider) -> Any:
        """Converted value before the filters (MISSING when the field is absent)."""
        if self.path is None:
            v: Any = self.constant
        else:
            v = resolve(self.path, dp)
            if v is MISSING:
                return MISSING
        if self.search_replace:
            text = iface_as_string(v)
            for sr in self.search_replace:
                text = sr.apply(text)
            v = text
        for conv in self.converters:
            v = conv.apply(v)
        return v

    def passes(self, dp: DataProvider) -> bool:
        """The *rsr filter-rule check: field present (or filters exactly ``(^$)``) and filters ok."""
        v = self.raw_value(dp)
        if v is MISSING:
            if len(self.filters) == 1 and self.filters[0] == RSRFilter("^$", False):
                return True
            return False
        text = iface_as_string(v)
        return all(f.passes(text) for f in self.filters)

    def text_value(self, dp: DataProvider) -> str:
        """The parser's output text for attribute values; missing field -> NOT_FOUND error."""
        v = self.raw_value(dp)
        if v is MISSING:
            raise FilterError("NOT_FOUND")
        text = iface_as_string(v)
        if not all(f.passes(text) for f in self.filters):
            raise RSRFilterNotPassing(f"filter not passing: {self.rule} for value: {text}")
        return text


def compile_rsr(rule: str) -> RSRParser:
    """Compile one RSR rule; malformed rules raise FilterError with CGRateS's message."""
    body = rule
    filters: tuple[RSRFilter, ...] = ()
    if not rule.startswith("~"):
        body, filters = _split_filters(rule, rule, 0)
        return RSRParser(rule, None, body, (), (), filters)
    # Dynamic: path, then search/replace blocks, then {converters}, then (filters).
    m = re.match(r"~[^:{(]*", rule)
    path = m.group(0) if m else rule
    pos = len(path)
    srs: list[SearchReplace] = []
    while rule.startswith(":s/", pos):
        sm = _SEARCH_REPLACE.match(rule, pos)
        if sm is None:
            raise FilterError(f"Invalid Search&Replace field rule: <{rule[pos:]}>")
        try:
            srs.append(SearchReplace(re.compile(sm.group(1)), sm.group(2)))
        except re.error as exc:
            raise FilterError(f"invalid regexp in rule <{rule}>: {exc}") from None
        pos = sm.end()
    convs: list[Converter] = []
    if rule.startswith("{", pos):
        end = rule.find("}", pos)
        if end == -1:
            raise FilterError(f"invalid converter terminator in rule: <{rule}>")
        convs = [_parse_converter(c, rule) for c in rule[pos + 1 : end].split("&")]
        pos = end + 1
    rest, filters = _split_filters(rule[pos:], rule, pos)
    if rest:
        raise FilterError(f"invalid RSR rule: <{rule}>")
    return RSRParser(rule, path, "", tuple(srs), tuple(convs), filters)


def _split_filters(text: str, rule: str, offset: int) -> tuple[str, tuple[RSRFilter, ...]]:
    if not text.endswith(")"):
        return text, ()
    start = text.find("(")
    if start == -1:
        return text, ()
    if start == 0 and offset == 0:
        raise FilterError(f"invalid RSRFilter start rule in string: <{rule}>")
    atoms = text[start + 1 : -1].split("&")
    out = []
    for a in atoms:
        neg = a.startswith("!")
        atom = a[1:] if neg else a
        if atom.startswith("~"):
            try:
                re.compile(atom[1:])
            except re.error as exc:
                raise FilterError(f"invalid RSRFilter regexp <{atom}>: {exc}") from None
        out.append(RSRFilter(atom, neg))
    return text[:start], tuple(out)


def split_rsr_list(text: str, sep: str = ";") -> list[str]:
    """Split an RSR list on ``sep``; backtick-quoted parts may contain the separator."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == "`":
            quoted = not quoted
            continue
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def compile_rsr_list(text: str) -> list[RSRParser]:
    """An attribute ``Value``: ``;``-separated parsers (empty text -> no parsers)."""
    if text == "":
        return []
    return [compile_rsr(part) for part in split_rsr_list(text)]


__all__ = ["RSRParser", "RSRFilter", "compile_rsr", "compile_rsr_list", "split_rsr_list",
           "RSRFilterNotPassing", "Duration"]
