"""`python -m bench faults`: calls through SM while a fault hits the suite, then the invariants.

The driver behaves like OpenSIPS's `cgrates` module (``bench/osips.py``: a connection pool that
reconnects after an SM restart, answers GetActiveSessionIDs with the calls it has up and
DisconnectSession by ending the call). Each call: Authorize, Initiate, hold, Terminate, ProcessCDR;
a request SM does not answer is lost, as with the module (no retry). In the middle of the calls
one fault is injected; after the last call the invariants must hold:

* every answered call has its CDRs, one per charging run, exactly once;
* no charged CDR is left unrated (Cost -1);
* money debited from the accounts == the sum of the CDRs' costs;
* ``cgr account verify`` holds (balances == their journal);
* SM holds no session any more, and every service is SERVING again.

Faults (``FAULTS``): kill -9 of each service, SM and RALs together, SM killed between a call's
Terminate and its ProcessCDR, SIGTERM of ``cgr up`` and a restart, the run's own Postgres
connections terminated, a connect/disconnect storm on SM's OpenSIPS port. The test tier
(tests/faults) runs each with a few dozen calls; this mode runs them longer and prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc

from bench.osips import Pool, RequestFailed
from cgrates.v1 import (
    cdre_pb2,
    cdre_pb2_grpc,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    resources_pb2_grpc,
    sm_pb2,
    sm_pb2_grpc,
)
from cgrpy.config import SERVICES
from cgrpy.event import loads_exact
from cgrpy.runtime.healthcheck import check

TENANT = "cgrates.org"
ACCOUNTS = ("1001", "1002")
DESTINATION = {"1001": "1002", "1002": "1001"}
START_BALANCE = Decimal(1000)
CHARGED = {"*prepaid", "*postpaid", "*pseudoprepaid", "*rated"}


@dataclass
class Call:
    origin: str
    account: str
    hold_s: float
    answered: bool = False
    terminated: bool = False
    cdr_sent: bool = False
    errors: list[str] = field(default_factory=list)
    unanswered: int = 0  # requests SM never answered (timeout, connection gone)


class Driver:
    """Calls like OpenSIPS: ``active`` is what the switch reports to GetActiveSessionIDs."""

    def __init__(self, host: str, port: int, *, connections: int = 4, tag: str = "f",
                 failover: list[tuple[str, int]] | None = None) -> None:
        self.pool = Pool(host, port, connections, 1, self._engine_request, failover=failover)
        self.active: dict[str, asyncio.Event] = {}  # origin -> set when SM disconnects the call
        self.calls: list[Call] = []
        self.tag = tag
        self.disconnects = 0
        self.latency: dict[str, list[float]] = {}  # method -> seconds to each reply
        # called once, for the call whose index it names, between its Terminate and ProcessCDR
        self.between: tuple[int, Callable[[], Awaitable[None]]] | None = None

    def _engine_request(self, method: str, arg: Any) -> Any:
        if method.endswith("GetActiveSessionIDs"):
            return [{"OriginID": o, "OriginHost": "127.0.0.1"} for o in self.active]
        if method.endswith("DisconnectSession"):
            origin = str(((arg or {}).get("EventStart") or {}).get("OriginID") or "")
            ev = self.active.get(origin)
            if ev is not None:
                self.disconnects += 1
                ev.set()
            return "OK"
        raise ValueError(f"unknown method {method}")

    async def _req(self, call: Call, method: str, event: dict[str, Any], **top: Any) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            reply = await self.pool.call(method, event, 10.0, **top)
        except RequestFailed as exc:
            call.errors.append(f"{method}:{exc.kind}")
            call.unanswered += 1
            return None
        self.latency.setdefault(method, []).append(time.monotonic() - started)
        if reply.get("error"):
            call.errors.append(f"{method}:{reply['error']}")
        return reply

    async def one(self, i: int, call: Call) -> None:
        now = str(int(time.time()))
        ev = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "OriginID": call.origin, "Account": call.account,
              "Destination": DESTINATION[call.account], "SetupTime": now}
        await self._req(call, "SessionSv1.AuthorizeEventWithDigest", ev)
        init = await self._req(call, "SessionSv1.InitiateSession",
                               {**ev, "AnswerTime": now, "DialogID": 1000 + i, "DialogEntry": i},
                               InitSession=True)
        if init is None or init.get("error") or not (init.get("result") or {}).get("MaxUsage"):
            return  # refused or no answer: the switch drops the call, nothing more is sent
        call.answered = True
        hung_up = self.active[call.origin] = asyncio.Event()
        started = time.monotonic()
        try:
            await asyncio.wait_for(hung_up.wait(), call.hold_s)
        except TimeoutError:
            pass
        del self.active[call.origin]
        usage = f"{max(1, round(time.monotonic() - started))}s"
        term = await self._req(call, "SessionSv1.TerminateSession",
                               {**ev, "AnswerTime": now, "Usage": usage}, TerminateSession=True)
        call.terminated = term is not None and not term.get("error")
        if self.between is not None and self.between[0] == i:
            hook, self.between = self.between[1], None
            await hook()
        cdr = await self._req(call, "SessionSv1.ProcessCDR",
                              {**ev, "AnswerTime": now, "Usage": usage, "DisconnectCause": "16"})
        call.cdr_sent = cdr is not None and not cdr.get("error")

    async def run(self, n: int, cps: float, hold: tuple[float, float], rng: random.Random) -> None:
        tasks = []
        for i in range(n):
            call = Call(f"{self.tag}-{i}-{rng.randrange(10**9)}@bench", ACCOUNTS[i % len(ACCOUNTS)],
                        rng.uniform(*hold))
            self.calls.append(call)
            tasks.append(asyncio.create_task(self.one(i, call)))
            await asyncio.sleep(1 / cps)
        await asyncio.gather(*tasks)


# ----------------------------------------------------------------------------- the suite side


@dataclass
class Target:
    """How to reach and hurt a running suite: addresses, the process of `cgr up`, the database."""

    env: dict[str, str]
    supervisor_pid: Callable[[], int]
    restart: Callable[[], None] | None = None  # SIGTERM `cgr up`, wait, start it again
    db_url: str = ""
    # what a fault measured (kill_rals_owner: the takeover), for the Outcome
    measured: dict[str, Any] = field(default_factory=dict)

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.env[f'CGRPY_{service.upper()}_GRPC_PORT']}"

    def addrs(self, service: str) -> list[str]:
        """Every replica's address, on `cgr up`'s port rule (``Settings.addrs``)."""
        from cgrpy.config import load_settings

        settings = load_settings(env={k: v for k, v in self.env.items() if k.startswith("CGRPY_")})
        return list(settings.addrs(service))

    def opensips(self) -> tuple[str, int]:
        host, port = self.env["CGRPY_OPENSIPS_LISTEN"].split(":")
        return host, int(port)

    def settings(self) -> Any:
        from cgrpy.config import load_settings

        return load_settings(env={k: v for k, v in self.env.items() if k.startswith("CGRPY_")})

    def opensips_all(self) -> list[tuple[str, int]]:
        """Every SM replica's OpenSIPS listener, in `cgr up`'s order (replica 0 first)."""
        s = self.settings()
        out = []
        for k in range(s.replicas_of("sm")):
            host, _, port = s.sm_listeners(k)["opensips_listen"].rpartition(":")
            out.append((host, int(port)))
        return out


def children(ppid: int) -> dict[str, int]:
    """service name -> pid of the `services.<name>` children of ``ppid`` (from /proc)."""
    out: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != ppid:
            continue
        for i, part in enumerate(cmd):
            if part == b"-m" and i + 1 < len(cmd) and cmd[i + 1].startswith(b"services."):
                out[cmd[i + 1].decode().split(".", 1)[1]] = int(entry)
    return out


def kill9(target: Target, *names: str) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        pids = children(target.supervisor_pid())
        for n in names:
            os.kill(pids[n], signal.SIGKILL)
    return fault


def _kill_one(target: Target, name: str) -> Callable[[], Awaitable[None]]:
    return kill9(target, name)


def pg_terminate(target: Target) -> Callable[[], Awaitable[None]]:
    """Terminate every connection to the run's own database (never another database's)."""
    async def fault() -> None:
        import psycopg

        url = target.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    return fault


def storm(target: Target, cycles: int = 300) -> Callable[[], Awaitable[None]]:
    """Connect to SM's OpenSIPS port and close at once, ``cycles`` times, while calls run."""
    async def fault() -> None:
        host, port = target.opensips()
        for _ in range(cycles):
            try:
                _r, w = await asyncio.open_connection(host, port)
                w.close()
            except OSError:
                pass
    return fault


