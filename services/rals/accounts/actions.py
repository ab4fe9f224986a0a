"""Actions (docs/rating.md): parsed from Actions.csv rows, applied to an Account.

:func:`execute_actions` is pure: it mutates the given :class:`Account` in memory and returns the
side events (``*log`` lines, ``*cdrlog`` CDRs) for the caller to publish; persisting is the
store's job (one transaction; an :class:`AccountError` from any action aborts the whole set and
nothing is saved, as in CGRateS).

Supported: ``*topup``, ``*topup_reset``, ``*debit``, ``*debit_reset``, ``*set_balance``,
``*remove_balance``, ``*reset_account``, ``*enable_account``, ``*disable_account``,
``*allow_negative``, ``*deny_negative``, ``*reset_triggers``, ``*set_recurrent``,
``*unset_recurrent``, ``*reset_counters``, ``*transfer_monetary_default``,
``*topup_zero_negative``, ``*remove_expired``, ``*log``, ``*cdrlog``, ``*http_post``,
``*http_post_async`` (the account as v0.10's JSON, posted to the URL in ExtraParameters by the
caller once the set is committed), ``*cgr_rpc`` (a JSON-RPC call described by ExtraParameters,
checked when the action is parsed, made by the caller once the set is committed). ``*cdrlog``
CDRs go to cdre through RALs's outbox (``services/rals/cdrlog.py``). Any other type raises
``AccountError('UNSUPPORTED_ACTION')`` naming it (``*mail_async``, ... need outbound connectors
the service does not have).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cgrpy.cgrrpc import CgrRpcError, fill_template, parse_cgr_rpc, template_paths
from cgrpy.event import loads_exact
from cgrpy.units import UnitError, parse_decimal, parse_duration, parse_time
from services.rals.accounts.model import (
    BALANCE_TYPES,
    DEFAULT_BALANCE_ID,
    MONETARY,
    VOICE,
    Account,
    AccountError,
    Balance,
    new_uuid,
    round_value,
)
from services.rals.accounts.store import parse_destination_ids
from services.rals.views import account_json

UNSUPPORTED_ACTION = "UNSUPPORTED_ACTION"
CGR_RPC = "*cgr_rpc"


def _is_set(cell: str) -> bool:
    return cell.strip() not in ("", "*any")


def _bool(cell: str, where: str) -> bool | None:
    s = cell.strip().lower()
    if s == "":
        return None
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise AccountError("INVALID_ARGUMENT", f"{where}: not a boolean: {cell!r}")


def _list(cell: str) -> frozenset[str] | None:
    if not _is_set(cell):
        return None
    return frozenset(x for x in cell.split(";") if x and x != "*any")


@dataclass(frozen=True)
class BalanceFilter:
    """The balance columns of an action (or trigger): ``None`` = not set (``*any``/empty)."""

    id: str | None = None
    uuid: str | None = None
    type: str | None = None
    categories: frozenset[str] | None = None
    destination_ids: dict[str, bool] | None = None
    rating_subject: str | None = None
    shared_groups: frozenset[str] | None = None
    expiry_text: str | None = None  # evaluated when the action runs
    timing_ids: frozenset[str] | None = None
    weight: Decimal | None = None
    blocker: bool | None = None
    disabled: bool | None = None

    def matches(self, b: Balance, expiry: datetime | None, *, check_expiry: bool) -> bool:
        """CGRateS Balance.MatchFilter: by UUID, else by ID, else every set field equal."""
        if self.uuid is not None:
            return b.uuid == self.uuid
        if self.id is not None:
            return b.id == self.id
        return (
            (self.type is None or b.type == self.type)
            and (self.categories is None or b.categories == self.categories)
            and (self.destination_ids is None or b.destination_ids == self.destination_ids)
            and (self.rating_subject is None or b.rating_subject == self.rating_subject)
            and (self.shared_groups is None or b.shared_groups == self.shared_groups)
            and (self.timing_ids is None or b.timing_ids == self.timing_ids)
            and (self.weight is None or b.weight == self.weight)
            and (self.blocker is None or b.blocker == self.blocker)
            and (self.disabled is None or b.disabled == self.disabled)
            and (not check_expiry or b.expiry == expiry)
        )

    def create(self, balance_type: str, expiry: datetime | None) -> Balance:
        """A new balance from the filter's fields (value 0)."""
        return Balance(
            type=balance_type,
            id=self.id if self.id is not None else new_uuid(),  # [I] empty ID -> generated
            expiry=expiry,
            weight=self.weight if self.weight is not None else Decimal(0),
            destination_ids=dict(self.destination_ids or {}),
            rating_subject=self.rating_subject or "",
            categories=self.categories or frozenset(),
            shared_groups=self.shared_groups or frozenset(),
            timing_ids=self.timing_ids or frozenset(),
            blocker=bool(self.blocker),
            disabled=bool(self.disabled),
        )

    def overwrite(self, b: Balance, expiry: datetime | None) -> None:
        """``*set_balance``: copy every set field onto ``b``."""
        if self.id is not None:
            b.id = self.id
        if self.categories is not None:
            b.categories = self.categories
        if self.destination_ids is not None:
            b.destination_ids = dict(self.destination_ids)
        if self.rating_subject is not None:
            b.rating_subject = self.rating_subject
        if self.shared_groups is not None:
            b.shared_groups = self.shared_groups
        if self.timing_ids is not None:
            b.timing_ids = self.timing_ids
        if self.weight is not None:
            b.weight = self.weight
        if self.blocker is not None:
            b.blocker = self.blocker
        if self.disabled is not None:
            b.disabled = self.disabled
        if self.expiry_text is not None:
            b.expiry = expiry


