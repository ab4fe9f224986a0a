"""A service process tunes its garbage collector once loaded: the young and full thresholds from the
settings and what it loaded frozen out of the scans; 0 keeps Python's defaults."""

from __future__ import annotations

import subprocess
import sys

from tests.suite import REPO

PROBE = """
import gc
from cgrpy.runtime.loop import tune_gc
data = [[i] for i in range(10000)]  # what a service loads
default = gc.get_threshold()
tune_gc({threshold}, 100, 3)
print(gc.get_threshold()[0], gc.get_freeze_count() >= 10000, default[0], gc.get_threshold()[2],
      gc.get_threshold()[1])
"""


def _probe(threshold: int) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(threshold=threshold)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_loaded_data_is_frozen_and_the_young_threshold_raised() -> None:
    assert _probe(50_000) == ["50000", "True", "700", "100", "3"]


def test_zero_keeps_pythons_defaults() -> None:
    assert _probe(0) == ["700", "False", "700", "10", "10"]


def test_the_switch_interval_is_set_from_nanoseconds() -> None:
    code = ("import sys; from cgrpy.runtime.loop import set_switch_interval; "
            "set_switch_interval(500_000); print(sys.getswitchinterval())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert float(out.stdout) == 0.0005
