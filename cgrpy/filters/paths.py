"""Field paths (``~*req.Account``, ``~*req.A.B``, ``~*req.L[2]``) against a data provider (docs/profiles.md).

A data provider is a map of roots (``{"*req": event_fields, "*vars": ...}``). Remote roots
(``~*accounts``, ``~*resources``, ``~*stats``) are answered by optional lookup callables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cgrpy.filters.errors import WRONG_PATH, FilterError

# Roots served by the provider handed to FilterS.
LOCAL_ROOTS = ("~*req", "~*vars", "~*cgreq", "~*cgrep", "~*rep", "~*cgrareq", "~*act", "~*ec",
               "~*cmedreq")
REMOTE_ROOTS = ("~*accounts", "~*resources", "~*stats")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()  # "not found": handled per filter type, never an error by itself

_SEGMENT = re.compile(r"(.*?)\[(\d+)\]")

# tenant, object id -> the object (a map), or None when it does not exist.
RemoteLookup = Callable[[str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Remotes:
    """Lookups for ``~*accounts.<acnt>.<path>``, ``~*resources.<id>.<path>``, ``~*stats.<q>.<m>``."""

    accounts: RemoteLookup | None = None
    resources: RemoteLookup | None = None
    stats: RemoteLookup | None = None


@dataclass
class DataProvider:
    """What a filter reads: local roots plus the tenant and remote lookups for remote roots."""

    roots: Mapping[str, Any]
    tenant: str = ""
    remotes: Remotes = field(default_factory=Remotes)


def has_valid_prefix(element: str) -> bool:
    # v0.10 matches by string prefix without a trailing dot, so "~*request" counts as "~*req".
    return element == "" or element.startswith(LOCAL_ROOTS) or element.startswith(REMOTE_ROOTS)


def check_element(element: str) -> None:
    """Raise the v0.10 error for an element without a known ``~*root`` (``Account`` alone)."""
    if not has_valid_prefix(element):
        raise FilterError(f"filter path: {element} doesn't have a valid prefix")


def navigate(container: Any, segments: list[str]) -> Any:
    """Walk ``segments`` (each ``key`` or ``key[n]``) into nested maps/lists.

    Missing key or index -> MISSING; stepping into a scalar -> ``WRONG_PATH`` error.
    """
    cur = container
    for seg in segments:
        m = _SEGMENT.fullmatch(seg)
        key, idx = (m.group(1), int(m.group(2))) if m else (seg, None)
        if cur is None:
            return MISSING
        if not isinstance(cur, Mapping):
            raise FilterError(WRONG_PATH)
        if key not in cur:
            return MISSING
        cur = cur[key]
        if idx is not None:
            if cur is None:
                return MISSING
            if not isinstance(cur, list | tuple):
                raise FilterError(WRONG_PATH)
            if idx >= len(cur):
                return MISSING
            cur = cur[idx]
    return cur


def resolve(path: str, dp: DataProvider) -> Any:
    """Value at a dynamic path (with its ``~``), or MISSING.

    Unknown roots (``~Account``) resolve against nothing and are MISSING, as in v0.10.
    """
    if not path.startswith("~"):
        raise FilterError(f"not a dynamic path: {path}")
    body = path[1:]
    if path.startswith(REMOTE_ROOTS):
        return _resolve_remote(body, dp)
    parts = body.split(".")
    root = parts[0]
    if root not in dp.roots:
        return MISSING
    return navigate(dp.roots[root], parts[1:])


def _resolve_remote(body: str, dp: DataProvider) -> Any:
    parts = body.split(".", 2)
    root = parts[0]
    if len(parts) != 3:
        raise FilterError(f"invalid path: ~{body}")
    lookup = {"*accounts": dp.remotes.accounts, "*resources": dp.remotes.resources,
              "*stats": dp.remotes.stats}.get(root)
    if lookup is None:
        raise FilterError(f"DISCONNECTED: no {root} connection for ~{body}")
    obj = lookup(dp.tenant, parts[1])
    if obj is None:
        return MISSING
    if root == "*stats":
        # Metric IDs contain no dots but may contain ':' (``*sum:~*req.Usage``); one level only.
        return obj.get(parts[2], MISSING)
    return navigate(obj, parts[2].split("."))