def restart(target: Target) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        assert target.restart is not None
        await asyncio.to_thread(target.restart)
    return fault


async def ownership(addr: str) -> set[int] | None:
    """The account partitions the RALs process at ``addr`` holds now; None: it does not answer."""
    async with grpc.aio.insecure_channel(addr) as ch:
        try:
            own = await rals_pb2_grpc.RalsServiceStub(ch).GetOwnership(common_pb2.Empty(), timeout=1)
        except grpc.aio.AioRpcError:
            return None
    return set(own.partitions)


def listener_pid(port: int, pids: list[int]) -> int:
    """Which of ``pids`` listens on TCP ``port`` (from /proc/net/tcp* and the processes' fds)."""
    lines = [line.split() for table in ("tcp", "tcp6")
             for line in open(f"/proc/net/{table}").read().splitlines()[1:]]
    inodes = {f[9] for f in lines if f[1].endswith(f":{port:04X}") and f[3] == "0A"}  # LISTEN
    for pid in pids:
        try:
            fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in fds for inode in inodes):
            return pid
    raise LookupError(f"no process listens on {port}")


def rals_pids(ppid: int, service: str = "rals") -> list[int]:
    """The pids of every `services.<service>` child of ``ppid`` (several with replicas)."""
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid and f"services.{service}".encode() in cmd:
            out.append(int(entry))
    return out


