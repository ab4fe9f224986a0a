"""StatS over JSON-RPC: ``StatSv1.ProcessEvent`` and the queue reads."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import stats_pb2
from cgrpy.event import loads_exact
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method, tenant_id, tenant_request


@method("StatSv1.ProcessEvent")
async def stats_process(ctx: Context, a: Args) -> Any:
    req = stats_pb2.StatsProcessEventRequest(event=ctx.event(a), stat_ids=a.strs("StatIDs"))
    return list((await ctx.backends.call("stats", "ProcessEvent", req)).ids)


@method("StatSv1.GetStatQueuesForEvent")
async def stats_queues_for_event(ctx: Context, a: Args) -> Any:
    """StatsArgsProcessEvent -> the IDs of the queues the event would be added to (v0.10's
    []string), nothing counted; NOT_FOUND when none matches."""
    req = stats_pb2.StatsProcessEventRequest(event=ctx.event(a), stat_ids=a.strs("StatIDs"))
    return list((await ctx.backends.call("stats", "GetStatQueuesForEvent", req)).ids)


@method("StatSv1.GetStatQueue")
async def stats_get_queue(ctx: Context, a: Args) -> Any:
    """utils.TenantID -> engine.StatQueue {Tenant, ID, SQItems, SQMetrics, MinItems}."""
    return loads_exact((await ctx.backends.call("stats", "GetStatQueue", tenant_id(ctx, a))).json)


@method("StatSv1.GetQueueStringMetrics")
async def stats_string_metrics(ctx: Context, a: Args) -> Any:
    return dict((await ctx.backends.call("stats", "GetQueueStringMetrics", tenant_id(ctx, a))).metrics)


@method("StatSv1.GetQueueFloatMetrics")
async def stats_float_metrics(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("stats", "GetQueueFloatMetrics", tenant_id(ctx, a))
    return {k: shapes.decimal_or_minus_one(v) for k, v in res.metrics.items()}


@method("StatSv1.GetQueueIDs")
async def stats_queue_ids(ctx: Context, a: Args) -> Any:
    return list((await ctx.backends.call("stats", "GetQueueIDs", tenant_request(ctx, a))).ids)
