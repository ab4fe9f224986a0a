"""Work a debit does once instead of per use: the EventCost of a debit or refund is encoded once
for its journal row and its reply (``live.encode_result``), and a span's Rating entry is
digested once per RateInterval (``rating.cost.span_rating_id``). Both must give exactly the
text and the documents the plain way gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.eventcost import EventCostBuilder
from services.rals.accounts.debit import debit_account
from services.rals.accounts.eventcost import debit_event_cost
from services.rals.accounts.live import encode_result
from services.rals.accounts.service import AccountService
from services.rals.accounts.store import AccountStore
from services.rals.rating import cost as rating_cost
from services.rals.rating.cost import _span_rating_entries, span_rating_id
from tests.rals.test_accounts_debit import PREFIXES, acc, money, rate
from tests.rals.test_session_event_cost import piece, session_pieces

T = "cgrates.org"


def test_encode_result_is_the_plain_encoding() -> None:
    docs, _ = session_pieces()
    ec = docs[0]
    cases: list[dict[str, Any]] = [
        {"Cost": Decimal("0.50"), "Charges": [], "EventCost": ec},
        {"EventCost": ec},
        {"Refunded": Decimal(0), "Kept": [{"a": 1}], "EventCost": ec},
        {"Cost": Decimal("1.0"), "Charges": []},  # no EventCost
        {"EventCost": ec, "Cost": Decimal(1)},  # not last: encoded whole
        {"Cost": 1, "EventCost": None},
    ]
    for result in cases:
        text, ec_text = encode_result(result)
        assert text == dumps_exact(result)
        assert loads_exact(text) == loads_exact(dumps_exact(result))
        last_ec = result.get("EventCost") is not None and list(result)[-1] == "EventCost"
        assert ec_text == (dumps_exact(result["EventCost"]) if last_ec else "")


def test_span_rating_memo_gives_the_same_documents() -> None:
    a = acc(money("10"))
    cd = piece(0, 70, 0)
    out = debit_account(a, cd, rate, PREFIXES)
    rating_cost._RATING_MEMO.clear()
    cold = debit_event_cost(out.charges, cd, a.summary(), decimals=5)
    assert rating_cost._RATING_MEMO  # filled by the first document
    warm = debit_event_cost(out.charges, cd, a.summary(), decimals=5)
    assert dumps_exact(cold) == dumps_exact(warm)
    assert cold["Rating"] and cold["Rates"] and cold["Timings"] and cold["RatingFilters"]


def test_span_rating_memo_never_serves_another_interval() -> None:
    """A key whose RateInterval is not the one cached (an id reused after a plan reload) is
    digested afresh, never answered from the memo."""
    out = debit_account(acc(money("10")), piece(0, 70, 0), rate, PREFIXES)
    ts = next(c.span for c in out.charges if c.span is not None)
    rating_cost._RATING_MEMO.clear()
    b = EventCostBuilder()
    rid = span_rating_id(b, ts)
    assert rid == _span_rating_entries(ts)[0]
    [key] = rating_cost._RATING_MEMO
    rating_cost._RATING_MEMO[key] = (object(), "bogus", ())  # type: ignore[assignment]
    b2 = EventCostBuilder()
    assert span_rating_id(b2, ts) == rid
    assert b2.ratings == b.ratings and b2.rates == b.rates and b2.filters == b.filters
    assert b2.timings == b.timings


async def test_debit_and_refund_answer_the_journaled_event_cost(live_service: AccountService,
                                                                engine: Engine) -> None:
    """Inline and thread paths: the EventCost text a reply carries is the encoding of the
    document, and the journal holds the same document."""
    live_service.store.peek(T, "1001")
    ids = ["e:0", "e:1"]
    first = await live_service.debit_inline(piece(0, 70, 0), ids[0], max_debit=True, event_cost=True)
    second = live_service.debit(piece(70, 30, 1), ids[1], max_debit=True, event_cost=True)
    for res in (first, second):
        assert res is not None and res.event_cost is not None
        assert res.event_cost_json == dumps_exact(res.event_cost)
        stored = AccountStore(engine).request_result(res.request_id)
        assert stored is not None and stored["EventCost"] == loads_exact(res.event_cost_json)
    flags = {"keep_usage_ns": 85 * 10**9, "round_kept": True, "want_event_cost": True}
    ref = await live_service.refund_debits_inline("e:refund", ids, **flags)
    assert ref is not None and ref.event_cost is not None
    assert ref.event_cost_json == dumps_exact(ref.event_cost)
    stored = AccountStore(engine).request_result("e:refund")
    assert stored is not None and stored["EventCost"] == loads_exact(ref.event_cost_json)
    again = live_service.refund_debits("e:refund", ids, **flags)  # a replay: no text kept, same document
    assert again.replayed and again.event_cost_json == ""
    assert again.event_cost == ref.event_cost
    assert live_service.verify(T, "1001") == {}
