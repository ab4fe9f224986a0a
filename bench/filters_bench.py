"""Candidate selection time per event with 100,000 profiles (it must stay under 1 ms).

Run: ``.venv/bin/python -m bench.filters_bench``. Not a unit test: it prints the numbers.
Each profile has an inline ``*string:~*req.Account:<n>`` filter (the AttributeS number
portability shape); the event hits exactly one of them.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from cgrpy.event import CGREvent
from cgrpy.filters import FilterS
from cgrpy.filters.selection import ProfileEntry, ProfileIndex

N_PROFILES = 100_000
N_EVENTS = 20_000


def build(n: int) -> ProfileIndex[str]:
    fs = FilterS()
    entries = (
        ProfileEntry("cgrates.org", f"P{i}", (f"*string:~*req.Account:{100000 + i}",), None,
                     Decimal(i % 7), f"P{i}", contexts=("*sessions",))
        for i in range(n)
    )
    return ProfileIndex(fs, entries, string_fields=None)


def main() -> None:
    t0 = time.perf_counter()
    idx = build(N_PROFILES)
    built = time.perf_counter() - t0
    rnd = random.Random(5)
    events = [
        CGREvent(event={"Account": str(100000 + rnd.randrange(N_PROFILES)), "Destination": "1002",
                        "Usage": "60s", "RequestType": "*prepaid"})
        for _ in range(N_EVENTS)
    ]
    t0 = time.perf_counter()
    for ev in events:
        idx.candidate_ids("cgrates.org", ev, "*sessions")
    cand = (time.perf_counter() - t0) / N_EVENTS
    t0 = time.perf_counter()
    for ev in events:
        got = idx.matching("cgrates.org", ev, "*sessions")
        assert len(got) == 1
    full = (time.perf_counter() - t0) / N_EVENTS
    print(f"profiles={N_PROFILES} build={built:.2f}s")
    print(f"candidate lookup per event: {cand * 1e6:.1f} us")
    print(f"candidates + activation + filters + ordering per event: {full * 1e6:.1f} us")


if __name__ == "__main__":
    main()
