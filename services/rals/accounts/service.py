"""The account operations the RALs gRPC server calls (thin handlers map 1:1 onto these).

::

    svc = AccountService(engine, rows, tpid="tutorial")    # rows: TariffPlanRows
    svc.provision()                                         # AccountActions + *asap plans, once
    svc.get_max_usage(cd) -> int                            # ns; -1 = unlimited (AllowNegative)
    svc.debit(cd, request_id, *, max_debit=False) -> DebitResult
    svc.refund(request_id, tenant, account, *, debit_request_id=None, charges=None,
               keep_usage_ns=None) -> RefundResult
    svc.get_account(tenant, account) -> Account
    svc.set_account(tenant, account, *, allow_negative=None, disabled=None,
                    request_id=None) -> Account
    svc.set_balance(tenant, account, balance_type, value, *, balance_id="", balance_uuid=None,
                    weight=None, expiry=None, destination_ids=None, rating_subject=None,
                    categories=None, blocker=None, disabled=None, request_id=None)
                                                            # -> BalanceChange
    svc.add_balance(tenant, account, balance_type, value, *, balance_id="*default",
                    overwrite=False, request_id=None) -> BalanceChange   # value < 0: a debit
    svc.remove_balance(tenant, account, balance_type, balance_id, *, balance_uuid="", request_id=None) -> None
    svc.execute_actions(tenant, account, actions_id, *, request_id=None) -> list[ActionEvent]
    svc.verify(tenant, account) -> {}                       # balances == Σ journal
    svc.set_action_triggers(tenant, account, fields, *, group_id="", unique_id="")
    svc.add_action_triggers(tenant, account, group_ids, *, overwrite=False)
    svc.remove_action_triggers(tenant, account, *, group_id="", unique_id="")
                                                            # -> the account's triggers

Errors are :class:`AccountError` / :class:`RatingError` with ``.word`` = the CGRateS word:
``ACCOUNT_NOT_FOUND`` (debit / max usage on an unknown account), ``NOT_FOUND`` (get/admin on an
unknown account or balance), ``ACCOUNT_DISABLED``, ``INSUFFICIENT_CREDIT``,
``INSUFFICIENT_CREDIT_BALANCE_BLOCKER``, ``RATING_PLAN_NOT_FOUND``, ``UNAUTHORIZED_DESTINATION``,
``MAX_USAGE_EXCEEDED``, ``INVALID_ARGUMENT``, ``UNSUPPORTED_ACTION``. On any error nothing changed.

What callers must know (request types):

* ``*prepaid``: Authorize → :meth:`get_max_usage`; during the session → :meth:`debit` with
  ``max_debit=True`` (MaxDebit: shortened to what the account can pay; ``cd.force_duration``
  turns a shortfall into ``INSUFFICIENT_CREDIT``), ``cd.loop_index``/``duration_index_ns``/
  ``max_cost_so_far`` carried by the caller from piece to piece; at terminate → :meth:`refund`
  with the surplus (``keep_usage_ns`` trims whole increments; 0 refunds the connect fee too).
* ``*pseudoprepaid``: :meth:`get_max_usage` at authorize, :meth:`debit` (may go negative) at CDR.
* ``*postpaid``: no RALs call at authorize; :meth:`debit` at CDR time (goes negative unless
  ``cd.deny_negative_account``; then a shortfall is ``INSUFFICIENT_CREDIT``).
* ``*rated``: ``rating.get_cost`` only (no account); ``*none``: nothing.
* Every debit/refund/admin change needs an idempotency ``request_id`` (e.g.
  ``<cgrid>:<run_id>:<loop_index>``); a retry with the same id returns the first result
  (``replayed=True``) and changes nothing. Admin calls without one get a fresh id.
* The account's action triggers are checked after every balance change: debits, refunds,
  :meth:`set_balance`, :meth:`add_balance` and action sets (CGRateS checks them after each); their
  side effects come back as ``events``.
* ``DebitResult.cost`` is the sum of the increments (EventCost-style, global decimals, no final
  DestinationRate rounding); ``rounded_cost`` applies the DestinationRate rounding per rating
  (what a CDR's Cost shows with PerformRounding). The rounding difference is charged on the
  balance by :meth:`debit` with ``perform_rounding`` (CDR rating) and, for a prepaid session, at
  its end by :meth:`refund` with ``round_kept`` (CGRateS's RefundRounding).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import round_money
from services.rals.accounts.actions import ActionEvent, removal_asked
from services.rals.accounts.debit import (
    INSUFFICIENT_CREDIT,
    Charge,
    check_account,
    debit_account,
)
from services.rals.accounts.eventcost import debit_event_cost, kept_event_cost, session_event_cost
from services.rals.accounts.live import LiveStore
from services.rals.accounts.maxusage import UNLIMITED, max_usage
from services.rals.accounts.model import (
    MONETARY,
    Account,
    AccountError,
    ActionTrigger,
    Balance,
    round_value,
)
from services.rals.accounts.provision import CompiledActions, ProvisionReport, provision
from services.rals.accounts.refund import refund_charges, trim_charges
from services.rals.accounts.shared import SharedGroup, SharedView, groups_of, parse_shared_groups
from services.rals.accounts.store import AccountStore, Applied, Members, parse_destination_ids
from services.rals.accounts.triggers import check_triggers, count_debit, parse_triggers
from services.rals.rating import CallCost, CallDescriptor, RatingData, get_cost

ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"


class _NeedsGroup(Exception):  # noqa: N818 - control flow: the change touches other accounts
    pass


@dataclass
class DebitResult:
    request_id: str
    cost: Decimal
    usage_ns: int
    charges: list[Charge]
    account: dict[str, Any]  # AccountSummary after the debit
    rounded_cost: Decimal = Decimal(0)
    events: list[dict[str, Any]] = field(default_factory=list)  # trigger side effects
    replayed: bool = False
    # The v0.10 EventCost of the debit, when asked (built while the charges still know their
    # timespans, and journaled with the result so a replay answers the same document).
    event_cost: dict[str, Any] | None = None
    # ``event_cost`` as JSON text when the store encoded it already for the journal ("": not)
    event_cost_json: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {
            "Cost": self.cost, "RoundedCost": self.rounded_cost, "Usage": self.usage_ns,
            "Charges": [c.to_json() for c in self.charges], "AccountSummary": self.account,
            "Events": self.events,
        }
        if self.event_cost is not None:
            out["EventCost"] = self.event_cost
        return out

    @classmethod
    def from_json(cls, request_id: str, d: dict[str, Any], replayed: bool,
                  event_cost_json: str = "") -> DebitResult:
        return cls(
            request_id=request_id, cost=Decimal(str(d["Cost"])), usage_ns=int(d["Usage"]),
            charges=[Charge.from_json(c) for c in d["Charges"]], account=d["AccountSummary"],
            rounded_cost=Decimal(str(d["RoundedCost"])), events=d.get("Events", []),
            replayed=replayed, event_cost=d.get("EventCost"), event_cost_json=event_cost_json,
        )

    @classmethod
    def from_applied(cls, request_id: str, applied: Applied) -> DebitResult:
        return cls.from_json(request_id, applied.result, applied.replayed,
                             applied.event_cost_json)


@dataclass
class RefundResult:
    request_id: str
    refunded: Decimal  # money given back
    charges: list[Charge]  # what was refunded
    kept: list[Charge]  # what stays charged (when trimming)
    replayed: bool = False
    events: list[ActionEvent] = field(default_factory=list)  # trigger side effects
    # refund_debits(want_event_cost): the EventCost of what stays charged (journaled with the
    # refund, so a replay answers the same); None when a debit kept no EventCost
    event_cost: dict[str, Any] | None = None
    event_cost_json: str = ""  # its JSON text when the store encoded it already ("": not)


@dataclass
class BalanceChange:
    """An admin balance change (SetBalance, AddBalance/DebitBalance): the account after it, the
    balance it changed and the side effects of the triggers it fired."""

    account: Account
    balance_uuid: str
    events: list[ActionEvent] = field(default_factory=list)
    replayed: bool = False  # the request id was applied before: nothing changed now

    @property
    def balance(self) -> Balance:
        b = self.account.by_uuid(self.balance_uuid)
        if b is None:  # replayed, and removed since
            raise AccountError("NOT_FOUND", f"balance uuid {self.balance_uuid}")
        return b


def rounded_cost(charges: list[Charge]) -> Decimal:
    """DestinationRate rounding applied per rating run of consecutive charges."""
    total = Decimal(0)
    group: list[Charge] = []

    def flush() -> Decimal:
        if not group:
            return Decimal(0)
        raw = sum((c.total_cost for c in group), Decimal(0))
        g = group[-1]
        return round_money(raw, g.rounding_decimals, g.rounding_method) if g.rounding_method \
            else raw

    for c in charges:
        if group and (c.rates_id, c.rating_plan_id) != (group[-1].rates_id,
                                                       group[-1].rating_plan_id):
            total += flush()
            group = []
        group.append(c)
    return total + flush()


@dataclass(frozen=True)
class AccountCheck:
    """One account's verification: ``differences`` (balance uuid, value, journal sum) lists
    the balances whose value is not the sum of their journal; ``error`` says why it could not be
    checked."""

    tenant: str
    account: str
    error: str = ""
    differences: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and not self.differences


class AccountService:
    def __init__(
        self, engine: Engine, rows: TariffPlanRows, *, tpid: str = "default",
        rounding_decimals: int = 5, data: RatingData | None = None,
        store: AccountStore | None = None,
    ) -> None:
        # ``store``: the server passes its one LiveStore, so a reload keeps the cached accounts
        self.store = store or AccountStore(engine)
        self.rows = rows
        self.tpid = tpid
        self.decimals = rounding_decimals
        self.data = data or RatingData.from_rows(rows)
        self.compiled = CompiledActions.from_rows(rows)
        self.shared_groups: dict[str, SharedGroup] = parse_shared_groups(
            rows.get("SharedGroups", []))

    # --- rating glue ---------------------------------------------------------------------

    def _rate(self, cd: CallDescriptor) -> CallCost:
        return get_cost(self.data, cd, rounding_decimals=self.decimals)

    @staticmethod
    def _who(cd: CallDescriptor) -> tuple[CallDescriptor, str, str]:
        cd = cd.with_defaults()
        return cd, cd.tenant, cd.account or cd.subject

    def _check_triggers(
        self, acc: Account, before: Mapping[str, Decimal], now: datetime,
    ) -> list[dict[str, Any]]:
        """Fire the account's due triggers after a change; ``before`` = balance values by uuid
        before it (the balances whose value moved are the changed ones)."""
        changed = {b.uuid for b in acc.balances if before.get(b.uuid) != b.value}
        events = check_triggers(
            acc, changed=changed, now=now,
            run_actions=lambda a, aid: self.compiled.run_triggered(a, aid, now, 1),
        )
        return [{"kind": e.kind, "data": e.data} for e in events]

    def _balance_change(self, applied: Applied, tenant: str, account: str) -> BalanceChange:
        r = applied.result
        return BalanceChange(
            applied.account or self.store.get_account(tenant, account), r["UUID"],
            [ActionEvent(e["kind"], e["data"]) for e in r.get("Events", [])], applied.replayed,
        )

    # --- operations ----------------------------------------------------------------------

    def provision(self, now: datetime | None = None) -> ProvisionReport:
        return provision(self.store, self.rows, self.tpid, compiled=self.compiled, now=now)

    def get_account(self, tenant: str, account: str) -> Account:
        return self.store.get_account(tenant, account)

    def verify(self, tenant: str, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        return self.store.verify(tenant, account)

    def verify_accounts(self, tenant: str | None, accounts: list[str]) -> list[AccountCheck]:
        """:meth:`verify` for each named account of ``tenant``, or for every account (of
        ``tenant``; of every tenant when it is None) when none is named."""
        targets = [(tenant or "", a) for a in accounts] if accounts else \
            self.store.list_accounts(tenant)
        out: list[AccountCheck] = []
        for t, a in targets:
            try:
                bad = self.verify(t, a)
            except AccountError as exc:
                out.append(AccountCheck(t, a, error=str(exc)))
                continue
            out.append(AccountCheck(t, a, differences=sorted((u, v, s) for u, (v, s) in bad.items())))
        return out

    def get_max_usage(self, cd: CallDescriptor) -> int:
        """How long the account can talk (ns, ≤ requested); −1 = unlimited (AllowNegative)."""
        cd, tenant, name = self._who(cd)
        try:
            acc = self.store.peek(tenant, name)  # read only: max_usage works on a copy
        except AccountError as exc:
            raise AccountError(ACCOUNT_NOT_FOUND, f"{tenant}:{name}") from exc
        return max_usage(acc, cd, self._rate, self.data.prefix_index, decimals=self.decimals,
                         timings=self.data.timings, shared=self._shared_view(acc))

    def debit(
        self, cd: CallDescriptor, request_id: str, *, max_debit: bool = False,
        perform_rounding: bool = False, event_cost: bool = False,
    ) -> DebitResult:
        """Debit the call from its account atomically (see module doc for the flags).

        ``perform_rounding`` (CDR rating): the DestinationRate rounding difference is
        charged too (a positive difference debited, a negative one refunded) on the monetary
        balance that paid last, so the balance moves by exactly the CDR's Cost.
        ``event_cost``: also build the debit's v0.10 EventCost (``DebitResult.event_cost``).
        """
        tenant, name, change = self._debit_change(cd, request_id, max_debit=max_debit,
                                                  perform_rounding=perform_rounding,
                                                  event_cost=event_cost)
        try:
            applied = self._apply_shared_aware(tenant, name, change, request_id, "debit",
                                               self._group_members)
        except AccountError as exc:
            if exc.word == "NOT_FOUND":
                raise AccountError(ACCOUNT_NOT_FOUND, f"{tenant}:{name}") from exc
            raise
        return DebitResult.from_applied(request_id, applied)

    async def debit_inline(
        self, cd: CallDescriptor, request_id: str, *, max_debit: bool = False,
        perform_rounding: bool = False, event_cost: bool = False,
    ) -> DebitResult | None:
        """:meth:`debit` on the event loop when the store can serve it there (an owned account
        in memory, no shared group, its lock free: see ``LiveStore.apply_inline``); None when
        it cannot, nothing changed: the caller runs :meth:`debit` in a worker thread."""
        tenant, name, change = self._debit_change(cd, request_id, max_debit=max_debit,
                                                  perform_rounding=perform_rounding,
                                                  event_cost=event_cost)
        applied = await self._apply_inline(tenant, name, change, request_id, "debit")
        return None if applied is None else DebitResult.from_applied(request_id, applied)

    def _debit_change(
        self, cd: CallDescriptor, request_id: str, *, max_debit: bool, perform_rounding: bool,
        event_cost: bool,
    ) -> tuple[str, str, Callable[[Account, SharedView | None], dict[str, Any]]]:
        """(tenant, account, the change a debit makes to the account) — see :meth:`debit`."""
        cd, tenant, name = self._who(cd)
        now = datetime.now(UTC)

        def change(acc: Account, shared: SharedView | None) -> dict[str, Any]:
            check_account(acc)
            piece = cd
            if max_debit:
                allowed = max_usage(acc, cd, self._rate, self.data.prefix_index,
                                    decimals=self.decimals, timings=self.data.timings,
                                    shared=shared)
                if allowed != UNLIMITED and allowed < cd.usage:
                    if cd.force_duration:
                        raise AccountError(INSUFFICIENT_CREDIT,
                                           f"{acc.id}: {allowed}ns of {cd.usage}ns payable")
                    if allowed == 0:
                        return DebitResult(
                            request_id, Decimal(0), 0, [], acc.summary(),
                            event_cost=debit_event_cost([], piece, acc.summary(),
                                                        decimals=self.decimals)
                            if event_cost else None,
                        ).to_json()
                    piece = replace(cd, usage_ns=allowed, time_end=None)
            before = {b.uuid: b.value for b in acc.balances}
            out = debit_account(acc, piece, self._rate, self.data.prefix_index,
                                go_negative=not cd.deny_negative_account, decimals=self.decimals,
                                timings=self.data.timings, shared=shared)
            if not out.complete:
                raise AccountError(INSUFFICIENT_CREDIT,
                                   f"{acc.id}: cannot pay {piece.usage}ns to {cd.destination}")
            diff = rounded_cost(out.charges) - out.cost if perform_rounding else Decimal(0)
            if perform_rounding:
                _charge_rounding(acc, out.charges, diff, self.decimals, shared)
            changed = {b.uuid for b in acc.balances if before.get(b.uuid) != b.value}
            paid = [b for b in acc.balances if b.uuid in changed]
            count_debit(acc, balance_type=MONETARY, amount=out.cost, destination=cd.destination,
                        prefix_index=self.data.prefix_index, paid_from=paid)
            events = check_triggers(
                acc, changed=changed, now=now,
                run_actions=lambda a, aid: self.compiled.run_triggered(a, aid, now, 1),
            )
            summary = acc.summary()
            return DebitResult(
                request_id, out.cost, out.usage_ns, out.charges, summary,
                rounded_cost(out.charges), [{"kind": e.kind, "data": e.data} for e in events],
                event_cost=debit_event_cost(out.charges, piece, summary, decimals=self.decimals,
                                            rounding_diff=diff) if event_cost else None,
            ).to_json()

        return tenant, name, change

    # --- shared groups ---------------------------------------------------------------------

    def get_shared_group(self, group_id: str) -> dict[str, Any]:
        """APIerSv1.GetSharedGroup: the group's parameters and its members (accounts holding a
        balance in it, from the StorDB); ``NOT_FOUND`` when the plan has no such group."""
        sg = self.shared_groups.get(group_id)
        if sg is None:
            raise AccountError("NOT_FOUND", f"shared group {group_id}")
        return sg.to_json(self.store.shared_members(frozenset({group_id})))

    def _group_members(self, conn: Connection, acc: Account) -> set[tuple[str, str]]:
        """The members of the caller's (known) shared groups, read in the debit's transaction."""
        return self.store.shared_members(groups_of(acc) & self.shared_groups.keys(), conn)

    def _shared_view(self, acc: Account) -> SharedView | None:
        """The other members of ``acc``'s shared groups as committed (reads only: GetMaxUsage)."""
        groups = groups_of(acc) & self.shared_groups.keys()
        if not groups_of(acc):
            return None
        members: dict[tuple[str, str], Account] = {}
        for key in sorted(self.store.shared_members(groups) - {(acc.tenant, acc.account)}):
            try:
                members[key] = AccountStore.get_account(self.store, *key)
            except AccountError:
                continue  # removed meanwhile
        return SharedView(self.shared_groups, members)

    def _apply_shared_aware(
        self, tenant: str, name: str, change: Callable[[Account, SharedView | None], dict[str, Any]],
        request_id: str, reason: str, members: Members,
        needs_group: Callable[[Account], bool] = lambda acc: bool(groups_of(acc)),
    ) -> Applied:
        """Run ``change`` as a one-account change (memory, group commit) unless the account
        turns out to hold a shared-group balance or ``members`` are needed: then as one
        transaction over the caller and every member (``AccountStore.apply_group``, row locks
        in key order). The one-account try raises before anything is written, so the request
        id is applied exactly once either way."""

        def solo(acc: Account) -> dict[str, Any]:
            if needs_group(acc):
                raise _NeedsGroup
            return change(acc, None)

        if not self.store.known_member(tenant, name):
            try:
                return self.store.apply(tenant, name, solo, request_id=request_id, reason=reason)
            except _NeedsGroup:
                pass
        return self.store.apply_group(
            tenant, name, lambda acc, others: change(acc, SharedView(self.shared_groups, others)),
            members=members, request_id=request_id, reason=reason)

    async def _apply_inline(
        self, tenant: str, name: str, change: Callable[[Account, SharedView | None], dict[str, Any]],
        request_id: str, reason: str,
        needs_group: Callable[[Account], bool] = lambda acc: bool(groups_of(acc)),
    ) -> Applied | None:
        """The one-account try of :meth:`_apply_shared_aware` on the event loop; None when the
        store cannot serve it there or the change needs the group path (raised before
        anything is written): the caller then runs the whole operation in a worker thread."""
        store = self.store
        if not isinstance(store, LiveStore) or store.known_member(tenant, name):
            return None

        def solo(acc: Account) -> dict[str, Any]:
            if needs_group(acc):
                raise _NeedsGroup
            return change(acc, None)

        try:
            return await store.apply_inline(tenant, name, solo, request_id=request_id,
                                            reason=reason)
        except _NeedsGroup:
            return None

    def debit_owner(self, request_id: str) -> tuple[str, str] | None:
        """(tenant, account) that the debit ``request_id`` charged; None when unknown."""
        stored = self.store.request_result(request_id)
        summary = (stored or {}).get("AccountSummary") or {}
        return (summary.get("Tenant", ""), summary.get("ID", "")) if summary else None

    def refund_debits(
        self, refund_id: str, debit_request_ids: list[str], *, keep_usage_ns: int | None = None,
        round_kept: bool = False, want_event_cost: bool = False,
    ) -> RefundResult:
        """Refund the charges of earlier debits (one session's, by their request ids) on the
        account the first one charged: :meth:`refund` under ``refund_id`` (a retry answers the
        first result). An unknown debit request id is ``NOT_FOUND`` and refunds nothing.
        ``want_event_cost``: also the EventCost of what is kept, from the EventCosts the debits
        kept (``RefundResult.event_cost``; None if one of them has none)."""
        owner, charges, pieces = self._collect_debits(refund_id, debit_request_ids,
                                                      self.store.request_result, want_event_cost)
        return self.refund(refund_id, owner[0], owner[1], charges=charges,
                           keep_usage_ns=keep_usage_ns, round_kept=round_kept,
                           event_cost_pieces=pieces)

    async def refund_debits_inline(
        self, refund_id: str, debit_request_ids: list[str], *, keep_usage_ns: int | None = None,
        round_kept: bool = False, want_event_cost: bool = False,
    ) -> RefundResult | None:
        """:meth:`refund_debits` on the event loop when every debit's record is in memory and
        the store can serve the account there; None, nothing changed, when not: the caller
        runs :meth:`refund_debits` in a worker thread."""
        store = self.store
        if not isinstance(store, LiveStore):
            return None
        try:
            owner, charges, pieces = self._collect_debits(
                refund_id, debit_request_ids, store.remembered, want_event_cost)
        except AccountError:
            return None  # a debit not in memory: the thread path reads the StorDB
        change, foreign = self._refund_change(charges, keep_usage_ns, round_kept, pieces)
        applied = await self._apply_inline(owner[0], owner[1], change, refund_id, "refund",
                                           needs_group=foreign)
        return None if applied is None else _refund_result(refund_id, applied)

    @staticmethod
    def _collect_debits(
        refund_id: str, debit_request_ids: list[str],
        lookup: Callable[[str], dict[str, Any] | None], want_event_cost: bool,
    ) -> tuple[tuple[str, str], list[Charge], list[dict[str, Any]] | None]:
        """(account charged, every charge, their kept EventCosts or None) of the debits."""
        if not refund_id:
            raise AccountError("MANDATORY_IE_MISSING", "[RefundID]")
        if not debit_request_ids:
            raise AccountError("MANDATORY_IE_MISSING", "[DebitRequestIDs]")
        charges: list[Charge] = []
        pieces: list[dict[str, Any]] | None = [] if want_event_cost else None
        owner: tuple[str, str] | None = None
        for debit_id in debit_request_ids:
            stored = lookup(debit_id)
            if stored is None:
                raise AccountError("NOT_FOUND", f"debit request {debit_id!r}")
            summary = stored.get("AccountSummary") or {}
            owner = owner or (summary.get("Tenant", ""), summary.get("ID", ""))
            charges += [Charge.from_json(ch) for ch in stored.get("Charges", [])]
            if pieces is not None and stored.get("EventCost"):
                pieces.append(stored["EventCost"])
            else:  # one debit without its EventCost: no document at all
                pieces = None
        assert owner is not None
        return owner, charges, pieces

    def refund(
        self, request_id: str, tenant: str, account: str, *, debit_request_id: str | None = None,
        charges: list[Charge] | None = None, keep_usage_ns: int | None = None,
        round_kept: bool = False, event_cost_pieces: list[dict[str, Any]] | None = None,
    ) -> RefundResult:
        """Give back charges: those given, or those of an earlier debit (by its request id).

        ``keep_usage_ns`` trims first: only the whole increments after that usage are refunded.
        ``round_kept`` (session end) also charges the DestinationRate rounding of what is kept;
        ``refunded`` is then net of it.
        """
        if charges is None:
            if debit_request_id is None:
                raise AccountError("MANDATORY_IE_MISSING", "[charges or debit_request_id]")
            stored = self.store.request_result(debit_request_id)
            if stored is None:
                raise AccountError("NOT_FOUND", f"debit request {debit_request_id!r}")
            charges = [Charge.from_json(c) for c in stored["Charges"]]
        change, foreign = self._refund_change(charges, keep_usage_ns, round_kept,
                                              event_cost_pieces)
        uuids = _balance_uuids(charges)
        applied = self._apply_shared_aware(
            tenant, account, change, request_id, "refund",
            lambda conn, _acc: self.store.balance_owners(conn, uuids), needs_group=foreign)
        return _refund_result(request_id, applied)

    def _refund_change(
        self, charges: list[Charge], keep_usage_ns: int | None, round_kept: bool,
        event_cost_pieces: list[dict[str, Any]] | None,
    ) -> tuple[Callable[[Account, SharedView | None], dict[str, Any]], Callable[[Account], bool]]:
        """(the change a refund makes, whether an account lacks a balance it names) — see
        :meth:`refund`."""
        kept: list[Charge] = []
        if keep_usage_ns is not None:
            kept, charges = trim_charges(charges, keep_usage_ns)
        to_refund = charges
        # merged and trimmed before the account is locked; only the rounding is known inside
        base_ec = None if event_cost_pieces is None else kept_event_cost(
            event_cost_pieces, keep_usage_ns or 0, decimals=self.decimals)

        now = datetime.now(UTC)

        def change(acc: Account, shared: SharedView | None) -> dict[str, Any]:
            before = {b.uuid: b.value for b in acc.balances}
            others = list(shared.members.values()) if shared is not None else []
            money = refund_charges(acc, to_refund, decimals=self.decimals, others=others)
            diff = Decimal(0)
            if round_kept:
                # RefundRounding at session end: the kept charges cost their rounded sum
                diff = rounded_cost(kept) - sum((c.total_cost for c in kept), Decimal(0))
                _charge_rounding(acc, kept, diff, self.decimals, shared)
                money -= diff
            out = {"Refunded": money, "Charges": [c.to_json() for c in to_refund],
                   "Kept": [c.to_json() for c in kept],
                   "Events": self._check_triggers(acc, before, now)}
            if base_ec is not None:
                out["EventCost"] = session_event_cost(base_ec, kept, diff, decimals=self.decimals)
            return out

        # Charges of a shared-group debit name balances of other members: those accounts are
        # changed with the caller's, in one transaction under their row locks.
        uuids = _balance_uuids([*to_refund, *kept])

        def foreign(acc: Account) -> bool:
            return bool(uuids - {b.uuid for b in acc.balances})

        return change, foreign

    def set_account(
        self, tenant: str, account: str, *, allow_negative: bool | None = None,
        disabled: bool | None = None, request_id: str | None = None,
    ) -> Account:
        """Create the account if missing; set the flags given."""

        def change(acc: Account) -> dict[str, Any]:
            if allow_negative is not None:
                acc.allow_negative = allow_negative
            if disabled is not None:
                acc.disabled = disabled
            return {}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="set_account", create=True)
        return out.account or self.store.get_account(tenant, account)

    def set_balance(
        self, tenant: str, account: str, balance_type: str, value: Decimal, *,
        balance_id: str = "", balance_uuid: str | None = None, weight: Decimal | None = None,
        expiry: datetime | None = None, destination_ids: str | None = None,
        rating_subject: str | None = None, categories: str | None = None,
        blocker: bool | None = None, disabled: bool | None = None,
        timing_ids: Sequence[str] | None = None, shared_groups: Sequence[str] | None = None,
        request_id: str | None = None,
    ) -> BalanceChange:
        """APIerSv1.SetBalance: find by uuid or id (creating it, and the account, if missing),
        set its value and the fields given, then check the account's triggers. A TimingID the
        tariff plan does not define (Timings.csv, ``*any``) is refused before anything changes;
        a shared group it does not define (SharedGroups.csv) too."""
        if isinstance(value, float):
            raise AccountError("INVALID_ARGUMENT", "value: refusing float, use Decimal")
        if not balance_id and not balance_uuid:
            raise AccountError("MANDATORY_IE_MISSING", "[BalanceID or BalanceUUID]")
        unknown = [t for t in timing_ids or () if t != "*any" and t not in self.data.timings]
        if unknown:
            raise AccountError("NOT_FOUND", f"TimingIDs {', '.join(unknown)}")
        groups = [g for g in shared_groups or () if g not in self.shared_groups]
        if groups:
            raise AccountError("NOT_FOUND", f"SharedGroups {', '.join(groups)}")
        now = datetime.now(UTC)

        def change(acc: Account) -> dict[str, Any]:
            before = {b.uuid: b.value for b in acc.balances}
            found = None
            for b in acc.balances:
                if (balance_uuid and b.uuid == balance_uuid) or (
                    not balance_uuid and b.id == balance_id and b.type == balance_type
                ):
                    found = b
                    break
            if found is None:
                if balance_uuid:
                    raise AccountError("NOT_FOUND", f"balance uuid {balance_uuid}")
                found = Balance(type=balance_type, id=balance_id)
                acc.balances.append(found)
            found.value = round_value(value, self.decimals)
            if weight is not None:
                found.weight = weight
            if expiry is not None:
                found.expiry = expiry
            if destination_ids is not None:
                found.destination_ids = parse_destination_ids(destination_ids)
            if rating_subject is not None:
                found.rating_subject = rating_subject
            if categories is not None:
                found.categories = frozenset(x for x in categories.split(";") if x)
            if blocker is not None:
                found.blocker = blocker
            if disabled is not None:
                found.disabled = disabled
            if timing_ids is not None:
                found.timing_ids = frozenset(timing_ids)
            if shared_groups is not None:
                found.shared_groups = frozenset(shared_groups)
            return {"UUID": found.uuid, "Events": self._check_triggers(acc, before, now)}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="set_balance", create=True)
        return self._balance_change(out, tenant, account)

    def add_balance(
        self, tenant: str, account: str, balance_type: str, value: Decimal, *,
        balance_id: str = "*default", overwrite: bool = False, request_id: str | None = None,
    ) -> BalanceChange:
        """APIerSv1.AddBalance (``value`` > 0) / DebitBalance (``value`` < 0): the balance of
        that type and ID (created, with the account, if missing) gets ``+value``; ``overwrite``
        sets it to ``value`` instead (*topup_reset / *debit_reset). Reading the balance, adding
        and writing are one journaled change under the account lock, so a debit landing at the
        same time is never lost; then the account's triggers are checked."""
        if isinstance(value, float):
            raise AccountError("INVALID_ARGUMENT", "value: refusing float, use Decimal")
        if not balance_id:
            raise AccountError("MANDATORY_IE_MISSING", "[BalanceID]")
        now = datetime.now(UTC)

        def change(acc: Account) -> dict[str, Any]:
            before = {b.uuid: b.value for b in acc.balances}
            found = next((b for b in acc.balances if b.id == balance_id and b.type == balance_type),
                         None)
            if found is None:
                found = Balance(type=balance_type, id=balance_id)
                acc.balances.append(found)
            found.value = round_value(value if overwrite else found.value + value, self.decimals)
            return {"UUID": found.uuid, "Events": self._check_triggers(acc, before, now)}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="add_balance", create=True)
        return self._balance_change(out, tenant, account)

    def remove_balance(
        self, tenant: str, account: str, balance_type: str, balance_id: str, *,
        balance_uuid: str = "", request_id: str | None = None,
    ) -> None:
        """Remove the balances of the type whose ID and UUID match those given (an empty one
        matches any), as v0.10's *remove_balance does."""
        def gone(b: Any) -> bool:
            return (b.type == balance_type and (not balance_id or b.id == balance_id)
                    and (not balance_uuid or b.uuid == balance_uuid))

        def change(acc: Account) -> dict[str, Any]:
            keep = [b for b in acc.balances if not gone(b)]
            if len(keep) == len(acc.balances):
                raise AccountError("NOT_FOUND", f"balance {balance_type} {balance_id or balance_uuid or '*any'!r}")
            acc.balances[:] = keep
            return {}

        self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                         reason="remove_balance")

    def execute_actions(
        self, tenant: str, account: str | None, actions_id: str, *, request_id: str | None = None,
    ) -> list[ActionEvent]:
        """Run an action set (ThresholdS, operators). ``account`` None: account-less sets only
        (e.g. ``*log``)."""
        now = datetime.now(UTC)
        if account is None:
            return self.compiled.run(None, actions_id, now)
        self.compiled.action_set(actions_id)  # NOT_FOUND before touching the account
        rid = request_id or _fresh()
        out = self.store.apply(
            tenant, account,
            lambda acc: {"events": [{"kind": e.kind, "data": e.data}
                                    for e in self.compiled.run(acc, actions_id, now)]},
            request_id=rid, reason=f"actions:{actions_id}",
        )
        if removal_asked(out.result["events"]):
            self.store.remove_account(tenant, account, request_id=f"{rid}:remove")
        return [ActionEvent(e["kind"], e["data"]) for e in out.result["events"]]


    # --- live action triggers (APIerSv1.*AccountActionTriggers) ---------------------------

    def set_action_triggers(
        self, tenant: str, account: str, fields: Mapping[str, Any], *, group_id: str = "",
        unique_id: str = "", request_id: str | None = None,
    ) -> list[ActionTrigger]:
        """APIerSv1.SetAccountActionTriggers: change ``fields`` (CGRateS AttrSetActionTrigger
        map keys, see :data:`TRIGGER_FIELDS`) on the account's triggers of ``group_id`` and/or
        ``unique_id`` (both empty: all). ``NOT_FOUND`` when none matches. Each changed trigger
        is re-validated exactly like an ActionTriggers.csv row; its executed state and counter
        stay (``Executed`` may be set explicitly). One journaled, atomic account change.
        """
        unknown = sorted(k for k in fields if k not in TRIGGER_FIELDS and k != "Executed")
        if unknown:
            raise AccountError("INVALID_ARGUMENT", f"ActionTrigger: unknown field(s) {', '.join(unknown)}")
        cells = {TRIGGER_FIELDS[k]: _cell(k, v) for k, v in fields.items() if k in TRIGGER_FIELDS}
        executed = fields.get("Executed")
        if executed is not None and not isinstance(executed, bool):
            raise AccountError("INVALID_ARGUMENT", f"ActionTrigger Executed: expected true/false, got {executed!r}")
        if cells.get("ActionsId"):
            self.compiled.action_set(cells["ActionsId"])  # NOT_FOUND before touching the account

        def change(acc: Account) -> dict[str, Any]:
            found = False
            for i, t in enumerate(acc.triggers):
                if (group_id and t.id != group_id) or (unique_id and t.unique_id != unique_id):
                    continue
                found = True
                row = {**trigger_row(t), **cells}
                [new] = parse_triggers([row])[t.id]
                new.executed, new.last_execution = t.executed, t.last_execution
                if executed is not None:
                    new.executed = executed
                acc.triggers[i] = new
            if not found:
                raise AccountError("NOT_FOUND", f"action trigger {group_id or '*'}/{unique_id or '*'} "
                                                f"on {tenant}:{account}")
            acc.triggers.sort(key=lambda t: -t.weight)
            return {}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="set_action_triggers")
        return (out.account or self.store.get_account(tenant, account)).triggers

    def add_action_triggers(
        self, tenant: str, account: str, group_ids: list[str], *, overwrite: bool = False,
        request_id: str | None = None,
    ) -> list[ActionTrigger]:
        """APIerSv1.AddAccountActionTriggers: attach the tariff plan's trigger groups (those of
        ActionTriggers, incl. ones set with APIerSv1.SetActionTriggers); a trigger whose unique
        id the account already has is kept as is. ``overwrite`` drops the current ones first."""
        missing = [g for g in group_ids if g not in self.compiled.triggers]
        if missing:
            raise AccountError("NOT_FOUND", f"action triggers {', '.join(missing)}")

        def change(acc: Account) -> dict[str, Any]:
            if overwrite:
                acc.triggers = []
            have = {t.unique_id for t in acc.triggers}
            for g in group_ids:
                for t in self.compiled.triggers[g]:
                    if t.unique_id not in have:
                        acc.triggers.append(replace(t, balance_filter=dict(t.balance_filter)))
                        have.add(t.unique_id)
            acc.triggers.sort(key=lambda t: -t.weight)
            return {}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="add_action_triggers")
        return (out.account or self.store.get_account(tenant, account)).triggers

    def remove_action_triggers(
        self, tenant: str, account: str, *, group_id: str = "", unique_id: str = "",
        request_id: str | None = None,
    ) -> list[ActionTrigger]:
        """APIerSv1.RemoveAccountActionTriggers: drop the matching triggers (both empty: all)."""

        def change(acc: Account) -> dict[str, Any]:
            acc.triggers = [t for t in acc.triggers
                            if (group_id and t.id != group_id) or (unique_id and t.unique_id != unique_id)]
            return {}

        out = self.store.apply(tenant, account, change, request_id=request_id or _fresh(),
                               reason="remove_action_triggers")
        return (out.account or self.store.get_account(tenant, account)).triggers


