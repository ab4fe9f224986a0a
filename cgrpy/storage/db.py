"""Engines for the StorDB: Postgres through psycopg 3, or the embedded SQLite default."""

from __future__ import annotations

import os
import re
import select
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import ExceptionContext

# A pooled connection idle longer than this is checked with a round trip before use. The hot
# path reuses its connections within milliseconds and pays nothing; one idle since before an
# outage is found dead here instead of failing the caller's first statement.
IDLE_PING_S = 2.0

DEFAULT_SQLITE_PATH = Path("var") / "stordb.sqlite"


class MigrationError(RuntimeError):
    """The StorDB's schema is not the one this code runs on (behind, ahead, or drifted); the
    message names what to run. Here rather than in ``migrate`` so a process can catch it
    without importing Alembic."""


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
        idle_ping_s = float(kwargs.pop("idle_ping_s", IDLE_PING_S))  # type: ignore[arg-type]
        engine = create_engine(url, **kwargs)
        _ping_when_idle(engine, idle_ping_s)
    event.listen(engine, "handle_error", _remember_where)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Instead of ``pool_pre_ping`` (a round trip on every checkout): on checkout, a poll of the
    socket (a terminated backend has left its goodbye there) and a round trip only for a
    connection idle longer than ``idle_s``. A connection that dies while in use fails its
    statement; SQLAlchemy then sees a disconnect, discards that connection and every pooled one
    opened before it, so the next transaction reconnects."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if _socket_readable(dbapi_conn):
            raise exc.DisconnectionError("pooled connection closed by the server")
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)  # what pool_pre_ping would run
        except Exception as err:  # noqa: BLE001 - any failure: let the pool open a fresh one
            raise exc.DisconnectionError(f"idle pooled connection is dead: {err}") from err
        if not alive:
            raise exc.DisconnectionError("idle pooled connection is dead")


def _socket_readable(dbapi_conn: Any) -> bool:
    """An idle Postgres connection has nothing to read. Something readable means the server
    sent its goodbye (backend terminated, server shut down) or closed the socket: found by one
    non-blocking poll, no round trip."""
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # noqa: BLE001 - already closed: let the pool replace it
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _remember_where(ctx: ExceptionContext) -> None:
    """Tag a database error with its database (password hidden) and whether it happened while
    connecting, so :func:`describe_db_error` can name both."""
    err = ctx.sqlalchemy_exception
    if err is not None and ctx.engine is not None:
        err.cgrpy_db_url = ctx.engine.url.render_as_string(hide_password=True)  # type: ignore[attr-defined]
        err.cgrpy_connecting = ctx.connection is None  # type: ignore[attr-defined]


_MISSING_TABLE = re.compile(r'relation "(?:[^"]+\.)?([^".]+)" does not exist|no such table: (?:\w+\.)?(\w+)')


def describe_db_error(err: BaseException) -> str:
    """One line an operator can act on for a database error of an engine from
    :func:`make_engine`: which database, unreachable or never migrated (a table of ours is
    missing: ``cgr migrate`` creates it), else the driver's first line."""
    url = getattr(err, "cgrpy_db_url", None)
    where = f"database {url}" if url else "database"
    orig = getattr(err, "orig", None) or err
    first = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    if getattr(err, "cgrpy_connecting", False):
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
