"""The CDR spool keeps every accepted CDR until cdre has it, across failures and restarts."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from cgrpy.event import CGREvent
from services.sm.spool import CdrSpool


def _ev(i: int) -> CGREvent:
    return CGREvent("cgrates.org", f"e{i}", None, {"OriginID": f"call-{i}", "Cost": Decimal("0.6"), "Usage": 2_000_000_000})


async def test_spool_survives_failures_and_restart(tmp_path):
    path = tmp_path / "spool.sqlite"
    spool = CdrSpool(path)
    for i in range(3):
        spool.put(_ev(i), {"rals": True})
    await spool.close()  # "crash" before anything was delivered

    delivered: list[tuple[str, Decimal, dict]] = []
    failures = {"left": 2}

    async def deliver(ev: CGREvent, flags: dict) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("cdre down")
        delivered.append((ev.get("OriginID"), ev.get("Cost"), flags))

    spool = CdrSpool(path)
    assert spool.depth() == 3
    spool.start(deliver, max_backoff_s=0.05)
    for _ in range(100):
        if spool.depth() == 0:
            break
        await asyncio.sleep(0.02)
    assert spool.depth() == 0
    # in order, each once, exact money kept
    assert delivered == [(f"call-{i}", Decimal("0.6"), {"rals": True}) for i in range(3)]
    await spool.close()
