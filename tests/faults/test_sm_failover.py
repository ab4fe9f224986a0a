"""SM failover on one machine: two replicas of every service (SM included) on one Postgres
database of the test's own; calls placed through SM replica 0 as OpenSIPS places them, with
replica 1 configured as the second engine; kill -9 of SM replica 0 mid-call. The calls go on
through replica 1 (the client fails over as OpenSIPS's cgrates module does: the next command goes
to the next engine), which adopts the dead replica's sessions from the StorDB. Afterwards: every
answered call charged once, every CDR stored once and rated, money debited == sum of CDR costs,
`cgr account verify` holds, no session left active on any replica. The takeover time (kill -> no
session in the StorDB owned by the killed process) is printed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import FaultSuite, run_fault
from cgrpy.config import SERVICES
from tests.suite import REPO, replica_env, started

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[FaultSuite]:
    db = pg_databases.create()
    with started(lambda: FaultSuite(db, **replica_env())) as s:
        yield s


def test_kill_the_sm_charging_the_calls_mid_call_loses_and_doubles_nothing(suite: FaultSuite) -> None:
    engines = suite.target.opensips_all()
    assert len(engines) == 2 and len(suite.target.addrs("sm")) == 2
    out = asyncio.run(run_fault(suite.target, "kill_sm_owner", calls=24, cps=6.0,
                                hold=(1.5, 4.0), services=SERVICES))
    m = out.measured
    print(f"\nSM takeover after kill -9 of {m.get('victim')}: {m.get('takeover_s')} s "
          f"({m.get('sessions_before')} session(s) in the StorDB at the kill; owners after "
          f"{m.get('owners_after')}); {out.answered}/{out.calls} calls answered, {out.errors} with "
          f"errors, settled in {out.settle_s:.1f} s, debited {out.debited}; errors {m.get('errors_seen')}; "
          f"session CDRs with CostDetails {m.get('session_cdrs_with_cost_details')}")
    text = suite.suite.read_output()
    for line in text.splitlines():
        if any(k in line for k in ("sm.adopted", "sm.restored_reconciled", "sm.owner")):
            print(line[:300])
    if out.problems:
        log = Path(tempfile.mkdtemp(prefix="cgrpy-fault-sm-owner-")) / "suite.log"
        log.write_text(text)
        pytest.fail(f"{out}\nsuite log: {log}")
    assert out.answered >= 5, out
    assert m["victim_owner"], m  # the killed SM held sessions when it died
    assert m["takeover_s"] is not None, f"no adoption within 30 s: {m}"
    assert m["takeover_s"] < 5, m
    assert out.debited > 0
    # the survivor adopted the sessions and the switch confirmed them there (charging resumed)
    assert "sm.adopted" in text and "sm.restored_reconciled" in text
    # adopted sessions name the same debits in RALs' journal: every prepaid CDR keeps the merged
    # EventCost (problems() above refuses one whose Cost is not the CDR's)
    with_details, sessions = m["session_cdrs_with_cost_details"].split("/")
    assert int(sessions) > 0 and with_details == sessions, m

    # `cgr status --json`: both SM replicas SERVING (the killed one restarted), each with its own
    # OpenSIPS listener under "opensips"
    status = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status", "--json"], cwd=REPO,
                            env=suite.env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    reps = json.loads(status.stdout)["sm"]["replicas"]
    assert [r["opensips"] for r in reps] == [f"{h}:{p}" for h, p in engines]
    assert all(r["status"] == "SERVING" for r in reps), reps


def test_kill_the_sm_and_the_rals_owner_at_once_loses_and_doubles_nothing(suite: FaultSuite) -> None:
    """Issue 21's worst case on one machine: the SM the calls go through and the RALs replica
    owning the calling accounts die together mid-call."""
    out = asyncio.run(run_fault(suite.target, "kill_sm_and_rals_owner", calls=24, cps=6.0,
                                hold=(1.5, 4.0), services=SERVICES))
    m = out.measured
    print(f"\nkill -9 of SM {m.get('victim')} and RALs {m.get('rals_victim')} together: SM takeover "
          f"{m.get('takeover_s')} s, RALs takeover {m.get('rals_takeover_s')} s; {out.answered}/"
          f"{out.calls} calls answered, {out.errors} with errors, settled in {out.settle_s:.1f} s, "
          f"debited {out.debited}; errors {m.get('errors_seen')}")
    if out.problems:
        log = Path(tempfile.mkdtemp(prefix="cgrpy-fault-sm-rals-")) / "suite.log"
        log.write_text(suite.suite.read_output())
        pytest.fail(f"{out}\nsuite log: {log}")
    assert out.answered >= 5, out
    assert m["victim_owner"], m  # the killed SM (the restarted replica 0) held sessions
    assert m["takeover_s"] is not None and m["takeover_s"] < 5, m
    assert m["rals_takeover_s"] is not None and m["rals_takeover_s"] < 5, m
    assert out.debited > 0
