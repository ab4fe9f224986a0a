"""RALs failover on one machine: two RALs replicas (and two of each stateless service) on one
Postgres database of the test's own, calls through SM as OpenSIPS makes them, kill -9 of the
RALs replica owning the calling accounts mid-call. The survivor must take the dead owner's
partitions over, and afterwards: every answered call charged once, every CDR stored once and
rated, money debited == sum of CDR costs, `cgr account verify` holds, no session left in SM.
The takeover time (kill -> the survivor answers GetOwnership with the partitions) is printed.
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

from bench.faults import ACCOUNTS, TENANT, FaultSuite, run_fault
from cgrpy.config import SERVICES
from services.rals.partitions import partition_of
from tests.suite import REPO, replica_env, started

pytestmark = pytest.mark.faults



@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[FaultSuite]:
    db = pg_databases.create()
    with started(lambda: FaultSuite(db, **replica_env())) as s:
        yield s


def _status(suite: FaultSuite, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status", *args], cwd=REPO,
                         env=suite.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_kill_the_rals_owner_mid_call_loses_and_doubles_nothing(suite: FaultSuite) -> None:
    assert len(suite.target.addrs("rals")) == 2
    out = asyncio.run(run_fault(suite.target, "kill_rals_owner", calls=24, cps=6.0,
                                hold=(1.0, 3.0), services=SERVICES))
    m = out.measured
    print(f"\nRALs takeover after kill -9 of the owner {m.get('victim')}: "
          f"{m.get('takeover_s')} s (partitions {m.get('wanted')} now held by {m.get('taken_by')}); "
          f"{out.answered}/{out.calls} calls answered, {out.errors} with errors, "
          f"settled in {out.settle_s:.1f} s, debited {out.debited}; errors {m.get('errors_seen')}")
    if out.problems:
        log = Path(tempfile.mkdtemp(prefix="cgrpy-fault-rals-owner-")) / "suite.log"
        log.write_text(suite.suite.read_output())
        pytest.fail(f"{out}\nsuite log: {log}")
    assert out.answered >= 5, out
    # the killed replica owned both calling accounts, and the survivor took them over
    assert m["victim_partitions"] == m["wanted"], m
    assert m["takeover_s"] is not None, f"no takeover within 30 s: {m}"
    assert m["takeover_s"] < 5, m
    assert out.debited > 0

    # `cgr status --json`: each RALs replica with the partitions it owns; the calling accounts'
    # partitions have exactly one owner
    reps = json.loads(_status(suite, "--json"))["rals"]["replicas"]
    assert len(reps) == 2 and all(r["status"] == "SERVING" for r in reps), reps
    owners = [r["grpc"] for r in reps for p in r["ownership"]["partitions"]
              if p in {partition_of(TENANT, a) for a in ACCOUNTS}]
    assert sorted(set(owners)) == sorted(set(m["taken_by"]))
    for r in reps:
        assert r["ownership"]["advertised"] == r["grpc"] and r["ownership"]["mode"] == "advisory-locks"
    text = _status(suite)  # e.g. "rals-1  127.0.0.1:20153  SERVING  2/64 partitions 6,60 as ..."
    (line,) = [ln for ln in text.splitlines() if ln.startswith("rals-") and next(iter(m["taken_by"])) in ln]
    assert "partitions" in line and ",".join(map(str, m["wanted"])) in line, text
