"""The generator's collector settings (it stands in for OpenSIPS, which never pauses for GC)."""

from __future__ import annotations

import gc

from bench.generator import quiet_collector


def test_quiet_collector_freezes_and_restores():
    before = gc.get_threshold()
    kept = [{"call": i} for i in range(1000)]  # records that live through the run
    with quiet_collector(young=12_345):
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() >= len(kept)  # out of every later pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
