"""SupplierS sorting strategies (docs/profiles.md): pure functions over collected data.

Each strategy takes the surviving suppliers in profile order with their SortingData and returns
them sorted. Python's sort is stable, so suppliers that tie on every key keep configuration
order (v0.10's unstable sort leaves that to chance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cgrpy.errors import NotFoundError

WEIGHT, LC, HC, QOS, REAS, REDS, LOAD = "*weight", "*lc", "*hc", "*qos", "*reas", "*reds", "*load"
STRATEGIES = (WEIGHT, LC, HC, QOS, REAS, REDS, LOAD)

PDD = "*pdd"
# Defaults for a *qos metric a supplier has no value for: it sorts last.
QOS_MISSING_PDD = Decimal(10_000_000)
QOS_MISSING = Decimal(-1)

SortingData = dict[str, Any]  # Weight/Cost/ResourceUsage/Load/Ratio/metrics: Decimal; RatingPlanID: str


@dataclass
class Candidate:
    supplier_id: str
    parameters: str
    data: SortingData = field(default_factory=dict)


def _w(c: Candidate) -> Decimal:
    return -Decimal(c.data["Weight"])


def by_weight(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    return sorted(cands, key=_w)


def least_cost(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    if not cands:
        raise NotFoundError()
    return sorted(cands, key=lambda c: (Decimal(c.data["Cost"]), _w(c)))


def highest_cost(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    if not cands:
        raise NotFoundError()
    return sorted(cands, key=lambda c: (-Decimal(c.data["Cost"]), _w(c)))


def qos_value(data: SortingData, metric_id: str) -> Decimal:
    if metric_id in data:
        return Decimal(data[metric_id])
    return QOS_MISSING_PDD if metric_id == PDD else QOS_MISSING


def qos(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    """Lexicographic over the listed metrics: higher is better, except ``*pdd`` (lower)."""
    if not cands:
        raise NotFoundError()

    def key(c: Candidate) -> tuple[Decimal, ...]:
        parts = [qos_value(c.data, m) if m == PDD else -qos_value(c.data, m) for m in params]
        return (*parts, _w(c))

    return sorted(cands, key=key)


def resource_ascending(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    return sorted(cands, key=lambda c: (Decimal(c.data["ResourceUsage"]), _w(c)))


def resource_descending(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    return sorted(cands, key=lambda c: (-Decimal(c.data["ResourceUsage"]), _w(c)))


def load_key(data: SortingData) -> tuple[int, Decimal]:
    """(Ratio + Load)/Ratio - 1 = Load/Ratio; a ratio <= 0 sorts after every positive ratio."""
    ratio = Decimal(data["Ratio"])
    if ratio <= 0:
        return (1, Decimal(data["Load"]))
    return (0, Decimal(data["Load"]) / ratio)


def load_distribution(cands: Sequence[Candidate], params: Sequence[str]) -> list[Candidate]:
    return sorted(cands, key=lambda c: (load_key(c.data), _w(c)))


SORTERS: dict[str, Callable[[Sequence[Candidate], Sequence[str]], list[Candidate]]] = {
    WEIGHT: by_weight,
    LC: least_cost,
    HC: highest_cost,
    QOS: qos,
    REAS: resource_ascending,
    REDS: resource_descending,
    LOAD: load_distribution,
}


def parse_ratios(params: Sequence[str], default_ratio: int) -> tuple[dict[str, int], int]:
    """``*load`` SortingParameters ``supplierID:ratio`` (and ``*default:ratio``) -> ratios."""
    ratios: dict[str, int] = {}
    for p in params:
        sid, sep, raw = p.rpartition(":")
        if not sep or not sid:
            raise ValueError(f"*load sorting parameter {p!r}: expected <supplierID>:<ratio>")
        try:
            ratios[sid] = int(raw)
        except ValueError:
            raise ValueError(f"*load sorting parameter {p!r}: ratio is not an integer") from None
    return ratios, ratios.pop("*default", default_ratio)
