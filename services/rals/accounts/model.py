"""Accounts and balances as plain data (docs/rating.md). No I/O here.

Every balance value is a ``Decimal``: money for ``*monetary``, nanoseconds for ``*voice``, plain
units for ``*data``/``*sms``/``*mms``/``*generic`` (1 unit = 1 ns in the duration fields).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from cgrpy.errors import CGRError
from cgrpy.units import round_money

MONETARY = "*monetary"
VOICE = "*voice"
DATA = "*data"
SMS = "*sms"
MMS = "*mms"
GENERIC = "*generic"
BALANCE_TYPES = (MONETARY, VOICE, DATA, SMS, MMS, GENERIC)
DEFAULT_BALANCE_ID = "*default"
GLOBAL_ROUNDING_DECIMALS = 5


class AccountError(CGRError):
    """An account failure: a CGRateS word (``NOT_FOUND``, ``INSUFFICIENT_CREDIT``, ...) and what
    caused it."""

    spaced = True


def new_uuid() -> str:
    return str(uuid.uuid4())


def round_value(value: Decimal, decimals: int = GLOBAL_ROUNDING_DECIMALS) -> Decimal:
    """Every balance value change is rounded with global rounding ``*middle``."""
    return round_money(value, decimals, "*middle")


@dataclass
class Balance:
    type: str
    value: Decimal = Decimal(0)
    id: str = ""
    uuid: str = field(default_factory=new_uuid)
    expiry: datetime | None = None
    weight: Decimal = Decimal(0)
    # destination id -> True (include) / False (excluded with ``!``); empty = every destination
    destination_ids: dict[str, bool] = field(default_factory=dict)
    rating_subject: str = ""
    categories: frozenset[str] = frozenset()
    shared_groups: frozenset[str] = frozenset()
    timing_ids: frozenset[str] = frozenset()
    disabled: bool = False
    blocker: bool = False
    # *generic balances: units consumed per unit of a ToR (ExtraParameters JSON of the action)
    factor: dict[str, Decimal] = field(default_factory=dict)

    def expired(self, at: datetime) -> bool:
        return self.expiry is not None and self.expiry <= at

    def copy(self) -> Balance:
        return replace(self, destination_ids=dict(self.destination_ids), factor=dict(self.factor))

    def summary(self) -> dict[str, object]:
        """CGRateS BalanceSummary: UUID, ID, Type, Value, Disabled."""
        return {
            "UUID": self.uuid, "ID": self.id, "Type": self.type, "Value": self.value,
            "Disabled": self.disabled,
        }


@dataclass
class ActionTrigger:
    """An action trigger attached to an account, with its execution state."""

    id: str  # the Tag (trigger set id)
    unique_id: str
    threshold_type: str
    threshold_value: Decimal
    actions_id: str
    recurrent: bool = False
    min_sleep_ns: int = 0
    expiry: datetime | None = None
    activation: datetime | None = None
    weight: Decimal = Decimal(0)
    # balance filter: only the fields that were set (BalanceTag -> "id", BalanceType -> "type", ...)
    balance_filter: dict[str, object] = field(default_factory=dict)
    executed: bool = False
    last_execution: datetime | None = None


@dataclass
class Account:
    tenant: str
    account: str
    balances: list[Balance] = field(default_factory=list)
    allow_negative: bool = False
    disabled: bool = False
    triggers: list[ActionTrigger] = field(default_factory=list)
    # counter kind ("event" / "balance") + ":" + balance type -> accumulated amount
    counters: dict[str, Decimal] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.tenant}:{self.account}"

    def balances_of(self, balance_type: str) -> list[Balance]:
        return [b for b in self.balances if b.type == balance_type]

    def by_uuid(self, balance_uuid: str) -> Balance | None:
        for b in self.balances:
            if b.uuid == balance_uuid:
                return b
        return None

    def default_balance(self, create: bool = True) -> Balance | None:
        """The ``*monetary`` ``*default`` balance, where debt goes; created on demand."""
        for b in self.balances:
            if b.type == MONETARY and b.id == DEFAULT_BALANCE_ID:
                return b
        if not create:
            return None
        b = Balance(type=MONETARY, id=DEFAULT_BALANCE_ID)
        self.balances.append(b)
        return b

    def copy(self) -> Account:
        return replace(
            self,
            balances=[b.copy() for b in self.balances],
            triggers=[replace(t, balance_filter=dict(t.balance_filter)) for t in self.triggers],
            counters=dict(self.counters),
        )

    def summary(self) -> dict[str, object]:
        """CGRateS AccountSummary (EventCost): Tenant, ID, AllowNegative, Disabled, balances."""
        return {
            "Tenant": self.tenant, "ID": self.account, "AllowNegative": self.allow_negative,
            "Disabled": self.disabled, "BalanceSummaries": [b.summary() for b in self.balances],
        }


def value_changes(before: Account, after: Account) -> dict[str, tuple[Decimal, Decimal]]:
    """Balance uuid -> (old value, new value) for every balance whose value differs (new = 0 old)."""
    old = {b.uuid: b.value for b in before.balances}
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for b in after.balances:
        prev = old.get(b.uuid, Decimal(0))
        if prev != b.value:
            out[b.uuid] = (prev, b.value)
    return out