def kill_rals_owner(target: Target, key: str = "takeover_s") -> Callable[[], Awaitable[None]]:
    """kill -9 the RALs replica owning the calling accounts' partitions, then measure the
    takeover: from the kill until other replicas answer GetOwnership with all of those
    partitions (taken on the first request about them after the kill)."""
    from services.rals.partitions import partition_of

    async def fault() -> None:
        wanted = {partition_of(TENANT, a) for a in ACCOUNTS}
        addrs = target.addrs("rals")
        held = {a: (await ownership(a)) or set() for a in addrs}
        victim = max(addrs, key=lambda a: len(held[a] & wanted))
        pid = listener_pid(int(victim.rpartition(":")[2]), rals_pids(target.supervisor_pid()))
        target.measured.update(victim=victim, victim_partitions=sorted(held[victim] & wanted),
                               wanted=sorted(wanted))
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        task = asyncio.create_task(_watch_takeover(target, addrs, victim, wanted, killed, key=key))
        target.measured["task"] = task

    return fault


async def _watch_takeover(target: Target, addrs: list[str], victim: str, wanted: set[int],
                          killed: float, timeout: float = 30.0, *, key: str = "takeover_s") -> None:
    """Poll the other replicas until they hold every wanted partition (the restarted victim,
    same address, is another process but not the survivor this measures)."""
    others = [a for a in addrs if a != victim]
    while time.monotonic() - killed < timeout:
        held: dict[str, set[int]] = {a: (await ownership(a)) or set() for a in others}
        if wanted <= set().union(*held.values()):
            target.measured.update({key: round(time.monotonic() - killed, 3),
                                    "taken_by": {a: sorted(p & wanted) for a, p in held.items() if p & wanted}})
            return
        await asyncio.sleep(0.02)
    target.measured[key] = None  # not within the timeout


