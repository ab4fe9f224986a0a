"""Loader benchmark: a generated 1,000,000-row Destinations + Rates plan into a fresh Postgres.

    .venv/bin/python bench/loader_bench.py [--rows 1000000] [--pg postgresql://postgres@127.0.0.1:5432/test]

Plan shape (rows split 2:1:1): N/2 Destinations rows (N/4 destination IDs with two prefixes
each), N/4 Rates (one slot each) and N/4 DestinationRates binding each destination to its rate,
plus one RatingPlan. Prints JSON: rows, seconds (validate + write, CSV generation excluded),
rows/s, and peak RSS of the process (resource.getrusage). Targets: >= 50,000 rows/s and
<= 300 MB peak. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.tariffplan.loader import load_folder


def generate(folder: Path, rows: int) -> int:
    n = rows // 4
    with (folder / "Destinations.csv").open("w") as fh:
        fh.write("#Id,Prefix\n")
        for i in range(n):
            fh.write(f"DST_{i},49{i:07d}\nDST_{i},+49{i:07d}\n")
    with (folder / "Rates.csv").open("w") as fh:
        fh.write("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n")
        for i in range(n):
            fh.write(f"RT_{i},0.{i % 10},0.{i % 997:04d}1,60s,1s,0s\n")
    with (folder / "DestinationRates.csv").open("w") as fh:
        fh.write("#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,"
                 "MaxCostStrategy\n")
        for i in range(n):
            fh.write(f"DR_ALL,DST_{i},RT_{i},*up,4,0,\n")
    with (folder / "RatingPlans.csv").open("w") as fh:
        fh.write("#Id,DestinationRatesId,TimingTag,Weight\nRP_BIG,DR_ALL,*any,10\n")
    return 4 * n + 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="admin connection used to create/drop the benchmark database")
    args = ap.parse_args(argv)

    dbname = f"cgrpy_bench_{uuid.uuid4().hex[:8]}"
    admin = args.pg.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = admin.rsplit("/", 1)[0] + "/" + dbname
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            total = generate(folder, args.rows)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            result = load_folder(folder, engine=engine, tpid="bench")
            seconds = time.perf_counter() - started
        engine.dispose()
        if not result.ok:
            print("\n".join(str(p) for p in result.problems[:10]), file=sys.stderr)
            return 1
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        print(json.dumps({
            "backend": "postgresql",
            "rows": result.total_rows,
            "rows_generated": total,
            "rows_per_file": {k: v for k, v in result.counts.items() if v},
            "seconds": round(seconds, 2),
            "rows_per_second": round(result.total_rows / seconds),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "rss_before_load_mb": round(rss_before / 1024, 1),
            "targets": {"rows_per_second": 50000, "peak_rss_mb": 300},
        }, indent=2))
        return 0
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
