"""Accounts from a tariff plan (AccountActions.csv) and their ``*asap`` action plans, run once.

For each AccountActions row the account is created (or its AllowNegative/Disabled flags and
trigger definitions updated, keeping the executed state of triggers with the same unique id).
Every ``*asap`` action plan (TimingId ``*asap``, or a Timings tag whose Time is ``*asap``) runs
on the account **once per (tpid, account, action plan)**: the run's idempotency key is
``asap:<tpid>:<tenant>:<account>:<plan>`` and ``applied_action_plans`` records it in the same
transaction, so a restart or reload does not top up again. Plans with other timings are reported
as ``scheduled`` and run by RALs's scheduler (``services/rals/scheduler.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection

from cgrpy.tariffplan.columns import TariffPlanRows
from services.rals.accounts.actions import (
    Action,
    ActionEvent,
    execute_actions,
    parse_actions,
    removal_asked,
)
from services.rals.accounts.model import Account, AccountError, ActionTrigger
from services.rals.accounts.store import AccountStore
from services.rals.accounts.triggers import check_triggers, parse_triggers

ASAP = "*asap"


@dataclass
class CompiledActions:
    """Action sets, action plans and trigger sets of one tariff plan."""

    actions: dict[str, list[Action]]
    # plan id -> [(actions id, timing id, weight)] in descending weight
    plans: dict[str, list[tuple[str, str, str]]]
    triggers: dict[str, list[ActionTrigger]]
    asap_timings: frozenset[str]

    @classmethod
    def from_rows(cls, rows: TariffPlanRows) -> CompiledActions:
        plans: dict[str, list[tuple[str, str, str]]] = {}
        for r in rows.get("ActionPlans", []):
            plans.setdefault(r["Id"].strip(), []).append(
                (r["ActionsId"].strip(), r["TimingId"].strip(), r.get("Weight", "").strip() or "0")
            )
        actions = parse_actions(rows.get("Actions", []))
        for pid, entries in plans.items():
            for aid, _t, _w in entries:
                if aid not in actions:
                    raise AccountError("INVALID_ARGUMENT",
                                       f"ActionPlans.csv {pid}: unknown ActionsId {aid!r}")
        for entries in plans.values():
            entries.sort(key=lambda e: -Decimal(e[2]))  # stable: equal weights keep CSV order
        asap = frozenset(
            [ASAP] + [r["Tag"].strip() for r in rows.get("Timings", [])
                      if r.get("Time", "").strip() == ASAP]
        )
        return cls(actions, plans, parse_triggers(rows.get("ActionTriggers", [])), asap)

    def action_set(self, actions_id: str) -> list[Action]:
        try:
            return self.actions[actions_id]
        except KeyError:
            raise AccountError("NOT_FOUND", f"actions {actions_id!r}") from None

    def run(self, account: Account | None, actions_id: str, now: datetime,
            depth: int = 0) -> list[ActionEvent]:
        """Execute an action set, then the account's triggers (bounded recursion)."""
        before = {b.uuid: b.value for b in account.balances} if account else {}
        events = execute_actions(account, self.action_set(actions_id), now=now)
        if account is not None and depth < 3:
            changed = {b.uuid for b in account.balances if before.get(b.uuid) != b.value}
            events += check_triggers(
                account, changed=changed, now=now,
                run_actions=lambda a, aid: self.run_triggered(a, aid, now, depth + 1),
            )
        return events

    def run_triggered(self, account: Account, actions_id: str, now: datetime,
                       depth: int) -> list[ActionEvent]:
        # A trigger's action set failing must not undo the debit/action that fired it (CGRateS
        # logs it); the failure is reported as an event instead.
        try:
            return self.run(account, actions_id, now, depth)
        except AccountError as exc:
            return [ActionEvent("*error", {"actions_id": actions_id, "error": str(exc)})]


@dataclass
class ProvisionReport:
    accounts: list[str] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)  # (account id, plan id)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # already applied before
    scheduled: list[tuple[str, str, str]] = field(default_factory=list)  # (acct, plan, timing)
    events: list[ActionEvent] = field(default_factory=list)


