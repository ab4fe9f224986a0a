"""Group commit: one writer thread commits, as one transaction, everything that was queued while
its previous commit ran, and each caller waits on its own Future. Durability per reply stays
("a reply means committed") while concurrent writers share one commit; there is no timer, so a
lone write is committed at once.

RALs' journal, cdre's CDR store and SM's CDR spool each keep their own queue, thread and
transaction (their storage differs); the batching and the hand-back to callers live here once.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

T = TypeVar("T")


def drain(
    q: queue.Queue[T | None] | queue.SimpleQueue[T | None], first: T, max_batch: int | None = None
) -> tuple[list[T], bool]:
    """``first`` and whatever else is queued right now (at most ``max_batch`` in all). The bool is
    True when the stop marker (``None``) was met: commit this batch, then end the writer."""
    batch = [first]
    while max_batch is None or len(batch) < max_batch:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is None:
            return batch, True
        batch.append(nxt)
    return batch, False


def settle(fut: Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    """Hand a write's outcome to its caller; a caller that gave up (cancelled) is told nothing."""
    try:
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
    except InvalidStateError:
        pass