async def _partitions(target: Target, service: str, addr: str) -> set[int]:
    """The partitions the StatS or ThresholdS replica at ``addr`` holds now (none: it does not
    answer)."""
    from cgrpy.cli.status import ownership as owned

    got = await asyncio.to_thread(owned, target.settings(), addr, service)
    return set(got["partitions"]) if got else set()


def kill_partition_owner(target: Target, service: str) -> Callable[[], Awaitable[None]]:
    """kill -9 the StatS (ThresholdS) replica holding the most partitions (those of the queues
    or thresholds the calls touched so far), then measure the takeover: from the kill until the
    other replicas hold every one of them (each taken by the next event about it)."""
    async def fault() -> None:
        addrs = target.addrs(service)
        held = {a: await _partitions(target, service, a) for a in addrs}
        victim = max(addrs, key=lambda a: len(held[a]))
        pid = listener_pid(int(victim.rpartition(":")[2]), rals_pids(target.supervisor_pid(), service))
        target.measured.update(victim=victim, victim_partitions=sorted(held[victim]))
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        target.measured["task"] = asyncio.create_task(
            _watch_partitions(target, service, [a for a in addrs if a != victim], held[victim], killed))

    return fault


async def _watch_partitions(target: Target, service: str, others: list[str], wanted: set[int],
                            killed: float, timeout: float = 30.0) -> None:
    while time.monotonic() - killed < timeout:
        held = set().union(*[await _partitions(target, service, a) for a in others])
        if wanted <= held:
            target.measured["takeover_s"] = round(time.monotonic() - killed, 3)
            return
        await asyncio.sleep(0.05)
    target.measured["takeover_s"] = None


def kill_sm_owner(target: Target) -> Callable[[], Awaitable[None]]:
    """kill -9 SM replica 0 (the engine the driver talks to first, as OpenSIPS with several
    cgrates_engine entries), then measure the takeover: from the kill until no session in the
    StorDB is owned by the killed process any more (another replica adopted them all)."""
    async def fault() -> None:
        host, port = target.opensips_all()[0]
        victim = target.addrs("sm")[0]
        pid = listener_pid(port, rals_pids(target.supervisor_pid(), "sm"))
        owners = await asyncio.to_thread(_sm_owners, target)
        dead = [o for o in owners if o.rsplit("/", 1)[0] == victim]
        target.measured.update(victim=victim, victim_owner=dead, sessions_before=sum(owners.values()))
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        target.measured["sm_task"] = asyncio.create_task(_watch_adoption(target, set(dead), killed))

    return fault


def kill_sm_and_rals_owner(target: Target) -> Callable[[], Awaitable[None]]:
    """Both at once: kill -9 the RALs replica owning the calling accounts and SM replica 0; the
    SM takeover is ``takeover_s``, the RALs one ``rals_takeover_s``."""
    rals, sm = kill_rals_owner(target, key="rals_takeover_s"), kill_sm_owner(target)

    async def fault() -> None:
        await rals()
        rals_victim = target.measured["victim"]
        await sm()
        target.measured["rals_victim"] = rals_victim

    return fault


