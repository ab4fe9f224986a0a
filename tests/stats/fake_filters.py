"""A tiny stand-in for FilterS used by the StatS/ThresholdS/SupplierS engine tests.

Supports named filters from Filters.csv rows and inline filters of the types these tests use:
``*string``, ``*prefix``, ``*exists`` on ``~*req.<Field>``, and ``*gte`` on ``~*vars.<key>``
(SupplierS sorting data, passed as ``extra_roots={"*vars": data}`` like FilterS's ``passes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cgrpy.event import CGREvent


def _text(v: Any) -> str:
    if isinstance(v, Decimal):
        return format(v.normalize(), "f")
    return str(v)


class FakeFilters:
    def __init__(self, filter_rows: list[dict[str, str]] | None = None) -> None:
        self.named: dict[tuple[str, str], list[tuple[str, str, list[str]]]] = {}
        for r in filter_rows or []:
            rules = self.named.setdefault((r["Tenant"], r["ID"]), [])
            rules.append((r["Type"], r["Element"], [v for v in r["Values"].split(";") if v]))
        self.calls = 0

    def passes(
        self,
        tenant: str,
        filter_ids: list[str],
        event: CGREvent,
        *,
        now: datetime | None = None,
        extra_roots: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> bool:
        vars = (extra_roots or {}).get("*vars", {})
        self.calls += 1
        for fid in filter_ids:
            if fid.startswith("*"):
                ftype, element, values = fid.split(":", 2)
                rules = [(ftype, element, [v for v in values.split(";") if v])]
            else:
                rules = self.named[(tenant, fid)]
            for ftype, element, values in rules:
                if not self._rule(ftype, element, values, event, vars):
                    return False
        return True

    @staticmethod
    def _rule(
        ftype: str, element: str, values: list[str], event: CGREvent, vars: Mapping[str, Any]
    ) -> bool:
        root, _, name = element.lstrip("~").partition(".")
        src = event.event if root == "*req" else vars
        if ftype == "*exists":
            return name in src
        if name not in src:
            return False
        v = src[name]
        if ftype == "*string":
            return _text(v) in values
        if ftype == "*prefix":
            return any(_text(v).startswith(p) for p in values)
        if ftype == "*gte":
            return any(Decimal(_text(v)) >= Decimal(x) for x in values)
        raise AssertionError(f"fake filters: unsupported {ftype}")
