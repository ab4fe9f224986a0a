"""One psycopg connection owned by one writer thread, for statements on a hot path.

SQLAlchemy's pool and ORM-free Core still cost a pool check-out, a reset ROLLBACK on check-in and
the statement's execution bookkeeping per transaction: about half a millisecond of CPU, paid per
debit by SM's session store. A writer that commits many small transactions keeps its own
connection instead and runs SQLAlchemy Core statements compiled once for Postgres (``compiled``)
through psycopg, which prepares them server-side after a few uses.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

T = TypeVar("T")
_DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
_MAX_PLANS = 512


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


class _Compiled:
    """One Core statement compiled for Postgres for one set of parameter names, with the bind
    processors of its parameters' types (so ``ExactMoney`` and ``UtcDateTime`` check and convert
    as they do through SQLAlchemy) and, for a SELECT or RETURNING, its columns' result
    processors (``ExactMoney`` hands back canonical Decimals)."""

    __slots__ = ("sql", "compiled", "binds", "prefetch", "row_type", "results")

    def __init__(self, stmt: Any, keys: tuple[str, ...] | None) -> None:
        c = stmt.compile(dialect=_DIALECT, column_keys=list(keys) if keys is not None else None)
        self.compiled = c
        self.sql = c.string
        self.binds = [(name, proc) for bp, name in c.bind_names.items()
                      if (proc := bp.type.bind_processor(_DIALECT)) is not None]
        # Python-side defaults SQLAlchemy computes per execution (``default=`` of an INSERT,
        # ``onupdate=`` of an UPDATE): computed here the same way when the caller left them out
        self.prefetch = [(col, col.default) for col in getattr(c, "insert_prefetch", ()) or ()
                         if col.default is not None]
        self.prefetch += [(col, col.onupdate) for col in getattr(c, "update_prefetch", ()) or ()
                          if col.onupdate is not None]
        cols = list(getattr(stmt, "selected_columns", None) or ()) or list(
            getattr(stmt, "_returning", ()) or ())
        self.row_type = None
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        if cols:
            self.row_type = namedtuple("Row", [col.key for col in cols])  # type: ignore[misc]
            self.results = [(i, proc) for i, col in enumerate(cols)
                            if (proc := col.type.result_processor(_DIALECT, None)) is not None]

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        for col, default in self.prefetch:
            if col.key not in values:
                arg = default.arg
                values = {**values, col.key: arg(None) if default.is_callable else arg}
        full = self.compiled.construct_params(values)
        for name, proc in self.binds:
            if name in full:
                full[name] = proc(full[name])
        return full

    def row(self, raw: tuple[Any, ...]) -> Any:
        vals = list(raw)
        for i, proc in self.results:
            vals[i] = proc(vals[i])
        return self.row_type(*vals) if self.row_type is not None else tuple(vals)


class PgResult:
    """What the callers of :class:`CoreConn` read of a result (a subset of SQLAlchemy's)."""

    def __init__(self, cur: psycopg.Cursor, plan: _Compiled) -> None:
        self._cur, self._plan = cur, plan
        self.rowcount = cur.rowcount

    def _rows(self) -> list[Any]:
        if self._cur.description is None:
            return []
        return [self._plan.row(r) for r in self._cur.fetchall()]

    def all(self) -> list[Any]:
        return self._rows()

    def one(self) -> Any:
        rows = self._rows()
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0]

    def one_or_none(self) -> Any:
        rows = self._rows()
        if len(rows) > 1:
            raise LookupError(f"expected at most one row, got {len(rows)}")
        return rows[0] if rows else None

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]


class CoreConn:
    """SQLAlchemy Core statements executed straight on a psycopg connection.

    ``execute(stmt, params)`` takes the statements a store builds once (inserts, updates by
    id, selects) with a dict or a list of dicts, like ``sqlalchemy.Connection.execute``, but
    skips SQLAlchemy's per-statement execution context: for a group-committed writer that
    runs a few small statements per request, that context costs more CPU than Postgres spends
    on them. Statements are compiled once per set of parameter names and prepared by psycopg.
    """

    _plans: dict[tuple[int, tuple[str, ...] | None], _Compiled] = {}

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, stmt: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> PgResult:
        rows = params if isinstance(params, list) else [params or {}]
        plan = self._plan(stmt, rows[0])
        cur = self.conn.cursor()
        if isinstance(params, list) and len(params) > 1:
            cur.executemany(plan.sql, [plan.params(r) for r in rows])
        else:
            cur.execute(plan.sql, plan.params(rows[0]), prepare=True)
        return PgResult(cur, plan)

    @classmethod
    def _plan(cls, stmt: Any, first: dict[str, Any]) -> _Compiled:
        # column_keys matter only for INSERT/UPDATE (which columns the statement sets)
        keys = tuple(sorted(first)) if getattr(stmt, "is_dml", False) else None
        key = (id(stmt), keys)
        plan = cls._plans.get(key)
        if plan is None:
            if len(cls._plans) >= _MAX_PLANS:
                # meant for statements built once; a caller building them per call must not
                # make this grow (and keep its statements alive) without end
                cls._plans.clear()
            plan = cls._plans[key] = _Compiled(stmt, keys)
        return plan
