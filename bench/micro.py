"""`python -m bench micro`: the in-process micro-benchmarks in one command.

* **rating**: ``get_cost`` in process on the tutorial plan, 1001 → 1002, 85 s (EventCost 0.64175,
  asserted), ``--runs`` calls timed one by one (``bench.rals_bench.bench_in_process``);
* **CDR storing**: cdre's ``CdrStore.reserve`` + ``finish`` (the two transactions cdre runs per
  charger run) serially in this process on a fresh Postgres database (and ``--sqlite`` too),
  ``--cdrs`` rows; every row read back as rated with its cost;
* with ``--pipeline N``: also ``bench/cdrs_bench.py --cdrs N`` (the whole suite, ProcessCDR over
  gRPC, export) — slow, off by default;
* **SM session table**: SM's real ``SessionManager`` over in-memory backends and session store
  (``_SmBackends``/``_SmStore`` below), holding N closed sessions for each N of
  ``--sessions-closed`` (100 and 100,000): ``--sessions-ops`` ProcessCDR of unknown and of closed
  sessions, Terminate of active sessions (which then close) and of closed ones (duplicates), µs
  per operation for each N and the ratio largest N / smallest N. ``--only sessions`` runs just
  this part (no database needed).

JSON (``--out``) and a table. Exit code 0 when every check held, 3 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
    p.add_argument("--sessions-closed", default="100,100000", metavar="N,N",
                   help="closed sessions SM's table holds, one SM session figure per N")
    p.add_argument("--sessions-ops", type=int, default=1000, metavar="K",
                   help="operations of each kind timed per N (ProcessCDR, Terminate)")
    p.add_argument("--only", choices=["sessions"], help="run only this part (sessions: the SM session table)")
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


# ----------------------------------------------------------------------------- SM session table


class _SmBackends:
    """SM's ``Backends`` in memory: one ``*default`` postpaid run, no RALs hop, CDRs counted."""

    def __init__(self) -> None:
        from services.sm.sessions.types import ProfileSet

        self.cdrs = 0
        self._ps = ProfileSet("bench:1", frozenset({"Context"}), True)

    async def attributes_process_event(self, event: Any, context: str) -> Any:
        from services.sm.sessions.backends import BackendError

        raise BackendError("NOT_FOUND")

    async def chargers_process_event(self, event: Any) -> list[Any]:
        from services.sm.sessions.types import ChargerRun

        ev = event.copy()
        ev.event["RunID"] = "*default"
        return [ChargerRun("*default", ev, ("*req.RunID",), self._ps)]

    async def rals_get_max_usage(self, run_event: Any, usage_ns: int) -> int:
        return usage_ns

    async def rals_debit(self, run_event: Any, usage_ns: int, request_id: str, **_kw: Any) -> Any:
        from services.sm.sessions.types import DebitResult

        return DebitResult(usage_ns, Decimal(0))

    async def rals_refund(self, run_event: Any, debit_ids: list[str], keep_usage_ns: int, request_id: str) -> Any:
        from services.sm.sessions.types import RefundResult

        return RefundResult(0, Decimal(0))

    async def cdrs_process_cdr(self, event: Any, *, chargers: bool, attributes: bool, rals: bool) -> Any:
        from services.sm.sessions.types import CdrResult

        self.cdrs += 1
        return CdrResult(stored=1)

    async def suppliers_get_suppliers(self, event: Any) -> Any:
        from services.sm.sessions.backends import BackendError

        raise BackendError("NOT_FOUND")

    async def stats_process_event(self, event: Any) -> list[str]:
        return []

    async def thresholds_process_event(self, event: Any) -> list[str]:
        return []

    async def stats_queue_ids(self, tenant: str) -> list[str]:
        return []

    async def thresholds_ids(self, tenant: str) -> list[str]:
        return []


