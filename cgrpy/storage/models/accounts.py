"""Tables owned by rals: accounts, balances, the balance journal, request results, plan runs.

* ``accounts`` — one row per ``tenant:account``; the row every money change locks first
  (``SELECT ... FOR UPDATE`` on Postgres; SQLite serialises writers). ``triggers`` and
  ``counters`` are JSON (trigger definitions with their executed state, unit counters).
* ``balances`` — one row per balance (``uuid`` system-wide). Values are exact: ``NUMERIC`` on
  Postgres, the decimal text on SQLite (same type as the tariff-plan tables).
* ``balance_journal`` — one row per value change of one balance in one request: ``delta`` and
  ``value_after``. A balance starts at 0, so its value always equals the sum of its journal.
  ``(request_id, balance_uuid)`` is unique: a request changes a balance at most once.
* ``account_requests`` — the result of every debit/refund/action request, keyed by its
  idempotency key: a retried request returns the stored result and changes nothing.
* ``applied_action_plans`` — which ``*asap`` action plan already ran on which account for which
  tariff plan, so a reload or a restart does not top up twice.
* ``rals_cdrlog_outbox`` — the CDRs of committed ``*cdrlog`` actions not yet stored by cdre: an
  outbox (``cgrpy/storage/outbox.py``) any RALs process delivers; cdre is idempotent on the
  CDR's (CGRID, RunID), so a row delivered twice is stored once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cgrpy.storage.models.base import Base
from cgrpy.storage.models.tp import EXACT_NUMERIC

accounts = Table(
    "accounts",
    Base.metadata,
    Column("tenant", String(128), primary_key=True),
    Column("account", String(128), primary_key=True),
    Column("allow_negative", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("triggers", Text, nullable=False, default="[]"),
    Column("counters", Text, nullable=False, default="{}"),
    # Bumped by every change; also the statement that takes SQLite's write lock first.
    Column("version", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

balances = Table(
    "balances",
    Base.metadata,
    Column("uuid", String(64), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("account", String(128), nullable=False),
    Column("balance_id", String(128), nullable=False),
    Column("type", String(32), nullable=False),
    Column("value", EXACT_NUMERIC, nullable=False),
    Column("expiry", DateTime(timezone=True), nullable=True),
    Column("weight", EXACT_NUMERIC, nullable=False),
    Column("destination_ids", Text, nullable=False, default=""),
    Column("rating_subject", String(128), nullable=False, default=""),
    Column("categories", Text, nullable=False, default=""),
    Column("shared_groups", Text, nullable=False, default=""),
    Column("timing_ids", Text, nullable=False, default=""),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("blocker", Boolean, nullable=False, default=False),
    Column("factor", Text, nullable=False, default="{}"),
    # Creation order inside the account: CGRateS keeps balances in a list per type.
    Column("position", Integer, nullable=False, default=0),
    ForeignKeyConstraint(
        ["tenant", "account"], ["accounts.tenant", "accounts.account"], ondelete="CASCADE"
    ),
)

balance_journal = Table(
    "balance_journal",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(128), nullable=False, index=True),
    Column("account", String(128), nullable=False),
    # No FK: the journal outlives removed balances (the audit trail must stay).
    Column("balance_uuid", String(64), nullable=False, index=True),
    Column("delta", EXACT_NUMERIC, nullable=False),
    Column("value_after", EXACT_NUMERIC, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("request_id", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "balance_uuid", name="uq_balance_journal_request_balance"),
)

account_requests = Table(
    "account_requests",
    Base.metadata,
    Column("request_id", String(255), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("account", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

applied_action_plans = Table(
    "applied_action_plans",
    Base.metadata,
    Column("tpid", String(64), primary_key=True),
    Column("tenant", String(128), primary_key=True),
    Column("account", String(128), primary_key=True),
    Column("action_plan_id", String(128), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

rals_cdrlog_outbox = Table(
    "rals_cdrlog_outbox",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("cgrid", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    # the CDR's fields as exact JSON (Cost a decimal, never a float)
    Column("event", Text, nullable=False),
    # claimed by a delivering RALs process until this time (unix ns); 0 = free
    Column("lease_until_ns", BigInteger, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Index("ix_rals_cdrlog_outbox_lease", "lease_until_ns", "id"),
)

__all__ = [
    "account_requests",
    "accounts",
    "applied_action_plans",
    "balance_journal",
    "balances",
    "rals_cdrlog_outbox",
]
