"""The event loop every service process runs on.

uvloop (libuv) by default: the services spend most of their CPU moving small messages (gRPC
stream reads and writes, OpenSIPS frames, thread hand-offs of the group-commit writers), and
uvloop's scheduler, timers, futures' wake-ups and socket transports cost less per message than the
standard library's pure-Python loop. grpc.aio drives its completion queue from any asyncio loop
(it only needs ``add_reader`` and ``call_soon_threadsafe``), so nothing else changes.
``event_loop = asyncio`` keeps the standard loop (debugging, a platform without uvloop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for ``asyncio.Runner``; None = the standard library's loop."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name == "asyncio":
        return None
    raise ValueError(f"unknown event loop {name!r} (uvloop or asyncio)")


def run(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """``asyncio.run(main)`` on the named loop."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)
