"""CGRID: the identity of a call across SM, CDRs and exports (rating-and-accounts §5.1, §6.1)."""

from __future__ import annotations

import hashlib


def sha1_concat(*parts: str) -> str:
    """CGRateS ``utils.Sha1``: lowercase hex SHA-1 of the parts concatenated with no separator."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8"))
    return h.hexdigest()


def cgrid(origin_id: str, origin_host: str) -> str:
    """``Sha1(OriginID + OriginHost)``: OriginID first, then OriginHost, nothing in between."""
    return sha1_concat(origin_id, origin_host)
