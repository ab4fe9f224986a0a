"""No float on the money path: rate many calls on all four plans with Decimal's FloatOperation
trap on (mixing a float into Decimal raises) and walk every result for float instances."""

from __future__ import annotations

import dataclasses
import decimal
from datetime import UTC, datetime, tzinfo
from typing import Any

import pytest

from cgrpy.event import dumps_exact
from cgrpy.tariffplan.csvread import read_folder
from services.rals.rating import CallDescriptor, RatingData, RatingError, get_cost, rating_max_usage
from tests.conftest import TARIFFPLANS

S = 1_000_000_000
STARTS = [
    datetime(2014, 8, 4, 7, 59, 30, tzinfo=UTC),  # Monday, before peak
    datetime(2014, 8, 4, 18, 59, 50, tzinfo=UTC),  # peak -> evening
    datetime(2014, 8, 9, 23, 59, 45, tzinfo=UTC),  # Saturday -> Sunday midnight
    datetime(2012, 2, 2, 17, 59, tzinfo=UTC),
]
USAGES = [0, 1, 20 * S, 85 * S, 3600 * S + 7 * S]

CASES: dict[str, list[tuple[str, str, str, str, str]]] = {
    # (tenant, category, subject, destination, tor)
    "tutorial": [
        ("cgrates.org", "call", a, d, "*voice") for a in ("1001", "1002", "1003") for d in ("1001", "1002", "1003", "10")
    ] + [("cgrates.org", "sms", "1001", "1002", "*sms")],
    "oldtutorial": [
        ("cgrates.org", "call", s, d, "*voice") for s in ("1001", "1002", "SPECIAL_1002") for d in ("1002", "1003", "1007", "1009")
    ] + [("cgrates.org", "data", "1001", "", "*data"), ("cgrates.org", "generic", "x", "", "*generic")],
    "testtp": [
        ("cgrates.org", "call", s, d, "*voice") for s in ("1001", "free") for d in ("+4915123", "+4930", "+33")
    ] + [("cgrates.org", "data", "datar", "222", "*data"), ("cgrates.org", "sms", "x", "1", "*sms")],
    "engine_libtest": [
        ("vdf", "0", s, d, "*voice") for s in ("rif", "minu", "fall", "one", "inf", "nobody") for d in ("0256", "49", "0723")
    ] + [("cgrates.org", "call", s, d, "*voice") for s in ("dy", "max", "round", "x") for d in ("0723", "444", "447956")]
    + [("test", "0", "trp", "0256", "*voice"), ("cgrates.org", "data", "rif", "", "*data")],
}


def walk_no_float(obj: Any, path: str = "cc", seen: set[int] | None = None) -> int:
    """Count visited leaves; fail on any float."""
    seen = set() if seen is None else seen
    assert not isinstance(obj, float), f"float at {path}: {obj!r}"
    if isinstance(obj, str | int | bool | decimal.Decimal | datetime | tzinfo) or obj is None:
        return 1
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if dataclasses.is_dataclass(obj):
        return sum(walk_no_float(getattr(obj, f.name), f"{path}.{f.name}", seen) for f in dataclasses.fields(obj))
    if isinstance(obj, dict):
        return sum(walk_no_float(v, f"{path}[{k!r}]", seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return sum(walk_no_float(v, f"{path}[{i}]", seen) for i, v in enumerate(obj))
    raise AssertionError(f"unexpected type at {path}: {type(obj)}")


@pytest.mark.parametrize("plan", list(CASES))
def test_no_float_anywhere(plan):
    with decimal.localcontext() as ctx:
        ctx.traps[decimal.FloatOperation] = True
        data = RatingData.from_rows(read_folder(TARIFFPLANS / plan))
        walk_no_float(data, "data")
        rated = 0
        for tenant, category, subject, dest, tor in CASES[plan]:
            for start in STARTS:
                for usage in USAGES:
                    for g in (5, 6):
                        cd = CallDescriptor(
                            tenant=tenant, category=category, subject=subject, destination=dest,
                            tor=tor, time_start=start, usage_ns=usage,
                            duration_index_ns=usage + (60 * S if g == 6 else 0), loop_index=g - 5,
                        )
                        try:
                            cc = get_cost(data, cd, rounding_decimals=g)
                            rating_max_usage(data, cd, rounding_decimals=g)
                        except RatingError:
                            continue
                        rated += 1
                        walk_no_float(cc)
                        ec = cc.to_event_cost()
                        walk_no_float(ec, "event_cost")
                        walk_no_float(cc.event_cost_amount(), "event_cost_amount")
                        dumps_exact(ec)  # refuses floats too
                        assert isinstance(cc.cost, decimal.Decimal)
                        assert all(isinstance(ts.cost, decimal.Decimal) for ts in cc.timespans)
        assert rated > 20, f"only {rated} calls were rateable on {plan}"


def test_trap_is_live():
    with decimal.localcontext() as ctx:
        ctx.traps[decimal.FloatOperation] = True
        with pytest.raises(decimal.FloatOperation):
            decimal.Decimal("0.1") + decimal.Decimal(0.1)

