"""Shared groups over JSON-RPC: ``APIerSv1.GetSharedGroup`` (the live group, from RALs) and the
TP API of SharedGroups.csv (``APIerSv1.SetTPSharedGroups``, ``GetTPSharedGroups``,
``GetTPSharedGroupIds``, ``RemoveTPSharedGroups``: stored as its CSV rows, validated like
`cgr load`, live at once in the configured TPID, like every TP object of ``tp_rating.py``)."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import common_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, STRING_ARGS, Context, method
from services.sm.apier.tp_rating import _tp_methods

_tp_methods("SharedGroups", "TPSharedGroups", ("SharedGroups",))
METHODS["APIerSv1.GetTPSharedGroupIds"] = METHODS["APIerSv1.GetTPSharedGroupsIds"]
METHODS["APIerSv1.GetTPSharedGroupIDs"] = METHODS["APIerSv1.GetTPSharedGroupsIds"]


@method("APIerSv1.GetSharedGroup")
async def get_shared_group(ctx: Context, a: Args) -> Any:
    """The argument is the bare group id -> engine.SharedGroup {Id, AccountParameters,
    MemberIds}. As v0.10, an unknown id is not an error: the empty group answers."""
    ident = a.str("ID")
    if not ident:
        raise CGRError("MANDATORY_IE_MISSING", "[ID]")
    try:
        res = await ctx.backends.call("rals", "GetSharedGroup", common_pb2.TenantID(id=ident))
    except CGRError as exc:
        if exc.word == "NOT_FOUND":
            return {"Id": "", "AccountParameters": None, "MemberIds": None}
        raise
    return loads_exact(res.json)


STRING_ARGS["APIerSv1.GetSharedGroup"] = "ID"