@dataclass(frozen=True)
class Action:
    actions_id: str
    action_type: str
    balance: BalanceFilter = BalanceFilter()
    units: str = ""  # raw: a number, a duration (*voice) or a JSON value formula
    extra_parameters: str = ""
    filter: str = ""
    weight: Decimal = Decimal(0)

    @property
    def balance_type(self) -> str | None:
        return self.balance.type


def parse_actions(rows: Iterable[Mapping[str, str]]) -> dict[str, list[Action]]:
    """Actions.csv rows -> action sets (ActionsId -> actions in descending Weight, stable)."""
    sets: dict[str, list[Action]] = {}
    for row in rows:
        aid = row["ActionsId"].strip()
        where = f"Actions.csv {aid}"
        try:
            btype = row.get("BalanceType", "").strip()
            if btype and btype != "*any" and btype not in BALANCE_TYPES:
                raise AccountError("INVALID_ARGUMENT", f"{where}: unknown BalanceType {btype!r}")
            f = BalanceFilter(
                id=row["BalanceId"].strip() if _is_set(row.get("BalanceId", "")) else None,
                type=btype if _is_set(btype) else None,
                categories=_list(row.get("Categories", "")),
                destination_ids=(
                    parse_destination_ids(row["DestinationIds"])
                    if _is_set(row.get("DestinationIds", "")) else None
                ),
                rating_subject=row["RatingSubject"] if _is_set(row.get("RatingSubject", ""))
                else None,
                shared_groups=_list(row.get("SharedGroup", "")),
                expiry_text=row["ExpiryTime"].strip() if row.get("ExpiryTime", "").strip()
                else None,
                timing_ids=_list(row.get("TimingIds", "")),
                weight=parse_decimal(row["BalanceWeight"]) if row.get("BalanceWeight", "").strip()
                else None,
                blocker=_bool(row.get("BalanceBlocker", ""), where),
                disabled=_bool(row.get("BalanceDisabled", ""), where),
            )
            action = Action(
                actions_id=aid, action_type=row["Action"].strip(), balance=f,
                units=row.get("Units", "").strip(),
                extra_parameters=row.get("ExtraParameters", ""), filter=row.get("Filter", ""),
                weight=parse_decimal(row.get("Weight", "")),
            )
        except UnitError as exc:
            raise AccountError("INVALID_ARGUMENT", f"{where}: {exc}") from None
        if action.action_type == CGR_RPC:
            try:
                parse_cgr_rpc(action.extra_parameters)
            except CgrRpcError as exc:
                if not exc.unsupported:  # *gob, templates: refused when the action runs
                    raise AccountError("INVALID_ARGUMENT", f"{where}: *cgr_rpc {exc}") from None
        sets.setdefault(aid, []).append(action)
    for actions in sets.values():
        actions.sort(key=lambda a: -a.weight)
    return sets


