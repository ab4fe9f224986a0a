"""Every `cgr` command answers a bad setup — a StorDB never migrated, a StorDB that does not
answer, a service that is not running — with one line on stderr and a non-zero exit, never a
traceback (the shared answer is in ``cgrpy.cli.main``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cgrpy.cli.main import main
from cgrpy.config import SERVICES
from tests.conftest import TARIFFPLANS
from tests.suite import REPO

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/cgrpy_nowhere"
CLOSED = "127.0.0.1:1"


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str,
        *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("CGRPY_STORDB_URL", db_url)
    for name in SERVICES:
        monkeypatch.setenv(f"CGRPY_{name.upper()}_ADDR", CLOSED)
    capsys.readouterr()
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


def one_line(rc: int, err: str, prefix: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert rc != 0 and len(lines) == 1, (rc, err)
    assert lines[0].startswith(prefix + ": "), lines[0]
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(params=["sqlite", "postgres"])
def unmigrated(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'never_migrated.sqlite'}"
    return request.getfixturevalue("pg_databases").create()  # created, never migrated


@pytest.mark.parametrize(("argv", "prefix"), [
    (["opensips", "drouting-sync"], "cgr opensips drouting-sync"),
])
def test_never_migrated_stordb(monkeypatch, capsys, unmigrated, argv, prefix) -> None:
    rc, err = run(monkeypatch, capsys, unmigrated, *argv)
    line = one_line(rc, err, prefix, "never migrated", "cgr migrate")
    assert unmigrated.split("://")[1].split("/")[-1] in line  # names the database


def test_never_migrated_migrate_check(monkeypatch, capsys, unmigrated) -> None:
    rc, err = run(monkeypatch, capsys, unmigrated, "migrate", "--check", "--db-url", unmigrated)
    one_line(rc, err, "cgr migrate", "never migrated")


@pytest.mark.parametrize(("argv", "prefix"), [
    (["migrate"], "cgr migrate"),
    (["migrate", "--check"], "cgr migrate"),
    (["load", str(TARIFFPLANS / "tutorial"), "--dry-run"], "cgr load"),
    (["opensips", "drouting-sync"], "cgr opensips drouting-sync"),
])
def test_unreachable_stordb(monkeypatch, capsys, argv, prefix) -> None:
    rc, err = run(monkeypatch, capsys, UNREACHABLE_PG, *argv)
    one_line(rc, err, prefix, "127.0.0.1:1/cgrpy_nowhere unreachable", "Connection refused")


@pytest.mark.parametrize(("argv", "prefix", "service"), [
    (["account", "get", "1001"], "cgr account get", "RALs"),
    (["account", "verify"], "cgr account verify", "RALs"),
    (["account", "verify", "1001", "--json"], "cgr account verify", "RALs"),
    (["cdrs", "list"], "cgr cdrs list", "cdre"),
    (["cdrs", "count", "--json"], "cgr cdrs count", "cdre"),
    (["cdrs", "export", "--path", "/tmp"], "cgr cdrs export", "cdre"),
    (["balance", "add", "1001", "--value", "1"], "cgr balance add", "RALs"),
    (["cost", "--subject", "1001", "--destination", "1002", "--usage", "60s"], "cgr cost", "RALs"),
    (["sessions", "list"], "cgr sessions", "SM"),
    (["profiles", "ids", "Attribute"], "cgr profiles", "RALs"),
    (["attributes", "ids"], "cgr attributes", "attributes"),
    (["stats", "show"], "cgr stats", "stats"),
    (["health", "--service", "rals"], "rals", ""),
])
def test_service_not_running(monkeypatch, capsys, sqlite_url, argv, prefix, service) -> None:
    rc, err = run(monkeypatch, capsys, sqlite_url, *argv)
    if argv[0] == "health":  # health prints its one line on stdout (Docker HEALTHCHECK)
        assert rc != 0
        return
    one_line(rc, err, prefix, service, CLOSED)


def test_the_real_binary_prints_no_traceback(pg_databases) -> None:
    """The reported case, as an operator runs it: a process, a database never migrated."""
    url = pg_databases.create()
    env = {**os.environ, "CGRPY_STORDB_URL": url}
    out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "opensips", "drouting-sync"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "never migrated" in out.stderr, out.stderr
