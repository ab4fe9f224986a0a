"""A price change reaches every RALs replica: a suite with two of each replicated service on
its own Postgres database (`cgr up` with CGRPY_REPLICAS=2), a TP rate changed and loaded over
JSON-RPC, then GetCost asked of each RALs replica over gRPC (SM's sessions spread their RALs
calls over both): every answer has the new price. Reloading only the RALs process that served
the load left the other one rating at the old price."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc, tariffplan_pb2, tariffplan_pb2_grpc
from cgrpy.config import REPLICA_PORT_STEP
from cgrpy.event import dumps_exact
from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.csvread import read_folder
from tests.apier.conftest import TUTORIAL
from tests.apier.jsonrpc_client import TcpClient, ok
from tests.suite import Suite, replica_env, started, suite_env

T0_NS = 1407157200 * 10**9  # 2014-08-04T13:00:00Z


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    url = pg_databases.create()
    with started(lambda: Suite(suite_env(url, **replica_env()), "--tariffplan", str(TUTORIAL), timeout=180)) as s:
        yield s


def costs(suite: Suite, destination: str = "1002") -> list[Decimal]:
    """The CallCost of 1001 -> ``destination``, 85 s, from each RALs replica."""
    base = suite.port("rals")
    out = []
    for port in (base, base + REPLICA_PORT_STEP):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            resp = rals_pb2_grpc.RalsServiceStub(ch).GetCost(rals_pb2.CallDescriptor(
                tenant="cgrates.org", category="call", account="1001", subject="1001", destination=destination,
                tor="*voice", time_start_unix_ns=T0_NS, usage_ns=85 * 10**9), timeout=10)
        out.append(Decimal(resp.cost))
    return out


def test_a_loaded_price_reaches_every_rals_replica(suite):
    api = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        assert costs(suite) == [Decimal("0.64175")] * 2  # the tutorial's price
        assert ok(api.call("APIerSv1.SetTPRate", {"TPid": "portal", "ID": "RT_20CNT", "RateSlots": [
            {"ConnectFee": 0, "Rate": Decimal("0.5"), "RateUnit": "60s", "RateIncrement": "60s",
             "GroupIntervalStart": "0s"}]})) == "OK"
        assert ok(api.call("APIerSv1.LoadTariffPlanFromStorDb", {"TPid": "portal"})) == "OK"
        assert costs(suite) == [Decimal("1")] * 2  # 2 minutes at 0.5, on both replicas
        # a live rating profile too: 1001 rated by RP_1002 (calls to 1001 only)
        assert ok(api.call("APIerSv1.SetRatingProfile", {"Category": "call", "Subject": "1001", "Overwrite": True,
                                                         "RatingPlanActivations": [
                                                             {"ActivationTime": "2014-01-14T00:00:00Z",
                                                              "RatingPlanId": "RP_1002"}]})) == "OK"
        assert costs(suite, "1001") == [Decimal("1")] * 2  # RP_1002 rates 1001 with RT_20CNT
        # a folder load (what `cgr load` does) reaches both as well
        assert ok(api.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) == "OK"
        assert costs(suite) == [Decimal("0.64175")] * 2
    finally:
        api.close()


def test_a_change_made_through_the_second_replica_reaches_the_first(suite):
    """The TariffPlanService of RALs replica 1 reloads its peers too: each replica's own settings
    name every replica's address (computed from its own shifted port, replica 1 looked for its
    peer one step too far and the first replica kept the old price)."""
    second = f"127.0.0.1:{suite.port('rals') + REPLICA_PORT_STEP}"
    activation = {"ActivationTime": "2014-01-14T00:00:00Z", "RatingPlanId": "RP_1002", "FallbackSubjects": ""}
    obj = {"Tenant": "cgrates.org", "Category": "call", "Subject": "1001", "RatingPlanActivations": [activation]}
    with pytest.raises(grpc.RpcError, match="UNAUTHORIZED_DESTINATION"):
        costs(suite, "1001")  # the tutorial has no rate from 1001 to 1001
    with grpc.insecure_channel(second) as ch:
        tariffplan_pb2_grpc.TariffPlanServiceStub(ch).SetProfile(tariffplan_pb2.ProfileRequest(
            kind="TPRatingProfile", tpid=suite.env.get("CGRPY_TPID", "cgrpy"),
            object=common_pb2.JsonObject(json=dumps_exact(obj))), timeout=30)
    try:
        after = costs(suite, "1001")
        assert after[0] == after[1] > 0  # RP_1002 on both (the first raised before the fix)
    finally:
        api = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
        try:
            assert ok(api.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) == "OK"
        finally:
            api.close()


def test_cache_reload_reaches_every_replica(suite, tmp_path):
    """CacheSv1.ReloadCache after the StorDB changed behind the services' back (a script's own
    load): both RALs replicas rate with the new plan (it asked only the first before)."""
    plan = tmp_path / "plan"
    shutil.copytree(TUTORIAL, plan)
    rates = plan / "Rates.csv"
    rates.write_text(rates.read_text().replace("RT_20CNT,0.4,0.2,60s,60s,0s", "RT_20CNT,0.4,0.5,60s,60s,0s"))
    engine = make_engine(suite.env["CGRPY_STORDB_URL"])
    api = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    try:
        replace_tariffplan(engine, suite.env.get("CGRPY_TPID", "cgrpy"), read_folder(plan), source="test")
        assert costs(suite) == [Decimal("0.64175")] * 2  # nothing reloaded yet
        assert ok(api.call("CacheSv1.ReloadCache", {"RatingPlanIDs": None})) == "OK"
        assert costs(suite) == [Decimal("0.94175")] * 2  # 0.4 + 0.5 for the first minute + 25 s at 0.1/min
    finally:
        assert ok(api.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) == "OK"
        api.close()
        engine.dispose()
