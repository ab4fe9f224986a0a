"""A StorDB migrated by an earlier cgrpy is upgraded in place: its rows stay, and it ends with
exactly the schema a fresh database gets (from the migrations and from the models). Landed
revisions are frozen (versions/SHA256SUMS): an edit would never reach a database already past it.

Every table of revision 0001 gets a row first (values made from the column types, so a table
added to 0001's era is covered without naming it here)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, inspect, select, text

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from tests.suite import REPO, suite_env

FIRST = "0001"  # what an operator may have deployed before revisions were kept frozen
VERSIONS = migrate.MIGRATIONS_DIR / "versions"
FROZEN = "migrations are frozen once landed: add a new one (scripts/new_migration.py)"


@pytest.fixture(params=["sqlite", "postgres"])
def two_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh, empty databases of one backend: one upgraded step by step, one from scratch."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite'}", f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    pg = request.getfixturevalue("pg_databases")
    return pg.create(), pg.create()


def _value(column: Any) -> object:
    """One value of the column's type. Every string is "x" and every integer 1, so the few
    foreign keys of 0001 (balances -> accounts, cdrs_exported -> cdrs) point at the parent row."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return "x"
    return {int: 1, str: "x", bool: False, Decimal: Decimal("1.25"), float: 1.5,
            datetime: datetime(2026, 12, 1, 12, 0, tzinfo=UTC)}.get(kind, "x")


def fill_every_table(engine: Engine) -> dict[str, list[dict[str, object]]]:
    """Insert one row into every table the database has now; return each table's rows as read
    back (what must survive the upgrade)."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name != "alembic_version":
                conn.execute(table.insert().values({c.name: _value(c) for c in table.columns}))
    return read_rows(engine, meta)


def read_rows(engine: Engine, meta: MetaData) -> dict[str, list[dict[str, object]]]:
    with engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(select(t))]
                for t in meta.sorted_tables if t.name != "alembic_version"}


def assert_kept(engine: Engine, before: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """Every row of ``before`` is still there, column for column (new columns aside)."""
    meta = MetaData()
    meta.reflect(engine)
    after = read_rows(engine, meta)
    for name, rows in before.items():
        assert [{k: r[k] for k in rows[0]} for r in after[name]] == rows, name
    return after


def schema(engine: Engine) -> dict[str, object]:
    """Everything the inspector sees, table by table, in a comparable form."""
    insp = inspect(engine)
    out: dict[str, object] = {}
    for name in sorted(insp.get_table_names()):
        cols = [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in insp.get_columns(name)]
        out[name] = {
            "columns": sorted(cols),
            "pk": insp.get_pk_constraint(name),
            "fks": sorted(insp.get_foreign_keys(name), key=lambda fk: str(fk.get("name"))),
            "indexes": sorted(insp.get_indexes(name), key=lambda ix: str(ix.get("name"))),
            "uniques": sorted(insp.get_unique_constraints(name), key=lambda u: str(u.get("name"))),
        }
    return out


def test_upgrade_from_0001_keeps_rows_and_ends_at_the_fresh_schema(two_dbs) -> None:
    old_url, fresh_url = two_dbs
    old, fresh = make_engine(old_url), make_engine(fresh_url)
    try:
        migrate.upgrade_engine(old, FIRST)
        before = fill_every_table(old)
        assert len(before) >= 30 and all(len(rows) == 1 for rows in before.values())
        migrate.upgrade(old_url)  # what every process does at start
        migrate.upgrade(fresh_url)
        after = assert_kept(old, before)
        assert after["threshold_states"][0]["last_event"] == ""  # the column 0002 added
        assert after["tp_rating_profiles"][0]["load_id"] == ""  # and 0004
        assert schema(old) == schema(fresh)
        with old.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            assert migrate.schema_diff(conn) == []  # the models are exactly the head schema
    finally:
        old.dispose()
        fresh.dispose()


def _as_edited_0001_built(engine: Engine, stage: str) -> None:
    """A StorDB stamped 0001 by the 0001 that was edited in place: at the commit that added
    sm_sessions only that table came with it; at the last edit all of 0002's objects."""
    if stage == "sm_sessions":
        migrate.upgrade_engine(engine, FIRST)
        Base.metadata.tables["sm_sessions"].create(engine)
        return
    migrate.upgrade_engine(engine, "0002")  # the edited 0001 built what 0001 and 0002 build
    with engine.begin() as conn:
        command.stamp(migrate.alembic_config(conn), FIRST)