# CGRateS AttrSetActionTrigger.ActionTrigger keys -> ActionTriggers.csv columns
TRIGGER_FIELDS = {
    "ThresholdType": "ThresholdType", "ThresholdValue": "ThresholdValue", "Recurrent": "Recurrent",
    "MinSleep": "MinSleep", "ExpirationDate": "ExpiryTime", "ActivationDate": "ActivationTime",
    "Weight": "Weight", "ActionsID": "ActionsId", "ActionsId": "ActionsId", "BalanceID": "BalanceTag",
    "BalanceType": "BalanceType", "BalanceDestinationIds": "BalanceDestinationIds",
    "BalanceWeight": "BalanceWeight", "BalanceRatingSubject": "BalanceRatingSubject",
    "BalanceCategories": "BalanceCategories", "BalanceSharedGroups": "BalanceSharedGroup",
    "BalanceTimingTags": "BalanceTimingIds", "BalanceBlocker": "BalanceBlocker",
    "BalanceDisabled": "BalanceDisabled",
}
_FILTER_CELLS = {
    "id": "BalanceTag", "type": "BalanceType", "categories": "BalanceCategories",
    "destination_ids": "BalanceDestinationIds", "rating_subject": "BalanceRatingSubject",
    "shared_groups": "BalanceSharedGroup", "timing_ids": "BalanceTimingIds",
    "weight": "BalanceWeight", "blocker": "BalanceBlocker", "disabled": "BalanceDisabled",
}


