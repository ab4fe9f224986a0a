"""Tables owned by cdre: CDRs (one row per CGRID and run), session costs, the export log.

Differences from CGRateS's ``create_cdrs_tables.sql``, on purpose:

* ``cost`` keeps every digit (CGRateS: ``NUMERIC(20,4)``, which silently turns an EventCost of
  0.64175 into 0.6418). On SQLite, which has no exact decimal type, money is stored as a
  BIGINT count of 10^-9 units (:class:`ExactMoney`): exact, and ``cost >= :x`` / ``ORDER BY
  cost`` still compare numbers, which the decimal text of ``tp_*`` tables would not.
* ``extra_fields`` / ``cost_details`` are JSON text written with exact numbers
  (:func:`cgrpy.event.dumps_exact`), not ``jsonb`` (jsonb would reorder keys, and SQLite has none).
* ``rating_state`` and ``debit_request_id`` make charging crash-safe (see
  :mod:`services.cdre.store`): a row is reserved ``pending`` before any money moves, and the debit
  carries an idempotency key stored with the row.
* ``cdr_exports``/``cdrs_exported`` remember which CDR went into which export file, so a CDR is
  exported once per profile unless asked again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from cgrpy.storage.models.base import Base

MONEY_SCALE = 9  # decimals ExactMoney keeps on SQLite (Postgres NUMERIC keeps any)
NOT_RATED = Decimal(-1)

# Autoincrement ids: BIGINT on Postgres; SQLite only autoincrements an INTEGER primary key.
BigId: TypeEngine = BigInteger().with_variant(Integer(), "sqlite")


class ExactMoney(TypeDecorator[Decimal]):
    """Decimal money: NUMERIC on Postgres, BIGINT nano-units on SQLite (see module doc)."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"money must be a finite Decimal, got {value!r}")
        scaled = value.scaleb(MONEY_SCALE)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"money {value} has more than {MONEY_SCALE} decimals")
        if dialect.name == "sqlite":
            return int(scaled)
        return value

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return canonical_decimal(Decimal(int(value)).scaleb(-MONEY_SCALE))
        return canonical_decimal(Decimal(value))


def canonical_decimal(d: Decimal) -> Decimal:
    """Same value, no trailing zeros, never exponent form (``0.640000000`` → ``0.64``, 10 → 10)."""
    if d == d.to_integral_value():
        return d.quantize(Decimal(1))
    return d.normalize()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: CDR times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class CdrRow(Base):
    """One CDR of one billing run; ``id`` is CGRateS's OrderID (export order)."""

    __tablename__ = "cdrs"
    __table_args__ = (
        UniqueConstraint("cgrid", "run_id"),
        Index("ix_cdrs_setup_time", "setup_time"),
        Index("ix_cdrs_answer_time", "answer_time"),
        Index("ix_cdrs_tenant_account", "tenant", "account"),
        Index("ix_cdrs_destination", "destination"),
        Index("ix_cdrs_run_id", "run_id"),
        Index("ix_cdrs_request_type", "request_type"),
        Index("ix_cdrs_rating_state", "rating_state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cgrid: Mapped[str] = mapped_column(String(40), nullable=False)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    origin_host: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    source: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    origin_id: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    tor: Mapped[str] = mapped_column(String(16), nullable=False)
    request_type: Mapped[str] = mapped_column(String(24), nullable=False)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False)
    category: Mapped[str] = mapped_column(String(64), nullable=False)
    account: Mapped[str] = mapped_column(String(128), nullable=False)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)
    destination: Mapped[str] = mapped_column(String(128), nullable=False)
    setup_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    answer_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    usage_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    extra_fields: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    cost_source: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    cost: Mapped[Decimal] = mapped_column(ExactMoney, nullable=False, default=NOT_RATED)
    cost_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_info: Mapped[str] = mapped_column(Text, nullable=False, default="")
    pre_rated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    partial: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # "pending": reserved, money may be moving; "rated": final (rated, unrated or failed).
    rating_state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    # Idempotency key of the RALs debit that charged this row ("" when nothing was debited).
    debit_request_id: Mapped[str] = mapped_column(String(160), nullable=False, default="")
    rerate_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, nullable=False, default=_now, onupdate=_now
    )


class SessionCostRow(Base):
    """The cost SM computed for a *prepaid session run, taken by that run's CDR."""

    __tablename__ = "session_costs"
    __table_args__ = (UniqueConstraint("cgrid", "run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cgrid: Mapped[str] = mapped_column(String(40), nullable=False)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    origin_host: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    origin_id: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    cost_source: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    usage_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cost: Mapped[Decimal] = mapped_column(ExactMoney, nullable=False)
    cost_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=_now)


class CdrExportRow(Base):
    """One export run (one file)."""

    __tablename__ = "cdr_exports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    export_id: Mapped[str] = mapped_column(String(128), nullable=False)
    profile: Mapped[str] = mapped_column(String(64), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    records: Mapped[int] = mapped_column(Integer, nullable=False)
    total_cost: Mapped[Decimal] = mapped_column(ExactMoney, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=_now)


class CdrExportedRow(Base):
    """CDR ``cdr_id`` went into export ``export_pk`` of ``profile`` (once per profile)."""

    __tablename__ = "cdrs_exported"
    __table_args__ = (UniqueConstraint("cdr_id", "profile"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cdr_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("cdrs.id", ondelete="CASCADE"), nullable=False
    )
    profile: Mapped[str] = mapped_column(String(64), nullable=False)
    export_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("cdr_exports.id", ondelete="CASCADE"), nullable=False, index=True
    )


class CdrOutboxRow(Base):
    """CDR events still to be delivered to StatS/ThresholdS (one row per group-committed
    transaction of cdre, ``target`` ``batch:<receivers still owed>``), or a CDR still to be
    exported online (``target`` ``export:<exporter id>``), written in the transaction that stores
    the CDR, deleted once every target answered (cdre's outbox)."""

    __tablename__ = "cdr_outbox"
    __table_args__ = (Index("ix_cdr_outbox_lease", "lease_until_ns", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # "batch:thresholds,stats" (or the one still owed), "export:<exporter id>" (an online CDR
    # exporter); "thresholds" or "stats" in rows of one event written before batch rows
    target: Mapped[str] = mapped_column(String(80), nullable=False)
    # The event's id (a batch row's first): the receivers skip an id they already counted
    # (at-least-once delivery).
    event_id: Mapped[str] = mapped_column(String(160), nullable=False)
    # {"Tenant", "ID", "Time" (unix ns), "Event"} as JSON with exact numbers; a batch row holds
    # a JSON array of them.
    event: Mapped[str] = mapped_column(Text, nullable=False)
    # A deliverer claims a row until this time (unix ns); 0 = free. A claim that outlives its
    # deliverer (crash) simply expires and the row is delivered again.
    lease_until_ns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # An export that used up its exporter's attempts: kept (never dropped), retried every
    # cdre_export_failed_retry or on demand, and listed by `cgr cdrs list --export-failed`.
    failed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_error: Mapped[str] = mapped_column(Text, nullable=False, default="")
