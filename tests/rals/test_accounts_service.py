"""AccountService on the tutorial plan, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.tariffplan.csvread import read_folder
from cgrpy.units import SECOND
from services.rals.accounts.live import LiveStore
from services.rals.accounts.model import MONETARY, AccountError
from services.rals.accounts.service import AccountService
from services.rals.rating import CallDescriptor, RatingError
from tests.conftest import TARIFFPLANS

T0 = datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC)
ROWS = read_folder(TARIFFPLANS / "tutorial")


@pytest.fixture(params=["locked", "live"])
def svc(db_url: str, request: pytest.FixtureRequest) -> Iterator[AccountService]:
    """The same contract on the locked store and on the in-memory group-committing one."""
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    store = LiveStore(engine) if request.param == "live" else None
    s = AccountService(engine, ROWS, tpid="tutorial", store=store)
    s.provision()
    yield s
    if store is not None:
        store.close()
    engine.dispose()


def cd(dest: str = "1002", seconds: int = 85, account: str = "1001", **kw) -> CallDescriptor:  # noqa: ANN003
    return CallDescriptor(account=account, destination=dest, time_start=T0,
                          usage_ns=seconds * SECOND, **kw)


def value(svc: AccountService, account: str = "1001") -> Decimal:
    return svc.get_account("cgrates.org", account).balances[0].value


def test_max_usage_and_idempotent_debit(svc: AccountService) -> None:
    assert svc.get_max_usage(cd(seconds=3 * 3600)) == 5688 * SECOND
    assert svc.get_max_usage(cd(dest="1003", seconds=60)) == 12 * SECOND
    first = svc.debit(cd(), "sess1:*default:0")
    assert (first.cost, first.usage_ns, first.rounded_cost) == (
        Decimal("0.64175"), 85 * SECOND, Decimal("0.6418"))
    for _ in range(3):
        again = svc.debit(cd(), "sess1:*default:0")
        assert again.replayed and again.cost == first.cost and again.charges == first.charges
    assert value(svc) == Decimal("9.35825")
    assert svc.verify("cgrates.org", "1001") == {}


def test_refund_by_debit_request_trims_whole_increments(svc: AccountService) -> None:
    svc.debit(cd(seconds=120), "d1")
    assert value(svc) == Decimal("9.2998")
    r = svc.refund("r1", "cgrates.org", "1001", debit_request_id="d1", keep_usage_ns=85 * SECOND)
    assert r.refunded == Decimal("0.05845")  # 35 × 0.00167
    assert value(svc) == Decimal("9.35825")
    assert svc.refund("r1", "cgrates.org", "1001", debit_request_id="d1",
                      keep_usage_ns=85 * SECOND).replayed
    assert value(svc) == Decimal("9.35825")
    assert svc.verify("cgrates.org", "1001") == {}


def test_max_debit_shortens_and_force_duration_refuses(svc: AccountService) -> None:
    svc.set_balance("cgrates.org", "1001", MONETARY, Decimal("0.7"), balance_id="test")
    out = svc.debit(cd(seconds=600), "m1", max_debit=True)
    # 0.4 + 0.2 leaves 0.1 = 59 increments of 0.00167
    assert out.usage_ns == 119 * SECOND and value(svc) == Decimal("0.00147")
    with pytest.raises(AccountError, match="INSUFFICIENT_CREDIT"):
        svc.debit(cd(seconds=600, force_duration=True), "m2", max_debit=True)
    assert value(svc) == Decimal("0.00147")


def test_deny_negative_insufficient_credit_changes_nothing(svc: AccountService) -> None:
    svc.set_balance("cgrates.org", "1002", MONETARY, Decimal("0.5"), balance_id="test")
    with pytest.raises(AccountError, match="INSUFFICIENT_CREDIT"):
        svc.debit(cd(dest="1001", account="1002", seconds=120, deny_negative_account=True), "x")
    assert value(svc, "1002") == Decimal("0.5")
    # postpaid-style debit goes negative on *default
    out = svc.debit(cd(dest="1001", account="1002", seconds=120), "y")
    assert out.cost == Decimal("0.7002")
    acc = svc.get_account("cgrates.org", "1002")
    assert {b.id: b.value for b in acc.balances} == {"test": Decimal("0.1"),
                                                      "*default": Decimal("-0.3002")}
    assert svc.verify("cgrates.org", "1002") == {}


def test_errors(svc: AccountService) -> None:
    with pytest.raises(AccountError, match="ACCOUNT_NOT_FOUND"):
        svc.get_max_usage(cd(account="nobody"))
    with pytest.raises(AccountError, match="ACCOUNT_NOT_FOUND"):
        svc.debit(cd(account="nobody"), "n1")
    with pytest.raises(RatingError, match="UNAUTHORIZED_DESTINATION"):
        svc.debit(cd(dest="999"), "u1")
    assert value(svc) == Decimal(10)
    svc.set_account("cgrates.org", "1001", disabled=True)
    with pytest.raises(AccountError, match="ACCOUNT_DISABLED"):
        svc.get_max_usage(cd())
    svc.set_account("cgrates.org", "1001", allow_negative=True, disabled=False)
    assert svc.get_max_usage(cd()) == -1


def test_admin_balance_ops_and_actions(svc: AccountService) -> None:
    b = svc.set_balance("cgrates.org", "1001", "*voice", Decimal(60 * SECOND), balance_id="min",
                        destination_ids="DST_1002", weight=Decimal(5)).balance
    assert b.value == 60 * SECOND
    out = svc.debit(cd(seconds=30), "v1")
    assert out.cost == 0 and svc.get_account("cgrates.org", "1001").balances[1].value == \
        30 * SECOND
    svc.remove_balance("cgrates.org", "1001", "*voice", "min")
    with pytest.raises(AccountError, match="NOT_FOUND"):
        svc.remove_balance("cgrates.org", "1001", "*voice", "min")
    svc.debit(cd(seconds=20), "v2")
    assert value(svc) == Decimal("9.4")
    events = svc.execute_actions("cgrates.org", "1001", "ACT_TOPUP_RST_10")
    assert events == [] and value(svc) == Decimal(10)
    assert [e.kind for e in svc.execute_actions("cgrates.org", None, "ACT_LOG_WARNING")] == ["*log"]
    assert svc.verify("cgrates.org", "1001") == {}


def test_prepaid_session_end_charges_the_destination_rate_rounding(svc: AccountService) -> None:
    """What the README states: a prepaid run is debited unrounded piece by
    piece; at its end the refund of the unused time also charges the DestinationRate rounding of
    what was used (CGRateS's RefundRounding): 65 s of RT_20CNT cost 0.60835 -> 0.6084."""
    d = svc.debit(cd(seconds=90), "p0", max_debit=True)  # one 90 s piece, unrounded
    assert d.cost == Decimal("0.6501") and d.rounded_cost == Decimal("0.6501")
    r = svc.refund("p0:end", "cgrates.org", "1001", debit_request_id="p0", keep_usage_ns=65 * SECOND,
                   round_kept=True)
    assert sum((c.total_cost for c in r.kept), Decimal(0)) == Decimal("0.60835")
    assert r.refunded == Decimal("0.6501") - Decimal("0.6084")
    assert value(svc) == Decimal(10) - Decimal("0.6084")
    assert svc.verify("cgrates.org", "1001") == {}