# --- evaluation helpers ------------------------------------------------------------------------


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def eval_expiry(text: str | None, now: datetime) -> datetime | None:
    """ExpiryTime expressions evaluated at execution: ``*unlimited``/empty -> never,
    ``*daily``/``*monthly``/``*yearly`` -> now + period, ``*month_end[+d]`` -> end of this
    month (+d), RFC3339, unix, ``+<duration>``."""
    if text is None or text in ("", "*unlimited"):
        return None
    if text == "*daily":
        return now + timedelta(days=1)
    if text == "*monthly":
        return _add_months(now, 1)
    if text == "*yearly":
        return _add_months(now, 12)
    if text.startswith("*month_end"):
        last = calendar.monthrange(now.year, now.month)[1]
        end = now.replace(day=last, hour=23, minute=59, second=59, microsecond=0)
        extra = text[len("*month_end"):]
        if extra.startswith("+"):
            end += timedelta(microseconds=parse_duration(extra[1:]) // 1000)
        return end
    try:
        return parse_time(text, now=now)
    except UnitError as exc:
        raise AccountError("INVALID_ARGUMENT", f"ExpiryTime: {exc}") from None


def _incremental(params: Mapping[str, Any], now: datetime) -> Decimal:
    """``*incremental`` value formula: Units spread over Interval in Increment steps."""
    units = parse_decimal(params.get("Units", 0) if not isinstance(params.get("Units"), float)
                          else str(params["Units"]))
    interval, increment = params.get("Interval", ""), params.get("Increment", "")
    days_in = {
        "month": calendar.monthrange(now.year, now.month)[1],
        "year": 366 if calendar.isleap(now.year) else 365,
        "day": 1,
    }
    per_day = {"day": 1, "hour": 24, "minute": 24 * 60}
    if interval not in days_in or increment not in per_day:
        raise AccountError("INVALID_ARGUMENT",
                           f"*incremental: unsupported Interval/Increment {interval}/{increment}")
    return units / (days_in[interval] * per_day[increment])


def action_units(action: Action, now: datetime) -> Decimal:
    """The action's Units: *voice durations in ns, JSON value formulas, else a decimal."""
    raw = action.units
    if raw.startswith("{"):
        try:
            formula = loads_exact(raw)
        except json.JSONDecodeError as exc:
            raise AccountError("INVALID_ARGUMENT", f"{action.actions_id}: Units: {exc}") from None
        if formula.get("Method") != "*incremental":
            raise AccountError("INVALID_ARGUMENT",
                               f"{action.actions_id}: unknown value formula {formula.get('Method')}")
        return _incremental(formula.get("Params") or {}, now)
    try:
        if action.balance_type == VOICE:
            return Decimal(parse_duration(raw))
        return parse_decimal(raw)
    except UnitError as exc:
        raise AccountError("INVALID_ARGUMENT", f"{action.actions_id}: Units: {exc}") from None


_OPS = {
    "*eq": lambda a, b: a == b, "*lt": lambda a, b: a < b, "*gt": lambda a, b: a > b,
    "*lte": lambda a, b: a <= b, "*gte": lambda a, b: a >= b,
}
_FIELDS = {
    "Value": lambda b: b.value, "Id": lambda b: b.id, "ID": lambda b: b.id,
    "Uuid": lambda b: b.uuid, "Weight": lambda b: b.weight, "Type": lambda b: b.type,
    "Disabled": lambda b: b.disabled, "Blocker": lambda b: b.blocker,
    "RatingSubject": lambda b: b.rating_subject,
}


def _match_struct(cond: Mapping[str, Any], b: Balance) -> bool:
    for key, val in cond.items():
        if key == "*and":
            if not all(_match_struct(c, b) for c in val):
                return False
        elif key == "*or":
            if not any(_match_struct(c, b) for c in val):
                return False
        elif key == "*not":
            if _match_struct(val, b):
                return False
        elif key in _FIELDS:
            have = _FIELDS[key](b)
            checks = val.items() if isinstance(val, dict) else [("*eq", val)]
            for op, want in checks:
                if op not in _OPS:
                    raise AccountError("INVALID_ARGUMENT", f"Filter: unknown operator {op}")
                if isinstance(have, Decimal) and not isinstance(want, Decimal | str):
                    want = Decimal(want)
                if not _OPS[op](have, want):
                    return False
        else:
            raise AccountError("INVALID_ARGUMENT", f"Filter: unknown field {key}")
    return True


def filter_matches(account: Account, filter_json: str) -> bool:
    """The action's Filter (struct matcher over balances): true if any balance matches."""
    if not filter_json.strip():
        return True
    try:
        cond = loads_exact(filter_json)
    except json.JSONDecodeError as exc:
        raise AccountError("INVALID_ARGUMENT", f"Filter: {exc}") from None
    return any(_match_struct(cond, b) for b in account.balances)


# --- execution ---------------------------------------------------------------------------------


@dataclass
class ActionEvent:
    """A side effect for the caller to publish: ``*log`` text or a ``*cdrlog`` CDR."""

    kind: str  # "*log" | "*cdrlog" | "*http_post" | "*http_post_async" | "*cgr_rpc" | ...
    data: dict[str, Any] = field(default_factory=dict)


def _need_account(account: Account | None, action: Action) -> Account:
    if account is None:
        raise AccountError("ACCOUNT_NOT_FOUND", f"{action.action_type} needs an account")
    return account


def _need_type(action: Action) -> str:
    if action.balance_type is None:
        raise AccountError("INVALID_ARGUMENT",
                           f"{action.actions_id} {action.action_type}: BalanceType is required")
    return action.balance_type


def _add_to_matching(
    acc: Account, action: Action, amount: Decimal, *, reset: bool, now: datetime
) -> list[Balance]:
    btype = _need_type(action)
    expiry = eval_expiry(action.balance.expiry_text, now)
    check_expiry = action.balance.expiry_text is not None
    touched = []
    for b in acc.balances:
        if b.type != btype or b.expired(now):
            continue
        if action.balance.matches(b, expiry, check_expiry=check_expiry):
            b.value = round_value((Decimal(0) if reset else b.value) + amount)
            touched.append(b)
    if not touched:
        b = action.balance.create(btype, expiry)
        b.value = round_value(amount)
        acc.balances.append(b)
        touched.append(b)
    return touched


def _set_balance(acc: Account, action: Action, now: datetime) -> Balance:
    f = action.balance
    expiry = eval_expiry(f.expiry_text, now)
    value = action_units(action, now)
    found = None
    for b in acc.balances:
        if b.expired(now):
            continue
        if (f.uuid is not None and b.uuid == f.uuid) or (
            f.uuid is None and f.id is not None and b.id == f.id
            and (f.type is None or b.type == f.type)
        ):
            found = b
            break
    if found is None:
        btype = _need_type(action)
        found = f.create(btype, expiry)
        acc.balances.append(found)
    elif found.id != DEFAULT_BALANCE_ID:
        f.overwrite(found, expiry)
    found.value = round_value(value)
    return found


def _trigger_selected(trigger: Any, action: Action) -> bool:
    if not action.extra_parameters.strip():
        return True
    sel = loads_exact(action.extra_parameters)
    return (
        sel.get("GroupID", trigger.id) == trigger.id
        and sel.get("UniqueID", trigger.unique_id) == trigger.unique_id
        and sel.get("ThresholdType", trigger.threshold_type) == trigger.threshold_type
    )


_CDRLOG_SOURCES = ("*debit", "*debit_reset", "*set_balance", "*topup", "*topup_reset")


def _cdrlog(
    acc: Account, values: list[tuple[Action, Decimal, Balance]], template: str, now: datetime,
) -> list[ActionEvent]:
    """One CDR per balance change of the set (RunID = its action type, Cost = the amount,
    ToR = the balance type), with the CGRID fixed here: stored in the set's result, so cdre
    dedups any repeated delivery of it."""
    tpl = loads_exact(template) if template.strip() else {}
    out = []
    for act, value, bal in values:
        origin_id = uuid.uuid4().hex
        cdr: dict[str, Any] = {
            # CGRateS computes the CGRID before OriginHost is filled in: Sha1(OriginID).
            "CGRID": hashlib.sha1(origin_id.encode()).hexdigest(),
            "RunID": act.action_type, "Source": "*cdrlog", "RequestType": "*none",
            "ToR": bal.type, "Tenant": acc.tenant, "Account": acc.account,
            "Subject": acc.account, "Cost": value, "OriginID": origin_id,
            "OriginHost": "127.0.0.1", "Usage": 1, "PreRated": True,
            "SetupTime": now.isoformat(), "AnswerTime": now.isoformat(),
        }
        providers = {
            "AccountID": acc.id, "ActionID": act.actions_id, "ActionType": act.action_type,
            "ActionValue": value, "BalanceType": bal.type, "BalanceUUID": bal.uuid,
            "BalanceID": bal.id, "BalanceValue": bal.value,
            "DestinationIDs": ";".join(sorted(bal.destination_ids)),
            "ExtraParameters": act.extra_parameters, "RatingSubject": bal.rating_subject,
            "Category": ";".join(sorted(bal.categories)),
            "SharedGroups": ";".join(sorted(bal.shared_groups)),
        }
        for fld, rule in tpl.items():
            rule = str(rule)
            if rule.startswith("^"):
                cdr[fld] = rule[1:]
            else:
                cdr[fld] = providers.get(rule.lstrip("~"), rule)
        out.append(ActionEvent("*cdrlog", cdr))
    return out


@dataclass
class _Run:
    """One execution of an action set: what every action-type function may read or add to."""

    account: Account | None
    actions: Sequence[Action]
    now: datetime
    events: list[ActionEvent] = field(default_factory=list)
    # (action, amount, balance) of each balance change, for *cdrlog
    applied: list[tuple[Action, Decimal, Balance]] = field(default_factory=list)

    def need_account(self, action: Action) -> Account:
        return _need_account(self.account, action)


def _add_units(run: _Run, action: Action) -> None:
    """*topup, *topup_reset, *debit, *debit_reset: add (or subtract) Units to the matching
    balances; the _reset forms set the value instead."""
    t = action.action_type
    acc = run.need_account(action)
    amount = action_units(action, run.now)
    sign = -1 if t.startswith("*debit") else 1
    for b in _add_to_matching(acc, action, sign * amount, reset=t.endswith("_reset"),
                              now=run.now):
        run.applied.append((action, amount, b))


def _set_balance_action(run: _Run, action: Action) -> None:
    b = _set_balance(run.need_account(action), action, run.now)
    run.applied.append((action, b.value, b))


def _remove_balance(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    btype = _need_type(action)
    expiry = eval_expiry(action.balance.expiry_text, run.now)
    keep = [
        b for b in acc.balances
        if not (b.type == btype and action.balance.matches(
            b, expiry, check_expiry=action.balance.expiry_text is not None))
    ]
    if len(keep) == len(acc.balances):
        raise AccountError("NOT_FOUND", f"{action.actions_id}: no balance to remove")
    acc.balances[:] = keep


def _reset_account(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    # [I] every balance zeroed (CGRateS resets each type to a zero value), counters and
    # triggers reset.
    for b in acc.balances:
        b.value = Decimal(0)
    acc.counters.clear()
    for tr in acc.triggers:
        tr.executed = False


def _account_flag(run: _Run, action: Action) -> None:
    """*enable_account / *disable_account, *allow_negative / *deny_negative."""
    t = action.action_type
    acc = run.need_account(action)
    if t in ("*enable_account", "*disable_account"):
        acc.disabled = t == "*disable_account"
    else:
        acc.allow_negative = t == "*allow_negative"


def _trigger_flags(run: _Run, action: Action) -> None:
    """*reset_triggers, *set_recurrent, *unset_recurrent on the selected triggers."""
    t = action.action_type
    for tr in run.need_account(action).triggers:
        if _trigger_selected(tr, action):
            if t == "*reset_triggers":
                tr.executed = False
            else:
                tr.recurrent = t == "*set_recurrent"


def _reset_counters(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    for key in list(acc.counters):
        if action.balance_type is None or key.endswith(":" + action.balance_type):
            acc.counters[key] = Decimal(0)


def _transfer_monetary_default(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    default = acc.default_balance()
    assert default is not None
    for b in acc.balances:
        if b.type == MONETARY and b is not default and b.value > 0 and (
            action.balance.id is None or b.id == action.balance.id
        ):
            default.value = round_value(default.value + b.value)
            b.value = Decimal(0)


def _topup_zero_negative(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    btype = _need_type(action)
    amount = action_units(action, run.now) if action.units else Decimal(0)
    for b in acc.balances:
        if b.type == btype and b.value < 0 and (
            action.balance.id is None or b.id == action.balance.id
        ):
            # As CGRateS v0.10 codes it: zero, then *subtract* Units.
            b.value = round_value(-amount)


def _remove_expired(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    acc.balances[:] = [b for b in acc.balances if not b.expired(run.now)]


def _log(run: _Run, action: Action) -> None:
    data: dict[str, Any] = {"actions_id": action.actions_id}
    if run.account is not None:
        data["account"] = run.account.summary()
    run.events.append(ActionEvent("*log", data))


HTTP_POST_KINDS = ("*http_post", "*http_post_async")


def _http_post(run: _Run, action: Action) -> None:
    """*http_post / *http_post_async: the account as it stands at this action (v0.10's
    engine.Account JSON; ``null`` for a set run without one, as v0.10 posts) to the URL in
    ExtraParameters. Posting is the caller's, after the commit: a set never waits on a
    receiver, and a post never reports a change that was rolled back."""
    url = action.extra_parameters.strip()
    if not url.startswith(("http://", "https://")):
        raise AccountError("INVALID_ARGUMENT",
                           f"{action.actions_id}: {action.action_type} needs an http(s) URL in ExtraParameters, got {url!r}")
    body = None if run.account is None else account_json(run.account)
    run.events.append(ActionEvent(action.action_type, {"url": url, "body": body}))


def _cdrlog_action(run: _Run, action: Action) -> None:
    acc = run.need_account(action)
    run.events.extend(_cdrlog(acc, [
        x for x in run.applied if x[0].action_type in _CDRLOG_SOURCES
    ], action.extra_parameters, run.now))


def _cgr_rpc(run: _Run, action: Action) -> None:
    """*cgr_rpc: the call for the caller to make once the set is committed (ExtraParameters were
    checked when the action was parsed; a template is filled here from the account as this
    action finds it and the action itself, as v0.10 does)."""
    text = action.extra_parameters
    try:
        if template_paths(text):
            account = None if run.account is None else _template_account(run.account)
            text = fill_template(text, {"Account": account, "Action": action_json(action)})
        rpc = parse_cgr_rpc(text)
    except CgrRpcError as exc:
        raise AccountError("INVALID_ARGUMENT", f"{action.actions_id}: *cgr_rpc {exc}") from None
    run.events.append(ActionEvent(CGR_RPC, {
        "address": rpc.address, "method": rpc.method, "params": rpc.params,
        "attempts": rpc.attempts, "async": rpc.async_,
    }))


def _template_account(acc: Account) -> dict[str, Any]:
    """``.Account`` of a template: v0.10's engine.Account JSON, plus what its ``GetID`` method
    answers (the account without its tenant; the engine's own test plan names it)."""
    out = account_json(acc)
    tenant_and_id = str(out["ID"]).split(":")
    return {**out, "GetID": tenant_and_id[1] if len(tenant_and_id) == 2 else ""}


def action_json(action: Action) -> dict[str, Any]:
    """The action as v0.10's ``engine.Action`` (what a ``*cgr_rpc`` template reads as
    ``.Action``); an unset balance field is null, as v0.10's nil pointers."""
    bf = action.balance
    try:
        static = parse_decimal(action.units) if action.units.strip() else None
    except UnitError:  # a duration or a value formula: no static number
        static = None

    def ids(v: frozenset[str] | None) -> dict[str, bool] | None:
        return None if v is None else {x: True for x in sorted(v)}

    return {
        "Id": action.actions_id, "ActionType": action.action_type,
        "ExtraParameters": action.extra_parameters, "Filter": action.filter,
        "ExpirationString": bf.expiry_text or "", "Weight": action.weight,
        "Balance": {
            "Uuid": bf.uuid, "ID": bf.id, "Type": bf.type,
            "Value": None if static is None else {"Method": "", "Params": None, "Static": static},
            "ExpirationDate": None, "Weight": bf.weight, "DestinationIDs": bf.destination_ids,
            "RatingSubject": bf.rating_subject, "Categories": ids(bf.categories),
            "SharedGroups": ids(bf.shared_groups), "TimingIDs": ids(bf.timing_ids),
            "Timings": None, "Disabled": bf.disabled, "Factor": None, "Blocker": bf.blocker,
        },
    }


REMOVE_ACCOUNT = "*remove_account"


def _remove_account(run: _Run, action: Action) -> None:
    """*remove_account: an event asking whoever committed the set to remove the account
    afterwards (:func:`removal_asked`); an action changes one account in one transaction, the
    removal (closing journal rows, the cache) is the store's."""
    acc = run.need_account(action)
    run.events.append(ActionEvent(REMOVE_ACCOUNT, {"account": acc.id, "actions_id": action.actions_id}))


def removal_asked(events: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a committed set's events (``{"kind", "data"}`` as stored) hold *remove_account."""
    return any(e.get("kind") == REMOVE_ACCOUNT for e in events)


# ActionType -> the function that applies it (CGRateS keeps the same kind of table).
ACTION_TYPES: dict[str, Callable[[_Run, Action], None]] = {
    "*topup": _add_units,
    "*topup_reset": _add_units,
    "*debit": _add_units,
    "*debit_reset": _add_units,
    "*set_balance": _set_balance_action,
    "*remove_balance": _remove_balance,
    "*reset_account": _reset_account,
    "*enable_account": _account_flag,
    "*disable_account": _account_flag,
    "*allow_negative": _account_flag,
    "*deny_negative": _account_flag,
    "*reset_triggers": _trigger_flags,
    "*set_recurrent": _trigger_flags,
    "*unset_recurrent": _trigger_flags,
    "*reset_counters": _reset_counters,
    "*transfer_monetary_default": _transfer_monetary_default,
    "*topup_zero_negative": _topup_zero_negative,
    "*remove_expired": _remove_expired,
    "*log": _log,
    "*cdrlog": _cdrlog_action,
    "*http_post": _http_post,
    "*http_post_async": _http_post,
    CGR_RPC: _cgr_rpc,
    REMOVE_ACCOUNT: _remove_account,
}


def execute_actions(
    account: Account | None, actions: Sequence[Action], *, now: datetime | None = None
) -> list[ActionEvent]:
    """Run an action set on ``account`` (mutated in place). ``account`` may be None for sets
    that need none (``*log``, as ThresholdS does). Returns the side events."""
    run = _Run(account, actions, now or datetime.now(UTC))
    for action in sorted(actions, key=lambda a: -a.weight):
        if account is not None and action.filter.strip() and not filter_matches(
            account, action.filter
        ):
            continue
        apply = ACTION_TYPES.get(action.action_type)
        if apply is None:
            raise AccountError(UNSUPPORTED_ACTION, f"{action.actions_id}: {action.action_type}")
        apply(run, action)
    return run.events
