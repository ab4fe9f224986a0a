"""`cgr smoke` against the suite started by `cgr up` and a real OpenSIPS on the shipped script.

Needs an OpenSIPS binary (``OPENSIPS_BIN`` or ``opensips`` on PATH) and SIPp; skipped otherwise.
The verdict logic is also checked without them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cgrpy.cli.smoke import verdict
from tests.suite import REPO, Suite, suite_env

from .test_opensips_start import real_opensips_or_skip

pytestmark = pytest.mark.e2e


def _args(calls: int = 2) -> argparse.Namespace:
    return argparse.Namespace(calls=calls, tenant="cgrates.org", caller="1001")


def test_verdict_needs_every_call_answered_with_cdrs_and_debited_at_cost():
    cdr = lambda oid, cost: {"OriginID": oid, "RunID": "*default", "Cost": Decimal(cost)}  # noqa: E731
    raw = {"OriginID": "a", "RunID": "*raw", "Cost": Decimal("-1")}
    raw_b = {**raw, "OriginID": "b"}
    ok, line = verdict(_args(), 2, [cdr("a", "0.6"), cdr("b", "0.6"), raw, raw_b], Decimal("1.2"))
    assert ok and line.startswith("smoke: OK: 2/2 calls answered, 4 CDRs (2 *default)")
    assert not verdict(_args(), 1, [cdr("a", "0.6")], Decimal("0.6"))[0]  # a call not answered
    assert not verdict(_args(), 2, [cdr("a", "0.6")], Decimal("0.6"))[0]  # an answered call without CDR
    # every call has the same runs: b lacks its *raw CDR
    ok, line = verdict(_args(), 2, [cdr("a", "0.6"), cdr("b", "0.6"), raw], Decimal("1.2"))
    assert not ok and "1 calls without all of their CDRs (*default, *raw)" in line
    ok, line = verdict(_args(), 2, [cdr("a", "0.6"), cdr("b", "0.6")], Decimal("1.0"))
    assert not ok and "debit 1.0 != cost 1.2" in line
    assert "\n" not in line


@pytest.fixture
def stack(tmp_path: Path, pg_databases) -> Iterator[tuple[Suite, object]]:
    if shutil.which("sipp") is None:
        pytest.skip("SIPp not installed (Debian package sip-tester)")
    env = suite_env(pg_databases.create())
    osips = real_opensips_or_skip(tmp_path, pg_databases.create(), env["CGRPY_OPENSIPS_LISTEN"])
    with Suite(env, "--tariffplan", str(REPO / "tariffplans" / "tutorial")) as suite:
        osips.start()
        try:
            yield suite, osips
        finally:
            osips.stop()


def test_smoke_places_calls_through_opensips_and_checks_the_charge(stack):
    suite, osips = stack
    sip_port = osips.cfg.read_text().split("socket=udp:127.0.0.1:", 1)[1].split()[0]
    jsonrpc = f"http://{suite.env['CGRPY_HTTP_LISTEN']}/jsonrpc"
    cmd = [sys.executable, "-m", "cgrpy.cli.main", "smoke", "--sip", f"127.0.0.1:{sip_port}",
           "--calls", "4", "--duration", "1", "--rate", "4", "--jsonrpc", jsonrpc]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stdout + out.stderr + "\n" + osips.log_text()[-3000:]
    assert len(lines) == 1 and lines[0].startswith("smoke: OK: 4/4 calls answered"), lines
    assert "8 CDRs (4 *default)" in lines[0]
    # a caller the deployment does not know: one FAIL line, non-zero exit
    out = subprocess.run([*cmd[:-6], "--calls", "1", "--caller", "9999", "--jsonrpc", jsonrpc],
                         capture_output=True, text=True, timeout=180, cwd=REPO)
    assert out.returncode == 1 and out.stdout.startswith("smoke: FAIL:"), out.stdout + out.stderr
    assert osips.problems() == [], osips.problems()
