"""RALs over JSON-RPC: ``APIerSv1.GetCost``, accounts, balances and ``ExecuteAction``.
Each handler maps the CGRateS argument to a RALs gRPC request and the reply back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cgrates.v1 import rals_pb2
from cgrpy.errors import CGRError
from cgrpy.event import loads_exact
from cgrpy.units import to_unix_nano
from services.sm.apier.action_plans import ri_timing
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


@method("APIerSv1.GetCost")
async def get_cost(ctx: Context, a: Args) -> Any:
    """AttrGetCost -> EventCost (its Cost is the EventCost one).
    Difference: an empty AnswerTime means now (CGRateS rates at Go's zero time, year 1)."""
    usage = a.duration("Usage")
    start = a.time("AnswerTime") or datetime.now(UTC)
    subject = a.str("Subject")
    cd = rals_pb2.CallDescriptor(
        tenant=a.str("Tenant") or ctx.tenant, category=a.str("Category") or "call",
        subject=subject, account=subject, destination=a.str("Destination"), tor="*voice",
        time_start_unix_ns=to_unix_nano(start), usage_ns=usage, duration_index_ns=usage,
    )
    try:
        res = await ctx.backends.call("rals", "GetCost", cd)
    except CGRError as exc:
        if exc.word in ("SERVER_ERROR", "NOT_IMPLEMENTED"):
            raise
        # utils.NewErrServerError(err) around RALs's bare word, as CGRateS prints it
        raise CGRError("SERVER_ERROR", exc.word) from None
    return loads_exact(res.cost_details_json)


async def _account(ctx: Context, tenant: str, account: str) -> Any:
    try:
        acc = await ctx.backends.call("rals", "GetAccount", rals_pb2.AccountRequest(tenant=tenant, account=account))
    except CGRError as exc:
        if exc.word in ("ACCOUNT_NOT_FOUND", "NOT_FOUND"):  # CGRateS: the bare utils.ErrNotFound
            raise CGRError("NOT_FOUND") from None
        raise
    return await with_balance_timings(ctx, loads_exact(acc.json))


async def with_balance_timings(ctx: Context, acc: dict[str, Any]) -> dict[str, Any]:
    """Each balance's ``Timings``: the engine.RITiming of each of its TimingIDs, as v0.10 keeps
    them on the balance (null when it has none)."""
    seen: dict[str, dict[str, Any]] = {}
    for bals in (acc.get("BalanceMap") or {}).values():
        for b in bals:
            ids = sorted(b.get("TimingIDs") or {})
            for tid in ids:
                if tid not in seen:
                    seen[tid] = await ri_timing(ctx, tid)
            b["Timings"] = [seen[t] for t in ids] or None
    return acc


@method("APIerSv2.GetAccount")
async def get_account(ctx: Context, a: Args) -> Any:
    """The account as APIerSv2.GetAccount shows it (APIerSv1.GetAccount's legacy
    ``AsOldStructure`` shape is in ``legacy.py``)."""
    a.require("Account")
    return await _account(ctx, a.str("Tenant") or ctx.tenant, a.str("Account"))


class _Balance:
    """A balance description: fields of ``Balance`` (map form) or flat on the args (v0.10's
    older AttrSetBalance: BalanceID, BalanceUUID, Weight, ...)."""

    def __init__(self, a: Args) -> None:
        self.a = a
        self.b = a.sub("Balance") if isinstance(a.get("Balance"), dict) else Args({})

    def get(self, *names: str) -> Any:
        for n in names:
            if self.b.has(n):
                return self.b.get(n)
        for n in names:
            if self.a.has(n):
                return self.a.get(n)
        return None

    def str(self, *names: str) -> str:
        v = self.get(*names)
        return "" if v is None else str(v)

    def strs(self, *names: str) -> list[str]:
        v = self.get(*names)
        if v in (None, ""):
            return []
        if isinstance(v, str):
            return [x for x in v.split(";") if x]
        if isinstance(v, dict):
            return [k if on else f"!{k}" for k, on in v.items()]
        return [str(x) for x in v]


def _value(a: Args) -> Decimal:
    v = a.decimal("Value")
    return abs(v) if v is not None else Decimal(0)  # CGRateS uses math.Abs(Value)


@method("APIerSv1.SetBalance")
async def set_balance(ctx: Context, a: Args) -> Any:
    a.require("Account", "BalanceType")
    bal = _Balance(a)
    bid, uuid = bal.str("ID", "BalanceID"), bal.str("Uuid", "UUID", "BalanceUUID")
    if not bid and not uuid:
        raise CGRError("MANDATORY_IE_MISSING", "[BalanceID or BalanceUUID]")
    if a.bool("Cdrlog"):
        raise CGRError("NOT_IMPLEMENTED", "Cdrlog")
    pb = rals_pb2.Balance(id=bid, uuid=uuid, type=a.str("BalanceType"))
    weight = bal.get("Weight")
    if weight is not None:
        pb.weight = format(Args({"w": weight}).decimal("w") or Decimal(0), "f")
    expiry = bal.get("ExpiryTime", "ExpirationDate")
    if expiry not in (None, "", "*unlimited"):
        pb.expiry_unix_ns = to_unix_nano(Args({"ExpiryTime": expiry}).time("ExpiryTime"))
    pb.destination_ids.extend(bal.strs("DestinationIDs", "DestinationIds"))
    pb.categories.extend(bal.strs("Categories"))
    pb.timing_ids.extend(bal.strs("TimingIDs", "TimingIds"))
    pb.shared_groups.extend(bal.strs("SharedGroups", "SharedGroupIDs"))
    pb.rating_subject = bal.str("RatingSubject")
    pb.blocker = bool(bal.get("Blocker"))
    pb.disabled = bool(bal.get("Disabled"))
    req = rals_pb2.SetBalanceRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        balance_type=a.str("BalanceType"), value=format(_value(a), "f"), balance=pb,
    )
    await ctx.backends.call("rals", "SetBalance", req)
    return "OK"


