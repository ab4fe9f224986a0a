"""Filter objects, inline filters and FilterS ``Pass`` (docs/profiles.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cgrpy.event import CGREvent
from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.errors import FilterError, FilterNotFound
from cgrpy.filters.paths import DataProvider, Remotes
from cgrpy.filters.types import (
    EvalContext,
    FilterRule,
    Timing,
    compile_rule,
    reverse_destinations,
    rule_passes,
)
from cgrpy.tariffplan.columns import TariffPlanRows


@dataclass(frozen=True)
class Filter:
    tenant: str
    id: str
    rules: tuple[FilterRule, ...]
    activation: ActivationInterval | None = None

    def to_dict(self) -> dict[str, Any]:
        """CGRateS ``Filter`` JSON shape."""
        return {
            "Tenant": self.tenant,
            "ID": self.id,
            "Rules": [r.to_dict() for r in self.rules],
            "ActivationInterval": self.activation.to_dict() if self.activation else None,
        }


def is_inline(filter_id: str) -> bool:
    return filter_id.startswith("*")


def parse_inline(text: str, tenant: str = "") -> Filter:
    """``<type>:<element>:<values>`` (values re-joined on ``:``, then split on ``;``)."""
    parts = text.split(":")
    if len(parts) < 3:
        raise FilterError(f"inline parse error for string: {text}")
    values = ":".join(parts[2:]).split(";")
    return Filter(tenant, text, (compile_rule(parts[0], parts[1], values),))


def split_list(cell: str) -> list[str]:
    """A ``;``-list CSV cell; empty cell -> []."""
    cell = (cell or "").strip()
    return [] if cell == "" else [x.strip() for x in cell.split(";")]


def filters_from_rows(rows: Iterable[Mapping[str, str]]) -> list[Filter]:
    """Filters.csv rows -> Filters; rows with the same Tenant+ID merge (one rule per row).

    Unlike the v0.10 loader, a malformed ``*rsr`` value or ActivationInterval is refused here
    with the row named, instead of failing each request that evaluates the filter.
    """
    order: list[tuple[str, str]] = []
    rules: dict[tuple[str, str], list[FilterRule]] = {}
    activation: dict[tuple[str, str], ActivationInterval | None] = {}
    for n, r in enumerate(rows, 1):
        tenant, fid = (r.get("Tenant") or "").strip(), (r.get("ID") or "").strip()
        if not tenant or not fid:
            raise FilterError(f"Filters row {n}: Tenant and ID are mandatory")
        key = (tenant, fid)
        if key not in rules:
            order.append(key)
            rules[key] = []
            activation[key] = None
        try:
            ai = ActivationInterval.parse(r.get("ActivationInterval", ""))
            if ai is not None and activation[key] is None:
                activation[key] = ai
            ftype = (r.get("Type") or "").strip()
            if ftype:
                element = (r.get("Element") or r.get("Path") or "").strip()
                rules[key].append(compile_rule(ftype, element, split_list(r.get("Values", ""))))
        except FilterError as exc:
            raise FilterError(f"Filters row {n} ({tenant}:{fid}): {exc}") from None
    return [Filter(t, i, tuple(rules[(t, i)]), activation[(t, i)]) for t, i in order]


def destinations_from_rows(rows: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """Destinations.csv rows (Id, Prefix) -> destination ID -> prefixes."""
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["Id"].strip(), []).append(r["Prefix"].strip())
    return out


class FilterS:
    """Stored filters of all tenants plus the data FilterS needs; immutable once built.

    Inline filters are parsed on first use and cached under their text.
    """

    def __init__(
        self,
        filters: Iterable[Filter] = (),
        *,
        destinations: Mapping[str, list[str]] | None = None,
        timings: Mapping[str, Timing] | None = None,
        remotes: Remotes | None = None,
    ) -> None:
        self._filters: dict[tuple[str, str], Filter] = {(f.tenant, f.id): f for f in filters}
        self._reverse = reverse_destinations(destinations) if destinations is not None else None
        self._timings = dict(timings) if timings is not None else None
        self._remotes = remotes or Remotes()
        self._inline: dict[str, Filter] = {}

    @classmethod
    def from_rows(
        cls,
        filter_rows: list[dict[str, str]],
        *,
        destinations: Mapping[str, list[str]] | None = None,
        timings: Mapping[str, Timing] | None = None,
        remotes: Remotes | None = None,
    ) -> FilterS:
        return cls(filters_from_rows(filter_rows), destinations=destinations, timings=timings,
                   remotes=remotes)

    @classmethod
    def from_tariffplan(cls, rows: TariffPlanRows, *, remotes: Remotes | None = None) -> FilterS:
        """Filters and Destinations of one tariff plan. Its Timings are left out on purpose:
        v0.10 answers ``NOT_IMPLEMENTED`` for every ``*timings`` rule, and the services answer
        as v0.10 does (a profile behind such a rule fails the request with
        ``SERVER_ERROR: NOT_IMPLEMENTED`` instead of silently not matching)."""
        return cls.from_rows(
            rows.get("Filters", []),
            destinations=destinations_from_rows(rows.get("Destinations", [])),
            remotes=remotes,
        )

    def stored(self) -> list[Filter]:
        return list(self._filters.values())

    def get(self, tenant: str, filter_id: str) -> Filter:
        """The filter behind an ID (inline or stored); unknown stored ID -> ``NOT_FOUND:<id>``."""
        if is_inline(filter_id):
            f = self._inline.get(filter_id)
            if f is None:
                f = parse_inline(filter_id, tenant)
                self._inline[filter_id] = f
            return f
        f = self._filters.get((tenant, filter_id))
        if f is None:
            raise FilterNotFound(filter_id)
        return f

    def passes(
        self,
        tenant: str,
        filter_ids: list[str] | tuple[str, ...],
        event: CGREvent | Mapping[str, Any],
        *,
        now: datetime | None = None,
        extra_roots: Mapping[str, Any] | None = None,
    ) -> bool:
        """CGRateS ``FilterS.Pass``: AND over filters and rules, OR over values.

        ``event`` is exposed as ``*req``; ``extra_roots`` adds e.g. ``{"*vars": ...}``.
        Filters inactive at ``now`` (wall clock) are skipped; if all were skipped -> False.
        """
        if not filter_ids:
            return True
        fields = event.event if isinstance(event, CGREvent) else event
        roots: dict[str, Any] = {"*req": fields}
        if extra_roots:
            roots.update(extra_roots)
        dp = DataProvider(roots, tenant, self._remotes)
        now = now or datetime.now(UTC)
        ctx = EvalContext(now, self._reverse, self._timings)
        passed_any = False
        for fid in filter_ids:
            f = self.get(tenant, fid)
            if f.activation is not None and not f.activation.contains(now):
                continue
            for rule in f.rules:
                if not rule_passes(rule, dp, ctx):
                    return False
            passed_any = True
        return passed_any
