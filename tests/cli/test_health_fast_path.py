"""`cgr health` (every container health check, every few seconds) loads only its own command
module, not the whole CLI: on a busy host the full start-up overran the check's 5 s timeout."""

from __future__ import annotations

import subprocess
import sys

from tests.suite import REPO, free_port

PROBE = """
import sys
from cgrpy.cli.main import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.startswith(("cgrpy.cli.", "services.", "sqlalchemy")))
print("LOADED", ",".join(heavy))
"""


def test_health_loads_only_its_command():
    out = subprocess.run([sys.executable, "-c", PROBE, "health", "--service", "rals",
                          "--addr", f"127.0.0.1:{free_port()}", "--timeout", "0.5"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    loaded = out.stdout.split("LOADED ", 1)[1].strip().split(",")
    assert out.stdout.startswith("rals 127.0.0.1:") and "SERVING" not in out.stdout
    assert [m for m in loaded if m.startswith("cgrpy.cli.")] == ["cgrpy.cli.health", "cgrpy.cli.main"]
    assert not [m for m in loaded if m.startswith(("services.", "sqlalchemy"))], loaded


def test_other_commands_still_see_every_command():
    out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "--help"], capture_output=True,
                         text=True, timeout=60, cwd=REPO)
    for cmd in ("health", "smoke", "opensips", "up", "load"):
        assert cmd in out.stdout