async def _owns_resources(addr: str) -> bool:
    async with grpc.aio.insecure_channel(addr) as ch:
        try:
            own = await resources_pb2_grpc.ResourcesServiceStub(ch).GetOwnership(
                common_pb2.Empty(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
    return bool(own.partitions)


def kill_resources_owner(target: Target) -> Callable[[], Awaitable[None]]:
    """kill -9 the ResourceS replica that owns the resources (the one deciding every call's
    allocation), then measure the takeover: from the kill until another replica owns them
    (taken on the first request after the kill)."""
    async def fault() -> None:
        addrs = target.addrs("resources")
        owners = [a for a in addrs if await _owns_resources(a)]
        victim = owners[0] if owners else addrs[0]
        pid = listener_pid(int(victim.rpartition(":")[2]), rals_pids(target.supervisor_pid(), "resources"))
        target.measured.update(victim=victim, victim_owned=bool(owners))
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        target.measured["task"] = asyncio.create_task(
            _watch_resources(target, [a for a in addrs if a != victim], killed))

    return fault


async def _watch_resources(target: Target, others: list[str], killed: float,
                           timeout: float = 30.0) -> None:
    while time.monotonic() - killed < timeout:
        for a in others:
            if await _owns_resources(a):
                target.measured.update(takeover_s=round(time.monotonic() - killed, 3), taken_by=a)
                return
        await asyncio.sleep(0.02)
    target.measured["takeover_s"] = None


def _sm_owners(target: Target) -> dict[str, int]:
    """owner -> sessions it holds in the StorDB's sm_sessions."""
    import psycopg

    url = target.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT owner, count(*) FROM sm_sessions GROUP BY owner").fetchall()
    return {r[0]: int(r[1]) for r in rows}


async def _watch_adoption(target: Target, dead: set[str], killed: float, timeout: float = 30.0) -> None:
    while time.monotonic() - killed < timeout:
        owners = await asyncio.to_thread(_sm_owners, target)
        if not dead & set(owners):
            target.measured.update(takeover_s=round(time.monotonic() - killed, 3),
                                   owners_after=owners)
            return
        await asyncio.sleep(0.01)
    target.measured["takeover_s"] = None


FAULTS: dict[str, Callable[[Target], Callable[[], Awaitable[None]]]] = {
    **{f"kill_{n}": functools.partial(_kill_one, name=n) for n in SERVICES},
    "kill_sm_and_rals": lambda t: kill9(t, "sm", "rals"),
    "pg_terminate": pg_terminate,
    "storm": storm,
    "sigterm_restart": restart,
    "kill_rals_owner": kill_rals_owner,  # needs two RALs replicas (`cgr up --replicas 2`, Postgres)
    "kill_sm_owner": kill_sm_owner,  # needs two SM replicas (`cgr up --replicas 2`, Postgres)
    "kill_sm_and_rals_owner": kill_sm_and_rals_owner,  # both of the above at once
    "kill_resources_owner": kill_resources_owner,  # needs two ResourceS replicas (as above)
    "kill_stats_owner": functools.partial(kill_partition_owner, service="stats"),  # as above
    "kill_thresholds_owner": functools.partial(kill_partition_owner, service="thresholds"),
}
# "kill_sm_between_terminate_and_cdr" is a hook on one call, not a fault in time: see run_fault.


# ----------------------------------------------------------------------------- invariants


async def reset_balances(target: Target) -> None:
    async with grpc.aio.insecure_channel(target.addr("rals")) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        for acc in ACCOUNTS:
            await stub.SetBalance(rals_pb2.SetBalanceRequest(
                tenant=TENANT, account=acc, balance_type="*monetary", value=str(START_BALANCE),
                balance=rals_pb2.Balance(id="faults")), timeout=30)


async def balances(target: Target) -> dict[str, Decimal]:
    out = {}
    async with grpc.aio.insecure_channel(target.addr("rals")) as ch:
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        for acc in ACCOUNTS:
            a = await stub.GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=acc), timeout=30)
            out[acc] = sum((Decimal(b.value) for b in a.balances if b.type == "*monetary"), Decimal(0))
    return out


async def cdrs_of(target: Target, origins: list[str]) -> list[cdre_pb2.CDR]:
    async with grpc.aio.insecure_channel(target.addr("cdre")) as ch:
        stub = cdre_pb2_grpc.CdrServiceStub(ch)
        resp = await stub.GetCDRs(cdre_pb2.CDRFilter(origin_ids=origins), timeout=30)
        return list(resp.cdrs)


