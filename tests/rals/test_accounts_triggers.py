"""Action triggers around balance changes (issue 17: point 5), on SQLite and Postgres.

The tutorial plan plus one trigger group: ``*min_balance`` 9.5 on the monetary balances, whose
action set tops up 0.1 — not enough to lift the balance over the threshold, so a trigger that
re-checks itself inside its own run fires again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.model import MONETARY, Account, Balance
from services.rals.accounts.provision import CompiledActions
from services.rals.accounts.service import AccountService
from services.rals.rating import CallDescriptor
from tests.conftest import TARIFFPLANS

T0 = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)
TOPUP = Decimal("0.1")


def _row(file: str, **cells: str) -> dict[str, str]:
    return {c: cells.get(c, "") for c in FILE_COLUMNS[file]}


def plan(*, recurrent: bool = False) -> TariffPlanRows:
    rows = read_folder(TARIFFPLANS / "tutorial")
    rows["Actions"] = rows.get("Actions", []) + [
        _row("Actions", ActionsId="ACT_LOW_TOPUP", Action="*topup", BalanceId="test",
             BalanceType=MONETARY, Units=str(TOPUP), ExpiryTime="*unlimited", Weight="10"),
        _row("Actions", ActionsId="ACT_LOW_TOPUP", Action="*log", Weight="5"),
    ]
    rows["ActionTriggers"] = rows.get("ActionTriggers", []) + [
        _row("ActionTriggers", Tag="TRG_LOW", UniqueId="low", ThresholdType="*min_balance",
             ThresholdValue="9.5", Recurrent="true" if recurrent else "false",
             BalanceType=MONETARY, ActionsId="ACT_LOW_TOPUP", Weight="10"),
    ]
    rows["AccountActions"] = [
        {**r, "ActionTriggersId": "TRG_LOW"} if r["Account"] == "1001" else r
        for r in rows["AccountActions"]
    ]
    return rows


def service(db_url: str, rows: TariffPlanRows) -> AccountService:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    s = AccountService(engine, rows, tpid="tutorial")
    s.provision()
    return s


@pytest.fixture
def svc(db_url: str) -> AccountService:
    return service(db_url, plan())


def cd(seconds: int = 85) -> CallDescriptor:
    return CallDescriptor(account="1001", destination="1002", time_start=T0, usage_ns=seconds * SECOND)


def balance_value(svc: AccountService) -> Decimal:
    return svc.get_account("cgrates.org", "1001").balances[0].value


def low_trigger(svc: AccountService) -> tuple[bool, datetime | None]:
    (t,) = svc.get_account("cgrates.org", "1001").triggers
    return t.executed, t.last_execution


# --- point 5: a one-shot trigger fires once until reset --------------------------------------------


def test_one_shot_min_balance_tops_up_once_per_debit_path(svc: AccountService) -> None:
    assert balance_value(svc) == Decimal(10)
    out = svc.debit(cd(), "d1")  # 10 - 0.64175 = 9.35825 <= 9.5: fires, +0.1 (still <= 9.5)
    assert [e["kind"] for e in out.events] == ["*log"]  # its action set ran once
    assert balance_value(svc) == Decimal("9.35825") + TOPUP
    assert low_trigger(svc)[0] is True
    out = svc.debit(cd(), "d2")  # still under 9.5, but executed: one-shot
    assert out.events == [] and balance_value(svc) == Decimal("9.35825") + TOPUP - Decimal("0.64175")
    # reset -> armed again -> fires once more
    svc.set_action_triggers("cgrates.org", "1001", {"Executed": False}, unique_id="low")
    out = svc.debit(cd(), "d3")
    assert [e["kind"] for e in out.events] == ["*log"]
    assert balance_value(svc) == Decimal(10) - 3 * Decimal("0.64175") + 2 * TOPUP
    assert svc.verify("cgrates.org", "1001") == {}


def test_one_shot_trigger_inside_an_action_run_fires_once() -> None:
    """The path of the report: an action set (here run like an *asap plan) changes a balance,
    the trigger fires and its *topup re-checks the triggers (CompiledActions.run)."""
    rows = plan()
    rows["Actions"].append(_row("Actions", ActionsId="ACT_SET_1", Action="*topup_reset",
                                BalanceId="test", BalanceType=MONETARY, Units="1",
                                ExpiryTime="*unlimited", Weight="10"))
    compiled = CompiledActions.from_rows(rows)
    acc = Account("cgrates.org", "1001", [Balance(type=MONETARY, id="test", value=Decimal(10))])
    acc.triggers = list(compiled.triggers["TRG_LOW"])
    events = compiled.run(acc, "ACT_SET_1", T0)
    assert [e.kind for e in events] == ["*log"]
    assert acc.balances[0].value == 1 + TOPUP  # before the fix: 1 + 0.1 x 3 (nested re-fires)
    assert acc.triggers[0].executed and acc.triggers[0].last_execution == T0


def test_recurrent_trigger_fires_once_per_change_not_inside_its_own_run(db_url: str) -> None:
    svc = service(db_url, plan(recurrent=True))
    out = svc.debit(cd(), "d1")
    assert [e["kind"] for e in out.events] == ["*log"]
    assert balance_value(svc) == Decimal("9.35825") + TOPUP
    assert low_trigger(svc)[0] is False  # recurrent: armed again after its run
    out = svc.debit(cd(), "d2")  # recurrent: fires again, once
    assert [e["kind"] for e in out.events] == ["*log"]
    assert balance_value(svc) == Decimal(10) - 2 * Decimal("0.64175") + 2 * TOPUP

