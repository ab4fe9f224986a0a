"""AttributeS over JSON-RPC: ``AttributeSv1.ProcessEvent`` and ``GetAttributeForEvent``."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import attributes_pb2
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


def _attr_request(ctx: Context, a: Args) -> attributes_pb2.AttributesProcessEventRequest:
    return attributes_pb2.AttributesProcessEventRequest(
        event=ctx.event(a), context=a.str("Context"), attribute_ids=a.strs("AttributeIDs"),
        process_runs=a.int("ProcessRuns") or 0,
    )


@method("AttributeSv1.ProcessEvent")
async def attributes_process(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("attributes", "ProcessEvent", _attr_request(ctx, a))
    return {
        "MatchedProfiles": list(res.matched_profiles),
        "AlteredFields": list(res.altered_fields),
        "CGREvent": shapes.pb_event_json(res.event, ctx.tenant),
    }


@method("AttributeSv1.GetAttributeForEvent")
async def attributes_for_event(ctx: Context, a: Args) -> Any:
    return shapes.json_object(await ctx.backends.call("attributes", "GetAttributeForEvent", _attr_request(ctx, a)))