async def _add(ctx: Context, a: Args, sign: int) -> Any:
    a.require("Account", "BalanceType", "Value")
    bal = _Balance(a)
    extra = [k for k in bal.b.raw if k.lower() not in ("id", "balanceid")]
    if extra:  # RALs's AddBalance matches by ID only
        raise CGRError("NOT_IMPLEMENTED", f"Balance {', '.join(sorted(extra))}")
    if a.bool("Cdrlog"):
        raise CGRError("NOT_IMPLEMENTED", "Cdrlog")
    req = rals_pb2.SetBalanceRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"),
        balance_type=a.str("BalanceType"), value=format(sign * _value(a), "f"),
        balance=rals_pb2.Balance(id=bal.str("ID", "BalanceID")), overwrite=bool(a.bool("Overwrite")),
    )
    await ctx.backends.call("rals", "AddBalance", req)
    return "OK"


@method("APIerSv1.AddBalance")
async def add_balance(ctx: Context, a: Args) -> Any:
    """*topup (``Overwrite``: *topup_reset). Difference: without ``Balance.ID`` the ``*default``
    balance is topped up, where CGRateS tops up every balance of that type."""
    return await _add(ctx, a, 1)


@method("APIerSv1.DebitBalance")
async def debit_balance(ctx: Context, a: Args) -> Any:
    """*debit: AddBalance with the negated value (``Overwrite``: *debit_reset)."""
    return await _add(ctx, a, -1)


@method("APIerSv1.ExecuteAction")
async def execute_action(ctx: Context, a: Args) -> Any:
    a.require("ActionsId")
    req = rals_pb2.ExecuteActionsRequest(
        tenant=a.str("Tenant") or ctx.tenant, account=a.str("Account"), actions_id=a.str("ActionsId"),
    )
    await ctx.backends.call("rals", "ExecuteActions", req)
    return "OK"
