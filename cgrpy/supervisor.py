"""`cgr up`: run the services as separate OS processes and keep them running.

Starts each ``python -m services.<name>`` with the resolved settings in its environment (several
processes of a stateless service, and of rals on Postgres, with the ``replicas`` setting,
replica k on the service's ports + 100*k, every client told all of their addresses): the backends first and SM (the front, which
calls them all) once they report SERVING over gRPC health; prints the address table and
restarts a crashed service with exponential backoff.

On SIGINT/SIGTERM it stops them in reverse dependency order, each tier with SIGTERM, its grace
period, then SIGKILL, logging each step: SM first (it stops taking calls, lets the closes in
flight settle, flushes its CDR spool to cdre, persists the active calls), then cdre (its outbox
to StatS/ThresholdS), then the others. So no CDR is stranded and no process or port is left.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cgrpy.config import SERVICES, Settings
from cgrpy.runtime.healthcheck import check
from cgrpy.runtime.logs import get_logger
from cgrpy.runtime.server import EXIT_CONFIG

log = get_logger("supervisor")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the supervisor is killed outright (-9), the kernel sends SIGTERM to the children too.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    replica: int = 0
    label: str = ""  # name, or name-k when the service runs several replicas
    addr: str = ""  # where its gRPC health is checked
    ports: dict[str, str] = field(default_factory=dict)  # CGRPY_* port overrides of this replica
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    last_exit: int | None = None
    backoff: float = 0.5
    status: str = "STARTING"
    history: list[str] = field(default_factory=list)


class StartupError(RuntimeError):
    pass


FRONT = "sm"  # calls every other service: started last, stopped first
# Stopped after SM and before the rest: cdre is fed by SM's spool and feeds StatS/ThresholdS.
MIDDLE = ("cdre",)


def start_tiers(services: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Groups started one after the other (each SERVING before the next is spawned)."""
    backends = tuple(n for n in services if n != FRONT)
    return [t for t in (backends, tuple(n for n in services if n == FRONT)) if t]


