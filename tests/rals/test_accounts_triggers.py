"""Action triggers around balance changes, on SQLite and Postgres.

The tutorial plan plus one trigger group: ``*min_balance`` 9.5 on the monetary balances, whose
action set tops up 0.1 — not enough to lift the balance over the threshold, so a trigger that
re-checks itself inside its own run fires again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.event import loads_exact
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.model import MONETARY, Account, Balance
from services.rals.accounts.provision import CompiledActions
from services.rals.accounts.service import AccountService
from services.rals.rating import CallDescriptor
from services.rals.server import RalsServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve

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


# --- point 7: triggers after every balance change, admin ones included -------------------------


def test_admin_debit_balance_fires_triggers(svc: AccountService) -> None:
    """APIerSv1.DebitBalance = add_balance with a negative value."""
    out = svc.add_balance("cgrates.org", "1001", MONETARY, Decimal("-0.6"), balance_id="test")
    assert [e.kind for e in out.events] == ["*log"]  # 9.4 <= 9.5: fired once, +0.1
    assert out.balance.value == Decimal("9.5") and low_trigger(svc)[0] is True
    assert balance_value(svc) == Decimal("9.5")
    assert svc.verify("cgrates.org", "1001") == {}


def test_admin_set_and_add_balance_fire_triggers(svc: AccountService) -> None:
    out = svc.add_balance("cgrates.org", "1001", MONETARY, Decimal("-0.1"), balance_id="test")
    assert out.events == [] and out.balance.value == Decimal("9.9")  # above 9.5: nothing
    out = svc.set_balance("cgrates.org", "1001", MONETARY, Decimal(9), balance_id="test")
    assert [e.kind for e in out.events] == ["*log"] and out.balance.value == Decimal("9.1")
    svc.set_action_triggers("cgrates.org", "1001", {"Executed": False}, unique_id="low")
    # *topup_reset-style AddBalance (Overwrite) is a balance change too
    out = svc.add_balance("cgrates.org", "1001", MONETARY, Decimal(5), balance_id="test",
                          overwrite=True)
    assert [e.kind for e in out.events] == ["*log"] and out.balance.value == Decimal("5.1")
    # a balance the trigger's filter does not match (type *voice) leaves it alone
    svc.set_action_triggers("cgrates.org", "1001", {"Executed": False}, unique_id="low")
    out = svc.add_balance("cgrates.org", "1001", "*voice", Decimal(1), balance_id="v")
    assert out.events == []
    assert svc.verify("cgrates.org", "1001") == {}


def test_refund_fires_triggers(svc: AccountService) -> None:
    svc.set_action_triggers("cgrates.org", "1001", {"Executed": True}, unique_id="low")
    svc.debit(cd(seconds=120), "d1")  # 10 - 0.7002 = 9.2998, trigger held
    svc.set_action_triggers("cgrates.org", "1001", {"Executed": False}, unique_id="low")
    r = svc.refund("r1", "cgrates.org", "1001", debit_request_id="d1", keep_usage_ns=85 * SECOND)
    assert [e.kind for e in r.events] == ["*log"]  # 9.35825 <= 9.5: fired by the refund
    assert balance_value(svc) == Decimal("9.35825") + TOPUP
    assert svc.verify("cgrates.org", "1001") == {}


async def test_grpc_debit_balance_and_set_balance_fire_triggers(pg_url: str) -> None:
    """Through the RALs gRPC server (what APIerSv1.DebitBalance/AddBalance/SetBalance call), on
    testtp's STANDARD_TRIGGERS: *min_balance 2 and *max_balance 20 on the monetary balances."""
    async with serve(RalsServer, pg_url, tariffplan="testtp") as rals:
        stub = rals_pb2_grpc.RalsServiceStub(rals.channel)

        async def executed() -> list[bool]:
            trigs = loads_exact((await stub.GetAccountActionTriggers(
                rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"))).json)
            return [t["Executed"] for t in trigs]

        def req(value: str, **kw: bool) -> rals_pb2.SetBalanceRequest:
            return rals_pb2.SetBalanceRequest(tenant="cgrates.org", account="1001", balance_type=MONETARY,
                                              value=value, balance=rals_pb2.Balance(id="main"), **kw)

        await stub.SetBalance(req("10"))
        assert await executed() == [False] * 4
        acc = await stub.AddBalance(req("-8.5"))  # DebitBalance 8.5: main = 1.5 <= 2
        assert [b.value for b in acc.balances if b.id == "main"] == ["1.5"]
        assert await executed() == [True, False, False, False]
        await stub.AddBalance(req("20"))  # 21.5 >= 20
        assert await executed() == [True, True, False, False]
