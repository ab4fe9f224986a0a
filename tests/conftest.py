"""Shared fixtures: real databases for every test that needs one.

Each test session creates its own Postgres databases (``cgrpy_t_<random>``) on the local server
(``CGRPY_TEST_PG``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and drops them
at the end; SQLite databases live in pytest's tmp_path.
"""

from __future__ import annotations

import concurrent.futures.thread
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
TARIFFPLANS = REPO / "tariffplans"
TRACES = Path(__file__).resolve().parent / "fixtures" / "traces"

# in-process services too: each frame lane on a kernel-picked port (see tests/suite.py suite_env)
os.environ.setdefault("CGRPY_FRAME_PORT_OFFSET", "0")
PG_ADMIN_URL = os.environ.get("CGRPY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _swap_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


class PgDatabases:
    """Creates throw-away Postgres databases and drops them all at the end of the run."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self) -> str:
        name = f"cgrpy_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return _swap_db(self.admin_url, name)

    def drop_all(self) -> None:
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def _live_children(ppid: int) -> list[str]:
    """``pid cmdline`` of the running (not zombie) child processes of ``ppid``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == ppid and fields[0] != "Z":
            out.append(f"{entry.name} {cmd.strip()}")
    return out


@pytest.fixture(scope="session", autouse=True)
def nothing_outlives_the_tests() -> Iterator[None]:
    """A run that passes must also end: no child process (a suite, a server) and no non-daemon
    thread (the interpreter joins those at exit, for ever if they never return) may be left
    once every test and fixture is done. Idle executor workers are fine: they exit when asked."""
    yield
    children = _live_children(os.getpid())
    threads = [t.name for t in threading.enumerate()
               if t is not threading.main_thread() and not t.daemon and t.is_alive()
               and getattr(t, "_target", None) is not concurrent.futures.thread._worker]
    assert not children and not threads, f"left running after the tests: {children} {threads}"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    dbs = PgDatabases(PG_ADMIN_URL)
    try:
        with psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Postgres not reachable at {PG_ADMIN_URL}: {exc}")
    yield dbs
    dbs.drop_all()


@pytest.fixture
def pg_url(pg_databases: PgDatabases) -> str:
    """A fresh, empty Postgres database (SQLAlchemy URL) for this test."""
    return pg_databases.create()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database (SQLAlchemy URL) for this test."""
    return f"sqlite:///{tmp_path / 'stordb.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on Postgres: one contract, both backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")
