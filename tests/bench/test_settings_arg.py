"""``bench ... --set NAME=VALUE``: the bench builds the started suite's environment without the
caller's CGRPY_* variables, so a setting to measure must be named this way (a run said to measure
gil_switch_interval=500us through the environment measured the default)."""

from __future__ import annotations

import argparse

import pytest

from bench.target import add_set_arg, settings_env


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_set_arg(p)
    return p.parse_args(list(argv))


def test_settings_become_the_suites_environment() -> None:
    args = _parse("--set", "gc_middle_threshold=2", "--set", "GIL_SWITCH_INTERVAL=500us")
    assert settings_env(args.set) == {"CGRPY_GC_MIDDLE_THRESHOLD": "2", "CGRPY_GIL_SWITCH_INTERVAL": "500us"}


@pytest.mark.parametrize("bad", ["gc_middle_threshold", "no_such_setting=1"])
def test_an_unknown_or_valueless_setting_is_refused(bad: str) -> None:
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        _parse("--set", bad)
