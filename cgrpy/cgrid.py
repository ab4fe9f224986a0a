"""CGRID: the identity of a call across SM, CDRs and exports.

CGRateS computes it as ``Sha1(OriginID + OriginHost)``; an event that already carries a CGRID
keeps it.
"""

from __future__ import annotations

import hashlib

from cgrpy.event import CGREvent


def sha1_concat(*parts: str) -> str:
    """CGRateS ``utils.Sha1``: lowercase hex SHA-1 of the parts concatenated with no separator."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8"))
    return h.hexdigest()


def cgrid(origin_id: str, origin_host: str) -> str:
    """``Sha1(OriginID + OriginHost)``: OriginID first, then OriginHost, nothing in between."""
    return sha1_concat(origin_id, origin_host)


def cgrid_of(event: CGREvent) -> str:
    """The event's ``CGRID`` if it carries one, else :func:`cgrid` of its OriginID/OriginHost."""
    given = event.get("CGRID")
    if given:
        return str(given)
    return cgrid(str(event.get("OriginID") or ""), str(event.get("OriginHost") or ""))
