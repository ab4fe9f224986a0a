"""ThresholdS over JSON-RPC: ``ThresholdSv1.ProcessEvent`` and the threshold reads."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import thresholds_pb2
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method, tenant_id, tenant_request


@method("ThresholdSv1.ProcessEvent")
async def thresholds_process(ctx: Context, a: Args) -> Any:
    req = thresholds_pb2.ThresholdsProcessEventRequest(event=ctx.event(a), threshold_ids=a.strs("ThresholdIDs"))
    return list((await ctx.backends.call("thresholds", "ProcessEvent", req)).ids)


@method("ThresholdSv1.GetThreshold")
async def thresholds_get(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("thresholds", "GetThreshold", tenant_id(ctx, a)))


@method("ThresholdSv1.GetThresholdIDs")
async def thresholds_ids(ctx: Context, a: Args) -> Any:
    return list((await ctx.backends.call("thresholds", "GetThresholdIDs", tenant_request(ctx, a))).ids)


@method("ThresholdSv1.GetThresholdsForEvent")
async def thresholds_for_event(ctx: Context, a: Args) -> Any:
    req = thresholds_pb2.ThresholdsProcessEventRequest(event=ctx.event(a), threshold_ids=a.strs("ThresholdIDs"))
    return shapes.json_object(await ctx.backends.call("thresholds", "GetThresholdsForEvent", req))
