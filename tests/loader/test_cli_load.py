"""`cgr load` through cgrpy.cli.main.main: exit codes, summary, --json, --dry-run, defaults."""

from __future__ import annotations

import json

from cgrpy.cli import load as load_cli
from cgrpy.cli.main import main
from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import list_tpids, read_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS
from tests.loader.helpers import copy_plan, dump, set_line


def test_load_summary_and_notify(db_url, capsys, monkeypatch):
    notified: list[str] = []
    monkeypatch.setattr(load_cli, "notify_services", notified.append)
    monkeypatch.setenv("CGRPY_TPID", "from_env")
    rc = main(["load", str(TARIFFPLANS / "tutorial"), "--db-url", db_url])
    out = capsys.readouterr().out
    assert rc == 0
    assert "tariff plan 'from_env' loaded" in out
    assert "Attributes.csv" in out and out.count("\n") >= 17
    assert [line.split() for line in out.splitlines() if "TOTAL" in line] == [["TOTAL", "82"]]
    assert notified == ["from_env"]
    engine = make_engine(db_url)
    assert read_tariffplan(engine, "from_env") == read_folder(TARIFFPLANS / "tutorial")
    engine.dispose()


def test_default_tpid_and_json(sqlite_url, capsys, monkeypatch):
    monkeypatch.delenv("CGRPY_TPID", raising=False)
    rc = main(["load", str(TARIFFPLANS / "testtp"), "--json", "--db-url", sqlite_url])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert summary["tpid"] == "cgrpy" and summary["ok"] and summary["written"]
    assert summary["rows"]["Rates"] == 5 and summary["total_rows"] == 110
    # 2 lazy references, and testtp's three *cgr_rpc over *gob (they fail when they run)
    assert len(summary["warnings"]) == 5
    assert sum("*cgr_rpc" in str(w) for w in summary["warnings"]) == 3


def test_bad_folder_exit_1_nothing_written(db_url, tmp_path, capsys):
    assert main(["load", str(TARIFFPLANS / "tutorial"), "--tpid", "t", "--db-url", db_url]) == 0
    capsys.readouterr()
    engine = make_engine(db_url)
    before = dump(engine)
    folder = copy_plan(tmp_path)
    set_line(folder, "Rates.csv", 3, "RT_10CNT,0,0.05x,60s,1s,60s")
    set_line(folder, "Destinations.csv", 2, "DST_1002,")
    rc = main(["load", str(folder), "--tpid", "t", "--db-url", db_url])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1
    assert 'Destinations.csv:2: column Prefix: must not be empty (got "")' in err
    assert 'Rates.csv:3: column Rate: not a number (got "0.05x")' in err
    assert err[-1] == "cgr load: 2 problem(s); nothing was written"
    assert dump(engine) == before
    engine.dispose()


def test_dry_run_and_usage_errors(sqlite_url, tmp_path, capsys):
    assert main(["load", str(TARIFFPLANS / "tutorial"), "--dry-run", "--db-url", sqlite_url]) == 0
    assert "dry run, nothing written" in capsys.readouterr().out
    engine = make_engine(sqlite_url)
    assert list_tpids(engine) == []
    engine.dispose()
    assert main(["load", str(tmp_path / "missing"), "--db-url", sqlite_url]) == 2
    assert "not a folder" in capsys.readouterr().err
    try:
        main(["load"])
    except SystemExit as exc:  # argparse usage error
        assert exc.code == 2


def test_migrate_cli(sqlite_url, capsys):
    assert main(["migrate", "--check", "--db-url", sqlite_url]) == 1
    assert main(["migrate", "--db-url", sqlite_url]) == 0
    assert main(["migrate", "--check", "--db-url", sqlite_url]) == 0
    assert "no drift" in capsys.readouterr().out