def _merge_triggers(
    old: list[ActionTrigger], new: list[ActionTrigger], group_ids: frozenset[str] = frozenset()
) -> list[ActionTrigger]:
    """The row's trigger group as the plan now defines it (keeping executed state), plus the
    triggers of *other* groups already on the account: those were attached at runtime over the
    API, and a reload of the plan must not undo them. (A group the row no longer names stays
    attached until removed over the API.)"""
    state = {t.unique_id: t for t in old}
    out = []
    for t in new:
        prev = state.get(t.unique_id)
        if prev is not None:
            t.executed, t.last_execution = prev.executed, prev.last_execution
        out.append(t)
    fresh = {t.unique_id for t in new}
    out += [t for t in old if t.unique_id not in fresh and t.id not in group_ids]
    return out


def provision(
    store: AccountStore, rows: TariffPlanRows, tpid: str, *,
    compiled: CompiledActions | None = None, now: datetime | None = None,
) -> ProvisionReport:
    """Create the AccountActions accounts and run their ``*asap`` plans once (see module doc)."""
    compiled = compiled or CompiledActions.from_rows(rows)
    now = now or datetime.now(UTC)
    report = ProvisionReport()
    seen: set[tuple[str, str]] = set()
    for r in rows.get("AccountActions", []):
        tenant, name = r["Tenant"].strip(), r["Account"].strip()
        if (tenant, name) in seen:
            raise AccountError("INVALID_ARGUMENT", f"AccountActions.csv: duplicate {tenant}:{name}")
        seen.add((tenant, name))
        plan_ids = split_ids(r.get("ActionPlanId", ""))
        trig_ids = split_ids(r.get("ActionTriggersId", ""))
        for col, ids, known in (("ActionPlanId", plan_ids, compiled.plans),
                                ("ActionTriggersId", trig_ids, compiled.triggers)):
            for i in ids:
                if i not in known:
                    raise AccountError("INVALID_ARGUMENT", f"AccountActions.csv {tenant}:{name}: unknown {col} {i!r}")
        allow_negative = r.get("AllowNegative", "").strip().lower() == "true"
        disabled = r.get("Disabled", "").strip().lower() == "true"
        triggers = [replace(t, balance_filter=dict(t.balance_filter))
                    for gid in trig_ids for t in compiled.triggers[gid]]

        def setup(acc: Account, an: bool = allow_negative, dis: bool = disabled,
                  trs: list[ActionTrigger] = triggers, gids: frozenset[str] = frozenset(trig_ids)) -> dict:
            acc.allow_negative, acc.disabled = an, dis
            acc.triggers = _merge_triggers(acc.triggers, trs, gids)
            return {}

        store.apply(tenant, name, setup, request_id=f"provision:{uuid.uuid4()}",
                    reason="provision", create=True)
        report.accounts.append(f"{tenant}:{name}")
        for plan_id in plan_ids:
            _run_asap(store, compiled, report, tpid, tenant, name, plan_id, now)
    return report


def split_ids(cell: str) -> list[str]:
    """The ids of an AccountActions cell: one id, or several ``;``-joined (APIerSv2.SetAccount)."""
    return [x.strip() for x in cell.split(";") if x.strip()]


def _run_asap(store: AccountStore, compiled: CompiledActions, report: ProvisionReport, tpid: str,
              tenant: str, name: str, plan_id: str, now: datetime) -> None:
    """Run the ``*asap`` entries of one plan on one account, once per (tpid, account, plan)."""
    entries = compiled.plans[plan_id]
    asap = [e for e in entries if e[1] in compiled.asap_timings]
    for _aid, timing, _w in entries:
        if timing not in compiled.asap_timings:
            report.scheduled.append((f"{tenant}:{name}", plan_id, timing))
    if not asap:
        return
    run_events: list[ActionEvent] = []

    def run_plan(acc: Account) -> dict:
        for aid, _timing, _w in asap:
            run_events.extend(compiled.run(acc, aid, now))
        return {"events": [{"kind": e.kind, "data": e.data} for e in run_events]}

    def mark(conn: Connection) -> None:
        store.mark_plan_applied(conn, tpid, tenant, name, plan_id)

    rid = f"asap:{tpid}:{tenant}:{name}:{plan_id}"
    done = store.apply(tenant, name, run_plan, request_id=rid, reason=f"asap:{plan_id}", also=mark)
    if not done.replayed and removal_asked(done.result.get("events", [])):
        store.remove_account(tenant, name, request_id=f"{rid}:remove")
    if done.replayed:
        report.skipped.append((f"{tenant}:{name}", plan_id))
    else:
        report.applied.append((f"{tenant}:{name}", plan_id))
        report.events.extend(run_events)