def _cell(name: str, v: Any) -> str:
    """An API value as the CSV cell the loader would read (bare duration numbers are ns)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        raise AccountError("INVALID_ARGUMENT", f"ActionTrigger {name}: refusing float, send exact numbers")
    if isinstance(v, list | tuple):
        return ";".join(str(x) for x in v)
    if isinstance(v, dict):  # utils.StringMap {"DST_1": true}
        return ";".join(k if on else f"!{k}" for k, on in v.items())
    return str(v)


def _time_cell(t: datetime | None) -> str:
    return t.isoformat() if t else ""


def trigger_row(t: ActionTrigger) -> dict[str, str]:
    """An account's trigger back as the ActionTriggers.csv row that would load it."""
    row = {
        "Tag": t.id, "UniqueId": t.unique_id, "ThresholdType": t.threshold_type,
        "ThresholdValue": str(t.threshold_value), "Recurrent": "true" if t.recurrent else "false",
        "MinSleep": str(t.min_sleep_ns), "ExpiryTime": _time_cell(t.expiry),
        "ActivationTime": _time_cell(t.activation), "ActionsId": t.actions_id, "Weight": str(t.weight),
    }
    for key, col in _FILTER_CELLS.items():
        row[col] = _cell(col, t.balance_filter.get(key))
    return row


