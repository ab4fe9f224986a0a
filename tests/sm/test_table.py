"""SM's session table: lookups by CGRID and origin, closed sessions expire in close order.

The cost test does not time anything: it swaps the table's dicts for ones that count every walk
over their contents, keeps 100 and then 100,000 closed sessions, and proves ProcessCDR and
Terminate never iterate over the sessions kept (so they cost the same either way).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from cgrpy.event import CGREvent
from services.sm.opensips.messages import cgrid_of
from services.sm.sessions.core import Session, SessionManager, SMConfig
from services.sm.sessions.table import SessionTable, origin_keys
from services.sm.sessions.types import SessionFlags
from tests.sm.fakes import FakeBackends

MS = 1_000_000
FLAGS = SessionFlags(get_max_usage=True)


class WalkCountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts every iteration over its keys, values or items."""

    walks = 0

    def __iter__(self) -> Iterator[Any]:
        WalkCountingDict.walks += 1
        return super().__iter__()

    def values(self) -> Any:
        WalkCountingDict.walks += 1
        return super().values()

    def items(self) -> Any:
        WalkCountingDict.walks += 1
        return super().items()

    def keys(self) -> Any:
        WalkCountingDict.walks += 1
        return super().keys()


def _event(origin: str, **extra: Any) -> CGREvent:
    fields = {"OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "Account": "1001", "Destination": "1002", "AnswerTime": "1795677153"}
    return CGREvent(event=fields | extra)


def _closed_session(origin: str, closed_at: float) -> Session:
    s = Session(cgrid=cgrid_of(_event(origin)), event=_event(origin))
    s.terminating = True
    s.closed_at = closed_at
    s.ready.set()
    s.done.set()
    return s


def _instrumented_sm(kept: int) -> SessionManager:
    sm = SessionManager(FakeBackends(), SMConfig(debit_interval_ns=50 * MS, reply_deadline_s=1.0))
    table = sm._table
    table.active = sm._active = WalkCountingDict()
    table.closed = sm._closed = WalkCountingDict()
    now = time.monotonic()
    for i in range(kept):
        table.add_closed(_closed_session(f"old-{i}@h", now), now)
    return sm


async def _one_call_walks(sm: SessionManager, origin: str) -> int:
    """Initiate, Terminate and ProcessCDR one call; how many walks over the tables they made."""
    assert (await sm.initiate(_event(origin), FLAGS)).error is None
    WalkCountingDict.walks = 0
    assert await sm.terminate(_event(origin, Usage="30ms")) is None
    assert await sm.process_cdr(_event(origin, Usage="30ms")) is None
    return WalkCountingDict.walks


async def test_process_cdr_and_terminate_cost_the_same_with_100_or_100000_closed_kept() -> None:
    small, big = _instrumented_sm(100), _instrumented_sm(100_000)
    assert len(big._closed) == 100_000
    walks_small = await _one_call_walks(small, "new-a@h")
    walks_big = await _one_call_walks(big, "new-b@h")
    assert walks_small == walks_big == 0
    # the call's CDR came from its own session (found through the origin index), not rated raw
    cdrs = big.backends.cdrs  # type: ignore[attr-defined]
    assert [c[1]["chargers"] for c in cdrs] == [False]
    assert len(big._closed) == 100_001  # nothing expired yet: kept 600 s


def test_expiry_pops_only_what_is_due_in_close_order() -> None:
    t = SessionTable()
    sessions = [_closed_session(f"c{i}@h", float(i)) for i in range(10)]
    for s in sessions:
        t.add_closed(s, s.closed_at)
    assert t.expire(older_than=3.5) == [s.cgrid for s in sessions[:4]]
    assert len(t.closed) == 6 and t._expiry[0][1] is sessions[4]
    assert t.by_origin("127.0.0.1", "c1@h") == []
    assert t.by_origin("127.0.0.1", "c5@h") == [sessions[5]]


def test_origin_index_matches_the_bare_call_id_of_tagged_sessions() -> None:
    assert origin_keys("h", "a|b|c") == [("h", "a"), ("h", "a|b"), ("h", "a|b|c")]
    t = SessionTable()
    tagged = Session(cgrid="x", event=_event("call|tag1"))
    other = Session(cgrid="y", event=_event("call2|tag1"))
    t.add_active(tagged)
    t.add_active(other)
    assert t.by_origin("127.0.0.1", "call") == [tagged]
    assert t.by_origin("127.0.0.1", "call|tag1") == [tagged]
    assert t.by_origin("127.0.0.1", "call|tag") == []
    assert t.by_origin("other-host", "call") == []
    t.close(tagged, 1.0)  # still found while kept as closed
    assert t.by_origin("127.0.0.1", "call") == [tagged] and "x" not in t.active


def test_reused_cgrid_keeps_both_sessions_findable_until_the_old_one_expires() -> None:
    t = SessionTable()
    old = _closed_session("dup@h", 1.0)
    t.add_closed(old, 1.0)
    new = Session(cgrid=old.cgrid, event=_event("dup@h"))
    t.add_active(new)
    assert t.by_origin("127.0.0.1", "dup@h") == [old, new]
    t.expire(older_than=2.0)
    assert t.by_origin("127.0.0.1", "dup@h") == [new] and t.get(old.cgrid) is new


def test_reindex_follows_an_origin_rewritten_by_attributes() -> None:
    t = SessionTable()
    s = Session(cgrid="z", event=_event("before@h"))
    t.add_active(s)
    s.event.event["OriginID"] = "after@h"
    t.reindex(s)
    assert t.by_origin("127.0.0.1", "before@h") == []
    assert t.by_origin("127.0.0.1", "after@h") == [s]
