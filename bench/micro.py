"""`python -m bench micro`: the in-process micro-benchmarks in one command.

* **rating**: ``get_cost`` in process on the tutorial plan, 1001 → 1002, 85 s (EventCost 0.64175,
  asserted), ``--runs`` calls timed one by one (``bench.rals_bench.bench_in_process``);
* **CDR storing**: cdre's ``CdrStore.reserve`` + ``finish`` (the two transactions cdre runs per
  charger run) serially in this process on a fresh Postgres database (and ``--sqlite`` too),
  ``--cdrs`` rows; every row read back as rated with its cost;
* with ``--pipeline N``: also ``bench/cdrs_bench.py --cdrs N`` (the whole suite, ProcessCDR over
  gRPC, export) — slow, off by default.

JSON (``--out``) and a table. Exit code 0 when every check held, 3 when not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.measure import loadavg
from bench.target import PG_ADMIN, FreshDatabase, commit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("micro", help="in-process micro-benchmarks: GetCost, CDR storing")
    p.add_argument("--runs", type=int, default=20000, help="get_cost calls timed")
    p.add_argument("--cdrs", type=int, default=1000, help="CDR rows stored (reserve + finish)")
    p.add_argument("--sqlite", action="store_true", help="store the CDRs on SQLite too")
    p.add_argument("--pipeline", type=int, default=0, metavar="N",
                   help="also run bench/cdrs_bench.py with N CDR events (starts the whole suite)")
    p.add_argument("--pg-admin", default=PG_ADMIN)
    p.add_argument("--out", type=Path, help="write the result JSON here")
    p.set_defaults(func=run)


def _pct(sorted_ns: list[int], p: float) -> float:
    return round(sorted_ns[max(0, int(len(sorted_ns) * p) - 1)] / 1000, 1)


def bench_cdr_store(url: str, n: int) -> dict[str, Any]:
    from cgrpy.storage.db import make_engine
    from cgrpy.storage.migrate import upgrade
    from services.cdre.cdr import CDR
    from services.cdre.store import CdrFilter, CdrStore

    upgrade(url)
    engine = make_engine(url)
    try:
        store = CdrStore(engine)
        tag = uuid.uuid4().hex[:8]
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        cost = Decimal("0.6418")
        reserve_ns: list[int] = []
        finish_ns: list[int] = []
        clock = time.perf_counter_ns
        start = time.perf_counter()
        for i in range(n):
            cdr = CDR(cgrid=f"{tag}{i:08d}", run_id="*default", origin_host="127.0.0.1", source="bench",
                      origin_id=f"{tag}-{i}", request_type="*postpaid", account="1001", subject="1001",
                      destination="1002", setup_time=t0, answer_time=t0, usage_ns=85_000_000_000)
            t = clock()
            stored, dup = store.reserve(cdr)
            reserve_ns.append(clock() - t)
            assert not dup
            t = clock()
            store.finish(stored.cdr.order_id, cost=cost, cost_source="*cdrs", cost_details=None,
                         extra_info="", debit_request_id=f"{cdr.cgrid}:*default")
            finish_ns.append(clock() - t)
        seconds = time.perf_counter() - start
        back = store.get_cdrs(CdrFilter(origin_ids=[f"{tag}-{i}" for i in range(n)]))
        ok = len(back) == n and all(c.cost == cost for c in back)
    finally:
        engine.dispose()
    reserve_ns.sort()
    finish_ns.sort()
    return {"backend": url.split(":", 1)[0], "rows": n, "seconds": round(seconds, 2),
            "rows_per_s": round(n / seconds, 1),
            "reserve_us": {"median": round(statistics.median(reserve_ns) / 1000, 1), "p99": _pct(reserve_ns, 0.99)},
            "finish_us": {"median": round(statistics.median(finish_ns) / 1000, 1), "p99": _pct(finish_ns, 0.99)},
            "ok": ok}


def table(result: dict[str, Any]) -> str:
    g = result["getcost_in_process"]
    lines = [f"cgrpy micro-benchmarks  {result['started_utc']}  commit {result['commit']}  "
             f"load {result['loadavg_before']}",
             f"get_cost in process ({g['runs']} runs): median {g['median_us']} µs  p99 {g['p99_us']} µs  "
             f"mean {g['mean_us']} µs  (+ EventCost dict: median {g['median_with_event_cost_us']} µs; "
             f"target median {g['target_median_us']} µs)"]
    for s in result["cdr_store"]:
        lines.append(f"CDR store on {s['backend']} ({s['rows']} rows, reserve+finish serial): "
                     f"{s['rows_per_s']} rows/s; reserve median/p99 {s['reserve_us']['median']}/"
                     f"{s['reserve_us']['p99']} µs, finish {s['finish_us']['median']}/{s['finish_us']['p99']} µs"
                     f"  {'OK' if s['ok'] else '!!! rows not read back rated'}")
    if "cdr_pipeline" in result:
        p = result["cdr_pipeline"]
        lines.append(f"CDR pipeline (cdrs_bench, {p.get('cdr_events')} events): {p.get('cdr_events_per_s')} "
                     f"events/s, {p.get('cdr_rows_per_s')} rows/s, export {p.get('export', {}).get('rows_per_s')} "
                     f"rows/s  {'OK' if p.get('ok') else '!!! ' + '; '.join(p.get('problems', []))}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from bench.rals_bench import bench_in_process

    if args.runs < 1 or args.cdrs < 1:
        raise SystemExit("bench micro: --runs and --cdrs must be positive")
    result: dict[str, Any] = {"mode": "micro", "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "commit": commit(), "loadavg_before": loadavg()}
    result["getcost_in_process"] = bench_in_process(args.runs)
    result["cdr_store"] = []
    with ExitStack() as stack:
        url = stack.enter_context(FreshDatabase(args.pg_admin))
        result["cdr_store"].append(bench_cdr_store(url, args.cdrs))
        if args.sqlite:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cgrpy-micro-"))
            result["cdr_store"].append(bench_cdr_store(f"sqlite:///{tmp}/cdrs.sqlite", args.cdrs))
    if args.pipeline:
        from bench import cdrs_bench

        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            rc = cdrs_bench.main(["--cdrs", str(args.pipeline), "--warmup", str(min(100, args.pipeline)),
                                  "--pg-admin", args.pg_admin, "--out", f.name])
            result["cdr_pipeline"] = json.loads(Path(f.name).read_text()) if rc in (0, 3) else {"ok": False,
                                                                                               "problems": [f"exit {rc}"]}
    result["loadavg_after"] = loadavg()
    ok = all(s["ok"] for s in result["cdr_store"]) and result.get("cdr_pipeline", {"ok": True})["ok"]
    result["consistency"] = {"ok": ok}
    result["command"] = " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv else ""
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"result written to {args.out}")
    return 0 if ok else 3
