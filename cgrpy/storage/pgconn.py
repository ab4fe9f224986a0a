"""One psycopg connection owned by one writer thread, for statements on a hot path.

SQLAlchemy's pool and ORM-free Core still cost a pool check-out, a reset ROLLBACK on check-in and
the statement's execution bookkeeping per transaction: about half a millisecond of CPU, paid per
debit by SM's session store. A writer that commits many small transactions keeps its own
connection instead and runs SQLAlchemy Core statements compiled once for Postgres (``compiled``)
through psycopg, which prepares them server-side after a few uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

T = TypeVar("T")
_DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def libpq_url(engine: Engine) -> str:
    """The engine's URL as libpq takes it (``postgresql://...``, password kept)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def compiled(stmt: Any) -> str:
    """A Core statement as Postgres SQL with ``%(name)s`` placeholders (its bindparam names)."""
    return str(stmt.compile(dialect=_DIALECT))


class PgConnection:
    """``run(fn)``: ``fn(conn)`` in one transaction on this thread's connection, opened on first
    use and once more after it broke (the statement is then tried again on the new one)."""

    def __init__(self, conninfo: str, application_name: str = "cgrpy") -> None:
        self.conninfo = conninfo
        self.application_name = application_name
        self._conn: psycopg.Connection | None = None

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        for attempt in (0, 1):
            conn = self._connect()
            try:
                with conn.transaction():
                    return fn(conn)
            except psycopg.OperationalError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5,
                                         application_name=self.application_name)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
