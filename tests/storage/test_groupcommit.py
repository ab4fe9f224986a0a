"""The group-commit batching shared by RALs' journal, cdre's store and SM's spool."""

from __future__ import annotations

import queue
from concurrent.futures import Future

from cgrpy.storage.groupcommit import drain, settle


def test_drain_takes_what_is_queued_up_to_the_limit_and_sees_the_stop_marker():
    q: queue.Queue[int | None] = queue.Queue()
    for i in (2, 3, 4):
        q.put(i)
    assert drain(q, 1, max_batch=3) == ([1, 2, 3], False)
    assert drain(q, 9) == ([9, 4], False)
    sq: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    sq.put(2)
    sq.put(None)
    sq.put(5)  # after the stop marker: left for nobody
    assert drain(sq, 1) == ([1, 2], True)


def test_settle_hands_the_outcome_and_ignores_a_caller_that_gave_up():
    ok, bad, gone = Future(), Future(), Future()
    settle(ok, result=7)
    settle(bad, exc=ValueError("x"))
    gone.cancel()
    settle(gone, result=1)
    assert ok.result() == 7 and isinstance(bad.exception(), ValueError) and gone.cancelled()