async def sm_sessions(target: Target) -> int:
    """Active sessions over every SM replica."""
    total = 0
    for addr in target.addrs("sm"):
        async with grpc.aio.insecure_channel(addr) as ch:
            resp = await sm_pb2_grpc.SessionServiceStub(ch).GetActiveSessions(
                sm_pb2.ActiveSessionsRequest(), timeout=10)
            total += len(resp.sessions)
    return total


def all_serving(target: Target, services: tuple[str, ...]) -> list[str]:
    """The replicas (address of each, every replica of each service) not SERVING."""
    return [a for n in services for a in target.addrs(n) if check(a, "", 2.0) != "SERVING"]


def account_verify(target: Target) -> tuple[int, str]:
    env = {**target.env}
    proc = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "account", "verify", *ACCOUNTS,
                           "--addr", target.addr("rals")],
                          env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def problems(calls: list[Call], cdrs: list[cdre_pb2.CDR], debited: Decimal) -> list[str]:
    """The invariants over what the driver saw and what was stored; [] when they hold."""
    out = []
    by_origin: dict[str, list[cdre_pb2.CDR]] = {}
    for c in cdrs:
        by_origin.setdefault(c.origin_id, []).append(c)
    for call in calls:
        got = by_origin.get(call.origin, [])
        runs = [c.run_id for c in got]
        if len(runs) != len(set(runs)):
            out.append(f"{call.origin}: duplicate CDRs {sorted(runs)}")
        if call.answered and not {"*default", "*raw"} <= set(runs):
            out.append(f"{call.origin}: answered, CDRs {sorted(runs)} ({call.errors})")
    unrated = [f"{c.origin_id} {c.run_id} {c.request_type} {c.cost_source} usage={c.usage_ns} {c.extra_info}" for c in cdrs
               if c.request_type in CHARGED and Decimal(c.cost) == -1]
    if unrated:
        out.append(f"{len(unrated)} charged CDR(s) unrated (Cost -1): {unrated[:5]}")
    total = sum((Decimal(c.cost) for c in cdrs if Decimal(c.cost) > 0), Decimal(0))
    if total != debited:
        out.append(f"money debited {debited} != sum of CDR costs {total}")
    wrong = wrong_cost_details(cdrs)
    if wrong:
        out.append(f"{len(wrong)} CDR(s) whose CostDetails Cost is not their Cost: {wrong[:5]}")
    return out


def wrong_cost_details(cdrs: list[cdre_pb2.CDR]) -> list[str]:
    """Session-charged CDRs carrying an EventCost that disagrees with their Cost (a session
    adopted or resumed must give the right document or none)."""
    out = []
    for c in cdrs:
        if c.cost_source != "*sessions" or c.cost_details_json in ("", "null"):
            continue
        ec_cost = loads_exact(c.cost_details_json).get("Cost")
        if ec_cost is None or Decimal(ec_cost) != Decimal(c.cost):
            out.append(f"{c.origin_id} {c.run_id} Cost {c.cost} CostDetails.Cost {ec_cost}")
    return out


@dataclass
class Outcome:
    fault: str
    calls: int
    answered: int
    errors: int
    recovery_s: float
    settle_s: float
    debited: Decimal
    problems: list[str]
    measured: dict[str, Any] = field(default_factory=dict)
    # what the driver placed, and the balances the run started from (bench/failover.py)
    call_log: list[Call] = field(default_factory=list, repr=False)
    balances_before: dict[str, Decimal] = field(default_factory=dict, repr=False)

    def row(self) -> str:
        ok = "all hold" if not self.problems else "; ".join(self.problems[:3])
        return (f"| {self.fault} | {self.calls} | {self.answered} | {self.errors} | "
                f"{self.recovery_s:.1f} | {self.settle_s:.1f} | {self.debited} | {ok} |")


