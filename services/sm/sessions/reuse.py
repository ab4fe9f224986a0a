"""Authorize's AttributeS and ChargerS answers, kept for the Initiate of the same CGRID.

OpenSIPS sends AuthorizeEvent at INVITE and InitiateSession at answer, both for the same call:
asking AttributeS and ChargerS (which asks AttributeS per run) again at answer is three more
gRPC round trips that, with the same profiles, give the same answer. An answer is reused only
when all of this holds, else SM asks again:

* the service said it is ``reusable`` and which event fields its profile set can read, and the
  Initiate event has the same values (same JSON text) in every one of them, the same tenant, and
  no field still holding AttributeS's ``*attributes`` marker;
* the profile set is still the one that answered: every AttributeS/ChargerS reply carries its
  ``profile_version`` (changes on each reload) and a reply with a new version drops what was
  kept from that service (and ChargerS's runs when AttributeS changed);
* the answer is younger than ``ttl_s`` (bounds how long a reload not yet seen by SM can go
  unnoticed: at most that long, and only until SM's next AttributeS/ChargerS reply);
* only what the service changed is taken over (its altered fields), applied to the Initiate
  event: fields OpenSIPS adds at answer (AnswerTime, DialogID...) stay as sent.

Entries are dropped at Initiate, expire in creation order (an Authorize never followed by an
Initiate, e.g. a missed call, does not leak) and are capped in number.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cgrpy.event import CGREvent, dumps_exact, json_roundtrip
from services.sm.sessions.types import AttributesReply, ChargerRun, ProfileSet

ATTRIBUTES_MARKER = "*attributes"
_MISSING = object()


@dataclass
class _Entry:
    created: float
    attributes: tuple[CGREvent, AttributesReply] | None = None  # (AttributeS's input, answer)
    runs: tuple[CGREvent, list[ChargerRun]] | None = None  # (ChargerS's input, answer)


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return type(a) is type(b) and (a == b if isinstance(a, str | bool | int) else dumps_exact(a) == dumps_exact(b))


def _inputs_match(ps: ProfileSet | None, before: CGREvent, now: CGREvent) -> bool:
    if ps is None or not ps.reusable or before.tenant != now.tenant:
        return False
    if any(v == ATTRIBUTES_MARKER for v in now.event.values()):
        return False
    return all(_same(before.event.get(f, _MISSING), now.event.get(f, _MISSING)) for f in ps.input_fields)


def _apply(changed_from: CGREvent, fields: list[str], onto: CGREvent) -> CGREvent | None:
    """``onto`` with the top-level ``fields`` taken from ``changed_from``; None for a nested path."""
    out = onto.copy()
    for f in fields:
        if not f or "." in f or "[" in f:
            return None
        if f in changed_from.event:
            out.event[f] = json_roundtrip(changed_from.event[f])
        else:
            out.event.pop(f, None)
    return out


class ReuseCache:
    def __init__(self, ttl_s: float = 60.0, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._versions: dict[str, str] = {}  # "attributes"/"chargers" -> last version seen

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, kind: str, ps: ProfileSet | None) -> None:
        """Every AttributeS/ChargerS answer passes here: a new profile version empties the cache."""
        if ps is None:
            return
        known = self._versions.get(kind)
        if known != ps.version:
            if known is not None and kind == "attributes":
                self._entries.clear()  # ChargerS's runs went through AttributeS too
            elif known is not None:
                for e in self._entries.values():  # a reload is rare: a walk is fine here
                    e.runs = None
            self._versions[kind] = ps.version

    def _entry(self, cgrid: str, now: float) -> _Entry | None:
        if self.ttl_s <= 0:
            return None
        self._expire(now)
        e = self._entries.get(cgrid)
        if e is None:
            e = self._entries[cgrid] = _Entry(now)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return e

    def _expire(self, now: float) -> None:
        while self._entries:
            cgrid, e = next(iter(self._entries.items()))
            if now - e.created < self.ttl_s:
                return
            del self._entries[cgrid]

    def _current(self, kind: str, ps: ProfileSet | None) -> bool:
        return ps is not None and self._versions.get(kind) == ps.version

    def keep_attributes(self, cgrid: str, given: CGREvent, reply: AttributesReply, now: float) -> None:
        if reply.profile_set is not None and reply.profile_set.reusable:
            e = self._entry(cgrid, now)
            if e is not None:
                e.attributes = (given, reply)

    def keep_runs(self, cgrid: str, given: CGREvent, runs: list[ChargerRun], now: float) -> None:
        if runs and all(r.profile_set is not None and r.profile_set.reusable for r in runs):
            e = self._entry(cgrid, now)
            if e is not None:
                e.runs = (given, runs)

    def attributes_for(self, cgrid: str, event: CGREvent, now: float) -> AttributesReply | None:
        """Authorize's AttributeS answer made for ``event``, or None (ask AttributeS)."""
        e = self._live(cgrid, now)
        if e is None or e.attributes is None:
            return None
        given, reply = e.attributes
        ps = reply.profile_set
        if not self._current("attributes", ps) or not _inputs_match(ps, given, event):
            return None
        ev = _apply(reply.event, reply.altered_fields, event)
        if ev is None:
            return None
        return AttributesReply(ev, list(reply.matched_profiles), list(reply.altered_fields), ps)

    def runs_for(self, cgrid: str, event: CGREvent, now: float) -> list[ChargerRun] | None:
        """Authorize's ChargerS runs forked from ``event``, or None (ask ChargerS)."""
        e = self._live(cgrid, now)
        if e is None or e.runs is None:
            return None
        given, runs = e.runs
        ps = runs[0].profile_set
        if not self._current("chargers", ps) or not _inputs_match(ps, given, event):
            return None
        out = []
        for r in runs:
            paths = [p.removeprefix("*req.") if p.startswith("*req.") else "" for p in r.altered_fields]
            ev = _apply(r.event, paths, event)
            if ev is None:
                return None
            out.append(ChargerRun(r.run_id, ev, r.altered_fields, r.profile_set))
        return out

    def _live(self, cgrid: str, now: float) -> _Entry | None:
        e = self._entries.get(cgrid)
        if e is None or now - e.created >= self.ttl_s:
            return None
        return e

    def drop(self, cgrid: str) -> None:
        self._entries.pop(cgrid, None)