def _charge_rounding(acc: Account, charges: list[Charge], diff: Decimal, decimals: int,
                     shared: SharedView | None = None) -> None:
    """Apply the final-rounding difference to the monetary balance that paid the last charge
    (a member's, after a shared-group debit)."""
    if diff == 0:
        return
    last = next((c.money_uuid for c in reversed(charges) if c.money_uuid), None)
    payer = None if last is None else acc.by_uuid(last) or (
        shared.find(last) if shared is not None else None)
    if payer is None:
        return  # paid entirely from units: nothing monetary to round
    payer.value = round_value(payer.value - diff, decimals)


def _balance_uuids(charges: Sequence[Charge]) -> set[str]:
    return {u for c in charges for u in (c.unit_uuid, c.money_uuid) if u}


def _refund_result(request_id: str, applied: Applied) -> RefundResult:
    r = applied.result
    return RefundResult(
        request_id, Decimal(str(r["Refunded"])), [Charge.from_json(c) for c in r["Charges"]],
        [Charge.from_json(c) for c in r["Kept"]], applied.replayed,
        [ActionEvent(e["kind"], e["data"]) for e in r.get("Events", [])],
        r.get("EventCost"), applied.event_cost_json,
    )


def _fresh() -> str:
    return f"admin:{uuid.uuid4()}"
