"""The debit algorithm (docs/rating.md), pure: an Account and a call descriptor in,
the account's balances changed in memory and the per-increment accounting out.

``debit_account(account, cd, rate, ...)``:

1. unit balances of the CD's ToR: ``*zero<dur>`` subjects consume free units in
   ``<dur>`` increments; a real rating subject consumes units *and* pays the increment's cost
   from the first money balance able to (default balance when going negative is allowed);
2. money balances: the remaining part is rated (with the balance's RatingSubject
   or the CD subject) and increments are paid while the balance can; at the first one it cannot,
   the next balance re-rates the rest; a blocker that cannot continue stops everything
   (``INSUFFICIENT_CREDIT_BALANCE_BLOCKER`` outside dry runs);
3. whatever is left is rated normally: free → covered; otherwise with ``go_negative`` the
   ``*default`` balance pays (and may go below zero), else it stays uncovered.

The connect fee is charged once, on the first rated piece when ``cd.loop_index == 0``, from the
first money balance whose value covers it, else from ``*default`` (flagged
``negative_connect_fee``). [I] When free units covered the start of the call, the fee is still
charged on the first money-rated piece.

Shared groups: with a :class:`SharedView` each of the account's balances in a shared group is
replaced, in the ranked lists, by the group's balances of every member in the group's strategy
order (``shared.py``); the debit then changes the members' balances in place, and every charge
names the balance (of whichever account) it consumed. Debt still goes to the caller's
``*default``.

Not implemented (documented deviation): *generic Factor on rated (non-``*zero``) unit balances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cgrpy.units import parse_duration, round_money
from services.rals.accounts.model import (
    DEFAULT_BALANCE_ID,
    GENERIC,
    GLOBAL_ROUNDING_DECIMALS,
    MONETARY,
    VOICE,
    Account,
    AccountError,
    Balance,
    round_value,
)
from services.rals.accounts.selection import PrefixIndex, usable_balances
from services.rals.accounts.shared import SharedView
from services.rals.rating import CallCost, CallDescriptor, TimeSpan
from services.rals.rating.timings import Timing

Rater = Callable[[CallDescriptor], CallCost]

INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
INSUFFICIENT_CREDIT_BALANCE_BLOCKER = "INSUFFICIENT_CREDIT_BALANCE_BLOCKER"
ACCOUNT_DISABLED = "ACCOUNT_DISABLED"

DEFAULT_UNIT_SUBJECT = {VOICE: "*zero1s"}  # rals.balance_rating_subject; others *zero1ns
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Charge:
    """``count`` identical consecutive increments: what was used and who paid.

    ``offset_ns`` is the call offset (from the piece start) of the first increment. A connect
    fee is a zero-duration charge. ``unit_uuid``/``units`` (per increment) name the unit balance
    consumed; ``money_uuid`` the monetary balance that paid ``cost`` (per increment). Neither set
    means a free (or, in a dry run, uncovered-free) increment.
    """

    offset_ns: int
    duration_ns: int
    cost: Decimal
    count: int = 1
    unit_uuid: str | None = None
    units: Decimal = Decimal(0)
    money_uuid: str | None = None
    connect_fee: bool = False
    # rating info (for EventCost / max usage); not needed for refunds
    subject: str = ""
    prefix: str = ""
    destination_id: str = ""
    rating_plan_id: str = ""
    rates_id: str = ""
    rounding_method: str = ""
    rounding_decimals: int = 0
    max_cost: Decimal = Decimal(0)
    max_cost_strategy: str = ""
    rate_value: Decimal = Decimal(0)
    rate_unit_ns: int = 0
    span: TimeSpan | None = field(default=None, repr=False, compare=False)

    @property
    def usage_ns(self) -> int:
        return self.duration_ns * self.count

    @property
    def total_cost(self) -> Decimal:
        return self.cost * self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "Offset": self.offset_ns, "Usage": self.duration_ns, "Cost": self.cost,
            "Count": self.count, "UnitUUID": self.unit_uuid, "Units": self.units,
            "MonetaryUUID": self.money_uuid, "ConnectFee": self.connect_fee,
            "Subject": self.subject, "DestinationPrefix": self.prefix,
            "DestinationID": self.destination_id, "RatingPlanID": self.rating_plan_id,
            "RatesID": self.rates_id, "RoundingMethod": self.rounding_method,
            "RoundingDecimals": self.rounding_decimals, "MaxCost": self.max_cost,
            "MaxCostStrategy": self.max_cost_strategy, "RateValue": self.rate_value,
            "RateUnit": self.rate_unit_ns,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Charge:
        def dec(v: object) -> Decimal:
            return v if isinstance(v, Decimal) else Decimal(str(v))

        return cls(
            offset_ns=int(d["Offset"]), duration_ns=int(d["Usage"]), cost=dec(d["Cost"]),
            count=int(d["Count"]), unit_uuid=d.get("UnitUUID"), units=dec(d.get("Units", 0)),
            money_uuid=d.get("MonetaryUUID"), connect_fee=bool(d.get("ConnectFee")),
            subject=d.get("Subject", ""), prefix=d.get("DestinationPrefix", ""),
            destination_id=d.get("DestinationID", ""), rating_plan_id=d.get("RatingPlanID", ""),
            rates_id=d.get("RatesID", ""), rounding_method=d.get("RoundingMethod", ""),
            rounding_decimals=int(d.get("RoundingDecimals", 0)), max_cost=dec(d.get("MaxCost", 0)),
            max_cost_strategy=d.get("MaxCostStrategy", ""), rate_value=dec(d.get("RateValue", 0)),
            rate_unit_ns=int(d.get("RateUnit", 0)),
        )


def max_rate(charges: Sequence[Charge]) -> tuple[Decimal | None, int]:
    """(RateValue, RateUnit ns) of the highest rate the charges were rated at, compared per
    nanosecond (value / unit); (None, 0) when no charge carries a rated slot (free units)."""
    best: tuple[Decimal | None, int] = (None, 0)
    for c in charges:
        if c.rate_unit_ns <= 0 or c.connect_fee:
            continue
        value, unit = best
        if value is None or c.rate_value * unit > value * c.rate_unit_ns:
            best = (c.rate_value, c.rate_unit_ns)
    return best


@dataclass
class DebitOutcome:
    charges: list[Charge]
    usage_ns: int  # covered usage (may exceed the request: increments round up)
    cost: Decimal  # Σ charge costs, connect fee included (no final DestinationRate rounding)
    negative_connect_fee: bool = False
    complete: bool = True  # the whole requested usage is covered


def _dt(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def zero_increment(subject: str) -> int | None:
    """``*zero1s`` -> 1e9 ns, ``*zero1024`` -> 1024 ns; None for a real rating subject."""
    if not subject.startswith("*zero"):
        return None
    inc = parse_duration(subject[len("*zero"):])
    if inc <= 0:
        raise AccountError("INVALID_ARGUMENT", f"bad zero rating subject {subject!r}")
    return inc


def _charge_from_span(ts: TimeSpan, offset: int, duration: int, cost: Decimal, count: int,
                      **kw: Any) -> Charge:
    r = ts.rate_interval.rating
    slot = ts.rate_slot
    return Charge(
        offset_ns=offset, duration_ns=duration, cost=cost, count=count, subject=ts.matched_subject,
        prefix=ts.matched_prefix, destination_id=ts.matched_dest_id,
        rating_plan_id=ts.rating_plan_id, rates_id=r.rates_id, rounding_method=r.rounding_method,
        rounding_decimals=r.rounding_decimals, max_cost=r.max_cost,
        max_cost_strategy=r.max_cost_strategy, rate_value=slot.value,
        rate_unit_ns=slot.effective_unit_ns, span=ts, **kw,
    )


class _Debit:
    def __init__(
        self, account: Account, cd: CallDescriptor, rate: Rater, prefix_index: PrefixIndex,
        timings: Mapping[str, Timing] | None,
        *, dry_run: bool, go_negative: bool, decimals: int, shared: SharedView | None = None,
    ) -> None:
        self.acc = account
        self.cd = cd
        self.rate = rate
        self.dry_run = dry_run
        self.go_negative = go_negative
        self.decimals = decimals
        self.total = cd.usage
        self.covered = 0
        self.charges: list[Charge] = []
        self.fee_pending = cd.loop_index == 0 and cd.usage > 0
        self.negative_fee = False
        self.blocked = False
        at = cd.time_start
        common = {"at": at, "category": cd.category, "destination": cd.destination,
                  "prefix_index": prefix_index, "timings": timings}
        self.unit_balances = (
            [] if cd.tor == MONETARY else usable_balances(account, cd.tor, **common)
        )
        self.money_balances = usable_balances(account, MONETARY, **common)
        if shared is not None:
            def ranked(tor: str) -> Callable[[Account, str], list[Balance]]:
                return lambda acc, gid: usable_balances(acc, tor, only_group=gid, **common)

            self.unit_balances = shared.expand(account, self.unit_balances, ranked(cd.tor))
            self.money_balances = shared.expand(account, self.money_balances, ranked(MONETARY))
        self.spent = Decimal(0)

    # --- helpers -------------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self.total - self.covered

    def _rate_rest(self, subject: str, with_fee: bool) -> CallCost:
        sub = replace(
            self.cd,
            subject=subject or self.cd.subject,
            time_start=_dt(self.cd.start_ns + self.covered),
            time_end=None,
            usage_ns=self.remaining,
            # the rest ends where the piece ends, so its end offset is the piece's
            duration_index_ns=max(self.cd.duration_index_ns, self.total),
            loop_index=0 if with_fee else max(self.cd.loop_index, 1),
            max_cost_so_far=self.cd.max_cost_so_far + self.spent,
        )
        return self.rate(sub)

    def _sub(self, b: Balance, amount: Decimal) -> None:
        b.value = round_value(b.value - amount, self.decimals)
        self.spent += amount

    def _payer(self, cost: Decimal) -> Balance | None:
        """First money balance able to pay ``cost``; else the default when debt is allowed."""
        for b in self.money_balances:
            if b.value >= cost:
                return b
        if not self.dry_run or self.acc.allow_negative:
            return self.acc.default_balance()
        return None

    def _pay_fee(self, fee: Decimal, ts: TimeSpan | None) -> None:
        self.fee_pending = False
        if fee == 0:
            return
        payer = None
        for b in self.money_balances:
            if b.value >= fee:
                payer = b
                break
            if b.blocker:
                break
        if payer is None:
            payer = self.acc.default_balance()
            assert payer is not None
            self.negative_fee = True
        self._sub(payer, fee)
        ch = (
            _charge_from_span(ts, self.covered, 0, fee, 1, money_uuid=payer.uuid, connect_fee=True)
            if ts is not None else Charge(self.covered, 0, fee, money_uuid=payer.uuid,
                                          connect_fee=True)
        )
        self.charges.append(ch)

    # --- phases --------------------------------------------------------------------------

    def unit_phase(self) -> bool:
        progress = False
        for ub in self.unit_balances:
            if self.remaining <= 0 or self.blocked:
                break
            subject = ub.rating_subject
            if subject in ("", "*any"):
                subject = DEFAULT_UNIT_SUBJECT.get(self.cd.tor, "*zero1ns")
            zero = zero_increment(subject)
            before = self.covered
            if zero is not None:
                self._zero_units(ub, zero)
            else:
                self._rated_units(ub, subject)
            progress |= self.covered > before
            if ub.blocker and self.remaining > 0:
                self.blocked = True
        return progress

    def _units_per(self, ub: Balance, duration: int) -> Decimal:
        units = Decimal(duration)
        if ub.type == GENERIC:
            factor = ub.factor.get(self.cd.tor, Decimal(1))
            units = round_money(units / factor, self.decimals, "*up")
        return units

    def _zero_units(self, ub: Balance, inc: int) -> None:
        n = -(-self.remaining // inc)
        per = self._units_per(ub, inc)
        k = n if per == 0 else min(n, int(ub.value // per))
        if k <= 0:
            return
        self.charges.append(Charge(self.covered, inc, Decimal(0), k, unit_uuid=ub.uuid,
                                   units=per))
        ub.value = round_value(ub.value - per * k, self.decimals)
        self.covered += inc * k

    def _rated_units(self, ub: Balance, subject: str) -> None:
        cc = self._rate_rest(subject, self.fee_pending)
        if cc.connect_fee and self.fee_pending:
            self._pay_fee(cc.connect_fee, cc.timespans[0] if cc.timespans else None)
        self.fee_pending = False
        for ts in cc.timespans:
            for inc in ts.increments:
                for _ in range(inc.compress_factor):
                    per = self._units_per(ub, inc.duration_ns)
                    if ub.value < per:
                        return
                    payer = self._payer(inc.cost) if inc.cost > 0 else None
                    if inc.cost > 0 and payer is None:
                        return
                    ub.value = round_value(ub.value - per, self.decimals)
                    if payer is not None:
                        self._sub(payer, inc.cost)
                    self._append(ts, inc.duration_ns, inc.cost, 1, unit_uuid=ub.uuid, units=per,
                                 money_uuid=payer.uuid if payer else None)

    def _append(self, ts: TimeSpan, duration: int, cost: Decimal, count: int, **kw: Any) -> None:
        last = self.charges[-1] if self.charges else None
        if (
            last is not None and last.span is ts and last.duration_ns == duration
            and last.cost == cost and not last.connect_fee
            and last.unit_uuid == kw.get("unit_uuid") and last.money_uuid == kw.get("money_uuid")
            and last.units == kw.get("units", Decimal(0))
        ):
            last.count += count
        else:
            self.charges.append(_charge_from_span(ts, self.covered, duration, cost, count, **kw))
        self.covered += duration * count

    def money_phase(self) -> bool:
        progress = False
        for b in self.money_balances:
            if self.remaining <= 0 or self.blocked:
                break
            before = self.covered
            self._money_from(b)
            progress |= self.covered > before
            if b.blocker and self.remaining > 0:
                self.blocked = True
        return progress

    def _money_from(self, b: Balance) -> None:
        cc = self._rate_rest(b.rating_subject, self.fee_pending)
        if self.fee_pending:
            self._pay_fee(cc.connect_fee, cc.timespans[0] if cc.timespans else None)
        for ts in cc.timespans:
            for inc in ts.increments:
                if inc.cost <= 0:
                    self._append(ts, inc.duration_ns, inc.cost, inc.compress_factor)
                    continue
                k = min(inc.compress_factor, int(b.value // inc.cost)) if b.value > 0 else 0
                if k > 0:
                    self._sub(b, inc.cost * k)
                    self._append(ts, inc.duration_ns, inc.cost, k, money_uuid=b.uuid)
                if k < inc.compress_factor:
                    return

    def leftover(self) -> None:
        if self.remaining <= 0 or self.blocked:
            return
        cc = self._rate_rest("", self.fee_pending)
        rest_cost = cc.connect_fee + sum((ts.cost for ts in cc.timespans), Decimal(0))
        if rest_cost > 0 and not self.go_negative:
            return
        if self.fee_pending:
            self._pay_fee(cc.connect_fee, cc.timespans[0] if cc.timespans else None)
        default = self.acc.default_balance() if rest_cost > 0 else None
        for ts in cc.timespans:
            for inc in ts.increments:
                if default is not None and inc.cost > 0:
                    self._sub(default, inc.cost * inc.compress_factor)
                    self._append(ts, inc.duration_ns, inc.cost, inc.compress_factor,
                                 money_uuid=default.uuid)
                else:
                    self._append(ts, inc.duration_ns, inc.cost, inc.compress_factor)

    def run(self) -> DebitOutcome:
        if self.total > 0:
            while self.remaining > 0 and not self.blocked:
                progress = self.unit_phase()
                if self.remaining > 0 and not self.blocked:
                    progress |= self.money_phase()
                if not progress:
                    break
            if self.blocked and self.remaining > 0 and not self.dry_run:
                raise AccountError(INSUFFICIENT_CREDIT_BALANCE_BLOCKER,
                                   f"account {self.acc.id}: a blocker balance stops the debit")
            self.leftover()
        return DebitOutcome(
            charges=self.charges,
            usage_ns=self.covered,
            cost=sum((c.total_cost for c in self.charges), Decimal(0)),
            negative_connect_fee=self.negative_fee,
            complete=self.remaining <= 0,
        )


def check_account(account: Account) -> None:
    if account.disabled:
        # the bare word, as v0.10's utils.ErrAccountDisabled (SessionS: RALS_ERROR:ACCOUNT_DISABLED)
        raise AccountError(ACCOUNT_DISABLED)


def debit_account(
    account: Account,
    cd: CallDescriptor,
    rate: Rater,
    prefix_index: PrefixIndex,
    *,
    dry_run: bool = False,
    go_negative: bool = True,
    decimals: int = GLOBAL_ROUNDING_DECIMALS,
    timings: Mapping[str, Timing] | None = None,
    shared: SharedView | None = None,
) -> DebitOutcome:
    """Debit ``cd`` from ``account`` (mutated in place; pass a copy for a dry run);
    ``timings`` (the tariff plan's) decide when balances with TimingIDs may pay; ``shared``
    (the other members of the account's shared groups, mutated in place too) lets the
    account's shared balances draw on theirs."""
    check_account(account)
    cd = cd.with_defaults()
    return _Debit(account, cd, rate, prefix_index, timings, dry_run=dry_run, go_negative=go_negative,
                  decimals=decimals, shared=shared).run()


def charges_json(charges: Sequence[Charge]) -> list[dict[str, Any]]:
    return [c.to_json() for c in charges]


__all__ = [
    "ACCOUNT_DISABLED", "DEFAULT_BALANCE_ID", "INSUFFICIENT_CREDIT",
    "INSUFFICIENT_CREDIT_BALANCE_BLOCKER", "Charge", "DebitOutcome", "Rater", "charges_json",
    "check_account", "debit_account", "zero_increment",
]
