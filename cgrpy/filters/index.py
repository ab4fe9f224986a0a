"""String/prefix filter indexes: find candidate profiles without scanning them all (docs/profiles.md).

Keys are ``(type, element, value)``, e.g. ``("*string", "~*req.Account", "1001")``; a profile
without any FilterIDs sits under ``("*none", "*any", "*any")``. Only rules of type exactly
``*string``/``*prefix`` are indexed, so (as in v0.10) a profile whose filters have none of them is
never a candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cgrpy.filters.filters import Filter
from cgrpy.filters.types import INDEXED_TYPES
from cgrpy.iface import iface_as_string

IndexKey = tuple[str, str, str]
NONE_KEY: IndexKey = ("*none", "*any", "*any")
REQ = "~*req."


def index_keys(filters: Iterable[Filter], has_filter_ids: bool) -> set[IndexKey]:
    """The keys one profile is stored under."""
    if not has_filter_ids:
        return {NONE_KEY}
    keys: set[IndexKey] = set()
    for f in filters:
        for rule in f.rules:
            if rule.type in INDEXED_TYPES:
                # Dynamic values are indexed literally, as v0.10 does for new profiles (never hit).
                keys.update((rule.type, rule.element, v) for v in rule.values)
    return keys


class FilterIndex:
    """Partition (``tenant`` or ``tenant:context``) -> index key -> profile IDs."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[IndexKey, set[str]]] = {}

    def add(self, partition: str, profile_id: str, keys: Iterable[IndexKey]) -> None:
        part = self._parts.setdefault(partition, {})
        for k in keys:
            part.setdefault(k, set()).add(profile_id)

    def keys(self, partition: str) -> dict[IndexKey, set[str]]:
        return self._parts.get(partition, {})

    def match(
        self,
        partition: str,
        fields: Mapping[str, Any],
        string_fields: Sequence[str] | None = None,
        prefix_fields: Sequence[str] | None = (),
    ) -> set[str]:
        """Candidate IDs for an event (``MatchingItemIDsForEvent``).

        ``string_fields``/``prefix_fields`` None = every event key; prefix fields default to
        none (v0.10's ``prefix_indexed_fields: []``). For a prefix field only the longest
        prefix present in the index contributes.
        """
        part = self._parts.get(partition)
        if not part:
            return set()
        out: set[str] = set()
        for f in fields if string_fields is None else string_fields:
            if f not in fields:
                continue
            ids = part.get(("*string", REQ + f, iface_as_string(fields[f])))
            if ids:
                out.update(ids)
        for f in fields if prefix_fields is None else prefix_fields:
            if f not in fields:
                continue
            v = iface_as_string(fields[f])
            element = REQ + f
            for i in range(len(v), 0, -1):
                ids = part.get(("*prefix", element, v[:i]))
                if ids is not None:
                    out.update(ids)
                    break
        none = part.get(NONE_KEY)
        if none:
            out.update(none)
        return out
