"""`cgr migrate --wait-loaded`: a container's init step that holds a service back until the
StorDB schema is at head and the tariff plan is loaded (deploy/kubernetes/)."""

from __future__ import annotations

import threading
import time

import pytest

from cgrpy.cli import migrate as migrate_cli
from cgrpy.cli.main import main
from cgrpy.storage.migrate import upgrade
from tests.harness import load_tariffplan

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/cgrpy_nowhere"


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(migrate_cli, "WAIT_POLL_S", 0.1)


def wait(capsys, db_url: str, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["migrate", "--wait-loaded", "--db-url", db_url, *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_gives_up_naming_what_is_missing(capsys, db_url):
    rc, _, err = wait(capsys, db_url, "--timeout", "0.3")
    assert rc == 1 and "schema not at head" in err and "gave up after" in err
    upgrade(db_url)
    rc, _, err = wait(capsys, db_url, "--timeout", "0.3", "--tpid", "mine")
    assert rc == 1 and "tariff plan 'mine' not loaded yet" in err and "Traceback" not in err


def test_returns_once_the_plan_is_loaded(capsys, db_url):
    loader = threading.Timer(0.5, load_tariffplan, args=(db_url, "tutorial"))
    loader.start()
    t0 = time.monotonic()
    try:
        rc, out, err = wait(capsys, db_url, "--timeout", "60")
    finally:
        loader.join()
    assert rc == 0, err
    assert "tariff plan 'cgrpy' loaded" in out and time.monotonic() - t0 < 30
    # it changed nothing itself: a second wait on the loaded plan returns at once
    assert wait(capsys, db_url, "--timeout", "0")[0] == 0


def test_unreachable_stordb_is_waited_for_then_reported(capsys):
    rc, _, err = wait(capsys, UNREACHABLE_PG, "--timeout", "0.3")
    assert rc == 1 and "unreachable" in err and "Traceback" not in err


def test_wait_and_check_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["migrate", "--wait-loaded", "--check"])
