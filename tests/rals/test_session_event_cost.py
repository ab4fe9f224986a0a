"""A prepaid session run's EventCost: its debits' EventCosts merged and trimmed to the usage it
kept (cgrpy/eventcost.py), the same split RALs' refund makes on the charges, and the refund of a
session's debits answering it (services/rals/accounts/service.py), on the tutorial plan."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cgrpy.eventcost import add_rounding, merge_event_costs, trim_event_cost
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.units import SECOND
from services.rals.accounts.debit import Charge, debit_account
from services.rals.accounts.eventcost import debit_event_cost, kept_event_cost, session_event_cost
from services.rals.accounts.refund import trim_charges
from services.rals.accounts.service import AccountService, rounded_cost
from services.rals.rating import CallDescriptor
from tests.rals.test_accounts_debit import PREFIXES, T0, acc, money, rate
from tests.rals.test_accounts_service import ROWS

G = 5  # the global rounding decimals


def piece(offset_s: int, seconds: int, loop_index: int, account: str = "1001") -> CallDescriptor:
    """One debit of a session run 1001 -> 1002 (RT_20CNT), as SM asks it."""
    return CallDescriptor(tenant="cgrates.org", category="call", account=account, subject="1001",
                          destination="1002", time_start=T0 + timedelta(seconds=offset_s),
                          usage_ns=seconds * SECOND, duration_index_ns=(offset_s + seconds) * SECOND,
                          loop_index=loop_index, cgrid="cg1", run_id="*default")


def session_pieces() -> tuple[list[dict[str, Any]], list[Charge]]:
    """A 70 s debit then a 30 s one: (their EventCosts, their charges in order)."""
    a = acc(money("10"))
    docs, charges = [], []
    for c in (piece(0, 70, 0), piece(70, 30, 1)):
        out = debit_account(a, c, rate, PREFIXES)
        docs.append(debit_event_cost(out.charges, c, a.summary(), decimals=G))
        charges += out.charges
    return docs, charges


def incs(ec: dict[str, Any]) -> list[tuple[int, Decimal, int]]:
    """(usage, cost, compress) of every increment, interval compress factors expanded."""
    return [(i["Usage"], i["Cost"], i["CompressFactor"]) for ch in ec["Charges"]
            for _ in range(ch["CompressFactor"]) for i in ch["Increments"]]


def test_merge_concatenates_sums_and_unions_the_tables() -> None:
    docs, _ = session_pieces()
    before = copy.deepcopy(docs)
    ec = merge_event_costs(docs, G)
    assert docs == before  # the pieces are not changed
    assert (ec["CGRID"], ec["RunID"], ec["StartTime"]) == ("cg1", "*default", T0)
    assert ec["Usage"] == docs[0]["Usage"] + docs[1]["Usage"] == 100 * SECOND
    assert ec["Cost"] == docs[0]["Cost"] + docs[1]["Cost"] == Decimal("0.4") + Decimal("0.2") + 40 * Decimal("0.00167")
    assert ec["AccountSummary"] == docs[1]["AccountSummary"]
    assert ec["Charges"] == docs[0]["Charges"] + docs[1]["Charges"]
    for table in ("Rating", "Accounting", "RatingFilters", "Rates", "Timings"):
        assert ec[table] == {**docs[0][table], **docs[1][table]}
    # every id an interval or increment names is in the merged tables
    assert all(ch["RatingID"] in ec["Rating"] for ch in ec["Charges"])
    assert all(i["AccountingID"] in ec["Accounting"] for ch in ec["Charges"] for i in ch["Increments"])


def test_merge_compresses_consecutive_equal_intervals() -> None:
    a = acc(money("10"))
    docs = []
    for n in range(3):  # three 10 s pieces after the first minute: equal intervals
        c = piece(60 + 10 * n, 10, n + 1)
        docs.append(debit_event_cost(debit_account(a, c, rate, PREFIXES).charges, c, a.summary(), decimals=G))
    ec = merge_event_costs(docs, G)
    [only] = ec["Charges"]
    assert only["CompressFactor"] == 3 and only["Increments"] == docs[0]["Charges"][0]["Increments"]
    assert (ec["Usage"], ec["Cost"]) == (30 * SECOND, 30 * Decimal("0.00167"))
    assert docs[0]["Charges"][0]["CompressFactor"] == 1  # the piece itself untouched
    with pytest.raises(ValueError, match="no EventCost"):
        merge_event_costs([], G)


@pytest.mark.parametrize("keep_s", [0, Decimal("0.000000001"), 30, 60, 61, 70, Decimal("84.5"), 85, 100, 200])
def test_trim_keeps_what_the_refund_of_the_charges_keeps(keep_s: Any) -> None:
    docs, charges = session_pieces()
    keep = int(keep_s * SECOND)
    ec = trim_event_cost(merge_event_costs(docs, G), keep, G)
    kept, _ = trim_charges(charges, keep)
    assert ec["Cost"] == sum((c.total_cost for c in kept), Decimal(0))
    assert ec["Usage"] == sum(c.usage_ns for c in kept)
    assert incs(ec) == [(c.duration_ns, c.cost, c.count) for c in kept]


def test_trim_at_85s_drops_the_last_15_increments() -> None:
    docs, _ = session_pieces()
    merged = merge_event_costs(docs, G)
    ec = trim_event_cost(merged, 85 * SECOND, G)
    assert incs(ec) == [(0, Decimal("0.4"), 1), (60 * SECOND, Decimal("0.2"), 1),
                        (SECOND, Decimal("0.00167"), 10), (SECOND, Decimal("0.00167"), 15)]
    assert (ec["Usage"], ec["Cost"]) == (85 * SECOND, Decimal("0.64175"))
    assert [ch["RatingID"] for ch in ec["Charges"]] == [ch["RatingID"] for ch in merged["Charges"]]
    assert incs(trim_event_cost(merged, 0, G)) == [] and trim_event_cost(merged, 0, G)["Cost"] == 0


def test_session_rounding_closes_the_last_interval_and_gives_the_cdr_cost() -> None:
    docs, charges = session_pieces()
    kept, _ = trim_charges(charges, 85 * SECOND)
    diff = rounded_cost(kept) - sum((c.total_cost for c in kept), Decimal(0))
    assert diff == Decimal("0.00005")  # *up to 4 decimals: 0.64175 -> 0.6418
    ec = session_event_cost(kept_event_cost(docs, 85 * SECOND, decimals=G), kept, diff, decimals=G)
    assert (ec["Cost"], ec["Usage"]) == (Decimal("0.6418"), 85 * SECOND)
    last = ec["Charges"][-1]["Increments"][-1]
    assert (last["Usage"], last["Cost"]) == (0, diff)
    entry = ec["Accounting"][last["AccountingID"]]
    assert (entry["RatingID"], entry["Units"], entry["BalanceUUID"]) == ("*rounding", diff, kept[-1].money_uuid)


def test_rounding_on_a_compressed_last_interval_takes_one_copy() -> None:
    ec = {"Charges": [{"RatingID": "r", "CompressFactor": 3,
                       "Increments": [{"Usage": SECOND, "Cost": Decimal("0.1"), "AccountingID": "", "CompressFactor": 1}]}],
          "Accounting": {}}
    out = add_rounding(ec, Decimal("0.01"), {"RatingID": "*rounding"}, G)
    assert [ch["CompressFactor"] for ch in out["Charges"]] == [2, 1]
    assert len(out["Charges"][1]["Increments"]) == 2 and ec["Charges"][0]["CompressFactor"] == 3
    assert (out["Cost"], out["Usage"]) == (Decimal("0.31"), 3 * SECOND)
    assert add_rounding(ec, Decimal(0), {}, G) == ec


@pytest.fixture
def svc(db_url: str) -> Iterator[AccountService]:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    s = AccountService(engine, ROWS, tpid="tutorial")
    s.provision()
    yield s
    engine.dispose()


def test_refund_of_session_debits_answers_their_kept_event_cost(svc: AccountService) -> None:
    before = svc.get_account("cgrates.org", "1001").balances[0].value
    d1 = svc.debit(piece(0, 70, 0), "s1:0", event_cost=True)
    d2 = svc.debit(piece(70, 30, 1), "s1:1", event_cost=True)
    r = svc.refund_debits("s1:refund", ["s1:0", "s1:1"], keep_usage_ns=85 * SECOND, round_kept=True,
                          want_event_cost=True)
    kept = d1.cost + d2.cost - r.refunded
    assert kept == Decimal("0.6418") == before - svc.get_account("cgrates.org", "1001").balances[0].value
    assert r.event_cost is not None
    assert (r.event_cost["Cost"], r.event_cost["Usage"]) == (kept, 85 * SECOND)
    assert r.event_cost["AccountSummary"] == d2.event_cost["AccountSummary"]  # type: ignore[index]
    # a replayed refund answers the same document (journaled with it)
    again = svc.refund_debits("s1:refund", ["s1:0", "s1:1"], keep_usage_ns=85 * SECOND, round_kept=True,
                              want_event_cost=True)
    assert again.replayed and again.event_cost == r.event_cost


def test_a_debit_without_its_event_cost_gives_no_document(svc: AccountService) -> None:
    svc.debit(piece(0, 70, 0), "s2:0", event_cost=True)
    svc.debit(piece(70, 30, 1), "s2:1")  # journaled before EventCosts were kept
    r = svc.refund_debits("s2:refund", ["s2:0", "s2:1"], keep_usage_ns=85 * SECOND, round_kept=True,
                          want_event_cost=True)
    assert r.event_cost is None and r.refunded > 0
