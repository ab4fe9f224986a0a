"""Schema migrations of the StorDB, run programmatically (no ``alembic.ini`` at runtime).

``cgr`` and every service call :func:`ensure_schema` at start: with ``stordb_auto_migrate`` on
(the default) it runs :func:`upgrade`, which is idempotent and serialised across processes (a
Postgres advisory lock, or a lock file next to the SQLite database), so nine services starting
at once do not race to create the same tables; with it off a StorDB behind the code is refused
with the command to run. Either way no process runs on a schema older than its code.

The revisions in ``migrations/versions`` are frozen once landed (their checksums are in
``versions/SHA256SUMS``): a StorDB already at a revision never runs it again, so a schema
change is always a new revision (``scripts/new_migration.py``).
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
from sqlalchemy.exc import SQLAlchemyError

# MigrationError is re-exported: callers catch migrate.MigrationError
from cgrpy.storage.db import MigrationError as MigrationError
from cgrpy.storage.db import default_url, make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant key for pg_advisory_lock ("cgrpy" in ASCII).
_PG_LOCK_KEY = 0x6367727079


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    return {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _refuse_unknown(current: str | None) -> None:
    """A revision this code does not have was written by a newer cgrpy: Alembic would only say
    it cannot locate it, and this code must not run on a schema it does not know."""
    if current is not None and current not in known_revisions():
        raise MigrationError(
            f"StorDB at revision {current}, newer than this cgrpy's head {head_revision()}: it was "
            "migrated by a newer cgrpy; run that version (or a newer one)")


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
    """Upgrade the database behind ``engine`` to ``revision`` (default: head), in one
    transaction: a revision that fails leaves the database at the revision it was."""
    with _migration_lock(engine), engine.begin() as conn:
        current = current_revision(conn)
        _refuse_unknown(current)
        try:
            command.upgrade(alembic_config(conn), revision)
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0]
            raise MigrationError(
                f"StorDB at revision {current or 'none'}, upgrading it to {revision} "
                f"({head_revision()}) failed: {first}") from exc


def upgrade(url: str | None = None) -> None:
    """Upgrade the StorDB at ``url`` (default :func:`cgrpy.storage.db.default_url`) to head.

    Safe to call at every start: a database already at head is left alone.
    """
    engine = make_engine(url or default_url())
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()


def require_head(url: str | None = None) -> None:
    """Raise :class:`MigrationError` naming the command to run unless the StorDB is at this
    code's head revision (what a process with ``stordb_auto_migrate`` off checks at start)."""
    engine = make_engine(url or default_url())
    try:
        with engine.connect() as conn:
            current, head = current_revision(conn), head_revision()
    finally:
        engine.dispose()
    _refuse_unknown(current)
    if current != head:
        raise MigrationError(
            f"StorDB at revision {current or 'none (never migrated)'}, this cgrpy needs {head}: "
            "back it up, then run `cgr migrate --db-url URL` (stordb_auto_migrate is off)")


def ensure_schema(url: str | None = None, *, auto_migrate: bool = True) -> None:
    """At a process's start: bring the StorDB to head, or (``auto_migrate`` off) refuse one
    that is behind."""
    if auto_migrate:
        upgrade(url)
    else:
        require_head(url)


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
                _refuse_unknown(current)
                raise MigrationError(f"database at revision {current}, head is {head}: run `cgr migrate`")
            diff = schema_diff(conn)
            if diff:
                raise MigrationError(f"schema differs from the models: {diff}")
    finally:
        engine.dispose()
