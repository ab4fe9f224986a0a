"""`python -m bench <mode>`: benchmarks of the suite (not part of the test suite).

Modes: ``calls`` (open-loop OpenSIPS call load, see bench/calls.py and bench/README.md).
"""

from __future__ import annotations

import argparse
import sys

from bench import calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    calls.register(sub)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
