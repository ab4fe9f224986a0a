"""Outbox rows shared by several replicas: claim a batch for a while, deliver, delete.

A table with an integer ``id``, a ``lease_until_ns`` (unix ns; 0 = free) and an ``attempts``
counter is an outbox: any replica claims up to ``b_limit`` free rows, oldest first, until
``b_until`` (``FOR UPDATE SKIP LOCKED`` on Postgres, so two replicas never claim one row), delivers
them, and deletes the delivered ones. A claimer that dies lets its lease run out and the rows are
claimed again by another replica, so delivery is at least once and the receivers must be
idempotent. cdre's event/export outbox and SM's CDR spool use it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, literal_column, select, update


def claim_statement(table: Table, *where: Any, returning: tuple[Any, ...] = ()) -> Any:
    """The claim: parameters ``b_now``, ``b_limit``, ``b_until``; returns ``id``, ``attempts``
    (after the increment) and ``returning``."""
    free = (
        select(table.c.id)
        .where(table.c.lease_until_ns <= bindparam("b_now"), *where)
        .order_by(table.c.id)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(table)
        .where(table.c.id.in_(free.scalar_subquery()))
        .values(lease_until_ns=bindparam("b_until"), attempts=table.c.attempts + literal_column("1"))
        .returning(table.c.id, table.c.attempts, *returning)
    )
