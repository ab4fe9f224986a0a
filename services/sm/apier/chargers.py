"""ChargerS over JSON-RPC: ``ChargerSv1.ProcessEvent`` and ``GetChargersForEvent``."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import chargers_pb2
from services.sm.apier import shapes
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


@method("ChargerSv1.ProcessEvent")
async def chargers_process(ctx: Context, a: Args) -> Any:
    res = await ctx.backends.call("chargers", "ProcessEvent", chargers_pb2.ChargersProcessEventRequest(event=ctx.event(a)))
    return [
        {"ChargerSProfile": r.charger_profile, "AttributeSProfiles": list(r.attribute_profiles) or None,
         "AlteredFields": list(r.altered_fields), "CGREvent": shapes.pb_event_json(r.event, ctx.tenant)}
        for r in res.runs
    ]


@method("ChargerSv1.GetChargersForEvent")
async def chargers_for_event(ctx: Context, a: Args) -> Any:
    req = chargers_pb2.ChargersProcessEventRequest(event=ctx.event(a))
    return shapes.json_object(await ctx.backends.call("chargers", "GetChargersForEvent", req))
