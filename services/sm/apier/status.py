"""Liveness and status: the ``*Sv1.Ping`` family and ``CoreSv1.Status``."""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrpy.errors import CGRError
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, Context, Handler, method

# *Sv1.Ping -> the service whose health decides the answer (None: answered by SM itself).
PINGS: dict[str, str | None] = {
    "CoreSv1.Ping": None, "APIerSv1.Ping": None, "APIerSv2.Ping": None,
    "SessionSv1.Ping": None, "RALsV1.Ping": "rals", "ResponderSv1.Ping": "rals",
    "AttributeSv1.Ping": "attributes", "ChargerSv1.Ping": "chargers", "CDRsV1.Ping": "cdre",
    "CDRsV2.Ping": "cdre", "SupplierSv1.Ping": "suppliers", "StatSv1.Ping": "stats",
    "ThresholdSv1.Ping": "thresholds",
}


def _ping(service: str | None) -> Handler:
    async def ping(ctx: Context, a: Args) -> Any:
        if service is not None:
            status = await ctx.backends.health(service)
            if status != "SERVING":
                raise CGRError("SERVER_ERROR", f"{service} {status}")
        return "Pong"
    return ping


for _name, _svc in PINGS.items():
    METHODS[_name] = _ping(_svc)


def unix_date(t: datetime) -> str:
    """Go's ``time.UnixDate`` layout (``Mon Jan _2 15:04:05 MST 2006``, the day space-padded),
    in UTC: how v0.10 prints RunningSince."""
    t = t.astimezone(UTC)
    return f"{t:%a %b} {t.day:2d} {t:%H:%M:%S} UTC {t.year}"


def _size(nbytes: int) -> str:
    """CGRateS ``utils.SizeFmt``: 1024-based with one decimal, e.g. ``12.3MiB``."""
    value = Decimal(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value.quantize(Decimal('0.1'))}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


@method("CoreSv1.Status")
async def core_status(ctx: Context, a: Args) -> Any:
    """CGRateS's keys (NodeID, MemoryUsage, ActiveGoroutines, Footprint, Version, RunningSince,
    GoVersion) with Python's equivalents, plus ``Services``: the gRPC health of each service."""
    names = list(shapes_services())
    states = await asyncio.gather(*(ctx.backends.health(n) for n in names))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "NodeID": platform.node(),
        "MemoryUsage": _size(rss),
        "ActiveGoroutines": len(asyncio.all_tasks()),
        "Footprint": _size(rss),
        "Version": "cgrpy (CGRateS v0.10 API)",
        "RunningSince": unix_date(ctx.started),
        "GoVersion": f"python{sys.version.split()[0]}",
        "PID": os.getpid(),
        "Services": dict(zip(names, states, strict=True)),
    }


def shapes_services() -> tuple[str, ...]:
    return ("attributes", "chargers", "rals", "suppliers", "stats", "thresholds", "cdre", "resources")
