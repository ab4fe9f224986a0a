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
import gc
import sys
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


def tune_gc(young_threshold: int, full_threshold: int = 10, middle_threshold: int = 10) -> None:
    """Fewer, cheaper garbage collections; called once a service has loaded its data.

    A service allocates many short-lived containers per message (events, protobufs, futures), so
    with Python's default (a young pass every 700 allocations, a full pass every 100 young ones
    on average) the collector took ~14% of SM's CPU under load, and its full passes, which scan
    every tariff-plan object, profile and session, stall the loop. Reference counting frees
    nearly all of those objects anyway; the collector is only for cycles. ``gc.freeze()`` moves
    what was loaded before serving out of the scans for good; the higher young threshold makes
    passes rarer. Not too high: a pass costs 1-2 µs per object it walks once SM holds thousands
    of calls, so 50,000 meant 60-100 ms stalls (10,000: 9-20 ms). Reloaded data is scanned as
    usual until it dies.

    What arrives while serving (sessions, cached accounts, queued events) cannot be frozen: a
    cycle frozen while alive would never be reclaimed once dead. A full pass walks all of it and
    stalls the loop for 100+ ms with a few thousand calls up (seen with a gc callback in SM and
    RALs under load), which every request waiting on the process feels; ``full_threshold``
    middle passes between full ones (Python: 10) makes those stalls rare. Cyclic garbage that
    reached the old generation waits that much longer to be reclaimed.

    A middle pass walks what survived the last ``middle_threshold`` young passes (Python: 10),
    up to ``young_threshold × (middle_threshold + 1)`` objects. While a process's heap grows
    (calls ramping up) nearly all of them survive, so that product bounds its stall: a lower
    middle threshold makes the passes smaller and more frequent for the same total work.
    """
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, middle_threshold, full_threshold)


def set_switch_interval(ns: int) -> None:
    """The interpreter lock's switch interval of this process (``gil_switch_interval``).

    A service runs its event loop beside writer threads that commit group transactions: after
    each round trip to the database such a thread needs the lock back, and while the loop is
    busy it gets it only when the loop waits for I/O or this interval has passed."""
    sys.setswitchinterval(ns / 1e9)
