"""The concurrent-call limit through a real OpenSIPS on the shipped script, driven by SIPp
(`cgr smoke`): ResGroup1 lets 1001-1003 hold 7 calls together, so of 8 overlapping calls from
1001 one is refused (the script answers 403 to the cgrates_auth error); once they hung up, a
new call goes through. Needs an OpenSIPS binary (``OPENSIPS_BIN``) and SIPp; skipped otherwise."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.suite import REPO

from .test_smoke import stack  # noqa: F401 - the fixture: suite + real OpenSIPS

pytestmark = pytest.mark.e2e


def test_eighth_overlapping_call_is_refused_then_a_slot_is_free(stack):  # noqa: F811
    suite, osips = stack
    sip_port = osips.cfg.read_text().split("socket=udp:127.0.0.1:", 1)[1].split()[0]
    jsonrpc = f"http://{suite.env['CGRPY_HTTP_LISTEN']}/jsonrpc"
    base = [sys.executable, "-m", "cgrpy.cli.main", "smoke", "--sip", f"127.0.0.1:{sip_port}",
            "--jsonrpc", jsonrpc]
    # 8 calls started within a second, each up for 6 s: all overlap
    out = subprocess.run([*base, "--calls", "8", "--rate", "8", "--duration", "6"],
                         capture_output=True, text=True, timeout=240, cwd=REPO)
    line = out.stdout.strip()
    assert out.returncode == 1, out.stdout + out.stderr + "\n" + osips.log_text()[-3000:]
    assert "1 of 8 calls not answered" in line and "7/8 calls answered" in line, line
    deadline = time.monotonic() + 10  # the worker's log line may land after SIPp is done
    while "RESOURCES_ERROR:RESOURCE_UNAUTHORIZED" not in osips.log_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "RESOURCES_ERROR:RESOURCE_UNAUTHORIZED" in osips.log_text(), osips.log_text()[-2000:]
    # the seven hung up: their units are back, a new call is answered and charged
    out = subprocess.run([*base, "--calls", "1", "--rate", "1", "--duration", "1"],
                         capture_output=True, text=True, timeout=180, cwd=REPO)
    assert out.returncode == 0 and out.stdout.startswith("smoke: OK: 1/1 calls answered"), out.stdout + out.stderr
    assert osips.problems() == [], osips.problems()
