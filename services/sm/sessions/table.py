"""SM's session table: every lookup a message needs in O(1), whatever the number of sessions.

Sessions are found by CGRID (Initiate/Update/Terminate) and by (OriginHost, OriginID) (ProcessCDR,
which carries the bare Call-ID even for tagged sessions whose OriginID is ``callid|tag``: each
session is indexed under every ``|``-prefix of its OriginID, so a lookup is one dict access).
Closed sessions are kept for a while for a late ProcessCDR and expire from a queue ordered by
close time, so garbage collection only ever touches what has expired.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.sm.sessions.core import Session

OriginKey = tuple[str, str]  # (OriginHost, OriginID or one of its "|"-prefixes)


def origin_keys(host: str, origin_id: str) -> list[OriginKey]:
    """``a|b|c`` -> keys for ``a``, ``a|b`` and ``a|b|c`` (ProcessCDR may name any of them)."""
    parts = origin_id.split("|")
    return [(host, "|".join(parts[: i + 1])) for i in range(len(parts))]


class SessionTable:
    """``active`` and ``closed`` by CGRID, an origin index over both, a close-time queue."""

    def __init__(self) -> None:
        self.active: dict[str, Session] = {}
        self.closed: dict[str, Session] = {}
        # keyed by id(session): a closed session and a new active one may share a CGRID
        self._by_origin: dict[OriginKey, dict[int, Session]] = {}
        self._indexed: dict[int, tuple[Session, list[OriginKey]]] = {}  # id -> keys it is under
        self._expiry: deque[tuple[float, Session]] = deque()  # (closed_at, session), oldest first

    # --------------------------------------------------------------- origin index

    def _index(self, s: Session) -> None:
        old = self._indexed.get(id(s))
        keys = origin_keys(s.origin_host, s.origin_id)
        if old is not None:
            if old[1] == keys:
                return
            self._unindex(s)
        for k in keys:
            self._by_origin.setdefault(k, {})[id(s)] = s
        self._indexed[id(s)] = (s, keys)

    def _unindex(self, s: Session) -> None:
        entry = self._indexed.pop(id(s), None)
        if entry is None:
            return
        for k in entry[1]:
            bucket = self._by_origin.get(k)
            if bucket is not None:
                bucket.pop(id(s), None)
                if not bucket:
                    del self._by_origin[k]

    def reindex(self, s: Session) -> None:
        """The session's OriginHost/OriginID may have changed (AttributeS): index it anew."""
        if id(s) in self._indexed:
            self._index(s)

    def by_origin(self, host: str, origin_id: str) -> list[Session]:
        """Sessions (active or closed) with this OriginHost whose OriginID is ``origin_id`` or
        starts with ``origin_id|``."""
        bucket = self._by_origin.get((host, origin_id))
        return list(bucket.values()) if bucket else []

    # --------------------------------------------------------------- lifecycle

    def add_active(self, s: Session) -> None:
        old = self.active.get(s.cgrid)
        if old is not None and old is not s and self.closed.get(s.cgrid) is not old:
            self._unindex(old)
        self.active[s.cgrid] = s
        self._index(s)

    def discard_active(self, s: Session) -> None:
        """Drop an active session that is not kept as closed (e.g. replaced after a restart)."""
        if self.active.get(s.cgrid) is s:
            del self.active[s.cgrid]
            self._unindex(s)

    def close(self, s: Session, closed_at: float) -> None:
        """Move an active session to the closed ones (kept until ``expire``)."""
        if self.active.get(s.cgrid) is s:
            del self.active[s.cgrid]
        self.add_closed(s, closed_at)

    def add_closed(self, s: Session, closed_at: float) -> None:
        old = self.closed.get(s.cgrid)
        if old is not None and old is not s and self.active.get(s.cgrid) is not old:
            self._unindex(old)
        self.closed[s.cgrid] = s
        self._expiry.append((closed_at, s))
        self._index(s)

    def expire(self, older_than: float) -> list[str]:
        """Forget closed sessions closed before ``older_than``; returns their CGRIDs. Touches only
        the expired entries (the queue is in close order; a clock step back only delays)."""
        gone = []
        q = self._expiry
        while q and q[0][0] < older_than:
            _, s = q.popleft()
            if self.closed.get(s.cgrid) is not s:
                continue  # replaced by a later close of the same CGRID: its own entry expires it
            del self.closed[s.cgrid]
            if self.active.get(s.cgrid) is not s:
                self._unindex(s)
            gone.append(s.cgrid)
        return gone

    def get(self, cgrid: str) -> Session | None:
        return self.active.get(cgrid) or self.closed.get(cgrid)

    def iter_active(self) -> Iterator[Session]:
        return iter(list(self.active.values()))

    def __len__(self) -> int:
        return len(self.active) + len(self.closed)
