"""After the run: do the stored CDRs and the account balances agree with the calls made?

* every completed call has its CDRs: CountCDRs == completed × runs per call;
* money is conserved, exactly (Decimal): Σ over accounts (balance before − after) ==
  Σ cost of the CDRs of charged runs (*prepaid/*postpaid/*pseudoprepaid).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from decimal import Decimal

import grpc
from prometheus_client.parser import text_string_to_metric_families

from bench.plan import CHARGED_REQUEST_TYPES, TENANT
from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc


def monetary(acc: rals_pb2.Account) -> Decimal:
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def balances(rals_addr: str, accounts: tuple[str, ...], concurrency: int = 16) -> dict[str, Decimal]:
    async with grpc.aio.insecure_channel(rals_addr) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        sem = asyncio.Semaphore(concurrency)

        async def one(a: str) -> tuple[str, Decimal]:
            async with sem:
                return a, monetary(await stub.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=a),
                                                         timeout=30))

        return dict(await asyncio.gather(*(one(a) for a in accounts)))


async def wait_cdr_count(cdre_addr: str, expected: int, timeout_s: float) -> int:
    """CountCDRs until it reaches ``expected`` or stops growing for ``timeout_s`` (SM spools CDRs
    and cdre stores them a moment later)."""
    async with grpc.aio.insecure_channel(cdre_addr) as ch:
        stub = cdre_pb2_grpc.CdrServiceStub(ch)
        last, still_since = -1, time.monotonic()
        while True:
            n = (await stub.CountCDRs(cdre_pb2.CDRFilter(tenants=[TENANT]), timeout=30)).count
            if n >= expected:
                return n
            if n != last:
                last, still_since = n, time.monotonic()
            elif time.monotonic() - still_since > timeout_s:
                return n
            await asyncio.sleep(0.5)


async def cdr_costs(cdre_addr: str, accounts: set[str], page: int = 1000) -> tuple[Decimal, dict[str, int], int]:
    """(Σ cost of charged-run CDRs of ``accounts``, CDRs by run id, CDRs with a negative cost)."""
    total, runs, unrated = Decimal(0), {}, 0
    async with grpc.aio.insecure_channel(cdre_addr, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        stub = cdre_pb2_grpc.CdrServiceStub(ch)
        offset = 0
        while True:
            got = (await stub.GetCDRs(cdre_pb2.CDRFilter(tenants=[TENANT], limit=page, offset=offset),
                                      timeout=60)).cdrs
            for c in got:
                if c.account not in accounts:
                    continue
                runs[c.run_id] = runs.get(c.run_id, 0) + 1
                if c.request_type in CHARGED_REQUEST_TYPES:
                    cost = Decimal(c.cost) if c.cost else Decimal(0)
                    if cost < 0:  # -1 = not rated (CGRateS): counted apart, not summed
                        unrated += 1
                    else:
                        total += cost
            if len(got) < page:
                return total, runs, unrated
            offset += page


def scrape(url: str) -> dict[str, dict[str, float]]:
    """The SM counters worth reporting, as {metric: {label text: value}}."""
    wanted = {"cgrpy_sm_requests", "cgrpy_sm_replies_over_deadline", "cgrpy_sm_debits",
              "cgrpy_sm_disconnects", "cgrpy_sm_backend_failures", "cgrpy_sm_authorizations",
              "cgrpy_sm_calls_started", "cgrpy_sm_cdr_spool_depth", "cgrpy_sm_active_sessions"}
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name not in wanted:
            continue
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) or "-"
            out.setdefault(fam.name, {})[label] = s.value
    return out
