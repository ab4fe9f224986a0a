"""CdrStore on SQLite and Postgres: idempotent reserve, every GetCDRs filter, session costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.cdre.cdr import CDR
from services.cdre.store import CdrFilter, CdrStore, SessionCost, StoreError

T0 = datetime(2014, 1, 14, 10, 0, 0, tzinfo=UTC)


def _cdr(n: int, **kw) -> CDR:
    base = dict(
        cgrid=f"{n:040x}", run_id="*default", origin_id=f"o{n}", origin_host="127.0.0.1",
        request_type="*postpaid", account="1001", subject="1001", destination="1002",
        setup_time=T0 + timedelta(minutes=n), answer_time=T0 + timedelta(minutes=n, seconds=5),
        usage_ns=60 * 10**9, extra_fields={"DisconnectCause": "x"},
    )
    base.update(kw)
    return CDR(**base)


def test_reserve_is_idempotent_on_cgrid_and_run_id(store: CdrStore):
    first, dup1 = store.reserve(_cdr(1))
    again, dup2 = store.reserve(_cdr(1, destination="9999"))
    other_run, dup3 = store.reserve(_cdr(1, run_id="*raw"))
    assert (dup1, dup2, dup3) == (False, True, False)
    assert again.cdr.order_id == first.cdr.order_id
    assert again.cdr.destination == "1002"  # the first write wins, nothing overwritten
    assert first.rating_state == "pending"
    assert store.count_cdrs() == 2
    assert other_run.cdr.order_id != first.cdr.order_id


def test_finish_round_trips_exact_money_and_details(store: CdrStore):
    st, _ = store.reserve(_cdr(1))
    details = {"Cost": Decimal("0.64175"), "Usage": 85 * 10**9}
    store.finish(st.cdr.order_id, cost=Decimal("0.64175"), cost_source="*cdrs",
                 cost_details=details, extra_info="", debit_request_id="r1")
    got = store.get_stored()[0]
    assert got.cdr.cost == Decimal("0.64175") and str(got.cdr.cost) == "0.64175"
    assert got.cdr.cost_details == details
    assert got.rating_state == "rated" and got.debit_request_id == "r1"
    assert got.cdr.answer_time == T0 + timedelta(minutes=1, seconds=5)
    assert got.cdr.answer_time.tzinfo is not None
    assert got.cdr.extra_fields == {"DisconnectCause": "x"}
    with pytest.raises(StoreError, match="NOT_FOUND"):
        store.finish(999999, cost=Decimal(1), cost_source="", cost_details=None, extra_info="")


def test_money_with_too_many_decimals_is_refused(store: CdrStore):
    with pytest.raises(Exception, match="decimals"):
        store.reserve(_cdr(1, cost=Decimal("0.0000000001")))
    assert store.count_cdrs() == 0


@pytest.fixture
def seeded(store: CdrStore) -> CdrStore:
    rows = [
        _cdr(1, cost=Decimal("0.6")),
        _cdr(2, cost=Decimal("1.2"), account="1002", subject="1002", destination="1001"),
        _cdr(3, cost=Decimal("-1"), request_type="*none", destination="+4986517174963"),
        _cdr(4, cost=Decimal("0.01"), run_id="*raw", destination="1003", request_type="*rated"),
        _cdr(5, cost=Decimal("2.5"), tenant="other.org", destination="10_3"),
    ]
    for c in rows:
        st, _ = store.reserve(c)
    return store


def _ids(store: CdrStore, **kw) -> list[int]:
    return [int(c.cgrid, 16) for c in store.get_cdrs(CdrFilter(**kw))]


def test_filters(seeded: CdrStore):
    s = seeded
    assert _ids(s) == [1, 2, 3, 4, 5]
    assert _ids(s, accounts=["1002"]) == [2]
    assert _ids(s, subjects=["1001"]) == [1, 3, 4, 5]
    assert _ids(s, tenants=["other.org"]) == [5]
    assert _ids(s, run_ids=["*raw"]) == [4]
    assert _ids(s, request_types=["*none", "*rated"]) == [3, 4]
    assert _ids(s, cgrids=[f"{2:040x}"]) == [2]
    assert _ids(s, origin_ids=["o3", "o5"]) == [3, 5]
    assert _ids(s, destination_prefixes=["100"]) == [1, 2, 4]
    assert _ids(s, destination_prefixes=["+49", "1001"]) == [2, 3]
    assert _ids(s, destination_prefixes=["10_"]) == [5]  # LIKE wildcards are literal
    assert _ids(s, setup_time_start=T0 + timedelta(minutes=2)) == [2, 3, 4, 5]
    assert _ids(s, setup_time_end=T0 + timedelta(minutes=2)) == [1]
    assert _ids(s, answer_time_start=T0 + timedelta(minutes=2, seconds=5),
                answer_time_end=T0 + timedelta(minutes=4, seconds=5)) == [2, 3]
    assert _ids(s, min_cost=Decimal("0.6")) == [1, 2, 5]
    assert _ids(s, max_cost=Decimal("0.6")) == [3, 4]
    assert _ids(s, min_cost=Decimal("0"), max_cost=Decimal("1.2")) == [1, 4]
    assert _ids(s, order_by="cost desc") == [5, 2, 1, 4, 3]
    assert _ids(s, order_by="destination") == [3, 2, 1, 4, 5]
    assert _ids(s, order_by="answer_time desc", limit=2) == [5, 4]
    assert _ids(s, order_by="order_id", limit=2, offset=2) == [3, 4]
    assert s.count_cdrs(CdrFilter(destination_prefixes=["100"], limit=1)) == 3


@pytest.mark.parametrize("kw", [
    {"order_by": "nonsense"},
    {"order_by": "cost sideways"},
    {"min_cost": Decimal(2), "max_cost": Decimal(1)},
    {"setup_time_start": T0, "setup_time_end": T0 - timedelta(seconds=1)},
    {"limit": -1},
])
def test_bad_queries_are_refused(seeded: CdrStore, kw):
    with pytest.raises(StoreError):
        seeded.get_cdrs(CdrFilter(**kw))


def test_session_costs(store: CdrStore):
    sc = SessionCost(cgrid="c" * 40, run_id="*default", cost=Decimal("0.4"), usage_ns=10**10,
                     origin_host="h", origin_id="o", cost_details={"Cost": Decimal("0.4")})
    assert store.store_session_cost(sc) is False
    assert store.store_session_cost(sc) is True
    got = store.get_session_cost("c" * 40, "*default")
    assert got == sc
    assert store.get_session_cost("c" * 40, "*raw") is None
