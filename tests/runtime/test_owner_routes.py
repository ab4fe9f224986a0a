"""The client half of StatS/ThresholdS owner routing (cgrpy.runtime.owner_routes): which keys a
tenant's events route by, and a batch split by tenant keeping each tenant's order."""

from __future__ import annotations

import asyncio

import pytest

from cgrpy.runtime import owner_routes
from cgrpy.runtime.owner_routes import TenantRoutes, batch_route, per_tenant


async def test_a_tenant_routes_by_its_ids_once_looked_up_and_named_ids_at_once(monkeypatch) -> None:
    asked: list[str] = []

    async def lookup(tenant: str) -> list[str]:
        asked.append(tenant)
        return ["Q1", "Q2"]

    routes = TenantRoutes(lookup)
    assert routes.route("t1", ["X"]) == ("t1:X",)  # named: no lookup needed
    assert asked == []
    assert routes.route("t1") == ()  # not known yet: the rotation; looked up in the background
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert routes.route("t1") == ("t1:Q1", "t1:Q2") and asked == ["t1"]  # asked once per REFRESH_S
    routes.know("t2", ["T"])
    assert routes.route("t2") == ("t2:T",) and asked == ["t1"]
    assert batch_route(routes, "t1", [["A"], [], ["B"], []]) == ("t1:A", "t1:Q1", "t1:Q2", "t1:B")
    monkeypatch.setattr(owner_routes, "REFRESH_S", 0.0)
    routes.route("t1")
    await asyncio.sleep(0)
    assert asked == ["t1", "t1"]
    await routes.close()


async def test_a_batch_goes_per_tenant_in_order_and_a_failure_is_raised_after_all() -> None:
    got: dict[str, list[int]] = {}

    async def send(part: list[tuple[str, int]]) -> None:
        got[part[0][0]] = [n for _, n in part]
        if part[0][0] == "bad":
            raise RuntimeError("down")

    items = [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)]
    await per_tenant(items, lambda i: i[0], send)
    assert got == {"a": [1, 3, 5], "b": [2, 4]}
    got.clear()
    with pytest.raises(RuntimeError):
        await per_tenant([("bad", 1), ("a", 2)], lambda i: i[0], send)
    assert got == {"bad": [1], "a": [2]}  # the other tenant's part was still sent