class _SmStore:
    """SM's session store in memory: cgrid -> (closed, session)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[bool, Any]] = {}

    def save(self, s: Any) -> None:
        self.rows[s.cgrid] = (False, s)

    def save_closed(self, s: Any) -> None:
        self.rows[s.cgrid] = (True, s)

    def save_progress(self, s: Any, *, closed: bool = False) -> bool:
        if s.cgrid not in self.rows:
            return False
        self.rows[s.cgrid] = (closed, s)
        return True

    def delete(self, cgrid: str) -> None:
        self.rows.pop(cgrid, None)


def _us(ns: list[int]) -> dict[str, float]:
    ns = sorted(ns)
    return {"median": round(statistics.median(ns) / 1000, 1), "p99": _pct(ns, 0.99),
            "mean": round(sum(ns) / len(ns) / 1000, 1)}


SM_OPS = ("process_cdr_unknown", "process_cdr_closed", "terminate_active", "terminate_closed")


async def _sm_table_once(closed: int, ops: int) -> dict[str, Any]:
    from cgrpy.event import CGREvent
    from services.sm.opensips.messages import cgrid_of
    from services.sm.sessions.core import Session, SessionManager, SMConfig, SRun
    from services.sm.sessions.types import SessionFlags

    host = "127.0.0.1"

    def event(oid: str, **extra: Any) -> CGREvent:
        return CGREvent(event={"OriginID": oid, "OriginHost": host, "RequestType": "*postpaid",
                               "Account": "1001", "Destination": "1002", "AnswerTime": "1795677153",
                               **extra})

    backends, store = _SmBackends(), _SmStore()
    sm = SessionManager(backends, SMConfig(), store=store)  # type: ignore[arg-type]
    start = time.perf_counter()
    now = time.monotonic()
    filled = []
    gc.disable()  # filling is not timed; collections over the growing heap only slow it down
    try:
        for i in range(closed):
            oid = f"closed-{i}@bench"
            ev = event(oid, Usage=85_000_000_000)
            s = Session(cgrid=cgrid_of(ev), event=ev, closed_at=now, terminating=True,
                        runs=[SRun("*default", event(oid, Usage=85_000_000_000, RunID="*default"), "*postpaid")])
            s.ready.set()
            s.done.set()
            filled.append(s)
        sm.restore(filled)  # done sessions go to the closed set, as after a restart
    finally:
        gc.enable()
    fill_s = time.perf_counter() - start
    step = max(1, closed // ops)
    picked = [filled[(i * step) % closed].origin_id for i in range(ops)]
    # the ones Terminate will find active: initiated beforehand, not timed
    for i in range(ops):
        await sm.initiate(event(f"active-{i}@bench"), SessionFlags())
    gc.collect()
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {op: [] for op in SM_OPS}
    answers: list[str | None] = []
    for op, ids, call in (
        ("process_cdr_unknown", [f"unknown-{i}@bench" for i in range(ops)], sm.process_cdr),
        ("process_cdr_closed", picked, sm.process_cdr),
        ("terminate_active", [f"active-{i}@bench" for i in range(ops)], sm.terminate),
        ("terminate_closed", picked, sm.terminate),
    ):
        evs = [event(oid, Usage="85s") for oid in ids]
        out = times[op]
        for ev in evs:
            t = clock()
            answers.append(await call(ev))
            out.append(clock() - t)
    kept = len(sm._closed)
    await sm.shutdown()
    # a closed session's CDRs are posted once: a second ProcessCDR for it adds none
    ok = (all(a is None for a in answers) and backends.cdrs == ops + len(set(picked)) and kept == closed + ops
          and not sm.active_sessions())
    return {"closed": closed, "ops": ops, "fill_s": round(fill_s, 2), "closed_after": kept,
            **{f"{op}_us": _us(times[op]) for op in SM_OPS}, "ok": ok}


def bench_sm_table(closed: list[int], ops: int) -> dict[str, Any]:
    """SM's session table with ``closed`` closed sessions kept: µs per ProcessCDR / Terminate."""
    runs = [asyncio.run(_sm_table_once(n, ops)) for n in closed]
    lo, hi = min(runs, key=lambda r: r["closed"]), max(runs, key=lambda r: r["closed"])
    ratio = {op: round(hi[f"{op}_us"]["median"] / lo[f"{op}_us"]["median"], 2) for op in SM_OPS}
    ratio_mean = {op: round(hi[f"{op}_us"]["mean"] / lo[f"{op}_us"]["mean"], 2) for op in SM_OPS}
    return {"closed": closed, "ops": ops, "runs": runs, "ratio_closed": [lo["closed"], hi["closed"]],
            "ratio": ratio, "ratio_mean": ratio_mean, "ok": all(r["ok"] for r in runs)}


