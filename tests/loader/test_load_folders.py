"""The four shared CGRateS folders load on SQLite and Postgres with the exact row counts."""

from __future__ import annotations

import pytest

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import list_tpids, read_tariffplan, tariffplan_info
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.tariffplan.loader import load_folder
from tests.conftest import TARIFFPLANS
from tests.loader.helpers import count_rows, dump

FOLDERS = ["tutorial", "oldtutorial", "testtp", "engine_libtest"]

# Hand-checked totals (wc -l minus headers/blank lines), so a counting bug in both the loader
# and count_rows() cannot hide.
TUTORIAL_COUNTS = {
    "Destinations": 4, "Rates": 9, "DestinationRates": 5, "RatingPlans": 6, "RatingProfiles": 4,
    "Actions": 2, "ActionPlans": 1, "AccountActions": 3, "Resources": 1, "Stats": 2,
    "Thresholds": 2, "Filters": 12, "Suppliers": 6, "Attributes": 23, "Chargers": 2,
}


@pytest.fixture
def engine(db_url):
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_all_shared_folders_load(engine):
    for name in FOLDERS:
        folder = TARIFFPLANS / name
        result = load_folder(folder, engine=engine, tpid=name)
        assert result.ok, result.problems
        assert result.written
        assert result.counts == count_rows(folder), name
        back = read_tariffplan(engine, name)
        assert back == read_folder(folder), name  # cell-exact, in line order
        assert tariffplan_info(engine, name)["row_counts"] == result.counts
    assert list_tpids(engine) == sorted(FOLDERS)


def test_tutorial_counts(engine):
    result = load_folder(TARIFFPLANS / "tutorial", engine=engine, tpid="t")
    assert {k: v for k, v in result.counts.items() if v} == TUTORIAL_COUNTS
    assert result.total_rows == 82


def test_lazy_references_are_warnings(engine):
    """engine_libtest names actions/attributes CGRateS only resolves at execution time."""
    result = load_folder(TARIFFPLANS / "engine_libtest", engine=engine, tpid="lib")
    assert result.ok and result.written
    assert "ActionTriggers.csv:1: column ActionsId: unknown Actions ID 'SOME_1' (got \"SOME_1\")" in [
        str(w) for w in result.warnings
    ]


def test_reload_same_tpid_replaces(engine, tmp_path):
    load_folder(TARIFFPLANS / "tutorial", engine=engine, tpid="x")
    load_folder(TARIFFPLANS / "testtp", engine=engine, tpid="keep")
    keep_before = read_tariffplan(engine, "keep")
    result = load_folder(TARIFFPLANS / "oldtutorial", engine=engine, tpid="x")
    assert result.ok
    assert read_tariffplan(engine, "x") == read_folder(TARIFFPLANS / "oldtutorial")
    assert read_tariffplan(engine, "keep") == keep_before
    assert tariffplan_info(engine, "x")["source"].endswith("oldtutorial")


def test_dry_run_writes_nothing(engine):
    before = dump(engine)
    result = load_folder(TARIFFPLANS / "tutorial", engine=engine, tpid="x", dry_run=True)
    assert result.ok and not result.written
    assert result.counts["Attributes"] == 23
    assert dump(engine) == before


def test_progress_reports_every_file(engine):
    seen: dict[str, int] = {}
    load_folder(
        TARIFFPLANS / "tutorial", engine=engine, tpid="x",
        progress=lambda phase, f, done, total: seen.__setitem__(f, done),
    )
    assert seen["Attributes"] == 23 and seen["Rates"] == 9
