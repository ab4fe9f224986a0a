"""CdrService with the REAL RALs server (tutorial plan): CDR debits, exactly once, spec numbers
, rerating over gRPC."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, rals_pb2, rals_pb2_grpc
from cgrpy.event import loads_exact
from cgrpy.units import SECOND
from services.cdre.server import CdreServer
from services.rals.server import RalsServer
from tests.cdre.receiver import Receiver
from tests.cdre.test_contract import NOWHERE, cdr_event, req
from tests.cdre.test_online_export_service import exporters_env, wait_for
from tests.harness import serve

# RALs on; everything else off (ChargerS/AttributeS runs are covered where those servers run).
FLAGS = ["*attributes:false", "*chargers:false", "*stats:false", "*thresholds:false"]


def monetary(acc: rals_pb2.Account) -> Decimal:
    return sum((Decimal(b.value) for b in acc.balances if b.type == "*monetary"), Decimal(0))


async def balance(rals: rals_pb2_grpc.RalsServiceStub, account: str) -> Decimal:
    return monetary(await rals.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org",
                                                                  account=account)))


@pytest.fixture
async def services(db_url):
    async with serve(RalsServer, db_url) as rals_svc:
        env = {**NOWHERE, "CGRPY_RALS_ADDR": rals_svc.addr}
        async with serve(CdreServer, db_url, tariffplan=None, env=env) as cdre_svc:
            yield (cdre_pb2_grpc.CdrServiceStub(cdre_svc.channel),
                   rals_pb2_grpc.RalsServiceStub(rals_svc.channel))


async def test_postpaid_cdr_debits_once_with_the_spec_cost(services):
    cdrs, rals = services
    assert await balance(rals, "1001") == Decimal(10)
    # 60 s is one 60 s increment: 0.4 connect + 0.2 = 0.6
    first = await cdrs.ProcessCDR(req(cdr_event("pp-1", rt="*postpaid", usage="60s"), FLAGS))
    run, = first.cdrs
    assert not first.duplicate
    assert (run.cost, run.cost_source, run.extra_info) == ("0.6", "*cdrs", "")
    assert run.cost_details_json  # the debit's cost details are kept with the CDR
    assert await balance(rals, "1001") == Decimal("9.4")

    again = await cdrs.ProcessCDR(req(cdr_event("pp-1", rt="*postpaid", usage="60s"), FLAGS))
    assert again.duplicate and [c.cost for c in again.cdrs] == ["0.6"]
    assert await balance(rals, "1001") == Decimal("9.4")
    assert (await cdrs.CountCDRs(cdre_pb2.CDRFilter(accounts=["1001"]))).count == 1

    # 85 s → EventCost 0.64175, a CDR debit is PerformRounding'd: 0.6418
    r85 = await cdrs.ProcessCDR(req(cdr_event("pp-2", rt="*postpaid", usage="1m25s"), FLAGS))
    assert [c.cost for c in r85.cdrs] == ["0.6418"]


async def test_postpaid_rounding_difference_is_charged_on_the_balance(services):
    cdrs, rals = services
    resp = await cdrs.ProcessCDR(req(cdr_event("pp-3", rt="*postpaid", usage="1m25s"), FLAGS))
    assert [c.cost for c in resp.cdrs] == ["0.6418"]
    # The rounding difference is an extra debit on the span's monetary balance
    assert await balance(rals, "1001") == Decimal(10) - Decimal("0.6418")


async def test_rated_cdr_without_cost_is_priced_and_moves_no_money(services):
    cdrs, rals = services
    # 1003 → 1001, 1 s: 0.2 connect + first 60 s increment 0.1 = 0.3
    resp = await cdrs.ProcessCDR(req(
        cdr_event("rt-1", rt="*rated", account="1003", destination="1001", usage="1s"), FLAGS))
    assert [c.cost for c in resp.cdrs] == ["0.3"]
    assert await balance(rals, "1003") == Decimal(10)


async def test_unrateable_cdr_is_stored_with_the_reason(services):
    cdrs, rals = services
    resp = await cdrs.ProcessCDR(req(
        cdr_event("bad-dst", rt="*postpaid", destination="99999"), FLAGS))
    run, = resp.cdrs
    assert run.cost == "-1" and run.extra_info  # RALs' word, e.g. UNAUTHORIZED_DESTINATION
    assert await balance(rals, "1001") == Decimal(10)


async def test_rate_cdrs_dry_run_and_real_rerate(services):
    cdrs, rals = services
    await cdrs.ProcessCDR(req(cdr_event("rr-1", rt="*postpaid", usage="60s"), FLAGS))
    assert await balance(rals, "1001") == Decimal("9.4")
    flt = cdre_pb2.CDRFilter(accounts=["1001"])

    dry = await cdrs.RateCDRs(cdre_pb2.RateCDRsRequest(filter=flt, dry_run=True))
    assert dry.rerated == 1 and Decimal(dry.cost_difference) == 0
    assert [c.cost for c in dry.cdrs] == ["0.6"]
    assert await balance(rals, "1001") == Decimal("9.4")

    # same tariff: the refund and the new debit cancel out, the account ends where it was
    real = await cdrs.RateCDRs(cdre_pb2.RateCDRsRequest(filter=flt))
    assert real.rerated == 1 and Decimal(real.cost_difference) == 0
    assert [c.cost for c in real.cdrs] == ["0.6"]
    assert await balance(rals, "1001") == Decimal("9.4")
    got, = (await cdrs.GetCDRs(flt)).cdrs
    assert got.cost == "0.6"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cdrs.RateCDRs(cdre_pb2.RateCDRsRequest(filter=cdre_pb2.CDRFilter(order_by="x")))
    e = err.value
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_online_export_cost_details_is_the_debits_event_cost(db_url, tmp_path):
    rx = Receiver()
    env = exporters_env(tmp_path, {"web": {"export_format": "*http_json_cdr", "export_path": rx.url}},
                        ["web"])
    with rx:
        async with serve(RalsServer, db_url) as rals_svc:
            env = {**env, "CGRPY_RALS_ADDR": rals_svc.addr}
            async with serve(CdreServer, db_url, tariffplan=None, env=env) as cdre_svc:
                cdrs = cdre_pb2_grpc.CdrServiceStub(cdre_svc.channel)
                flags = [f for f in FLAGS if f != "*export:false"]
                await cdrs.ProcessCDR(req(cdr_event("pp-ec", rt="*postpaid", usage="1m25s"), flags))

                async def delivered() -> bool:
                    return bool(rx.accepted())

                await wait_for(delivered)
    body = loads_exact(rx.accepted()[0].body)
    ec = body["CostDetails"]
    assert (ec["RunID"], ec["Usage"], ec["Cost"]) == ("*default", 85 * SECOND, Decimal("0.6418"))
    assert [len(ch["Increments"]) for ch in ec["Charges"]] == [2, 2]
    assert ec["AccountSummary"]["ID"] == "1001" and len(ec["Accounting"]) == 4
