"""Timed ActionPlans: next start times, queue order, exactly-once runs (injectable clock)."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND, parse_time, to_unix_nano
from services.rals.accounts.model import AccountError
from services.rals.accounts.service import AccountService
from services.rals.accounts.store import AccountStore
from services.rals.rating.timings import timing_from_row
from services.rals.scheduler import (
    BUILTIN_TIMINGS,
    ActionScheduler,
    ScheduledRun,
    next_start,
    request_id,
    timed_plans,
)
from services.rals.server import RalsServer
from tests.conftest import TARIFFPLANS
from tests.harness import serve

TESTTP = read_folder(TARIFFPLANS / "testtp")
OLDTUT = read_folder(TARIFFPLANS / "oldtutorial")


def ns(text: str) -> int:
    return to_unix_nano(parse_time(text))


def iso(at: int) -> str:
    from cgrpy.units import from_unix_nano

    d = from_unix_nano(at)
    assert d is not None
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeClock:
    def __init__(self, text: str) -> None:
        self.now = ns(text)

    def __call__(self) -> int:
        return self.now

    def set(self, text: str) -> None:
        self.now = ns(text)


def timing(tag: str, years: str = "*any", months: str = "*any", month_days: str = "*any",
           week_days: str = "*any", time: str = "00:00:00"):  # noqa: ANN201
    return timing_from_row({"Tag": tag, "Years": years, "Months": months,
                            "MonthDays": month_days, "WeekDays": week_days, "Time": time})


# --- next start times (pure) ---------------------------------------------------------------------


def test_next_start_daily_weekdays_and_strictly_after() -> None:
    always = timing_from_row(next(r for r in TESTTP["Timings"] if r["Tag"] == "ALWAYS"))
    assert iso(next_start(always, ns("2024-01-15T10:00:00Z"))) == "2024-01-16T00:00:00Z"
    # strictly after: at the instant itself, the next one is a day later
    assert iso(next_start(always, ns("2024-01-16T00:00:00Z"))) == "2024-01-17T00:00:00Z"
    peak = timing_from_row(next(r for r in OLDTUT["Timings"] if r["Tag"] == "PEAK"))
    # Friday 2024-01-19 09:00 -> Monday 08:00 (1;2;3;4;5 = Mon..Fri)
    assert iso(next_start(peak, ns("2024-01-19T09:00:00Z"))) == "2024-01-22T08:00:00Z"
    assert iso(next_start(peak, ns("2024-01-22T07:59:59Z"))) == "2024-01-22T08:00:00Z"
    weekend = timing_from_row(next(r for r in OLDTUT["Timings"] if r["Tag"] == "OFFPEAK_WEEKEND"))
    # 6;7: 7 is Sunday
    assert iso(next_start(weekend, ns("2024-01-20T00:00:00Z"))) == "2024-01-21T00:00:00Z"
    assert iso(next_start(weekend, ns("2024-01-21T00:00:00Z"))) == "2024-01-27T00:00:00Z"


def test_next_start_every_minute_hourly_monthly() -> None:
    t = ns("2024-01-31T23:58:30.5Z")
    assert iso(next_start(BUILTIN_TIMINGS["*every_minute"], t)) == "2024-01-31T23:59:00Z"
    assert iso(next_start(BUILTIN_TIMINGS["*every_minute"], ns("2024-01-31T23:59:00Z"))) == \
        "2024-02-01T00:00:00Z"
    assert iso(next_start(BUILTIN_TIMINGS["*hourly"], t)) == "2024-02-01T00:00:00Z"
    assert iso(next_start(BUILTIN_TIMINGS["*hourly"], ns("2024-02-01T00:00:00Z"))) == \
        "2024-02-01T01:00:00Z"
    assert iso(next_start(BUILTIN_TIMINGS["*monthly"], t)) == "2024-02-01T00:00:00Z"
    assert iso(next_start(BUILTIN_TIMINGS["*month_end"], t)) == "2024-02-29T00:00:00Z"  # leap
    assert iso(next_start(BUILTIN_TIMINGS["*yearly"], t)) == "2025-01-01T00:00:00Z"
    monthly_15 = timing("M15", month_days="15", time="12:30:00")
    assert iso(next_start(monthly_15, t)) == "2024-02-15T12:30:00Z"
    # every minute, but only on Mondays: Wed 31 Jan -> Mon 5 Feb 00:00
    mondays = timing("MON", week_days="1", time="*every_minute")
    assert iso(next_start(mondays, t)) == "2024-02-05T00:00:00Z"
    feb29 = timing("F29", months="2", month_days="29", time="06:00:00")
    assert iso(next_start(feb29, ns("2024-03-01T00:00:00Z"))) == "2028-02-29T06:00:00Z"


def test_next_start_never_again() -> None:
    assert next_start(timing("ASAPISH", time="*asap"), ns("2024-01-01T00:00:00Z")) is None
    past = timing("Y2012", years="2012", time="10:00:00")
    assert next_start(past, ns("2024-01-01T00:00:00Z")) is None
    future = timing("Y2030", years="2030", months="6", month_days="1", time="10:00:00")
    assert iso(next_start(future, ns("2024-01-01T00:00:00Z"))) == "2030-06-01T10:00:00Z"


# --- the plan -----------------------------------------------------------------------------------


def test_timed_plans_of_testtp() -> None:
    plans = timed_plans(TESTTP)
    assert sorted(plans) == ["TEST_DID", "TEST_EXE", "TEST_RPC"]  # ASAP ones belong to provision
    assert plans["TEST_EXE"].accounts == (("cgrates.org", "1009"),)
    assert [e.actions_id for e in plans["TEST_RPC"].entries] == ["RPC", "RPC_DEST", "RPC_CDRSTATS"]
    assert timed_plans(OLDTUT) == {}  # all *asap
    bad = copy.deepcopy(TESTTP)
    bad["ActionPlans"].append({"Id": "X", "ActionsId": "TOPUP_EXE", "TimingId": "NOPE",
                               "Weight": "10"})
    with pytest.raises(AccountError, match="ActionPlans.csv X: unknown TimingId 'NOPE'"):
        timed_plans(bad)


def with_plans(rows: dict, timings: list[dict], plans: list[dict], attach: dict[str, str]) -> dict:
    out = copy.deepcopy(rows)
    out.setdefault("Timings", []).extend(timings)
    out["ActionPlans"].extend(plans)
    for r in out["AccountActions"]:
        if r["Account"] in attach:
            r["ActionPlanId"] = attach[r["Account"]]
    return out


def service(db_url: str, rows: dict, tpid: str) -> AccountService:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    svc = AccountService(engine, rows, tpid=tpid)
    svc.provision()
    return svc


def money(svc: AccountService, account: str, balance_id: str | None = None) -> Decimal:
    acc = svc.get_account("cgrates.org", account)
    return sum((b.value for b in acc.balances
                if b.type == "*monetary" and (balance_id is None or b.id == balance_id)), Decimal(0))


# --- running (real StorDB: SQLite and Postgres) -------------------------------------------------


def test_testtp_daily_topup_runs_once_per_instant(db_url: str) -> None:
    svc = service(db_url, TESTTP, "testtp")
    clock = FakeClock("2024-01-15T23:59:30Z")
    sched = ActionScheduler(clock=clock)
    assert sched.load(svc, TESTTP, "testtp") == 3
    midnight = ns("2024-01-16T00:00:00Z")
    assert [(at, p) for at, p, _ in sched.queue()] == [
        (midnight, "TEST_DID"), (midnight, "TEST_EXE"), (midnight, "TEST_RPC")]
    start_1009 = money(svc, "1009")
    start_1014 = money(svc, "1014")
    assert sched.run_due() == []  # 23:59:30: nothing due yet
    clock.set("2024-01-16T00:00:00Z")
    runs = {r.plan_id: r for r in sched.run_due()}
    exe = runs["TEST_EXE"]
    assert (exe.status, exe.account, exe.at_ns) == ("ran", "1009", midnight)
    assert exe.request_id == f"sched:testtp:TEST_EXE:cgrates.org:1009:{midnight // SECOND}"
    assert money(svc, "1009") == start_1009 + 5  # TOPUP_EXE: *topup 5 *monetary
    # testtp's *cgr_rpc goes over *gob, which cgrpy does not speak: the run fails, the account
    # is untouched, the others go on
    assert runs["TEST_RPC"].status == "failed" and "*gob" in runs["TEST_RPC"].error
    assert money(svc, "1014") == start_1014
    assert runs["TEST_DID"].status == "ran"
    assert [e.kind for e in runs["TEST_DID"].events] == ["*cdrlog"]
    assert sched.run_due() == []  # nothing more due at midnight
    assert sched.queue()[0][0] == midnight + 86_400 * SECOND

    # A second RALs (or a restart) reaching the same instant replays: no second top-up.
    other = ActionScheduler(clock=FakeClock("2024-01-15T23:59:59Z"))
    other.load(service(db_url, TESTTP, "testtp"), TESTTP, "testtp")
    again = {r.plan_id: r for r in other.run_due(midnight)}
    assert again["TEST_EXE"].status == "replayed" and again["TEST_EXE"].events == []
    assert money(svc, "1009") == start_1009 + 5
    assert svc.verify("cgrates.org", "1009") == {}

    # The next day tops up again, once.
    clock.set("2024-01-17T00:00:05Z")
    assert [r.status for r in sched.run_due() if r.plan_id == "TEST_EXE"] == ["ran"]
    assert money(svc, "1009") == start_1009 + 10


def test_weight_breaks_ties_and_catch_up_in_order(sqlite_url: str) -> None:
    rows = with_plans(
        OLDTUT,
        [{"Tag": "MONTHLY_1ST", "Years": "*any", "Months": "*any", "MonthDays": "1",
          "WeekDays": "*any", "Time": "00:00:00"}],
        [{"Id": "LOW", "ActionsId": "TOPUP_RST_5", "TimingId": "MONTHLY_1ST", "Weight": "10"},
         {"Id": "HIGH", "ActionsId": "TOPUP_RST_10", "TimingId": "*hourly", "Weight": "20"},
         {"Id": "MINUTES", "ActionsId": "TOPUP_RST_5", "TimingId": "*every_minute", "Weight": "5"}],
        {"1002": "LOW", "1003": "HIGH", "1004": "MINUTES"},
    )
    svc = service(sqlite_url, rows, "oldtut")
    clock = FakeClock("2024-01-31T23:57:10Z")
    sched = ActionScheduler(clock=clock)
    sched.load(svc, rows, "oldtut")
    first = ns("2024-02-01T00:00:00Z")
    assert [(iso(at), p) for at, p, _ in sched.queue()] == [
        ("2024-01-31T23:58:00Z", "MINUTES"), ("2024-02-01T00:00:00Z", "HIGH"),
        ("2024-02-01T00:00:00Z", "LOW")]
    clock.now = first + SECOND  # the loop was late: 23:58, 23:59, 00:00 all due
    runs = sched.run_due()
    assert [(iso(r.at_ns), r.plan_id, r.account) for r in runs] == [
        ("2024-01-31T23:58:00Z", "MINUTES", "1004"),
        ("2024-01-31T23:59:00Z", "MINUTES", "1004"),
        ("2024-02-01T00:00:00Z", "HIGH", "1003"),  # weight 20 before 10 before 5 at one instant
        ("2024-02-01T00:00:00Z", "LOW", "1002"),
        ("2024-02-01T00:00:00Z", "MINUTES", "1004"),
    ]
    assert all(r.status == "ran" for r in runs)
    assert len({r.request_id for r in runs}) == 5
    assert request_id("oldtut", "LOW", "cgrates.org", "1002", first) == runs[3].request_id
    assert money(svc, "1003") == 10  # TOPUP_RST_10 (the plan replaced PACKAGE_10: no *asap run)
    assert money(svc, "1002") == 5
    assert [iso(at) for at, _, _ in sched.queue()] == [
        "2024-02-01T00:01:00Z", "2024-02-01T01:00:00Z", "2024-03-01T00:00:00Z"]


def test_removed_account_fails_the_run_and_changes_nothing(sqlite_url: str) -> None:
    svc = service(sqlite_url, TESTTP, "testtp")
    assert svc.store.remove_account("cgrates.org", "1009") is True
    sched = ActionScheduler(clock=FakeClock("2024-01-15T12:00:00Z"))
    sched.load(svc, TESTTP, "testtp")
    runs = [r for r in sched.run_due(ns("2024-01-16T00:00:00Z")) if r.plan_id == "TEST_EXE"]
    assert runs[0].status == "failed" and runs[0].error.startswith("NOT_FOUND")
    with pytest.raises(AccountError, match="NOT_FOUND"):
        svc.get_account("cgrates.org", "1009")


async def test_run_forever_with_injected_clock(sqlite_url: str) -> None:
    svc = service(sqlite_url, TESTTP, "testtp")
    clock = FakeClock("2024-01-15T23:59:59Z")
    seen: list[ScheduledRun] = []
    sched = ActionScheduler(clock=clock, max_sleep=0.01, on_runs=seen.extend)
    sched.load(svc, TESTTP, "testtp")
    task = asyncio.create_task(sched.run_forever())
    await asyncio.sleep(0.05)
    assert seen == []
    clock.set("2024-01-16T00:00:00Z")
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.01)
    sched.stop()
    await asyncio.wait_for(task, 2)
    assert sorted((r.plan_id, r.status) for r in seen) == [
        ("TEST_DID", "ran"), ("TEST_EXE", "ran"), ("TEST_RPC", "failed")]


# --- inside the server: built on load, rebuilt on ReloadCache; RemoveAccount ---------------------


async def test_server_schedules_and_removes_accounts(db_url: str) -> None:
    async with serve(RalsServer, db_url, tariffplan="testtp") as svc:
        server: RalsServer = svc.runner.service  # type: ignore[assignment]
        assert [p for _, p, _ in server.scheduler.queue()] == ["TEST_DID", "TEST_EXE", "TEST_RPC"]
        stub = rals_pb2_grpc.RalsServiceStub(svc.channel)
        server.scheduler._heap.clear()  # forget the queue ...
        assert server.scheduler.queue() == []
        await stub.ReloadCache(common_pb2.ReloadCacheRequest())  # ... ReloadCache rebuilds it
        assert len(server.scheduler.queue()) == 3

        engine = server.compiled.accounts.store.engine  # type: ignore[union-attr]
        store = AccountStore(engine)
        assert store.get_account("cgrates.org", "1009").balances == []
        await stub.SetBalance(rals_pb2.SetBalanceRequest(
            tenant="cgrates.org", account="1009", balance_type="*monetary", value="7.5",
            balance=rals_pb2.Balance(id="main")))
        uuid = store.get_account("cgrates.org", "1009").balances[0].uuid
        await stub.RemoveAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1009"))
        await stub.RemoveAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1009"))
        ids = await stub.GetAccountIDs(common_pb2.TenantRequest(tenant="cgrates.org"))
        assert "1009" not in ids.ids and "1001" in ids.ids
        # the journal stays and is closed: +7.5 then -7.5 at removal
        assert [(j["delta"], j["reason"]) for j in store.journal("cgrates.org", "1009")
                if j["balance_uuid"] == uuid] == [(Decimal("7.5"), "set_balance"),
                                                   (Decimal("-7.5"), "remove_account")]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1009"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RemoveAccount(rals_pb2.AccountRequest(tenant="cgrates.org"))
        assert err.value.details().startswith("MANDATORY_IE_MISSING")
