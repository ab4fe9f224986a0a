"""ResourceS over JSON-RPC: ``ResourceSv1.*`` as CGRateS v0.10 answers them.

The argument is ``ArgRSv1ResourceUsage``: the CGREvent's fields (``Tenant``, ``ID``, ``Event``,
or nested under ``CGREvent``), ``UsageID``, ``Units`` (a number, default 1 as SessionS uses) and
``UsageTTL`` (a Go duration; absent = the profile's). Authorize/Allocate answer the allocation
message; Release answers ``OK``; a refusal is the error ``RESOURCE_UNAUTHORIZED`` /
``RESOURCE_UNAVAILABLE``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cgrates.v1 import resources_pb2
from cgrpy.errors import CGRError
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method, tenant_id


def usage_request(ctx: Context, a: Args) -> resources_pb2.ResourceUsageRequest:
    req = resources_pb2.ResourceUsageRequest(event=ctx.event(a), usage_id=a.str("UsageID"))
    units = a.get("Units")
    if units is not None:
        if isinstance(units, bool) or not isinstance(units, int | Decimal | float):
            raise CGRError("INVALID_ARGUMENT", f"Units: expected a number, got {units!r}")
        req.units = float(units)
    if a.get("UsageTTL") is not None:
        req.usage_ttl_ns = a.duration("UsageTTL")
    return req


@method("ResourceSv1.AuthorizeResources")
async def resources_authorize(ctx: Context, a: Args) -> Any:
    return (await ctx.backends.call("resources", "AuthorizeResources", usage_request(ctx, a))).message


@method("ResourceSv1.AllocateResources")
async def resources_allocate(ctx: Context, a: Args) -> Any:
    return (await ctx.backends.call("resources", "AllocateResources", usage_request(ctx, a))).message


@method("ResourceSv1.ReleaseResources")
async def resources_release(ctx: Context, a: Args) -> Any:
    await ctx.backends.call("resources", "ReleaseResources", usage_request(ctx, a))
    return "OK"


@method("ResourceSv1.GetResourcesForEvent")
async def resources_for_event(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("resources", "GetResourcesForEvent", usage_request(ctx, a)))


@method("ResourceSv1.GetResource")
async def resources_get(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("resources", "GetResource", tenant_id(ctx, a)))


@method("ResourceSv1.Ping")
async def resources_ping(ctx: Context, a: Args) -> Any:
    status = await ctx.backends.health("resources")
    if status != "SERVING":
        raise CGRError("SERVER_ERROR", f"resources {status}")
    return "Pong"
