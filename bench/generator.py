"""Open-loop call generator: call i is due at ``t0 + i / cps`` whether or not earlier calls have
finished, and every step's latency is measured from the moment it was due (not from when it was
sent), so waiting for a free connection or a busy event loop counts as latency.

A call is what OpenSIPS sends for an answered call ended by the caller (trace
``authorized_call.jsonl``): AuthorizeEventWithDigest → InitiateSession (answer) → … call_length …
→ TerminateSession → ProcessCDR ("Downstream BYE"). While the call is up SM runs its own debit
loop; a DisconnectSession from SM ends the call early (TerminateSession + ProcessCDR with
"CGRateS Disconnect: <Reason>", spec A.5), and an InitiateSession MaxUsage shorter than the call
becomes its lifetime ("Lifetime Timeout").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.osips import Pool, RequestFailed
from bench.plan import Plan, callee

STEPS = ("auth", "init", "terminate", "cdr")
NS = 1_000_000_000


@dataclass
class GenConfig:
    cps: float
    duration_s: float
    call_length_s: float
    postpaid_ratio: float = 0.0
    connections: int = 4
    per_conn: int = 1
    request_timeout_s: float = 10.0
    seed: int = 1
    # Rate schedule: (cps, seconds) segments run back to back; empty = one (cps, duration_s).
    schedule: tuple[tuple[float, float], ...] = ()
    # Held calls stay up until ``Generator.release`` is set (or SM cuts them), whatever
    # call_length_s says (it still caps them, as their lifetime).
    hold: bool = False
    # Hold mode: after the release, calls hang up in start order at this rate (0 = the first
    # segment's rate), not all at once — a burst of every Terminate + CDR would only measure the
    # generator's own queue.
    release_cps: float = 0.0

    def segments(self) -> tuple[tuple[float, float], ...]:
        return self.schedule or ((self.cps, self.duration_s),)

    def total_seconds(self) -> float:
        return sum(seconds for _, seconds in self.segments())

    def due_offsets(self) -> list[float]:
        """When each call is due, in seconds from t0: evenly spaced within each segment."""
        out: list[float] = []
        start = 0.0
        for cps, seconds in self.segments():
            n = int(round(cps * seconds))
            out.extend(start + i / cps for i in range(n))
            start += seconds
        return out


@dataclass
class Call:
    index: int
    origin_id: str
    account: str
    destination: str
    request_type: str
    dialog_id: int
    dialog_entry: int
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    disconnect_reason: str = ""
    answered_at: float = 0.0  # relative to t0


@dataclass
class Stats:
    attempted: int = 0
    answered: int = 0  # InitiateSession accepted
    completed: int = 0  # ProcessCDR accepted: the call must have its CDRs
    completed_prepaid: int = 0
    completed_postpaid: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # call-ending failure, by step:reason
    step_errors: Counter[str] = field(default_factory=Counter)  # any error reply, even non-fatal
    ended_by: Counter[str] = field(default_factory=Counter)  # DisconnectCause of completed calls
    # per step: (due time relative to t0, latency) in seconds
    latencies: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {s: [] for s in STEPS})
    answer_times: list[float] = field(default_factory=list)  # relative to t0
    unfinished: int = 0
    engine_requests: Counter[str] = field(default_factory=Counter)
    auth_lost: list[float] = field(default_factory=list)  # due times of auths with no reply
    prepaid_answer_times: list[float] = field(default_factory=list)  # relative to t0
    attempted_due: list[float] = field(default_factory=list)  # due times of attempted calls


class Generator:
    def __init__(self, cfg: GenConfig, plan: Plan, host: str, port: int) -> None:
        self.cfg = cfg
        self.plan = plan
        self.host, self.port = host, port
        self.rng = random.Random(cfg.seed)
        self.run_tag = uuid.uuid4().hex[:8]
        self.stats = Stats()
        self.engaged: dict[str, Call] = {}  # OriginID -> call (answered, not yet ended)
        self.by_dialog: dict[tuple[int, int], Call] = {}
        self.pool = Pool(host, port, cfg.connections, cfg.per_conn, self._engine_request)
        self.t0 = 0.0
        self.stop_new = False  # set (e.g. by a ramp controller): start no further calls
        self.release = asyncio.Event()  # hold mode: end every held call now
        self.started = asyncio.Event()  # t0 is set
        self.release_at = 0.0  # loop time of release (hold mode)

    # ---------------------------------------------------------------- SM -> "OpenSIPS"

    def _engine_request(self, method: str, arg: Any) -> Any:
        name = method.rsplit(".", 1)[-1]
        self.stats.engine_requests[name] += 1
        if name == "GetActiveSessionIDs":
            return [{"OriginHost": "127.0.0.1", "OriginID": oid} for oid in self.engaged]
        if name == "DisconnectSession":
            start = arg.get("EventStart") if isinstance(arg, dict) else None
            if not isinstance(start, dict):
                raise ValueError("EventStart parameter is invalid or not found")
            did, entry = start.get("DialogID"), start.get("DialogEntry")
            if not isinstance(did, int) or isinstance(did, bool):
                raise ValueError("DialogID parameter is invalid or not found")
            if not isinstance(entry, int) or isinstance(entry, bool):
                raise ValueError("DialogEntry parameter is invalid or not found")
            call = self.by_dialog.get((did, entry))
            if call is not None and not call.ended.is_set():  # unknown dialog: "OK" all the same
                reason = arg.get("Reason")
                call.disconnect_reason = f"CGRateS Disconnect: {reason}" if reason else "CGRateS Disconnect"
                call.ended.set()
            return "OK"
        raise ValueError("Unknown Method")

    # ---------------------------------------------------------------- run

    async def run(self) -> Stats:
        with quiet_collector():
            freezer = asyncio.create_task(_freeze_every(FREEZE_EVERY_S))
            try:
                return await self._run()
            finally:
                freezer.cancel()

    async def _run(self) -> Stats:
        await self.pool.open()
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        self.t0 = loop.time() + 0.05
        self.started.set()
        try:
            for i, offset in enumerate(self.cfg.due_offsets()):
                if self.stop_new:
                    break
                due = self.t0 + offset
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                # behind schedule: start at once, the latency still counts from ``due``
                tasks.append(asyncio.create_task(self._call(i, due)))
            drain = self.cfg.call_length_s + 4 * self.cfg.request_timeout_s + 5
            if self.cfg.hold:
                await self.release.wait()
                drain = len(tasks) / self._release_cps() + 4 * self.cfg.request_timeout_s + 5
            done, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
            for t in pending:
                t.cancel()
            self.stats.unfinished = len(pending)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await self.pool.close()
        return self.stats

    def _release_cps(self) -> float:
        return self.cfg.release_cps or self.cfg.segments()[0][0]

    def release_all(self) -> None:
        """Hold mode: hang up every held call (in start order, at ``release_cps``)."""
        self.release_at = asyncio.get_running_loop().time()
        self.release.set()

    def _new_call(self, i: int) -> Call:
        prepaid = self.rng.random() >= self.cfg.postpaid_ratio
        return Call(
            index=i,
            origin_id=f"{i}-{self.run_tag}@127.0.0.1",
            account=self.rng.choice(self.plan.accounts),
            destination=callee(self.plan, self.rng),
            request_type="*prepaid" if prepaid else "*postpaid",
            dialog_id=self.rng.randrange(1, 2**31),
            dialog_entry=i % 4096,
        )

    async def _step(self, step: str, due: float, method: str, event: dict[str, Any],
                    **top: Any) -> dict[str, Any] | None:
        """Send one request; record its latency from ``due``; None (and the reason) on failure."""
        loop = asyncio.get_running_loop()
        try:
            reply = await self.pool.call(method, event, self.cfg.request_timeout_s, **top)
        except RequestFailed as exc:
            self.stats.step_errors[f"{step}:{exc.kind}"] += 1
            return None
        self.stats.latencies[step].append((due - self.t0, loop.time() - due))
        if reply.get("error") is not None:
            self.stats.step_errors[f"{step}:{reply['error']}"] += 1
        return reply

    async def _call(self, i: int, due: float) -> None:
        loop = asyncio.get_running_loop()
        c = self._new_call(i)
        self.stats.attempted += 1
        self.stats.attempted_due.append(due - self.t0)
        base = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": c.request_type,
                "OriginID": c.origin_id}
        setup = str(int(time.time()))
        auth = await self._step("auth", due, "SessionSv1.AuthorizeEventWithDigest",
                                {**base, "Account": c.account, "SetupTime": setup,
                                 "Destination": c.destination})
        if auth is None:
            self.stats.auth_lost.append(due - self.t0)
        if auth is None or auth.get("error") is not None:
            self._fail("auth", auth)
            return
        if not _positive(auth.get("result", {}).get("MaxUsage") if isinstance(auth.get("result"), dict) else None):
            self.stats.failed["auth:MaxUsage 0"] += 1
            return

        due = loop.time()  # the callee answers as soon as the INVITE is let through
        answer = str(int(time.time()))
        init = await self._step("init", due, "SessionSv1.InitiateSession",
                                {**base, "DialogID": c.dialog_id, "DialogEntry": c.dialog_entry,
                                 "Account": c.account, "SetupTime": setup, "AnswerTime": answer,
                                 "Destination": c.destination}, InitSession=True)
        if init is None or init.get("error") is not None:
            self._fail("init", init)
            return
        result = init.get("result")
        max_usage = result.get("MaxUsage") if isinstance(result, dict) else None
        if max_usage == 0:
            self.stats.failed["init:MaxUsage 0"] += 1
            return
        self.stats.answered += 1
        answered_at = loop.time()
        c.answered_at = answered_at - self.t0
        self.stats.answer_times.append(answered_at - self.t0)
        if c.request_type == "*prepaid":
            self.stats.prepaid_answer_times.append(answered_at - self.t0)
        self.engaged[c.origin_id] = c
        self.by_dialog[(c.dialog_id, c.dialog_entry)] = c

        length = self.cfg.call_length_s
        cause = "Downstream BYE"
        if isinstance(max_usage, int) and max_usage > 0 and max_usage // NS < length:
            length, cause = max_usage // NS, "Lifetime Timeout"
        ends = [asyncio.ensure_future(c.ended.wait())]
        if self.cfg.hold:
            ends.append(asyncio.ensure_future(self.release.wait()))
        try:
            await asyncio.wait(ends, timeout=length, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in ends:
                f.cancel()
        if c.ended.is_set():
            cause = c.disconnect_reason
        elif self.release.is_set():  # hung up in start order, spread at release_cps
            released = self.release_at or loop.time()
            await asyncio.sleep(max(0.0, released + c.index / self._release_cps() - loop.time()))
        # the dialog is over: OpenSIPS no longer lists it as engaged
        self.engaged.pop(c.origin_id, None)
        self.by_dialog.pop((c.dialog_id, c.dialog_entry), None)
        due = loop.time()
        end_epoch = int(time.time())
        usage = f"{max(0, end_epoch - int(answer))}s"
        term_event = {**base, "Account": c.account, "AnswerTime": answer, "Usage": usage}
        if setup != answer:
            term_event["SetupTime"] = setup
        await self._step("terminate", due, "SessionSv1.TerminateSession", term_event,
                         TerminateSession=True)
        # the CDR is sent whatever TerminateSession answered (spec A.4.3)
        due = loop.time()
        cdr_event = {**base, "Account": c.account, "Destination": c.destination, "Usage": usage,
                     "AnswerTime": answer, "DisconnectCause": cause}
        if setup != answer:
            cdr_event["SetupTime"] = setup
        cdr = await self._step("cdr", due, "SessionSv1.ProcessCDR", cdr_event)
        if cdr is None or cdr.get("error") is not None:
            self._fail("cdr", cdr)
            return
        self.stats.completed += 1
        self.stats.ended_by[cause] += 1
        if c.request_type == "*prepaid":
            self.stats.completed_prepaid += 1
        else:
            self.stats.completed_postpaid += 1

    def _fail(self, step: str, reply: dict[str, Any] | None) -> None:
        reason = "no reply" if reply is None else str(reply.get("error"))
        self.stats.failed[f"{step}:{reason}"] += 1


# The generator stands in for OpenSIPS, which is C and never pauses to collect garbage. With
# Python's default collector, its full passes over the growing per-call records stalled this
# process for up to 260 ms under load (seen with a gc callback at 114 cps), and each stall counted
# as authorize latency of the suite. So: young passes only rarely, and what has lived a few seconds
# is frozen out of later passes (cycles that die after being frozen are not reclaimed: a bench run
# is short, and its records live to the end anyway).
FREEZE_EVERY_S = 2.0


@contextlib.contextmanager
def quiet_collector(young: int = 50_000) -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def _freeze_every(seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        gc.freeze()


def _positive(v: Any) -> bool:
    # OpenSIPS truncates the auth MaxUsage (seconds) to an integer; 0 means refused
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, Decimal)):
        return int(v) != 0
    return False
