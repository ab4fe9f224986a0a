"""ThresholdEngine: the tutorial examples, MinHits/MaxHits/MinSleep, actions, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cgrpy.errors import NotFoundError
from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.tariffplan.csvread import read_folder
from services.thresholds.engine import ThresholdEngine
from services.thresholds.store import ThresholdStore
from tests.conftest import TARIFFPLANS
from tests.stats.fake_filters import FakeFilters

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
COLS = ("Tenant", "Id", "FilterIDs", "ActivationInterval", "MaxHits", "MinHits", "MinSleep",
        "Blocker", "Weight", "ActionIDs", "Async")


def row(*cells: str) -> dict[str, str]:
    return dict(zip(COLS, cells, strict=True))


class Actions:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str | None, list[str]]] = []
        self.fail = fail

    def __call__(self, tenant: str, account: str | None, action_ids: list[str]) -> None:
        self.calls.append((tenant, account, action_ids))
        if self.fail:
            raise RuntimeError("SERVER_ERROR: unknown action set")


def ev(eid: str = "e", **fields: object) -> CGREvent:
    return CGREvent("cgrates.org", eid, None, dict(fields))


def inline_spawn(fn):  # noqa: ANN001, ANN201 - run "async" actions at once in tests
    fn()


def test_th3_max_hits_three_then_not_found() -> None:
    eng = ThresholdEngine.from_rows(
        {"Thresholds": [row("cgrates.org", "TH3", "", "", "3", "", "", "", "", "", "")]},
        FakeFilters().passes, Actions())
    for hits in (1, 2):
        assert eng.process_event(ev(Account="1002"), now=T0).threshold_ids == ["TH3"]
        assert eng.get_threshold("cgrates.org", "TH3").hits == hits
    assert eng.process_event(ev(Account="1002"), now=T0).threshold_ids == ["TH3"]
    with pytest.raises(NotFoundError):
        eng.get_threshold("cgrates.org", "TH3")
    with pytest.raises(NotFoundError):  # nothing else matches
        eng.process_event(ev(Account="1002"), now=T0)


def tutorial(actions: Actions, **kw: object) -> ThresholdEngine:
    rows = read_folder(TARIFFPLANS / "tutorial")
    return ThresholdEngine.from_rows(rows, FakeFilters(rows["Filters"]).passes, actions,
                                     spawn=inline_spawn, **kw)


def test_tutorial_thd_acnt_1001_fires_once_then_gone() -> None:
    acts = Actions()
    eng = tutorial(acts)
    r = eng.process_event(ev(Account="1001"), now=T0)
    assert (r.threshold_ids, r.fired) == (["THD_ACNT_1001"], ["THD_ACNT_1001"])
    assert acts.calls == [("cgrates.org", "1001", ["ACT_LOG_WARNING"])]
    with pytest.raises(NotFoundError):
        eng.get_threshold("cgrates.org", "THD_ACNT_1001")
    with pytest.raises(NotFoundError):
        eng.process_event(ev(Account="1001"), now=T0 + timedelta(seconds=5))
    assert len(acts.calls) == 1
    assert eng.get_threshold_ids("cgrates.org") == ["THD_ACNT_1002"]


def test_tutorial_thd_acnt_1002_min_sleep() -> None:
    acts = Actions()
    eng = tutorial(acts)
    fired = []
    for ms in (0, 500, 999, 1000, 1500, 2500):
        r = eng.process_event(ev(Account="1002"), now=T0 + timedelta(milliseconds=ms))
        fired.append(bool(r.fired))
    assert fired == [True, False, False, True, False, True]
    t = eng.get_threshold("cgrates.org", "THD_ACNT_1002")
    assert t.hits == 6  # every event counts, also while snoozed
    assert t.snooze == T0 + timedelta(milliseconds=3500)
    assert len(acts.calls) == 3


def test_min_hits_and_max_hits_window() -> None:
    acts = Actions()
    eng = ThresholdEngine.from_rows(
        {"Thresholds": [row("cgrates.org", "TH", "", "", "4", "2", "", "", "", "ACT", "false")]},
        FakeFilters().passes, acts)
    fired = [bool(eng.process_event(ev(), now=T0).fired) for _ in range(4)]
    assert fired == [False, True, True, True]
    with pytest.raises(NotFoundError):
        eng.get_threshold("cgrates.org", "TH")


def test_max_hits_zero_never_fires_never_removed() -> None:
    acts = Actions()
    eng = ThresholdEngine.from_rows(
        {"Thresholds": [row("cgrates.org", "TH", "", "", "0", "", "", "", "", "ACT", "")]},
        FakeFilters().passes, acts)
    for _ in range(3):
        eng.process_event(ev(), now=T0)
    assert eng.get_threshold("cgrates.org", "TH").hits == 3 and acts.calls == []


def test_sync_action_failure_is_partial_async_failure_is_not() -> None:
    rows = {"Thresholds": [
        row("cgrates.org", "SYNC", "", "", "-1", "", "", "", "20", "ACT", "false"),
        row("cgrates.org", "ASYNC", "", "", "-1", "", "", "", "10", "ACT", "true"),
    ]}
    acts = Actions(fail=True)
    eng = ThresholdEngine.from_rows(rows, FakeFilters().passes, acts, spawn=inline_spawn)
    r = eng.process_event(ev(), now=T0)
    assert r.threshold_ids == ["SYNC", "ASYNC"]  # weight order
    assert r.partially_executed and list(r.errors) == ["SYNC"]
    assert eng.get_threshold("cgrates.org", "SYNC").hits == 1
    assert acts.calls == [("cgrates.org", None, ["ACT"])] * 2  # no Account -> account-less


def test_blocker_cuts_and_removed_threshold_does_not_abort_others() -> None:
    rows = {"Thresholds": [
        row("cgrates.org", "ONCE", "", "", "1", "", "", "false", "30", "", ""),
        row("cgrates.org", "BLOCK", "", "", "-1", "", "", "true", "20", "", ""),
        row("cgrates.org", "LOW", "", "", "-1", "", "", "false", "10", "", ""),
    ]}
    eng = ThresholdEngine.from_rows(rows, FakeFilters().passes, Actions())
    assert eng.process_event(ev(), now=T0).threshold_ids == ["ONCE", "BLOCK"]
    # v0.10 would now fail with NOT_FOUND because ONCE's state is gone
    assert eng.process_event(ev(), now=T0).threshold_ids == ["BLOCK"]
    assert eng.process_event(ev(), threshold_ids=["LOW", "ONCE"], now=T0).threshold_ids == ["LOW"]
    eng.reset("cgrates.org", "ONCE")
    assert eng.get_threshold("cgrates.org", "ONCE").hits == 0


def test_state_survives_restart(db_url: str) -> None:
    upgrade(db_url)
    db = make_engine(db_url)
    try:
        acts = Actions()
        eng = tutorial(acts, store=ThresholdStore(db))
        eng.process_event(ev(Account="1001"), now=T0)
        eng.process_event(ev(Account="1002"), now=T0)
        eng.process_event(ev(Account="1002"), now=T0 + timedelta(milliseconds=200))
        again = tutorial(acts, store=ThresholdStore(db))
        with pytest.raises(NotFoundError):  # removal at MaxHits persisted
            again.get_threshold("cgrates.org", "THD_ACNT_1001")
        t = again.get_threshold("cgrates.org", "THD_ACNT_1002")
        assert (t.hits, t.snooze) == (2, T0 + timedelta(seconds=1))
        r = again.process_event(ev(Account="1002"), now=T0 + timedelta(milliseconds=900))
        assert r.fired == []  # still snoozed after the restart
    finally:
        db.dispose()
