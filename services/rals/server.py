"""RALs process: rating (GetCost), accounts and balances, actions — thin gRPC handlers over
``services.rals.rating`` and ``services.rals.accounts.service.AccountService``.

The pure code is synchronous and touches the StorDB; handlers run it in a worker thread so the
event loop keeps answering. Compiled data is swapped whole on ReloadCache (build, then assign).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from prometheus_client import Counter

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc, tariffplan_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.httppost import JSON_CONTENT_TYPE, DeliveryError, http_post
from cgrpy.runtime import auth
from cgrpy.runtime.cache import RALS_FILES, cache_counts
from cgrpy.runtime.partitions import advertised
from cgrpy.runtime.server import BaseService
from cgrpy.units import SECOND, UnitError, from_unix_nano, money_str, parse_decimal
from services.rals.accounts.actions import (
    CGR_RPC,
    HTTP_POST_KINDS,
    REMOVE_ACCOUNT,
    ActionEvent,
    removal_asked,
)
from services.rals.accounts.debit import max_rate
from services.rals.accounts.live import LiveStore
from services.rals.accounts.model import AccountError
from services.rals.accounts.service import AccountService, BalanceChange, DebitResult, RefundResult
from services.rals.cdrlog import CdrlogOutbox
from services.rals.cgr_rpc import run_cgr_rpc
from services.rals.clients import RalsClients
from services.rals.partitions import (
    PARTITIONS,
    AdvisoryPartitions,
    Ownership,
    OwnsAll,
    partition_of,
)
from services.rals.rating import CallDescriptor, RatingData, RatingError, get_cost
from services.rals.rating.plan import forced_plan_view
from services.rals.scheduler import ActionScheduler, ScheduledRun, timed_plans
from services.rals.views import account_pb, action_trigger_json

T = TypeVar("T")
R = TypeVar("R")

PREPAID = "*prepaid"
NO_CHARGE = {"*none", "none"}
# Metadata on a request one RALs passes to the account's owner: the owner serves it, whatever
# happened to ownership meanwhile, so a request hops at most once.
FORWARDED = "cgrpy-rals-forwarded"
# Requests that may run both at a hung owner (once it resumes) and here: reads, and changes
# applied once per request id (a second run replays the first's result). Only these are served
# here when the owner does not answer in time; anything else fails with the owner's error.
RETRY_SAFE = frozenset({"GetMaxUsage", "Debit", "Refund", "GetAccount", "GetAccountActionTriggers"})
FORWARD_SHARE = 0.5  # of a retry-safe request's deadline given to the owner
HUNG_FOR_S = 2.0  # an owner that timed out is not asked again for this long
# *http_post / *http_post_async actions: tries per post (v0.10's poster tries a few times too)
ACTION_POST_ATTEMPTS = 3
ACTION_POST_TIMEOUT_S = 5.0
ACTION_POSTS = Counter("cgrpy_rals_action_posts_total",
                       "*http_post(_async) actions delivered or given up, by outcome", ["kind", "outcome"])


@dataclass(frozen=True)
class Compiled:
    """Everything built from one tariff plan; replaced as a whole on reload."""

    tpid: str
    data: RatingData
    accounts: AccountService


def remove_if_asked(c: Compiled, tenant: str, account: str, events: Sequence[ActionEvent | Mapping[str, Any]],
                     request_id: str) -> bool:
    """An action trigger fired ``*remove_account`` inside a committed change (a debit, a refund,
    a balance change): the account goes now, once that change is committed, as v0.10 removes
    an account from a trigger (a set run by ExecuteAction or a plan is removed the same way, by
    its own caller). Idempotent per request id: a retried change does not remove twice."""
    kinds = [{"kind": e.kind} if isinstance(e, ActionEvent) else e for e in events]
    if not account or not removal_asked(kinds):
        return False
    return c.accounts.store.remove_account(tenant, account, request_id=f"{request_id}:remove")


def descriptor(pb: rals_pb2.CallDescriptor) -> CallDescriptor:
    """Proto CallDescriptor -> the rating engine's (times exact to the microsecond)."""
    start = from_unix_nano(pb.time_start_unix_ns)
    try:
        so_far = parse_decimal(pb.max_cost_so_far)
    except UnitError as exc:
        raise CGRError("INVALID_ARGUMENT", f"max_cost_so_far: {exc}") from None
    try:
        max_rate = parse_decimal(pb.max_rate)
    except UnitError as exc:
        raise CGRError("INVALID_ARGUMENT", f"max_rate: {exc}") from None
    if max_rate < 0 or pb.max_rate_unit_ns < 0:
        raise CGRError("INVALID_ARGUMENT", "max_rate and max_rate_unit_ns must not be negative")
    kwargs: dict[str, Any] = {}
    if start is not None:
        kwargs["time_start"] = start
    return CallDescriptor(
        tenant=pb.tenant,
        category=pb.category,
        subject=pb.subject,
        account=pb.account,
        destination=pb.destination,
        tor=pb.tor,
        usage_ns=pb.usage_ns,
        duration_index_ns=pb.duration_index_ns,
        loop_index=pb.loop_index,
        max_cost_so_far=so_far,
        max_rate=max_rate,
        max_rate_unit_ns=pb.max_rate_unit_ns,
        perform_rounding=pb.perform_rounding,
        deny_negative_account=pb.deny_negative_account,
        cgrid=pb.cgrid,
        run_id=pb.run_id,
        force_duration=pb.force_duration,
        **kwargs,
    )


