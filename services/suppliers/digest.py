"""The ``SuppliersDigest`` string OpenSIPS's cgrates module receives on authorize (docs/opensips-protocol.md:
``supplier1,supplier2`` / ``supplier2:param2,supplier1:param1``)."""

from __future__ import annotations

from collections.abc import Iterable


def suppliers_digest(suppliers: Iterable[tuple[str, str]]) -> str:
    """``(SupplierID, SupplierParameters)`` pairs in sorted order -> ``id[:params],…``; none -> ``""``."""
    return ",".join(sid + (":" + params if params else "") for sid, params in suppliers)