@pytest.mark.parametrize("stage", ["sm_sessions", "everything"])
def test_upgrade_of_a_stordb_built_by_the_edited_0001(two_dbs, stage) -> None:
    old_url, fresh_url = two_dbs
    old, fresh = make_engine(old_url), make_engine(fresh_url)
    try:
        _as_edited_0001_built(old, stage)
        before = fill_every_table(old)
        migrate.upgrade(old_url)
        migrate.upgrade(fresh_url)
        assert_kept(old, before)
        assert schema(old) == schema(fresh)
    finally:
        old.dispose()
        fresh.dispose()


def test_migrations_give_the_schema_the_models_create(two_dbs) -> None:
    migrated_url, created_url = two_dbs
    migrated, created = make_engine(migrated_url), make_engine(created_url)
    try:
        migrate.upgrade(migrated_url)
        Base.metadata.create_all(created)
        with migrated.connect() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
            conn.commit()
        assert schema(migrated) == schema(created)
    finally:
        migrated.dispose()
        created.dispose()


# --- the frozen history -----------------------------------------------------------------------


def checksums() -> dict[str, str]:
    lines = (VERSIONS / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def frozen_problems(versions: Path, sums: dict[str, str]) -> list[str]:
    files = {p.name: p for p in versions.glob("*.py") if p.name != "__init__.py"}
    problems = [f"{name} was deleted" for name in sorted(set(sums) - set(files))]
    for name, path in sorted(files.items()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if name not in sums:
            problems.append(f"{name} has no line in SHA256SUMS (scripts/new_migration.py writes it)")
        elif sums[name] != digest:
            problems.append(f"{name} changed since it landed")
    return problems


def test_landed_migrations_are_never_edited() -> None:
    problems = frozen_problems(VERSIONS, checksums())
    assert not problems, f"{FROZEN}: " + "; ".join(problems)


def test_the_guard_sees_an_edit(tmp_path: Path) -> None:
    for p in VERSIONS.glob("*.py"):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    first = tmp_path / "0001_initial.py"
    first.write_text(first.read_text() + "\n# one more table\n")
    assert "0001_initial.py changed since it landed" in frozen_problems(tmp_path, checksums())


def test_history_is_one_line_numbered_in_order() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revs = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revs] == [f"{n:04d}" for n in range(1, len(revs) + 1)]
    assert [r.down_revision for r in revs] == [None, *(r.revision for r in revs[:-1])]
    assert sorted(checksums()) == sorted(Path(r.path).name for r in revs)


# --- the start path -----------------------------------------------------------------------------


def _at_first_revision(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade_engine(engine, FIRST)
        fill_every_table(engine)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


def test_a_service_start_upgrades_an_old_stordb(pg_url) -> None:
    _at_first_revision(pg_url)
    proc = subprocess.Popen([sys.executable, "-m", "services.thresholds"], cwd=REPO,
                            env=suite_env(pg_url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while _revision(pg_url) != migrate.head_revision() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
        assert _revision(pg_url) == migrate.head_revision()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_service_refuses_an_old_stordb_without_auto_migrate(db_url) -> None:
    _at_first_revision(db_url)
    env = suite_env(db_url, CGRPY_STORDB_AUTO_MIGRATE="false")
    done = subprocess.run([sys.executable, "-m", "services.thresholds"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr
    lines = done.stderr.strip().splitlines()
    assert f"StorDB at revision {FIRST}, this cgrpy needs {migrate.head_revision()}" in lines[-1]
    assert "cgr migrate" in lines[-1] and "Traceback" not in done.stderr
    assert _revision(db_url) == FIRST  # nothing changed


def test_newer_stordb_is_refused_by_name(sqlite_url) -> None:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    for call in (migrate.upgrade, migrate.require_head, migrate.check):
        with pytest.raises(migrate.MigrationError, match="revision 9999, newer than this cgrpy"):
            call(sqlite_url)


def test_cgr_migrate_upgrades_an_old_stordb(db_url, capsys) -> None:
    from cgrpy.cli.main import main

    _at_first_revision(db_url)
    capsys.readouterr()
    assert main(["migrate", "--check", "--db-url", db_url]) == 1
    err = capsys.readouterr().err
    assert f"revision {FIRST}, head is {migrate.head_revision()}: run `cgr migrate`" in err
    assert main(["migrate", "--db-url", db_url]) == 0
    assert f"StorDB upgraded to {migrate.head_revision()}" in capsys.readouterr().out
    assert main(["migrate", "--check", "--db-url", db_url]) == 0
