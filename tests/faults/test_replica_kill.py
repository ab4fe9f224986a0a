"""Two replicas of every service on one Postgres: kill -9 of one replica of each service that
tests/faults/test_rals_failover.py and test_sm_failover.py do not already kill (the stateless
ones, cdre, the partitioned StatS and ThresholdS, the ResourceS replica owning the resources)
while calls run
through SM as OpenSIPS makes them. Afterwards every answered call is charged once, every CDR is
stored once and rated, and money debited == sum of CDR costs (bench.faults.problems); no call is
refused for a failed backend."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import FaultSuite, run_fault
from cgrpy.config import SERVICES
from tests.suite import replica_env, started

pytestmark = pytest.mark.faults

KILLED = ("attributes", "chargers", "suppliers", "cdre", "stats", "thresholds", "resources")
# ResourceS: the replica that owns the resources, whose death the other must take over from
FAULT = {"resources": "kill_resources_owner"}


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[FaultSuite]:
    db = pg_databases.create()
    with started(lambda: FaultSuite(db, **replica_env())) as s:
        yield s


@pytest.mark.parametrize("name", KILLED)
def test_kill_one_replica_mid_call_loses_and_doubles_nothing(suite: FaultSuite, name: str) -> None:
    assert len(suite.target.addrs(name)) == 2
    out = asyncio.run(run_fault(suite.target, FAULT.get(name, f"kill_{name}"), calls=24, cps=6.0,
                                hold=(1.0, 3.0), services=SERVICES))
    print(f"\nkill -9 of one {name} replica: {out.answered}/{out.calls} calls answered, "
          f"{out.errors} with errors, settled in {out.settle_s:.1f} s, debited {out.debited}, "
          f"takeover {out.measured.get('takeover_s', '-')} s")
    if out.problems:
        log = Path(tempfile.mkdtemp(prefix=f"cgrpy-fault-{name}-")) / "suite.log"
        log.write_text(suite.suite.read_output())
        pytest.fail(f"{out}\nsuite log: {log}")
    # the other replica answers what the dead one would have: the only refusals are the tutorial
    # plan's ResourceS limit on concurrent calls of one account, never a failed backend
    seen = out.measured.get("errors_seen", {})
    assert all("RESOURCE_UNAUTHORIZED" in e or "RESOURCE_UNAVAILABLE" in e for e in seen), seen
    assert out.answered >= 5, out
    assert out.debited > 0
    if name == "resources":
        assert out.measured["victim_owned"] and out.measured["takeover_s"] is not None, out.measured
