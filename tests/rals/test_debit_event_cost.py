"""A debit's v0.10 EventCost built from its charges (services/rals/accounts/eventcost.py) and the
highest rate a debit applied (``max_rate``), on the tutorial plan."""

from __future__ import annotations

from decimal import Decimal

from cgrpy.units import SECOND
from services.rals.accounts.debit import debit_account, max_rate
from services.rals.accounts.eventcost import debit_event_cost
from services.rals.accounts.model import VOICE, Balance
from tests.rals.test_accounts_debit import PREFIXES, T0, acc, cd, money, rate


def _rows(ec: dict) -> list[tuple]:
    return [(ch["CompressFactor"], [(i["Usage"], i["Cost"], i["CompressFactor"], ec["Accounting"].get(i["AccountingID"]))
                                    for i in ch["Increments"]]) for ch in ec["Charges"]]


def test_free_units_then_money_each_named_by_its_balance() -> None:
    voice = Balance(type=VOICE, id="v", value=Decimal(30 * SECOND), destination_ids={"DST_1002": True})
    m = money("10")
    a = acc(m, voice)
    c = cd(seconds=85, cgrid="cg1", run_id="*default")
    out = debit_account(a, c, rate, PREFIXES)
    ec = debit_event_cost(out.charges, c, a.summary(), decimals=5)
    assert (ec["CGRID"], ec["RunID"], ec["StartTime"], ec["Usage"]) == ("cg1", "*default", T0, 90 * SECOND)
    assert ec["Cost"] == out.cost == Decimal("0.6")
    free, paid = ec["Charges"]
    unit = {"AccountID": "cgrates.org:1001", "BalanceUUID": voice.uuid, "RatingID": "",
            "Units": Decimal(SECOND), "ExtraChargeID": "*none"}
    assert _rows(ec)[0] == (1, [(SECOND, Decimal(0), 30, unit)])
    money_acc = {"AccountID": "cgrates.org:1001", "BalanceUUID": m.uuid, "RatingID": ""}
    assert _rows(ec)[1] == (1, [(0, Decimal("0.4"), 1, {**money_acc, "Units": Decimal("0.4"), "ExtraChargeID": ""}),
                                (60 * SECOND, Decimal("0.2"), 1,
                                 {**money_acc, "Units": Decimal("0.2"), "ExtraChargeID": ""})])
    # *zero1s units: a rating without timing, one free 1 s slot, the balance as subject
    rating = ec["Rating"][free["RatingID"]]
    assert rating["TimingID"] == "" and ec["Rates"][rating["RatesID"]] == [
        {"GroupIntervalStart": 0, "Value": Decimal(0), "RateIncrement": SECOND, "RateUnit": SECOND}]
    assert ec["RatingFilters"][rating["RatingFiltersID"]] == {
        "Subject": voice.uuid, "DestinationPrefix": "1002", "DestinationID": "*any", "RatingPlanID": "*none"}
    assert ec["Rating"][paid["RatingID"]]["ConnectFee"] == Decimal("0.4")


def test_rated_units_name_the_money_that_paid_their_cost() -> None:
    voice = Balance(type=VOICE, id="v", value=Decimal(600 * SECOND), rating_subject="1001")
    m = money("10")
    a = acc(m, voice)
    c = cd(seconds=61)
    out = debit_account(a, c, rate, PREFIXES)
    ec = debit_event_cost(out.charges, c, a.summary(), decimals=5)
    [(_, incs), (_, tail)] = _rows(ec)
    span_rating = ec["Charges"][0]["RatingID"]
    _, _, _, unit_acc = incs[1]
    assert (unit_acc["BalanceUUID"], unit_acc["RatingID"], unit_acc["Units"]) == (voice.uuid, span_rating,
                                                                                  Decimal(60 * SECOND))
    assert ec["Accounting"][unit_acc["ExtraChargeID"]]["BalanceUUID"] == m.uuid
    assert ec["Cost"] == out.cost and tail[0][3]["ExtraChargeID"] != "*none"


def test_max_rate_is_the_highest_per_nanosecond() -> None:
    out = debit_account(acc(money("10")), cd(seconds=85), rate, PREFIXES)
    # RT_20CNT: 0.2 per 60 s, then 0.1 per 60 s; the connect fee is no rate
    assert max_rate(out.charges) == (Decimal("0.2"), 60 * SECOND)
    assert max_rate([]) == (None, 0)
