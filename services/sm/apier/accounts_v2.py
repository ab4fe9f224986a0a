"""``APIerSv2.SetBalance``: v0.10's flat ``AttrSetBalance`` (``BalanceID``/``BalanceUUID``,
``Value``, ``Weight``, ``ExpiryTime``, ``DestinationIds``, ...) next to APIerSv1's ``Balance``
map. Both forms are read by APIerSv1.SetBalance's handler, which this one calls after the checks
v2 adds (``Value`` is mandatory: v2 sets the balance to it, it never defaults to 0)."""

from __future__ import annotations

from typing import Any

from cgrpy.errors import CGRError
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, Context, method


@method("APIerSv2.SetBalance")
async def set_balance_v2(ctx: Context, a: Args) -> Any:
    a.require("Account", "BalanceType")
    if a.get("Value") in (None, ""):
        raise CGRError("MANDATORY_IE_MISSING", "[Value]")
    return await METHODS["APIerSv1.SetBalance"](ctx, a)
