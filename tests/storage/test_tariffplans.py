"""StorDB tariff-plan storage: exact round trip, atomic replace, failure leaves the DB as it was."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.storage.models.tp import TP_TABLES
from cgrpy.storage.tariffplans import (
    delete_tariffplan,
    list_tpids,
    read_tariffplan,
    replace_tariffplan,
    tariffplan_info,
)
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS


@pytest.fixture
def engine(db_url):
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _odd_cells(tp):
    """Spellings a typed column alone could not give back."""
    tp = copy.deepcopy(tp)
    tp["Rates"].append(
        {"Id": "ODD", "ConnectFee": ".50", "Rate": "1e-2", "RateUnit": "60", "RateIncrement": "",
         "GroupIntervalStart": "-0"}
    )
    tp["AccountActions"].append(
        {"Tenant": "t", "Account": "a", "ActionPlanId": "", "ActionTriggersId": "",
         "AllowNegative": "TRUE", "Disabled": "0"}
    )
    stats = dict.fromkeys(tp["Stats"][0], "") | {"QueueLength": "007", "Weight": "0.0000001"}
    tp["Stats"].append(stats)
    return tp


def test_round_trip_exact(engine):
    tp = _odd_cells(read_folder(TARIFFPLANS / "tutorial"))
    counts = replace_tariffplan(engine, "tut", tp, source="tutorial")
    assert counts["Rates"] == len(tp["Rates"]) and counts["Timings"] == 0
    assert read_tariffplan(engine, "tut") == tp
    info = tariffplan_info(engine, "tut")
    assert info["source"] == "tutorial" and info["row_counts"]["Rates"] == len(tp["Rates"])
    assert list_tpids(engine) == ["tut"]


def test_rate_keeps_all_decimals(engine):
    """CGRateS's NUMERIC(10,4) would store 0.0017; we keep 0.00167."""
    tp = {"Rates": [{"Id": "R", "ConnectFee": "0.00001", "Rate": "0.001666667", "RateUnit": "1s",
                     "RateIncrement": "1s", "GroupIntervalStart": "0s"}]}
    replace_tariffplan(engine, "p", tp)
    with engine.connect() as conn:
        rate = conn.scalar(select(TP_TABLES["Rates"].c.rate))
    assert str(rate) == "0.001666667"


def test_replace_and_failure_is_atomic(engine):
    tut = read_folder(TARIFFPLANS / "tutorial")
    replace_tariffplan(engine, "x", tut)
    replace_tariffplan(engine, "other", read_folder(TARIFFPLANS / "testtp"))
    small = {"Destinations": [{"Id": "D", "Prefix": "1"}]}
    replace_tariffplan(engine, "x", small)
    back = read_tariffplan(engine, "x")
    assert back["Destinations"] == small["Destinations"] and back["Rates"] == []
    # a bad numeric cell in the middle of the load: nothing changes
    bad = copy.deepcopy(tut)
    bad["Rates"][1]["Rate"] = "abc"
    with pytest.raises(ValueError):
        replace_tariffplan(engine, "x", bad)
    assert read_tariffplan(engine, "x") == read_tariffplan(engine, "x") | {}
    assert read_tariffplan(engine, "x")["Destinations"] == small["Destinations"]
    assert delete_tariffplan(engine, "x") is True
    assert list_tpids(engine) == ["other"]
    assert delete_tariffplan(engine, "x") is False


def test_rating_profile_load_id_is_kept_beside_the_csv_cells(engine):
    """A rating profile's LoadId has no CSV column: stored in load_id, returned only with
    extras, a row without one gets the load's, and replace_rows keeps what each row names."""
    from cgrpy.storage.tariffplans import replace_rows

    tut = read_folder(TARIFFPLANS / "tutorial")
    replace_tariffplan(engine, "tut", tut, load_id="CSVLOAD")
    assert read_tariffplan(engine, "tut") == tut  # the CSV cells, exactly
    with_ids = read_tariffplan(engine, "tut", extras=True)["RatingProfiles"]
    assert {r["LoadId"] for r in with_ids} == {"CSVLOAD"}
    assert [{k: v for k, v in r.items() if k != "LoadId"} for r in with_ids] == tut["RatingProfiles"]
    row = {**tut["RatingProfiles"][0], "Subject": "portal1", "LoadId": "portal"}
    replace_rows(engine, "tut", [("RatingProfiles", {"Subject": "portal1"}, [row])])
    back = read_tariffplan(engine, "tut", extras=True)["RatingProfiles"]
    assert [r["LoadId"] for r in back if r["Subject"] == "portal1"] == ["portal"]
    assert sum(r["LoadId"] == "CSVLOAD" for r in back) == len(tut["RatingProfiles"])
    replace_tariffplan(engine, "copy", {"RatingProfiles": back})  # a merge keeps each row's
    assert read_tariffplan(engine, "copy", extras=True)["RatingProfiles"] == back