def _debit_details(request: rals_pb2.DebitRequest, res: DebitResult) -> str:
    """A Debit's cost_details_json: a CDR's CostDetails (want_event_cost) is the EventCost (a
    debit journaled before EventCosts were kept answers its record even then); a session debit
    that only keeps it (keep_event_cost) answers nothing, its Refund answers the merged one."""
    if request.want_event_cost:
        if res.event_cost is not None:
            return res.event_cost_json or dumps_exact(res.event_cost)
        return dumps_exact(res.to_json())
    return "" if request.keep_event_cost else dumps_exact(res.to_json())


def _summary_owner(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """(tenant, account) a debit's stored result names (as ``AccountService.debit_owner``)."""
    summary = result.get("AccountSummary") or {}
    return (summary.get("Tenant", ""), summary.get("ID", "")) if summary else None


def _as_cgr(exc: Exception) -> CGRError:
    word = getattr(exc, "word", "SERVER_ERROR")
    detail = getattr(exc, "detail", "") or ""
    return CGRError(word, detail)


class RalsServicer(rals_pb2_grpc.RalsServiceServicer):
    def __init__(self, owner: RalsServer) -> None:
        self.owner = owner

    async def _run(self, fn: Callable[[Compiled], T], *, inline: bool = False) -> T:
        """``fn`` in a worker thread (it may wait on the StorDB), or ``inline`` on the event loop
        when it is pure CPU (an owned, cached account)."""
        compiled = self.owner.compiled
        if compiled is None:
            raise CGRError("NOT_READY", "rals not loaded")
        try:
            if inline:
                return fn(compiled)
            return await asyncio.get_running_loop().run_in_executor(self.owner.executor, fn, compiled)
        except (AccountError, RatingError) as exc:
            raise _as_cgr(exc) from None

    async def _forward(self, method: str, request: Any, context: Any, tenant: str,
                       account: str) -> Any | None:
        """The owner's answer when another RALs process owns the account; None: serve here."""
        return await self.owner.forward(method, request, context, tenant, account)

    @staticmethod
    def _who(cd: CallDescriptor) -> tuple[str, str]:
        cd = cd.with_defaults()
        return cd.tenant, cd.account or cd.subject

    async def GetCost(self, request: rals_pb2.CallDescriptor, context: Any) -> rals_pb2.CostResponse:
        decimals = self.owner.settings.rounding_decimals

        def work(c: Compiled) -> rals_pb2.CostResponse:
            cd = descriptor(request).with_defaults()
            data = c.data
            if request.rating_plan_id:  # SupplierS pricing a supplier's own rating plan
                data = forced_plan_view(data, cd.tenant, cd.category, cd.subject, request.rating_plan_id)
            cc = get_cost(data, cd, rounding_decimals=decimals)
            # APIerSv1.GetCost answers with the EventCost (its Cost, not CallCost.Cost)
            return rals_pb2.CostResponse(
                cost=money_str(cc.event_cost_amount()),
                usage_ns=cc.usage_ns,
                cost_details_json=dumps_exact(cc.to_event_cost()),
                call_cost_json=dumps_exact(cc.to_call_cost_json()),
            )

        return await self._run(work)

    async def GetMaxUsage(self, request: rals_pb2.CallDescriptor, context: Any) -> rals_pb2.MaxUsageResponse:
        cd = descriptor(request)  # built once: routing and the answer use it (never mutated)
        tenant, account = self._who(cd)
        fwd = await self._forward("GetMaxUsage", request, context, tenant, account)
        if fwd is not None:
            return fwd
        return await self._run(
            lambda c: rals_pb2.MaxUsageResponse(max_usage_ns=c.accounts.get_max_usage(cd)),
            inline=self.owner.store is not None and self.owner.store.is_cached(tenant, account),
        )

    async def Debit(self, request: rals_pb2.DebitRequest, context: Any) -> rals_pb2.CostResponse:
        if not request.request_id:
            raise CGRError("MANDATORY_IE_MISSING", "[RequestID]")
        if request.request_type in NO_CHARGE:
            return rals_pb2.CostResponse(cost="0", usage_ns=request.call.usage_ns)
        cd = descriptor(request.call)  # built once: routing and the debit use it (never mutated)
        fwd = await self._forward("Debit", request, context, *self._who(cd))
        if fwd is not None:
            return fwd
        prepaid = request.request_type in (PREPAID, "prepaid", "")
        max_debit = prepaid and request.allow_partial
        # Session pieces are charged unrounded (the session rounds at its end); a CDR debit, or
        # a piece asked with perform_rounding, is charged and answered DestinationRate-rounded.
        rounding = not prepaid or request.call.perform_rounding

        fired: list[Any] = []  # trigger side effects of this debit (none on a replay)
        flags = {"max_debit": max_debit, "perform_rounding": rounding,
                 "event_cost": request.want_event_cost or request.keep_event_cost}

        def work(c: Compiled) -> rals_pb2.CostResponse:
            return answer(c, c.accounts.debit(cd, request.request_id,
                                              **flags))

        def answer(c: Compiled, res: DebitResult) -> rals_pb2.CostResponse:
            who = res.account or {}
            remove_if_asked(c, who.get("Tenant", ""), who.get("ID", ""), res.events, request.request_id)
            if not res.replayed:
                fired.extend(res.events)
            cost = res.rounded_cost if rounding else res.cost
            rate, rate_unit = max_rate(res.charges)
            return rals_pb2.CostResponse(
                cost=money_str(cost),
                usage_ns=res.usage_ns,
                # a CDR's CostDetails: the EventCost; else the debit record (a debit journaled
                # before EventCosts were kept answers its record even when asked)
                cost_details_json=_debit_details(request, res),
                max_rate="" if rate is None else money_str(rate),
                max_rate_unit_ns=rate_unit,
                duplicate=res.replayed,
                call_cost_json=self._charged_call_cost(c, request.call, res.usage_ns, cost, res.account)
                if request.want_call_cost else "",
            )

        # An owned account in memory is debited on the event loop (no worker thread waits for
        # the group commit); anything else, or a debit whose triggers fired (removing the
        # account is I/O), finishes in a worker thread.
        reply = await self._inline_or_run(lambda c: c.accounts.debit_inline(
            cd, request.request_id, **flags), work, answer)
        if fired:
            self.owner.publish(fired, actions_id="triggers after Debit", account=request.call.account)
        return reply

    async def _inline_or_run(self, inline_fn: Callable[[Compiled], Awaitable[T | None]],
                             work: Callable[[Compiled], R], answer: Callable[[Compiled, T], R]) -> R:
        """``inline_fn`` on the event loop and its ``answer``; ``work`` in a worker thread when it
        could not run there. A result whose triggers fired is answered in a worker thread too
        (removing an account is I/O)."""
        inline = await self._inline(inline_fn)
        if inline is None:
            return await self._run(work)
        compiled, res = inline
        if getattr(res, "events", None):
            return await self._run(lambda c: answer(c, res))
        return answer(compiled, res)

    async def _inline(self, fn: Callable[[Compiled], Awaitable[T | None]]) -> tuple[Compiled, T] | None:
        """``fn``'s answer, run on the event loop, with the tariff plan it used; None when it
        could not be served there (nothing changed: the caller takes the worker-thread path)."""
        compiled = self.owner.compiled
        if compiled is None:
            return None
        try:
            out = await fn(compiled)
        except (AccountError, RatingError) as exc:
            raise _as_cgr(exc) from None
        return None if out is None else (compiled, out)

    def _charged_call_cost(self, c: Compiled, pb: rals_pb2.CallDescriptor, usage_ns: int, cost: Decimal,
                           summary: dict[str, Any]) -> str:
        """The CallCost of a debit: the accounts code keeps per-increment charges, not a
        CallCost, so this is the *re-rating* of the charged usage with the descriptor's own
        subject, with ``Cost`` = the amount charged and the AccountSummary after the debit.
        Where a balance's RatingSubject or free units paid, the timespans still show the tariff
        and only ``Cost`` tells what was charged."""
        cd = descriptor(pb).with_defaults()
        if usage_ns < cd.usage:  # MaxDebit shortened the piece (same duration index, as debited)
            cd = replace(cd, usage_ns=usage_ns, time_end=None)
        try:
            cc = get_cost(c.data, cd, rounding_decimals=self.owner.settings.rounding_decimals)
        except RatingError as exc:  # the debit is done; its answer must not fail on a view
            self.owner.log.info("rals.callcost_unavailable", error=str(exc))
            return ""
        out = cc.to_call_cost_json(account_summary=summary)
        out["Cost"] = cost
        return dumps_exact(out)

    async def Refund(self, request: rals_pb2.RefundRequest, context: Any) -> rals_pb2.RefundResponse:
        if not request.refund_id:
            raise CGRError("MANDATORY_IE_MISSING", "[RefundID]")
        if not request.debit_request_ids:
            raise CGRError("MANDATORY_IE_MISSING", "[DebitRequestIDs]")
        compiled = self.owner.compiled
        if compiled is not None:  # the account is the one of the debits: route by it
            store = self.owner.store
            remembered = store.remembered(request.debit_request_ids[0]) if store else None
            owner = (_summary_owner(remembered) if remembered is not None else
                     await asyncio.to_thread(compiled.accounts.debit_owner,
                                             request.debit_request_ids[0]))
            if owner is not None:
                fwd = await self._forward("Refund", request, context, *owner)
                if fwd is not None:
                    return fwd

        fired: list[Any] = []  # trigger side effects of this refund (none on a replay)
        args = (request.refund_id, list(request.debit_request_ids))
        flags = {"keep_usage_ns": request.keep_usage_ns, "round_kept": request.round_kept,
                 "want_event_cost": request.want_event_cost}

        def work(c: Compiled) -> rals_pb2.RefundResponse:
            return answer(c, c.accounts.refund_debits(*args, **flags))

        def answer(c: Compiled, res: RefundResult) -> rals_pb2.RefundResponse:
            owner = c.accounts.debit_owner(request.debit_request_ids[0]) if res.events else None
            if owner is not None:
                remove_if_asked(c, *owner, res.events, request.refund_id)
                if not res.replayed:
                    fired.extend(res.events)
            refunded_usage = sum(ch.usage_ns for ch in res.charges) if res.charges else 0
            return rals_pb2.RefundResponse(
                refunded_cost=money_str(res.refunded), refunded_usage_ns=refunded_usage, duplicate=res.replayed,
                event_cost_json="" if res.event_cost is None else (
                    res.event_cost_json or dumps_exact(res.event_cost)),
            )

        # as Debit: on the event loop when the debits and the account are in memory
        reply = await self._inline_or_run(
            lambda c: c.accounts.refund_debits_inline(*args, **flags), work, answer)
        if fired:
            self.owner.publish(fired, actions_id="triggers after Refund", account="")
        return reply

    async def GetAccount(self, request: rals_pb2.AccountRequest, context: Any) -> rals_pb2.Account:
        tenant = request.tenant or self.owner.settings.default_tenant
        fwd = await self._forward("GetAccount", request, context, tenant, request.account)
        if fwd is not None:
            return fwd
        return await self._run(lambda c: account_pb(c.accounts.get_account(tenant, request.account)))

    async def SetAccount(self, request: rals_pb2.SetAccountRequest, context: Any) -> rals_pb2.Account:
        if not request.account:
            raise CGRError("MANDATORY_IE_MISSING", "[Account]")
        tenant = request.tenant or self.owner.settings.default_tenant
        fwd = await self._forward("SetAccount", request, context, tenant, request.account)
        if fwd is not None:
            return fwd
        allow_negative = request.allow_negative if request.HasField("allow_negative") else None
        disabled = request.disabled if request.HasField("disabled") else None
        return await self._run(
            lambda c: account_pb(c.accounts.set_account(tenant, request.account, allow_negative=allow_negative, disabled=disabled))
        )

    async def RemoveAccount(self, request: rals_pb2.AccountRequest, context: Any) -> common_pb2.Empty:
        # Idempotent delete: an absent account is not an error (a retried remove succeeds).
        # The journal stays; each balance is closed by a journal row (AccountStore.remove_account).
        if not request.account:
            raise CGRError("MANDATORY_IE_MISSING", "[Account]")
        tenant = request.tenant or self.owner.settings.default_tenant
        fwd = await self._forward("RemoveAccount", request, context, tenant, request.account)
        if fwd is not None:
            return fwd
        removed = await self._run(lambda c: c.accounts.store.remove_account(tenant, request.account))
        self.owner.log.info("rals.account_removed", tenant=tenant, account=request.account, existed=removed)
        return common_pb2.Empty()

    async def GetAccountIDs(self, request: common_pb2.TenantRequest, context: Any) -> common_pb2.IDsResponse:
        tenant = request.tenant or self.owner.settings.default_tenant
        return await self._run(lambda c: common_pb2.IDsResponse(ids=[a for _, a in c.accounts.store.list_accounts(tenant)]))

    def _balance_args(self, request: rals_pb2.SetBalanceRequest) -> tuple[str, str, str, Decimal]:
        if not request.account:
            raise CGRError("MANDATORY_IE_MISSING", "[Account]")
        btype = request.balance_type or request.balance.type or "*monetary"
        try:
            value = parse_decimal(request.value or request.balance.value or "0")
        except UnitError as exc:
            raise CGRError("INVALID_ARGUMENT", f"value: {exc}") from None
        return request.tenant or self.owner.settings.default_tenant, request.account, btype, value

    async def SetBalance(self, request: rals_pb2.SetBalanceRequest, context: Any) -> rals_pb2.Account:
        tenant, account, btype, value = self._balance_args(request)
        fwd = await self._forward("SetBalance", request, context, tenant, account)
        if fwd is not None:
            return fwd
        b = request.balance

        def work(c: Compiled) -> BalanceChange:
            return c.accounts.set_balance(
                tenant, account, btype, value,
                balance_id=b.id or ("" if b.uuid else "*default"),
                balance_uuid=b.uuid or None,
                weight=parse_decimal(b.weight) if b.weight else None,
                expiry=from_unix_nano(b.expiry_unix_ns) if b.expiry_unix_ns else None,
                destination_ids=";".join(b.destination_ids) if b.destination_ids else None,
                rating_subject=b.rating_subject or None,
                categories=";".join(b.categories) if b.categories else None,
                blocker=b.blocker if b.blocker else None,
                disabled=b.disabled if b.disabled else None,
                timing_ids=list(b.timing_ids) if b.timing_ids else None,
                shared_groups=list(b.shared_groups) if b.shared_groups else None,
            )

        return await self._balance_changed(await self._run(work), "SetBalance", account)

    async def AddBalance(self, request: rals_pb2.SetBalanceRequest, context: Any) -> rals_pb2.Account:
        """AddBalance/DebitBalance (negative value): one journaled change under the account lock."""
        tenant, account, btype, value = self._balance_args(request)
        fwd = await self._forward("AddBalance", request, context, tenant, account)
        if fwd is not None:
            return fwd
        bid = request.balance.id or "*default"
        out = await self._run(lambda c: c.accounts.add_balance(
            tenant, account, btype, value, balance_id=bid, overwrite=request.overwrite))
        return await self._balance_changed(out, "DebitBalance" if value < 0 else "AddBalance", account)

    async def _balance_changed(self, out: BalanceChange, action: str, account: str) -> rals_pb2.Account:
        if not out.replayed:
            self.owner.publish(out.events, actions_id=f"triggers after {action}", account=account)
            if any(e.kind == REMOVE_ACCOUNT for e in out.events):
                acc = out.account
                await self._run(lambda c: remove_if_asked(c, acc.tenant, acc.account, out.events,
                                                          f"{action}:{uuid.uuid4()}"))
        return account_pb(out.account)

    async def RemoveBalance(self, request: rals_pb2.SetBalanceRequest, context: Any) -> rals_pb2.Account:
        """*remove_balance: every balance of the type matching the ID and UUID given (all of
        the type when neither is; NOT_FOUND when none matches)."""
        tenant, account, btype, _ = self._balance_args(request)
        bid, buuid = request.balance.id, request.balance.uuid
        fwd = await self._forward("RemoveBalance", request, context, tenant, account)
        if fwd is not None:
            return fwd

        def work(c: Compiled) -> rals_pb2.Account:
            c.accounts.remove_balance(tenant, account, btype, bid, balance_uuid=buuid)
            return account_pb(c.accounts.get_account(tenant, account))

        return await self._run(work)

    async def ExecuteActions(self, request: rals_pb2.ExecuteActionsRequest, context: Any) -> common_pb2.Empty:
        if not request.actions_id:
            raise CGRError("MANDATORY_IE_MISSING", "[ActionsId]")
        tenant = request.tenant or self.owner.settings.default_tenant
        if request.account:
            fwd = await self._forward("ExecuteActions", request, context, tenant, request.account)
            if fwd is not None:
                return fwd
        events: list[ActionEvent] = await self._run(
            lambda c: c.accounts.execute_actions(tenant, request.account or None, request.actions_id)
        )
        self.owner.publish(events, actions_id=request.actions_id, account=request.account)
        return common_pb2.Empty()

    async def SetAccountActionTriggers(
        self, request: rals_pb2.SetAccountActionTriggersRequest, context: Any
    ) -> common_pb2.JsonObject:
        """Update the matching triggers with ``action_trigger_json``. Two extensions of the same
        request (CGRateS Add/RemoveAccountActionTriggers): ``add_group_ids`` (+ ``overwrite``)
        attaches trigger groups, ``remove`` drops the matching triggers."""
        if not request.account:
            raise CGRError("MANDATORY_IE_MISSING", "[Account]")
        tenant = request.tenant or self.owner.settings.default_tenant
        fwd = await self._forward("SetAccountActionTriggers", request, context, tenant, request.account)
        if fwd is not None:
            return fwd
        rid = request.request_id or None
        fields: Any = {}
        if request.action_trigger_json:
            try:
                fields = loads_exact(request.action_trigger_json)
            except ValueError as exc:
                raise CGRError("INVALID_ARGUMENT", f"action_trigger_json: {exc}") from None
            if not isinstance(fields, dict):
                raise CGRError("INVALID_ARGUMENT", "action_trigger_json: expected a JSON object")

        def work(c: Compiled) -> common_pb2.JsonObject:
            svc = c.accounts
            if request.add_group_ids or request.overwrite:
                trigs = svc.add_action_triggers(tenant, request.account, list(request.add_group_ids),
                                                overwrite=request.overwrite, request_id=rid)
            elif request.remove:
                trigs = svc.remove_action_triggers(tenant, request.account, group_id=request.group_id,
                                                   unique_id=request.unique_id, request_id=rid)
            else:
                trigs = svc.set_action_triggers(tenant, request.account, fields, group_id=request.group_id,
                                                unique_id=request.unique_id, request_id=rid)
            return common_pb2.JsonObject(json=dumps_exact([action_trigger_json(t) for t in trigs]))

        out = await self._run(work)
        self.owner.log.info("rals.account_triggers_changed", tenant=tenant, account=request.account,
                            group=request.group_id, unique_id=request.unique_id)
        return out

    async def GetAccountActionTriggers(self, request: rals_pb2.AccountRequest, context: Any) -> common_pb2.JsonObject:
        tenant = request.tenant or self.owner.settings.default_tenant
        fwd = await self._forward("GetAccountActionTriggers", request, context, tenant, request.account)
        if fwd is not None:
            return fwd
        return await self._run(lambda c: common_pb2.JsonObject(json=dumps_exact(
            [action_trigger_json(t) for t in c.accounts.get_account(tenant, request.account).triggers])))

    async def VerifyAccounts(self, request: rals_pb2.VerifyAccountsRequest,
                             context: Any) -> rals_pb2.VerifyAccountsResponse:
        # Reads the StorDB, never an owner's cache: any RALs process may answer for any account.
        tenant = request.tenant or (self.owner.settings.default_tenant if request.accounts else None)
        checks = await self._run(lambda c: c.accounts.verify_accounts(tenant, list(request.accounts)))
        return rals_pb2.VerifyAccountsResponse(accounts=[
            rals_pb2.AccountCheck(
                tenant=ch.tenant, account=ch.account, ok=ch.ok, error=ch.error,
                differences=[rals_pb2.BalanceDifference(balance_uuid=u, value=money_str(v),
                                                        journal_sum=money_str(j))
                             for u, v, j in ch.differences],
            )
            for ch in checks
        ])

    async def GetOwnership(self, request: common_pb2.Empty, context: Any) -> rals_pb2.Ownership:
        own = self.owner.ownership
        if isinstance(own, AdvisoryPartitions):
            return rals_pb2.Ownership(advertised=self.owner.advertised, partitions=sorted(own.held()),
                                      partitions_total=PARTITIONS, mode="advisory-locks")
        return rals_pb2.Ownership(advertised=self.owner.advertised, partitions=range(PARTITIONS),
                                  partitions_total=PARTITIONS, mode="owns-all")

    async def GetScheduledActions(self, request: common_pb2.Empty, context: Any) -> rals_pb2.ScheduledActionsResponse:
        return rals_pb2.ScheduledActionsResponse(actions=[
            rals_pb2.ScheduledAction(
                next_run_unix_ns=at, action_plan_id=e.plan_id, actions_id=e.actions_id, timing_id=e.timing.id,
                accounts=sorted(f"{t}:{a}" for t, a in accounts),
            ) for at, e, accounts in self.owner.scheduler.scheduled()
        ])

    async def GetSharedGroup(self, request: common_pb2.TenantID, context: Any) -> common_pb2.JsonObject:
        if not request.id:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        return await self._run(lambda c: common_pb2.JsonObject(
            json=dumps_exact(c.accounts.get_shared_group(request.id))))

    async def ReloadCache(self, request: common_pb2.ReloadCacheRequest, context: Any) -> common_pb2.ReloadCacheResponse:
        compiled = await self.owner.compile(request.tpid or None)
        return common_pb2.ReloadCacheResponse(tpid=compiled.tpid, loaded=self.owner.counts)


class RalsServer(BaseService):
    name = "rals"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.compiled: Compiled | None = None
        self.counts: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self.scheduler = ActionScheduler(on_runs=self._scheduled_runs)
        self._scheduler_task: asyncio.Task[None] | None = None
        # one store for the process: a tariff-plan reload keeps the accounts it has in memory
        self.store: LiveStore | None = None
        self.ownership: Ownership = OwnsAll()
        self.advertised = ""  # host:port published as this process's (Postgres only)
        self._peers: dict[str, tuple[grpc.aio.Channel, rals_pb2_grpc.RalsServiceStub]] = {}
        self._hung: dict[str, float] = {}  # owner address -> monotonic time to ask it again
        # A debit's worker thread waits for its group commit: enough threads to fill a batch
        # (RALs's own pool, not the event loop's default one).
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rals")
        # *http_post and *cgr_rpc actions being delivered, *cdrlog CDRs being written
        self._posts: set[asyncio.Task[Any]] = set()
        self.clients: RalsClients | None = None
        self.cdrlog: CdrlogOutbox | None = None

    def register(self, server: grpc.aio.Server) -> list[str]:
        rals_pb2_grpc.add_RalsServiceServicer_to_server(RalsServicer(self), server)
        from services.rals import tariffplan_service as tps
        tariffplan_pb2_grpc.add_TariffPlanServiceServicer_to_server(tps.TariffPlanServicer(self), server)
        return [rals_pb2.DESCRIPTOR.services_by_name["RalsService"].full_name, tps.SERVICE_NAME]

    async def load(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rals")
        engine = self.engine
        self.store = LiveStore(engine, owns=lambda t, a: self.ownership.owns(t, a))
        if engine.dialect.name == "postgresql":
            self.advertised = self._advertised()
            self.ownership = AdvisoryPartitions(engine, self.advertised, on_gained=self._gained,
                                                on_lost=self._lost)
        self.clients = RalsClients(self.settings)
        self.cdrlog = CdrlogOutbox(engine, self.clients.process_cdrs)
        self.cdrlog.start()
        await self.compile(None)
        self._scheduler_task = asyncio.create_task(self.scheduler.run_forever(), name="rals-scheduler")

    async def close(self) -> None:
        if self._posts:  # *http_post actions in flight get a moment to be delivered
            await asyncio.wait(self._posts, timeout=ACTION_POST_TIMEOUT_S)
        self.scheduler.stop()
        if self._scheduler_task is not None:
            try:
                await asyncio.wait_for(self._scheduler_task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._scheduler_task.cancel()
            self._scheduler_task = None
        if self.cdrlog is not None:  # undelivered rows stay in the outbox for the next start
            await self.cdrlog.close()
            self.cdrlog = None
        if self.clients is not None:
            await self.clients.close()
            self.clients = None
        self.ownership.close()  # first: the partitions go to the other processes at once
        self.ownership = OwnsAll()
        if self.store is not None:
            self.store.close()
            self.store = None
        for channel, _stub in self._peers.values():
            await channel.close()
        self._peers.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        await super().close()

    def _advertised(self) -> str:
        """The address published with this process's partitions (peers forward there). A
        wildcard listen address is dialable by nobody else: then nothing is published, peers
        serve this process's accounts on the locked path (exact, slower), and the log says why."""
        return advertised(self.settings, self.name, self.bound_address, self.log)

    def _gained(self, partition: int) -> None:
        # Another process may have changed these accounts while it owned the partition.
        if self.store is not None:
            self.store.evict(keep=lambda t, a: partition_of(t, a) != partition)

    def _lost(self) -> None:
        if self.store is not None:
            self.store.evict()

    async def forward(self, method: str, request: Any, context: Any, tenant: str,
                      account: str) -> Any | None:
        """Pass an account's request to the process that owns it; None: serve it here (ours, a
        forwarded request, the owner unreachable, or hung for a retry-safe request — then the
        locked path keeps it exact)."""
        own = self.ownership
        if not account or own.owns(tenant, account):
            return None
        if any(m[0] == FORWARDED for m in (context.invocation_metadata() or ())):
            return None
        addr = own.known_owner(tenant, account)
        if addr is None:
            addr = await asyncio.to_thread(own.claim, tenant, account)
        if not addr or addr == self.advertised:
            return None
        retryable = method in RETRY_SAFE
        if retryable and self._hung.get(addr, 0.0) > time.monotonic():
            return None  # the owner did not answer a moment ago: the locked path, here
        if addr not in self._peers:
            channel = auth.aio_channel(self.settings, addr)
            self._peers[addr] = (channel, rals_pb2_grpc.RalsServiceStub(channel))
        stub = self._peers[addr][1]
        remaining = context.time_remaining()
        # A request that is safe to serve twice keeps part of its deadline for serving it here
        # should the owner hang (stopped, overloaded: its lease lives on, nobody can take over).
        budget = remaining if remaining is not None else self.settings.rpc_timeout / 1e9
        try:
            return await getattr(stub, method)(
                request, timeout=budget * FORWARD_SHARE if retryable else budget,
                metadata=((FORWARDED, "1"),))
        except grpc.aio.AioRpcError as err:
            if retryable and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                self.log.info("rals.owner_hung", owner=addr, account=f"{tenant}:{account}")
                self._hung[addr] = time.monotonic() + HUNG_FOR_S
                return None
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                await context.abort(err.code(), err.details() or "")
            # The owner is gone: take its partition if the lock went with it, else serve here.
            self.log.info("rals.owner_unavailable", owner=addr, account=f"{tenant}:{account}")
            own.forget(tenant, account)
            await asyncio.to_thread(own.claim, tenant, account)
            return None

    def _scheduled_runs(self, runs: list[ScheduledRun]) -> None:
        for run in runs:
            self.log.info("rals.scheduled", plan=run.plan_id, tenant=run.tenant, account=run.account,
                          at_unix=run.at_ns // SECOND, status=run.status, error=run.error)
            self.publish(run.events, actions_id=";".join(run.actions), account=run.account)

    async def compile(self, tpid: str | None) -> Compiled:
        """(Re)build the rating data and account service from the StorDB, then provision the
        plan's accounts (AccountActions + *asap action plans, each applied once)."""
        async with self._lock:
            tpid = tpid or self.settings.tpid
            rows = await self.fetch_tariffplan(tpid)
            decimals = self.settings.rounding_decimals

            def build() -> tuple[Compiled, Any]:
                data = RatingData.from_rows(rows)
                accounts = AccountService(self.engine, rows, tpid=tpid, rounding_decimals=decimals, data=data,
                                          store=self.store)
                report = accounts.provision()
                timed = timed_plans(rows)  # checked before the swap: a bad TimingId keeps the old plan
                return Compiled(tpid, data, accounts), (report, timed)

            try:
                compiled, (report, timed) = await asyncio.to_thread(build)
            except (AccountError, RatingError) as exc:
                raise _as_cgr(exc) from None
            except Exception as exc:  # RatingDataError and friends: name the problem, keep the old plan
                raise CGRError("SERVER_ERROR", f"tariff plan {tpid!r}: {exc}") from None
            self.compiled = compiled
            queued = self.scheduler.load(compiled.accounts, rows, tpid)
            self.counts = {name: len(rows.get(name, [])) for name in ("Destinations", "Rates", "RatingPlans", "RatingProfiles", "Actions", "AccountActions")}
            self.cache_tpid, self.cache_counts = tpid, cache_counts(rows, RALS_FILES)
            self.log.info("rals.loaded", tpid=tpid, accounts=len(report.accounts),
                          applied=len(report.applied), skipped=len(report.skipped),
                          timed_plans=len(timed), scheduled=queued)
            self.publish(report.events, actions_id="*asap", account="")
            return compiled

    def publish(self, events: Sequence[ActionEvent | Mapping[str, Any]], *, actions_id: str,
                account: str) -> None:
        """Side effects of committed actions, all in the background (called on the event loop):
        *log lines go to the log; *cdrlog CDRs to the outbox cdre is fed from
        (:mod:`services.rals.cdrlog`); *http_post(_async) posts (:meth:`_post_action`) and
        *cgr_rpc calls (:mod:`services.rals.cgr_rpc`) go out."""
        cdrs: list[dict[str, Any]] = []
        for ev in events:
            kind, data = (ev.kind, ev.data) if isinstance(ev, ActionEvent) else (ev["kind"], ev["data"])
            if kind in HTTP_POST_KINDS:
                self._background(self._post_action(kind, data["url"], data["body"], actions_id, account))
                continue
            if kind == CGR_RPC:
                self._background(run_cgr_rpc(data, self._call_api, self.log, actions_id=actions_id,
                                             account=account))
                continue
            if kind == "*cdrlog":
                cdrs.append(data)
            self.log.info("action." + kind.lstrip("*"), actions=actions_id, account=account, data=dumps_exact(data))
        if cdrs and self.cdrlog is not None:
            self._background(self.cdrlog.add(cdrs))

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _call_api(self, method: str, params: Any, timeout_s: float) -> Any:
        if self.clients is None:
            raise CGRError("SERVER_ERROR", "rals is stopping")
        return await self.clients.call_api(method, params, timeout_s)

    async def _post_action(self, kind: str, url: str, body: Any, actions_id: str, account: str) -> None:
        """POST the account JSON, tried ``ACTION_POST_ATTEMPTS`` times with backoff (v0.10's
        http poster's attempts); a post that never got through is logged as an error naming the
        URL and counted, the way v0.10 keeps it as a failed post."""
        payload = dumps_exact(body).encode()
        delay = 0.5
        for attempt in range(1, ACTION_POST_ATTEMPTS + 1):
            try:
                await asyncio.to_thread(http_post, url, payload, JSON_CONTENT_TYPE, ACTION_POST_TIMEOUT_S)
                ACTION_POSTS.labels(kind=kind, outcome="posted").inc()
                return
            except DeliveryError as exc:
                if attempt == ACTION_POST_ATTEMPTS:
                    ACTION_POSTS.labels(kind=kind, outcome="failed").inc()
                    self.log.error("action.post_failed", kind=kind, url=url, actions=actions_id,
                                   account=account, attempts=attempt, error=str(exc))
                    return
                await asyncio.sleep(delay)
                delay *= 2
