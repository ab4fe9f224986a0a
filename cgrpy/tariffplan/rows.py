"""Tariff-plan cells of the profile files (StatQueueProfiles, Thresholds, Suppliers ...) as the
profile engines read them: lists, booleans, integers, weights, activation intervals, and rows
grouped by profile. A bad cell raises :class:`ProfileError` naming file, ID and column."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from cgrpy.filters.activation import ActivationInterval
from cgrpy.units import parse_decimal, parse_time


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
