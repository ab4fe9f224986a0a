"""Helpers shared by the StatS, ThresholdS and SupplierS engines: CSV cell parsing and the
common profile selection of profile-subsystems §3 (activation interval, filters, weight order,
blocker cut).

Kept here until FilterS's generic selection (``cgrpy/filters/selection.py``) lands; the engines
only depend on :func:`select_profiles` and the ``Passes`` callable type, so swapping the
candidate lookup for the filter index later does not touch them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from cgrpy.event import CGREvent
from cgrpy.units import parse_decimal, parse_time


class Passes(Protocol):
    """FilterS's ``passes(tenant, filter_ids, event, *, now=None) -> bool``."""

    def __call__(
        self, tenant: str, filter_ids: list[str], event: CGREvent, *, now: datetime | None = None
    ) -> bool: ...


class ProfileError(ValueError):
    """A tariff-plan row could not be turned into a profile; the message names file, ID, column."""


def split_list(cell: str | None) -> list[str]:
    """``a;b;;c`` -> ``[a, b, c]`` (CGRateS drops empty items)."""
    if not cell:
        return []
    return [p.strip() for p in cell.split(";") if p.strip()]


def parse_bool(cell: str | None, *, where: str) -> bool:
    s = (cell or "").strip().lower()
    if s in ("", "false", "0", "f"):
        return False
    if s in ("true", "1", "t"):
        return True
    raise ProfileError(f"{where}: not a boolean: {cell!r}")


def parse_int(cell: str | None, *, where: str, empty: int = 0) -> int:
    s = (cell or "").strip()
    if s == "":
        return empty
    try:
        return int(s)
    except ValueError:
        raise ProfileError(f"{where}: not an integer: {cell!r}") from None


def parse_weight(cell: str | None, *, where: str) -> Decimal:
    try:
        return parse_decimal(cell)
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ActivationInterval:
    """Both bounds exclusive; ``None`` = open (spec §1.4)."""

    activation: datetime | None = None
    expiry: datetime | None = None

    def contains(self, t: datetime) -> bool:
        return (self.activation is None or self.activation < t) and (
            self.expiry is None or self.expiry > t
        )


def parse_activation(cell: str | None, *, where: str) -> ActivationInterval | None:
    """``2014-07-29T15:00:00Z`` or ``start;end``; empty -> no interval."""
    s = (cell or "").strip()
    if not s:
        return None
    parts = s.split(";")
    try:
        start = parse_time(parts[0])
        end = parse_time(parts[1]) if len(parts) > 1 else None
    except ValueError as exc:
        raise ProfileError(f"{where}: ActivationInterval {cell!r}: {exc}") from None
    return ActivationInterval(start, end)


class SelectableProfile(Protocol):
    tenant: str
    id: str
    filter_ids: list[str]
    activation: ActivationInterval | None
    weight: Decimal
    blocker: bool


P = TypeVar("P", bound=SelectableProfile)


def select_profiles(
    candidates: Iterable[P],
    event: CGREvent,
    passes: Passes,
    *,
    now: datetime | None = None,
    use_blocker: bool = True,
) -> list[P]:
    """Candidates that are active and pass their filters, weight descending, cut after a blocker.

    Weight ties keep ID order (v0.10 leaves them to map order, spec §3.3/§11.15). As in v0.10 the
    activation interval is only checked when the event carries a Time (§1.4).
    """
    kept: list[P] = []
    for p in candidates:
        if p.tenant != event.tenant:
            continue
        if p.activation is not None and event.time is not None and not p.activation.contains(
            event.time
        ):
            continue
        if not passes(p.tenant, list(p.filter_ids), event, now=now):
            continue
        kept.append(p)
    kept.sort(key=lambda p: p.id)
    kept.sort(key=lambda p: p.weight, reverse=True)
    if use_blocker:
        for i, p in enumerate(kept):
            if p.blocker:
                return kept[: i + 1]
    return kept


def group_rows(
    rows: Sequence[dict[str, str]], id_column: str
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Rows of one profile file grouped by (Tenant, ID), in file order."""
    out: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        tenant = (row.get("Tenant") or "").strip()
        pid = (row.get(id_column) or "").strip()
        if not tenant or not pid:
            raise ProfileError(f"row without Tenant/{id_column}: {row!r}")
        out.setdefault((tenant, pid), []).append(row)
    return out


Clock = Callable[[], datetime]

# Optional filter-index lookup (e.g. ``cgrpy.filters.selection.ProfileIndex.candidate_ids``):
# (tenant, event) -> candidate profile IDs. Without it every profile of the tenant is a candidate
# (CGRateS ``indexed_selects = false``); with it the v0.10 index semantics of §3.1 apply.
CandidateIDs = Callable[[str, CGREvent], set[str]]
