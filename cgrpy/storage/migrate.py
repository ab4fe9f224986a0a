"""Schema migrations of the StorDB, run programmatically (no ``alembic.ini`` at runtime).

``cgr`` and every service call :func:`upgrade` at start; it is idempotent and serialised across
processes (a Postgres advisory lock, or a lock file next to the SQLite database), so eight
services starting at once do not race to create the same tables.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from cgrpy.storage.db import default_url, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant key for pg_advisory_lock ("cgrpy" in ASCII).
_PG_LOCK_KEY = 0x6367727079


class MigrationError(RuntimeError):
    """The database is not at the head revision, or its schema differs from the models."""


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_conn:
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            lock_conn.commit()
            try:
                yield
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                lock_conn.commit()
        return
    db_path = engine.url.database
    if engine.dialect.name != "sqlite" or not db_path or db_path == ":memory:":
        yield
        return
    with open(f"{db_path}.migrate-lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: head)."""
    with _migration_lock(engine), engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def upgrade(url: str | None = None) -> None:
    """Upgrade the StorDB at ``url`` (default :func:`cgrpy.storage.db.default_url`) to head.

    Safe to call at every start: a database already at head is left alone.
    """
    engine = make_engine(url or default_url())
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def schema_diff(conn: Connection) -> list[object]:
    """Alembic's differences between the live schema and the models (empty = no drift)."""
    from cgrpy.storage.models import Base

    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def check(url: str | None = None) -> None:
    """Raise :class:`MigrationError` unless the StorDB is at head and matches the models."""
    engine = make_engine(url or default_url())
    try:
        with engine.connect() as conn:
            current, head = current_revision(conn), head_revision()
            if current is None:
                raise MigrationError(f"database never migrated (no revision; head is {head}): run `cgr migrate`")
            if current != head:
                raise MigrationError(f"database at revision {current}, head is {head}")
            diff = schema_diff(conn)
            if diff:
                raise MigrationError(f"schema differs from the models: {diff}")
    finally:
        engine.dispose()
