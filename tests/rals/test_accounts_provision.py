"""Provisioning from the repo's tariff plans: accounts, *asap plans exactly once, triggers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.actions import execute_actions, parse_actions
from services.rals.accounts.model import MONETARY, Account, AccountError, Balance
from services.rals.accounts.provision import CompiledActions, provision
from services.rals.accounts.store import AccountStore
from tests.conftest import TARIFFPLANS

NOW = datetime(2024, 2, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> AccountStore:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    return AccountStore(engine)


def test_tutorial_gives_1001_1003_ten_monetary_once(store: AccountStore) -> None:
    rows = read_folder(TARIFFPLANS / "tutorial")
    report = provision(store, rows, "tutorial", now=NOW)
    assert report.accounts == ["cgrates.org:1001", "cgrates.org:1002", "cgrates.org:1003"]
    for name in ("1001", "1002", "1003"):
        acc = store.get_account("cgrates.org", name)
        assert [(b.type, b.id, b.value, b.weight, b.expiry) for b in acc.balances] == [
            (MONETARY, "test", Decimal(10), Decimal(10), None)
        ]
        assert store.verify("cgrates.org", name) == {}
    # spend some, then reload: the *asap plan must not run again
    store.apply("cgrates.org", "1001", _spend, request_id="spend", reason="debit")
    again = provision(store, rows, "tutorial", now=NOW)
    assert again.applied == [] and len(again.skipped) == 3
    assert store.get_account("cgrates.org", "1001").balances[0].value == Decimal("9.5")
    # a different tpid is another tariff plan: its plan runs (topup_reset back to 10)
    provision(store, rows, "tutorial2", now=NOW)
    assert store.get_account("cgrates.org", "1001").balances[0].value == Decimal(10)
    assert store.verify("cgrates.org", "1001") == {}


def _spend(acc: Account) -> dict:
    acc.balances[0].value -= Decimal("0.5")
    return {}


def test_oldtutorial_plan_1001(store: AccountStore) -> None:
    provision(store, read_folder(TARIFFPLANS / "oldtutorial"), "old", now=NOW)
    acc = store.get_account("cgrates.org", "1001")
    got = sorted((b.type, b.value, b.weight, tuple(sorted(b.destination_ids)), b.rating_subject,
                  tuple(b.shared_groups)) for b in acc.balances)
    assert got == [
        ("*data", Decimal(102400), Decimal(10), (), "", ()),
        (MONETARY, Decimal(5), Decimal(10), (), "", ("SHARED_A",)),
        (MONETARY, Decimal(5), Decimal(20), (), "", ()),
        ("*voice", Decimal(90 * SECOND), Decimal(20), ("DST_1002",), "SPECIAL_1002", ()),
        ("*voice", Decimal(120 * SECOND), Decimal(20), ("DST_1003",), "", ()),
    ]
    assert [t.threshold_type for t in acc.triggers] == [
        "*min_balance", "*max_event_counter", "*max_balance", "*max_balance"
    ]
    acc2 = store.get_account("cgrates.org", "1002")
    assert [(b.type, b.value) for b in acc2.balances] == [(MONETARY, Decimal(10))]


def test_testtp_and_engine_libtest_provision(store: AccountStore) -> None:
    report = provision(store, read_folder(TARIFFPLANS / "testtp"), "testtp", now=NOW)
    acc = store.get_account("cgrates.org", "1001")
    # PREPAID_10 and BONUS_3 have the same balance filter: BONUS_3 tops up the same balance
    assert [b.value for b in acc.balances] == [Decimal(13)]
    assert store.get_account("cgrates.org", "1010").allow_negative
    voice = store.get_account("cgrates.org", "1011").balances[0]
    assert voice.value == Decimal(50000)  # bare number = ns
    assert ("cgrates.org:1009", "TEST_EXE", "ALWAYS") in report.scheduled
    provision(store, read_folder(TARIFFPLANS / "engine_libtest"), "lib", now=NOW)
    alodis = store.get_account("cgrates.org", "alodis")
    assert alodis.allow_negative and alodis.disabled
    blk = {b.id: b for b in store.get_account("cgrates.org", "block").balances}
    assert blk["bblocker"].blocker and blk["bblocker"].value == 1
    assert blk["bfree"].value == 20
    expo = store.get_account("cgrates.org", "expo").balances[0]
    assert expo.expiry == datetime(2024, 3, 10, 12, 0, tzinfo=UTC)  # *monthly from NOW


def test_actions_unit() -> None:
    rows = [
        {"ActionsId": "A", "Action": "*topup", "BalanceType": "*monetary", "BalanceId": "b",
         "Units": "5", "Weight": "20", "ExpiryTime": "*unlimited"},
        {"ActionsId": "A", "Action": "*debit", "BalanceType": "*monetary", "BalanceId": "b",
         "Units": "1.5", "Weight": "10", "ExpiryTime": "*unlimited"},
        {"ActionsId": "A", "Action": "*cdrlog", "Weight": "5"},
        {"ActionsId": "B", "Action": "*disable_account"},
        {"ActionsId": "B", "Action": "*allow_negative"},
        {"ActionsId": "C", "Action": "*cgr_rpc",
         "ExtraParameters": '{"Address":"127.0.0.1:2013","Transport":"*gob","Method":"A.B"}'},
        {"ActionsId": "D", "Action": "*set_balance", "BalanceType": "*monetary",
         "BalanceId": "b", "Units": "7"},
        {"ActionsId": "E", "Action": "*remove_balance", "BalanceType": "*monetary",
         "BalanceId": "zzz"},
        {"ActionsId": "F", "Action": "*debit", "BalanceType": "*monetary", "BalanceId": "d",
         "Units": '{"Method":"*incremental","Params":{"Units":29,"Interval":"month",'
                  '"Increment":"day"}}'},
    ]
    sets = parse_actions(rows)
    acc = Account("cgrates.org", "x")
    events = execute_actions(acc, sets["A"], now=NOW)
    assert acc.balances[0].value == Decimal("3.5")
    assert [e.data["RunID"] for e in events] == ["*topup", "*debit"]
    assert events[1].data["Cost"] == Decimal("1.5")
    execute_actions(acc, sets["B"], now=NOW)
    assert acc.disabled and acc.allow_negative
    with pytest.raises(AccountError, match=r"INVALID_ARGUMENT.*ExtraParameters.Transport: \*gob"):
        execute_actions(acc, sets["C"], now=NOW)  # v0.10-valid, not runnable here: fails when run
    with pytest.raises(AccountError, match="INVALID_ARGUMENT.*ExtraParameters.Method"):
        parse_actions([{"ActionsId": "X", "Action": "*cgr_rpc", "ExtraParameters": "{}"}])
    with pytest.raises(AccountError, match="UNSUPPORTED_ACTION"):
        execute_actions(acc, parse_actions([{"ActionsId": "M", "Action": "*mail_async"}])["M"], now=NOW)
    execute_actions(acc, sets["D"], now=NOW)
    assert acc.balances[0].value == Decimal(7)
    with pytest.raises(AccountError, match="NOT_FOUND"):
        execute_actions(acc, sets["E"], now=NOW)
    execute_actions(acc, sets["F"], now=NOW)  # February 2024 has 29 days
    assert acc.balances[1].value == Decimal(-1)


def test_min_balance_trigger_fires_once() -> None:
    rows = read_folder(TARIFFPLANS / "oldtutorial")
    compiled = CompiledActions.from_rows(rows)
    acc = Account("cgrates.org", "1002", [Balance(type=MONETARY, id="m", value=Decimal("1"))])
    acc.triggers = [t for t in compiled.triggers["STANDARD_TRIGGERS"]]
    from services.rals.accounts.triggers import check_triggers

    def run(a: Account, aid: str) -> list:
        return compiled.run(a, aid, NOW)

    events = check_triggers(acc, changed={acc.balances[0].uuid}, now=NOW, run_actions=run)
    assert [e.kind for e in events] == ["*log"]
    assert [t.executed for t in acc.triggers] == [True, False, False, False]
    assert check_triggers(acc, changed={acc.balances[0].uuid}, now=NOW, run_actions=run) == []
