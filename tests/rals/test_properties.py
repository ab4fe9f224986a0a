"""Properties (hypothesis, bounded): cost never falls as usage grows; debit + full refund is a no-op."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.model import AccountError
from services.rals.accounts.service import AccountService
from services.rals.rating import CallDescriptor, RatingData, RatingError, get_cost
from tests.conftest import TARIFFPLANS

ROWS = {name: read_folder(TARIFFPLANS / name) for name in ("tutorial", "oldtutorial")}
DATA = {name: RatingData.from_rows(rows) for name, rows in ROWS.items()}
SUBJECTS = {"tutorial": ["1001", "1002", "1003"], "oldtutorial": ["1001", "1002", "1003", "1007"]}
DESTINATIONS = ["1001", "1002", "1003", "1007", "10", "1099", "+4915123", "+4917100"]
EPOCH = datetime(2014, 1, 14, tzinfo=UTC)

plans = st.sampled_from(sorted(ROWS))
# Answer times over ten years, to the second: crosses peak/off-peak, weekends, DST-free UTC.
answer_times = st.integers(0, 10 * 365 * 86_400).map(lambda s: EPOCH + timedelta(seconds=s))
usages = st.integers(0, 2 * 3600 * SECOND)  # ns, any granularity


def cost(plan: str, subject: str, dest: str, start: datetime, usage: int) -> Decimal:
    cd = CallDescriptor(tenant="cgrates.org", category="call", subject=subject, account=subject,
                        destination=dest, time_start=start, usage_ns=usage)
    return get_cost(DATA[plan], cd, rounding_decimals=5).cost


@settings(max_examples=300, deadline=None)
@given(plan=plans, data=st.data(), dest=st.sampled_from(DESTINATIONS), start=answer_times,
       u1=usages, u2=usages)
def test_cost_is_monotonic_in_usage(plan: str, data: st.DataObject, dest: str, start: datetime,
                                    u1: int, u2: int) -> None:
    subject = data.draw(st.sampled_from(SUBJECTS[plan]))
    short, long_ = sorted((u1, u2))
    try:
        c_short = cost(plan, subject, dest, start, short)
    except RatingError:
        assume(False)  # not rateable (no rating plan / unauthorized destination)
        return
    c_long = cost(plan, subject, dest, start, long_)
    assert c_short <= c_long, (plan, subject, dest, start, short, long_)
    assert c_short >= 0


def _service(plan: str) -> AccountService:
    path = Path(tempfile.mkdtemp(prefix=f"props-{plan}-")) / "stordb.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    svc = AccountService(engine, ROWS[plan], tpid=plan)
    svc.provision()
    return svc


SERVICES: dict[str, AccountService] = {}


def service(plan: str) -> AccountService:
    if plan not in SERVICES:
        SERVICES[plan] = _service(plan)
    return SERVICES[plan]


def snapshot(svc: AccountService, account: str) -> list[tuple[str, str, Decimal]]:
    return [(b.type, b.uuid, b.value) for b in svc.get_account("cgrates.org", account).balances]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, dest=st.sampled_from(["1002", "1003", "1001"]), start=answer_times,
       usage=st.integers(1, 900 * SECOND))
def test_debit_then_full_refund_restores_the_balances(plan: str, dest: str, start: datetime,
                                                       usage: int) -> None:
    svc = service(plan)
    account = "1001"
    before = snapshot(svc, account)
    cd = CallDescriptor(tenant="cgrates.org", category="call", subject=account, account=account,
                        destination=dest, time_start=start, usage_ns=usage)
    rid = f"prop:{uuid.uuid4()}"
    try:
        debit = svc.debit(cd, rid)
    except (AccountError, RatingError):
        assume(False)
        return
    assert debit.cost >= 0
    after_debit = snapshot(svc, account)
    if debit.cost > 0:
        assert after_debit != before  # the debit really moved something
    refund = svc.refund(f"{rid}:refund", "cgrates.org", account, debit_request_id=rid,
                        keep_usage_ns=0)
    assert refund.kept == []
    assert snapshot(svc, account) == before  # exactly, every balance, units and money
    assert svc.verify("cgrates.org", account) == {}
