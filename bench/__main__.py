"""`python -m bench <mode>`: benchmarks of the suite (not part of the test suite).

Modes (bench/README.md): ``calls`` (open-loop OpenSIPS call load at a fixed rate), ``ramp`` (raise
the rate until authorize p99 passes a bound: the knee), ``soak`` (fixed rate for minutes, memory
over time), ``sessions`` (concurrent prepaid sessions with debits on schedule), ``echo`` (the same
fan-out with do-nothing backends: the transport ceiling), ``micro`` (in-process GetCost and CDR
storing), ``faults`` (calls while a fault hits the suite, then the invariants), ``failover``
(replicas of everything, calls for a minute, kill -9 of one process of a service, strict checks),
``plot`` (PNG plots of a result JSON).
"""

from __future__ import annotations

import argparse
import sys

from bench import calls, echo, failover, faults, micro, plot, ramp, sessions, soak, transport


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    for mode in (calls, ramp, soak, sessions, echo, micro, transport, faults, failover, plot):
        mode.register(sub)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