async def wait_recovered(target: Target, services: tuple[str, ...], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not await asyncio.to_thread(all_serving, target, services):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    return float("inf")


async def run_fault(
    target: Target, fault: str, *, calls: int = 30, cps: float = 5.0,
    hold: tuple[float, float] = (1.0, 4.0), services: tuple[str, ...] = (), settle_timeout: float = 90.0,
    seed: int = 1, at: float = 0.5,
) -> Outcome:
    """Drive ``calls`` calls, inject ``fault`` at fraction ``at`` of the calls' start times (the
    middle), wait for the suite to settle and check the invariants."""
    target.measured.clear()
    await reset_balances(target)
    before = await balances(target)
    (host, port), *failover = target.opensips_all()
    driver = Driver(host, port, tag=fault, failover=failover)
    await driver.pool.open()
    rng = random.Random(seed)
    if fault == "kill_sm_between_terminate_and_cdr":
        driver.between = (calls // 2, kill9(target, "sm"))
        injected: Callable[[], Awaitable[None]] | None = None
    else:
        injected = FAULTS[fault](target)

    async def inject() -> None:
        await asyncio.sleep(calls / cps * at)
        if injected is not None:
            await injected()

    await asyncio.gather(driver.run(calls, cps, hold, rng), inject())
    await driver.pool.close()
    for key in ("task", "sm_task", "rals_task"):  # the takeover watchers a fault started
        watcher = target.measured.pop(key, None)
        if watcher is not None:
            await watcher
    recovery = await wait_recovered(target, services, 60)
    started = time.monotonic()
    found, debited, left = await _settle(target, driver.calls, before, settle_timeout)
    settle = time.monotonic() - started
    if not found:
        found = await _final_checks(target, services)
    deadline_s = target.settings().sm_reply_timeout / 1e9
    return Outcome(fault, len(driver.calls), sum(c.answered for c in driver.calls),
                   sum(bool(c.errors) for c in driver.calls), recovery, settle, debited, found,
                   {**target.measured, "errors_seen": _error_kinds(driver.calls),
                    **latency_summary(driver.latency, deadline_s), "sessions_left": left,
                    "unanswered_requests": sum(c.unanswered for c in driver.calls)},
                   call_log=driver.calls, balances_before=before)


async def _settle(target: Target, calls: list[Call], before: dict[str, Decimal],
                  timeout: float) -> tuple[list[str], Decimal, int]:
    """Poll until the invariants hold and SM holds no session, or ``timeout``: (problems,
    money debited, sessions SM still holds; -1 when not asked)."""
    started = time.monotonic()
    origins = [c.origin for c in calls]
    found: list[str] = ["not checked"]
    debited = Decimal(0)
    left = -1
    while time.monotonic() - started < timeout:
        try:
            after = await balances(target)
            cdrs = await cdrs_of(target, origins)
            debited = sum((before[a] - after[a] for a in ACCOUNTS), Decimal(0))
            found = problems(calls, cdrs, debited)
            sessions = [c for c in cdrs if c.cost_source == "*sessions"]
            target.measured["session_cdrs_with_cost_details"] = (
                f"{sum(c.cost_details_json not in ('', 'null') for c in sessions)}/{len(sessions)}")
            if not found:
                left = await sm_sessions(target)
                if left == 0:
                    break
                found = ["SM still holds sessions"]
        except grpc.aio.AioRpcError as exc:
            found = [f"{exc.code().name}: {exc.details()}"]
        await asyncio.sleep(0.5)
    return found, debited, left


async def _final_checks(target: Target, services: tuple[str, ...]) -> list[str]:
    """`cgr account verify`, then every replica SERVING again."""
    rc, out = await asyncio.to_thread(account_verify, target)
    if rc != 0:
        return [f"cgr account verify exit {rc}: {out[-500:]}"]
    not_serving = await asyncio.to_thread(all_serving, target, services)
    return [f"not SERVING: {not_serving}"] if not_serving else []


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(latency: dict[str, list[float]], deadline_s: float) -> dict[str, Any]:
    """Authorize p50/p99 (ms) and how many replies (of any request) came after SM's deadline."""
    auth = latency.get("SessionSv1.AuthorizeEventWithDigest", [])
    ms = {q: _percentile(auth, q) for q in (0.5, 0.99)}
    return {"authorize_p50_ms": None if ms[0.5] is None else round(ms[0.5] * 1000, 1),
            "authorize_p99_ms": None if ms[0.99] is None else round(ms[0.99] * 1000, 1),
            "replies": sum(len(v) for v in latency.values()),
            "replies_after_deadline": sum(1 for v in latency.values() for t in v if t > deadline_s),
            "deadline_s": deadline_s}


def _error_kinds(calls: list[Call]) -> dict[str, int]:
    """How often each request failed how (a refusal at authorize is not a fault's doing)."""
    out: dict[str, int] = {}
    for call in calls:
        for e in call.errors:
            kind = e[:80]
            out[kind] = out.get(kind, 0) + 1
    return out


# ----------------------------------------------------------------------------- the bench mode


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faults", help="calls while a fault hits the suite, then the invariants")
    p.add_argument("--calls", type=int, default=150, help="calls per fault")
    p.add_argument("--cps", type=float, default=5.0, help="calls started per second")
    p.add_argument("--faults", default="all", help="comma-separated names (see bench/faults.py), or all")
    p.add_argument("--db-url", default="", help="a Postgres database of its own (default: one is created)")
    p.add_argument("--out", default="", help="write the outcomes as JSON here")
    p.set_defaults(func=run)


class FaultSuite:
    """`cgr up` on the tutorial plan, on free loopback ports and a Postgres database of its own,
    tuned so faults show quickly: debit every second, a lost ProcessCDR replaced after 3 s."""

    def __init__(self, db_url: str = "", **extra: str) -> None:
        self.db_url = db_url
        self.extra = extra
        self.suite: Any = None
        self._db: Any = None
        self.services = SERVICES

    def __enter__(self) -> FaultSuite:
        from bench.target import PG_ADMIN, REPO, FreshDatabase
        from tests.suite import Suite, suite_env

        if not self.db_url:
            self._db = FreshDatabase(PG_ADMIN)
            self.db_url = self._db.__enter__()
        self.env = suite_env(self.db_url, **{**SUITE_ENV, **self.extra})
        self._suite_cls = Suite
        self.suite = Suite(self.env, "--tariffplan", str(REPO / "tariffplans" / "tutorial"), timeout=180)
        self.suite.__enter__()
        self.target = Target(self.env, lambda: self.suite.proc.pid, self.restart, self.db_url)
        return self

    def restart(self) -> None:
        """SIGTERM to `cgr up` (it drains), wait for it to end, start it again on the same state."""
        proc = self.suite.proc
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        self.stopped_output = self.suite.read_output()
        self.suite = self._suite_cls(self.env, timeout=180)
        self.suite.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.suite is not None:
            self.suite.__exit__(*exc)
        if self._db is not None:
            self._db.__exit__(*exc)


SUITE_ENV = {"CGRPY_DEBIT_INTERVAL": "1s", "CGRPY_SM_CDR_WAIT": "3s",
             "CGRPY_SM_RESTORE_CONFIRM_TIMEOUT": "30s"}


def run(args: argparse.Namespace) -> int:
    names = list(FAULTS) + ["kill_sm_between_terminate_and_cdr"] if args.faults == "all" else args.faults.split(",")
    rows = []
    with FaultSuite(args.db_url) as suite:
        for name in names:
            out = asyncio.run(run_fault(suite.target, name, calls=args.calls, cps=args.cps,
                                        services=suite.services, settle_timeout=180))
            print(out.row(), flush=True)
            rows.append(out)
    print(f"load average: {os.getloadavg()}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump([{k: v for k, v in vars(o).items() if k not in ("call_log", "balances_before")}
                       | {"debited": str(o.debited)} for o in rows], f, indent=1, default=str)
    return 0 if all(not o.problems for o in rows) else 1