def stop_tiers(services: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Groups stopped one after the other: the reverse of the dependencies."""
    front = tuple(n for n in services if n == FRONT)
    middle = tuple(n for n in services if n in MIDDLE)
    rest = tuple(n for n in services if n != FRONT and n not in MIDDLE)
    return [t for t in (front, middle, rest) if t]


class Supervisor:
    def __init__(self, settings: Settings, services: tuple[str, ...] = SERVICES, *, ready_timeout: float = 60.0) -> None:
        self.settings = settings
        self.services = services
        self.ready_timeout = ready_timeout
        self.children = {c.label: c for name in services for c in _children(settings, name)}
        self.stopping = False
        self._watchers: list[asyncio.Task] = []

    async def _spawn(self, child: Child) -> None:
        env = {**os.environ, **self.settings.env(), **child.ports}
        env.pop("CGRPY_CONFIG", None)  # children get the resolved values, not the file again
        child.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{child.name}",
            env=env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        child.status = "STARTING"
        log.info("service.spawned", name=child.label, pid=child.proc.pid)

    async def _watch(self, child: Child) -> None:
        while not self.stopping:
            assert child.proc is not None
            rc = await child.proc.wait()
            child.last_exit = rc
            if self.stopping:
                return
            if rc == EXIT_CONFIG and child.restarts == 0 and time.monotonic() - child.started_at < 10:
                child.status = "FAILED"
                return  # a configuration problem at first start: restarting won't help
            up_for = time.monotonic() - child.started_at
            if up_for > 30:
                child.backoff = 0.5  # it ran fine for a while: start the backoff over
            child.restarts += 1
            child.status = "RESTARTING"
            log.warning("service.crashed", name=child.label, exit_code=rc, restart_in_s=child.backoff, restarts=child.restarts)
            await asyncio.sleep(child.backoff)
            child.backoff = min(child.backoff * 2, 30.0)
            if self.stopping:
                return
            await self._spawn(child)

    async def start(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        for tier in start_tiers(self.services):
            for child in self._of(tier):
                await self._spawn(child)
                self._watchers.append(asyncio.create_task(self._watch(child)))
            await self.wait_ready(max(1.0, deadline - time.monotonic()), tier)

    def _of(self, services: tuple[str, ...]) -> list[Child]:
        return [c for c in self.children.values() if c.name in services]

    async def wait_ready(self, timeout: float | None = None, services: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        pending = {c.label for c in self._of(services or self.services)}
        while pending:
            for name in list(pending):
                child = self.children[name]
                if child.status == "FAILED":
                    raise StartupError(f"{name} failed to start (exit code {child.last_exit}); see its log line above")
                status = await asyncio.to_thread(check, child.addr, "", 0.5, self.settings)
                if status == "SERVING":
                    child.status = "SERVING"
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                waited = timeout or self.ready_timeout
                raise StartupError(f"not SERVING after {waited:.0f}s: {', '.join(sorted(pending))}")
            if pending:
                await asyncio.sleep(0.2)

    def table(self) -> str:
        s = self.settings
        rows = [("service", "gRPC", "metrics", "pid", "status")]
        for c in self.children.values():
            metrics = s.replica_ports(c.name, c.replica)[1]
            rows.append((c.label, c.addr, f"http://{s.listen_host}:{metrics}/metrics",
                         str(c.proc.pid if c.proc else "-"), c.status))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        out = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        out.append("")
        for k in range(s.replicas_of("sm")):
            lis, tag = s.sm_listeners(k), f"sm-{k} " if s.replicas_of("sm") > 1 else ""
            out.append(f"{tag}OpenSIPS cgrates module: {lis['opensips_listen']} (TCP)   "
                       f"events: {lis['opensips_event_listen']} (UDP)")
            out.append(f"{tag}CGRateS JSON-RPC: {lis['jsonrpc_listen']} (TCP)   http://{lis['http_listen']}/jsonrpc")
        out.append(f"StorDB: {s.stordb_url}   TPID: {s.tpid}")
        return "\n".join(out)

    async def stop(self) -> None:
        self.stopping = True
        grace = self.settings.grace_period / 1e9
        for tier in stop_tiers(self.services):
            # SM's stop has two bounded phases (in-flight RPCs, then its drain)
            budget = (2 * grace if FRONT in tier else grace) + 2
            await self._stop_tier(tier, budget)
        for t in self._watchers:
            t.cancel()
        log.info("supervisor.stopped")

    async def _stop_tier(self, tier: tuple[str, ...], budget: float) -> None:
        children = [c for c in self._of(tier) if c.proc and c.proc.returncode is None]
        if not children:
            return
        labels = ",".join(c.label for c in children)
        log.info("supervisor.stopping", services=labels, grace_s=round(budget, 1))
        started = time.monotonic()
        for c in children:
            assert c.proc is not None
            try:
                c.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        procs = [c.proc for c in children if c.proc is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), budget)
        except TimeoutError:
            for c in children:
                if c.proc is not None and c.proc.returncode is None:
                    log.warning("service.kill", name=c.label, pid=c.proc.pid)
                    c.proc.kill()
            await asyncio.gather(*(p.wait() for p in procs))
        log.info("supervisor.stopped_tier", services=labels, took_s=round(time.monotonic() - started, 2))


def _children(settings: Settings, name: str) -> list[Child]:
    """The processes of service ``name``: one, or ``replicas`` of a stateless service, each on
    its own ports (``Settings.replica_ports``)."""
    n = settings.replicas_of(name)
    if n == 1:
        return [Child(name, label=name, addr=settings.addr(name))]
    out = []
    # Every replica's own settings name all of them: with only its shifted ports, replica k
    # would compute its peers' ports from its own and miss each by k steps.
    peers = ",".join(settings.addrs(name))
    for k in range(n):
        grpc_port, metrics_port = settings.replica_ports(name, k)
        ports = {f"CGRPY_{name.upper()}_GRPC_PORT": str(grpc_port),
                 f"CGRPY_{name.upper()}_METRICS_PORT": str(metrics_port),
                 f"CGRPY_{name.upper()}_ADDR": peers}
        if name == "sm":
            ports.update(_sm_replica(settings, k))
        out.append(Child(name, replica=k, label=f"{name}-{k}", ports=ports,
                         addr=f"{settings.listen_host}:{grpc_port}"))
    return out


def _sm_replica(settings: Settings, k: int) -> dict[str, str]:
    """SM replica ``k``: its own OpenSIPS, event, JSON-RPC and HTTP listeners, and its own local
    CDR spool file (the sessions are shared in the StorDB)."""
    out = {f"CGRPY_{key.upper()}": v for key, v in settings.sm_listeners(k).items()}
    if k:
        spool = Path(str(settings.sm_spool_path))
        out["CGRPY_SM_SPOOL_PATH"] = str(spool.with_name(f"{spool.stem}-{k}{spool.suffix}"))
    return out


async def run(settings: Settings, *, services: tuple[str, ...] = SERVICES) -> int:
    sup = Supervisor(settings, services, ready_timeout=settings.startup_timeout / 1e9)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.create_task(sup.start())
    done, _ = await asyncio.wait({start, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if start in done and start.exception() is not None:
        print(f"cgr up: {start.exception()}", file=sys.stderr)
        await sup.stop()
        return 1
    if stop.is_set():
        start.cancel()
        await sup.stop()
        return 0
    print(sup.table(), flush=True)
    print("\nAll services SERVING. Ctrl-C stops them all.", flush=True)
    await stop.wait()
    await sup.stop()
    return 0
