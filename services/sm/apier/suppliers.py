"""SupplierS over JSON-RPC: ``SupplierSv1.GetSuppliers``."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import suppliers_pb2
from cgrpy.event import loads_exact
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


@method("SupplierSv1.GetSuppliers")
async def get_suppliers(ctx: Context, a: Args) -> Any:
    max_cost = a.get("MaxCost")
    req = suppliers_pb2.GetSuppliersRequest(
        event=ctx.event(a), max_cost="" if max_cost in (None, "") else str(max_cost),
        ignore_errors=bool(a.bool("IgnoreErrors")), limit=a.int("Limit") or 0, offset=a.int("Offset") or 0,
    )
    res = await ctx.backends.call("suppliers", "GetSuppliers", req)
    return loads_exact(res.json)
