"""Engines for the StorDB: Postgres through psycopg 3, or the embedded SQLite default."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext

DEFAULT_SQLITE_PATH = Path("var") / "stordb.sqlite"


def default_url() -> str:
    """``CGRPY_STORDB_URL`` or the embedded SQLite file under ./var/."""
    return os.environ.get("CGRPY_STORDB_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def make_engine(url: str | None = None, **kwargs: object) -> Engine:
    """An Engine for ``url`` (default :func:`default_url`), tuned per backend."""
    url = url or default_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _remember_where)
    return engine


def _remember_where(ctx: ExceptionContext) -> None:
    """Tag a database error with its database (password hidden) and whether it happened while
    connecting, so :func:`describe_db_error` can name both."""
    exc = ctx.sqlalchemy_exception
    if exc is not None and ctx.engine is not None:
        exc.cgrpy_db_url = ctx.engine.url.render_as_string(hide_password=True)  # type: ignore[attr-defined]
        exc.cgrpy_connecting = ctx.connection is None  # type: ignore[attr-defined]


_MISSING_TABLE = re.compile(r'relation "(?:[^"]+\.)?([^".]+)" does not exist|no such table: (?:\w+\.)?(\w+)')


def describe_db_error(exc: BaseException) -> str:
    """One line an operator can act on for a database error of an engine from
    :func:`make_engine`: which database, unreachable or never migrated (a table of ours is
    missing: ``cgr migrate`` creates it), else the driver's first line."""
    url = getattr(exc, "cgrpy_db_url", None)
    where = f"database {url}" if url else "database"
    orig = getattr(exc, "orig", None) or exc
    first = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    if getattr(exc, "cgrpy_connecting", False):
        return f"{where} unreachable: {first}"
    m = _MISSING_TABLE.search(str(orig))
    if m:
        from cgrpy.storage.models import Base

        table = m.group(1) or m.group(2)
        if table in Base.metadata.tables:
            return (f"{where} has no table {table!r}: it was never migrated "
                    f"(run `cgr migrate --db-url URL` on it once)")
        return f"{where} has no table {table!r}"
    return f"{where}: {first}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API objects
    cur = dbapi_conn.cursor()
    # WAL lets the eight service processes read while one writes; busy_timeout waits for locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