def table(result: dict[str, Any]) -> str:
    lines = [f"cgrpy micro-benchmarks  {result['started_utc']}  commit {result['commit']}  "
             f"load {result['loadavg_before']}"]
    if "getcost_in_process" in result:
        g = result["getcost_in_process"]
        lines.append(f"get_cost in process ({g['runs']} runs): median {g['median_us']} µs  p99 {g['p99_us']} µs  "
                     f"mean {g['mean_us']} µs  (+ EventCost dict: median {g['median_with_event_cost_us']} µs; "
                     f"target median {g['target_median_us']} µs)")
    for s in result.get("cdr_store", []):
        lines.append(f"CDR store on {s['backend']} ({s['rows']} rows, reserve+finish serial): "
                     f"{s['rows_per_s']} rows/s; reserve median/p99 {s['reserve_us']['median']}/"
                     f"{s['reserve_us']['p99']} µs, finish {s['finish_us']['median']}/{s['finish_us']['p99']} µs"
                     f"  {'OK' if s['ok'] else '!!! rows not read back rated'}")
    if "cdr_pipeline" in result:
        p = result["cdr_pipeline"]
        lines.append(f"CDR pipeline (cdrs_bench, {p.get('cdr_events')} events): {p.get('cdr_events_per_s')} "
                     f"events/s, {p.get('cdr_rows_per_s')} rows/s, export {p.get('export', {}).get('rows_per_s')} "
                     f"rows/s  {'OK' if p.get('ok') else '!!! ' + '; '.join(p.get('problems', []))}")
    if "sm_session_table" in result:
        t = result["sm_session_table"]
        fill = ", ".join(f"{r['closed']} in {r['fill_s']} s" for r in t["runs"])
        lines.append(f"SM session table ({t['ops']} ops each, median/p99 µs per op; filled {fill}):")
        lines.append(f"  {'closed kept':>11}  " + "  ".join(f"{op:>20}" for op in SM_OPS))
        for r in t["runs"]:
            cells = "  ".join(f"{r[op + '_us']['median']:>10}/{r[op + '_us']['p99']:<9}" for op in SM_OPS)
            lines.append(f"  {r['closed']:>11}  {cells}  {'OK' if r['ok'] else '!!! check failed'}")
        lo, hi = t["ratio_closed"]
        lines.append(f"  {'ratio':>11}  " + "  ".join(f"{t['ratio'][op]:>20}" for op in SM_OPS)
                     + f"  (median at {hi} / at {lo} closed)")
        lines.append(f"  {'ratio mean':>11}  " + "  ".join(f"{t['ratio_mean'][op]:>20}" for op in SM_OPS)
                     + "  (mean: with the garbage collector's passes over the kept sessions)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from bench.rals_bench import bench_in_process

    if args.runs < 1 or args.cdrs < 1 or args.sessions_ops < 1:
        raise SystemExit("bench micro: --runs, --cdrs and --sessions-ops must be positive")
    try:
        closed = [int(n) for n in args.sessions_closed.split(",") if n.strip()]
    except ValueError:
        closed = []
    if not closed or min(closed) < 1:
        raise SystemExit("bench micro: --sessions-closed wants positive counts, e.g. 100,100000")
    result: dict[str, Any] = {"mode": "micro", "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "commit": commit(), "loadavg_before": loadavg()}
    if args.only == "sessions":
        return _finish(args, result, _sm_part(result, closed, args.sessions_ops))
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
    sm_ok = _sm_part(result, closed, args.sessions_ops)
    ok = all(s["ok"] for s in result["cdr_store"]) and result.get("cdr_pipeline", {"ok": True})["ok"] and sm_ok
    return _finish(args, result, ok)


def _sm_part(result: dict[str, Any], closed: list[int], ops: int) -> bool:
    result["sm_session_table"] = bench_sm_table(closed, ops)
    return bool(result["sm_session_table"]["ok"])


def _finish(args: argparse.Namespace, result: dict[str, Any], ok: bool) -> int:
    result["loadavg_after"] = loadavg()
    result["consistency"] = {"ok": ok}
    result["command"] = " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv else ""
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"result written to {args.out}")
    return 0 if ok else 3
