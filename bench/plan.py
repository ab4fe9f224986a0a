"""The tariff plan a call benchmark runs on: generated destinations, the tutorial's rates, and N
prepaid/postpaid accounts topped up at load (AccountActions → ActionPlan *asap → *topup_reset).

Everything here is plain CSV in the CGRateS column layout, written to a folder that
``cgr load``/``cgr up --tariffplan`` takes as is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

TENANT = "cgrates.org"
# The tutorial's rates (tariffplans/tutorial/Rates.csv): connect fee + per-minute price, first
# minute charged whole, then per second.
RATES = """RT_10CNT,0.2,0.1,60s,60s,0s
RT_10CNT,0,0.05,60s,1s,60s
RT_20CNT,0.4,0.2,60s,60s,0s
RT_20CNT,0,0.1,60s,1s,60s
RT_40CNT,0.8,0.4,60s,30s,0s
RT_40CNT,0,0.2,60s,10s,60s
RT_1CNT,0,0.01,60s,60s,0s
"""
RATE_IDS = ("RT_10CNT", "RT_20CNT", "RT_40CNT", "RT_1CNT")
# Billed per second from the first second (connect fee 0.1, 0.6 per minute): every periodic SM
# debit is exactly one interval, so each one reaches RALs (with the tutorial's whole first minute,
# the first debit pays 60 s ahead and the next loops only consume it). The sessions mode uses it.
PER_SECOND_RATES = """RT_SEC,0.1,0.6,60s,1s,0s
"""
PER_SECOND_RATE_IDS = ("RT_SEC",)
# Two charger runs per call, as in the tutorial: *default is charged, *raw (RequestType *none)
# only records the call.
CHARGERS = """cgrates.org,DEFAULT,,,*default,*none,0
cgrates.org,Raw,,,*raw,*constant:*req.RequestType:*none,0
"""
RUNS_PER_CALL = 2
CHARGED_REQUEST_TYPES = frozenset({"*prepaid", "*postpaid", "*pseudoprepaid"})


@dataclass(frozen=True)
class Plan:
    folder: Path
    accounts: tuple[str, ...]
    prefixes: tuple[str, ...]  # one per generated destination; callees are prefix + digits
    balance: Decimal


def account_id(i: int) -> str:
    return f"{700000 + i}"


def write_plan(folder: Path, accounts: int, destinations: int = 20,
               balance: Decimal = Decimal(1000), per_second: bool = False) -> Plan:
    """Write the plan CSVs into ``folder`` (created if missing) and describe it.

    ``per_second``: every destination billed per second from the start (PER_SECOND_RATES)."""
    rates, rate_ids = (PER_SECOND_RATES, PER_SECOND_RATE_IDS) if per_second else (RATES, RATE_IDS)
    if accounts < 1 or destinations < 1:
        raise ValueError("need at least one account and one destination")
    folder.mkdir(parents=True, exist_ok=True)
    ids = tuple(account_id(i) for i in range(accounts))
    prefixes = tuple(f"49{300 + d}" for d in range(destinations))

    def write(name: str, header: str, body: str) -> None:
        (folder / f"{name}.csv").write_text(header + "\n" + body)

    write("Destinations", "#Id,Prefix", "".join(f"DST_B{d},{p}\n" for d, p in enumerate(prefixes)))
    write("Rates", "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart", rates)
    write("DestinationRates",
          "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy",
          "".join(f"DR_B{d},DST_B{d},{rate_ids[d % len(rate_ids)]},*up,4,0,\n"
                  for d in range(destinations)))
    write("RatingPlans", "#Id,DestinationRatesId,TimingTag,Weight",
          "".join(f"RP_BENCH,DR_B{d},*any,10\n" for d in range(destinations)))
    write("RatingProfiles", "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject",
          "".join(f"{TENANT},call,{a},2014-01-14T00:00:00Z,RP_BENCH,\n" for a in ids))
    write("Actions",
          "#ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,DestinationIds,"
          "RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,BalanceBlocker,"
          "BalanceDisabled,Weight",
          f"ACT_BENCH_TOPUP,*topup_reset,,,bench,*monetary,,*any,,,*unlimited,,{balance},10,false,false,10\n")
    write("ActionPlans", "#Id,ActionsId,TimingId,Weight", "AP_BENCH,ACT_BENCH_TOPUP,*asap,10\n")
    write("AccountActions", "#Tenant,Account,ActionPlanId,ActionTriggersId,AllowNegative,Disabled",
          "".join(f"{TENANT},{a},AP_BENCH,,,\n" for a in ids))
    write("Chargers", "#Tenant,ID,FilterIDs,ActivationInterval,RunID,AttributeIDs,Weight", CHARGERS)
    # A little of every subsystem the tutorial's OpenSIPS flags touch, so auth does the full fan-out:
    # AttributeS (*sessions), SupplierS (*weight), StatS (*tcc/*tcd). No thresholds: their
    # actions could move balances and blur the money check.
    write("Attributes",
          "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight",
          f"{TENANT},ATTR_BENCH,*sessions,,,,*req.OfficeGroup,*constant,Bench,false,10\n")
    write("Suppliers",
          "#Tenant,ID,FilterIDs,ActivationInterval,Sorting,SortingParamameters,SupplierID,"
          "SupplierFilterIDs,SupplierAccountIDs,SupplierRatingPlanIDs,SupplierResourceIDs,"
          "SupplierStatIDs,SupplierWeight,SupplierBlocker,SupplierParameters,Weight",
          f"{TENANT},SPL_BENCH,,2017-11-27T00:00:00Z,*weight,,supplier1,,,,,,10,,,10\n"
          f"{TENANT},SPL_BENCH,,,,,supplier2,,,,,,20,,,\n")
    write("Stats",
          "#Tenant,Id,FilterIDs,ActivationInterval,QueueLength,TTL,MinItems,Metrics,MetricFilterIDs,"
          "Stored,Blocker,Weight,ThresholdIDs",
          f"{TENANT},STATS_BENCH,,2014-07-29T15:00:00Z,100,-1,0,*tcc;*tcd,,false,true,30,*none\n")
    return Plan(folder, ids, prefixes, balance)


def callee(plan: Plan, rng: random.Random) -> str:
    return rng.choice(plan.prefixes) + f"{rng.randrange(10**6):06d}"
