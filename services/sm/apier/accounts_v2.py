"""``APIerSv2.GetAccounts`` (a page of accounts) and ``APIerSv2.SetBalance``: v0.10's flat
``AttrSetBalance`` (``BalanceID``/``BalanceUUID``, ``Value``, ``Weight``, ``ExpiryTime``, ``DestinationIds``, ...) next to APIerSv1's ``Balance``
map. Both forms are read by APIerSv1.SetBalance's handler, which this one calls after the checks
v2 adds (``Value`` is mandatory: v2 sets the balance to it, it never defaults to 0)."""

from __future__ import annotations

from typing import Any

from cgrates.v1 import common_pb2, rals_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from services.sm.apier.accounts import with_balance_timings
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, Context, method


@method("APIerSv2.SetBalance")
async def set_balance_v2(ctx: Context, a: Args) -> Any:
    a.require("Account", "BalanceType")
    if a.get("Value") in (None, ""):
        raise CGRError("MANDATORY_IE_MISSING", "[Value]")
    return await METHODS["APIerSv1.SetBalance"](ctx, a)


_ACCOUNT_FILTERS = ("AllowNegative", "Disabled")


def _account_filter(a: Args) -> dict[str, bool]:
    """``Filter`` {AllowNegative, Disabled: bool}; any other key is refused (v0.10 silently
    ignores it, which would answer every account to a misspelt filter)."""
    raw = a.get("Filter")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CGRError("SERVER_ERROR", f"Filter: expected a JSON object, got {raw!r}")
    f = Args(raw)
    out: dict[str, bool] = {}
    for key in raw:
        name = next((n for n in _ACCOUNT_FILTERS if n.lower() == key.lower()), None)
        if name is None:
            raise CGRError("SERVER_ERROR", f"Filter: unknown field {key!r} (use AllowNegative, Disabled)")
        value = f.bool(name)
        if value is not None:
            out[name] = value
    return out


def _page(ids: list[str], offset: int, limit: int) -> list[str]:
    if offset < 0 or limit < 0:
        raise CGRError("SERVER_ERROR", f"{'Offset' if offset < 0 else 'Limit'}: must not be negative")
    return ids[offset:offset + limit] if limit else ids[offset:]


@method("APIerSv2.GetAccounts")
async def get_accounts(ctx: Context, a: Args) -> Any:
    """AttrGetAccounts {Tenant, AccountIDs, Offset, Limit, Filter} -> [engine.Account] as
    APIerSv2.GetAccount shows each. Without AccountIDs every account of the tenant, ordered by
    ID (v0.10 takes its DataDB's key order); an ID naming no account is skipped, as in v0.10;
    the page is cut before the filter is applied, as in v0.10."""
    tenant = a.str("Tenant") or ctx.tenant
    ids = a.strs("AccountIDs")
    if any(not i for i in ids):
        raise CGRError("MANDATORY_IE_MISSING", "[AccountIDs]")
    flt = _account_filter(a)
    if not ids:
        res = await ctx.backends.call("rals", "GetAccountIDs", common_pb2.TenantRequest(tenant=tenant))
        ids = list(res.ids)
    if not ids:
        return []  # v0.10 leaves its reply unset (null); an empty list reads the same to clients
    out: list[Any] = []
    for acc_id in _page(ids, a.int("Offset") or 0, a.int("Limit") or 0):
        try:
            acc = await ctx.backends.call("rals", "GetAccount", rals_pb2.AccountRequest(tenant=tenant, account=acc_id))
        except CGRError as exc:
            if exc.word in ("ACCOUNT_NOT_FOUND", "NOT_FOUND"):
                continue
            raise
        doc = await with_balance_timings(ctx, loads_exact(acc.json))
        if any(doc.get(k) is not v for k, v in flt.items()):
            continue
        out.append(doc)
    return out
