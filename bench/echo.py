"""`python -m bench echo`: the transport ceiling — the same OpenSIPS fan-out with do-nothing backends.

The real SM process (``python -m services.sm``, unchanged) runs in front of seven *echo* servers,
one process each like the suite (``python -m bench.echo <service>``, the same
``cgrpy.runtime.server`` runner: gRPC server, health, metrics and error interceptors), whose
handlers return canned valid replies at once: AttributeS echoes the event, ChargerS forks it into
``*default`` and ``*raw`` (RequestType ``*none``) as the bench plan does, RALs grants what is
asked at cost 0, SupplierS answers two suppliers, StatS/ThresholdS match nothing, cdre accepts
every CDR (and counts them, so the CDR half of the consistency check still runs). Every gRPC hop,
every (de)serialisation and SM's own work are there; rating, storage and profile matching are not.

The mode runs the ramp of ``python -m bench ramp`` against that setup. With ``--compare
RESULT.json`` (a ``ramp`` or ``calls`` run of the real suite) it reports the real suite as a ratio
of the echo ceiling: knee over knee, and service CPU per call over service CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import (
    attributes_pb2,
    attributes_pb2_grpc,
    cdre_pb2,
    cdre_pb2_grpc,
    chargers_pb2,
    chargers_pb2_grpc,
    common_pb2,
    rals_pb2,
    rals_pb2_grpc,
    resources_pb2,
    resources_pb2_grpc,
    stats_pb2_grpc,
    suppliers_pb2,
    suppliers_pb2_grpc,
    thresholds_pb2_grpc,
)
from cgrpy.config import SERVICES
from cgrpy.errors import CGRError
from cgrpy.runtime.server import BaseService, run_service
from cgrpy.wire import value_to_pb

BACKENDS = tuple(s for s in SERVICES if s != "sm")
MAX_USAGE_NS = 3 * 3600 * 1_000_000_000  # what RALs grants with no usage asked (CGRateS: 3h)
_EMPTY = common_pb2.Empty()
_NO_IDS = common_pb2.IDsResponse()


# ---------------------------------------------------------------------- do-nothing servicers


class EchoAttributes(attributes_pb2_grpc.AttributesServiceServicer):
    async def ProcessEvent(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC names
        return attributes_pb2.AttributesProcessEventResponse(event=request.event)


def _run(event: common_pb2.Event, run_id: str, request_type: str | None) -> chargers_pb2.ChargerRun:
    run = chargers_pb2.ChargerRun(charger_profile=run_id, run_id=run_id, event=event)
    run.event.fields["RunID"].CopyFrom(value_to_pb(run_id))
    if request_type is not None:
        run.event.fields["RequestType"].CopyFrom(value_to_pb(request_type))
    return run


class EchoChargers(chargers_pb2_grpc.ChargersServiceServicer):
    async def ProcessEvent(self, request: Any, context: Any) -> Any:  # noqa: N802
        return chargers_pb2.ChargersProcessEventResponse(
            runs=[_run(request.event, "*default", None), _run(request.event, "*raw", "*none")])


class EchoRals(rals_pb2_grpc.RalsServiceServicer):
    async def GetMaxUsage(self, request: Any, context: Any) -> Any:  # noqa: N802
        return rals_pb2.MaxUsageResponse(max_usage_ns=request.usage_ns or MAX_USAGE_NS)

    async def Debit(self, request: Any, context: Any) -> Any:  # noqa: N802
        return rals_pb2.CostResponse(cost="0", usage_ns=request.call.usage_ns)

    async def Refund(self, request: Any, context: Any) -> Any:  # noqa: N802
        return rals_pb2.RefundResponse(refunded_cost="0")

    async def GetAccount(self, request: Any, context: Any) -> Any:  # noqa: N802
        return rals_pb2.Account(tenant=request.tenant, id=request.account)


class EchoSuppliers(suppliers_pb2_grpc.SuppliersServiceServicer):
    async def GetSuppliers(self, request: Any, context: Any) -> Any:  # noqa: N802
        return suppliers_pb2.GetSuppliersResponse(
            profile_id="SPL_BENCH", sorting="*weight",
            suppliers=[suppliers_pb2.SortedSupplier(supplier_id="supplier2"),
                       suppliers_pb2.SortedSupplier(supplier_id="supplier1")])


class EchoStats(stats_pb2_grpc.StatsServiceServicer):
    async def ProcessEvent(self, request: Any, context: Any) -> Any:  # noqa: N802
        return _NO_IDS


class EchoThresholds(thresholds_pb2_grpc.ThresholdsServiceServicer):
    async def ProcessEvent(self, request: Any, context: Any) -> Any:  # noqa: N802
        return _NO_IDS


class EchoResources(resources_pb2_grpc.ResourcesServiceServicer):
    """No resource matches the bench's accounts (as with the real ResourceS on the bench plan)."""

    async def AuthorizeResources(self, request: Any, context: Any) -> Any:  # noqa: N802
        raise CGRError("NOT_FOUND")

    async def AllocateResources(self, request: Any, context: Any) -> Any:  # noqa: N802
        raise CGRError("NOT_FOUND")

    async def ReleaseResources(self, request: Any, context: Any) -> Any:  # noqa: N802
        raise CGRError("NOT_FOUND")

    async def ReleaseUsage(self, request: Any, context: Any) -> Any:  # noqa: N802
        return resources_pb2.ReleaseUsageResponse()


class EchoCdre(cdre_pb2_grpc.CdrServiceServicer):
    def __init__(self) -> None:
        self.stored = 0  # CDR rows a real cdre would have stored (one per charger run)

    async def ProcessCDR(self, request: Any, context: Any) -> Any:  # noqa: N802
        runs = 2 if "*chargers:true" in request.flags else 1
        self.stored += runs
        return cdre_pb2.ProcessCDRResponse(cdrs=[cdre_pb2.CDR(run_id="*default")] * runs)

    async def ProcessCDRs(self, request: Any, context: Any) -> Any:  # noqa: N802
        results = [cdre_pb2.ProcessCDRResult(response=await self.ProcessCDR(r, context))
                   for r in request.cdrs]
        return cdre_pb2.ProcessCDRsResponse(results=results)

    async def StoreSessionCost(self, request: Any, context: Any) -> Any:  # noqa: N802
        return _EMPTY

    async def CountCDRs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return cdre_pb2.CountCDRsResponse(count=self.stored)

    async def GetCDRs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return cdre_pb2.GetCDRsResponse()


_SERVICERS: dict[str, tuple[Any, Any, Any]] = {
    "attributes": (EchoAttributes, attributes_pb2_grpc.add_AttributesServiceServicer_to_server, attributes_pb2),
    "chargers": (EchoChargers, chargers_pb2_grpc.add_ChargersServiceServicer_to_server, chargers_pb2),
    "rals": (EchoRals, rals_pb2_grpc.add_RalsServiceServicer_to_server, rals_pb2),
    "suppliers": (EchoSuppliers, suppliers_pb2_grpc.add_SuppliersServiceServicer_to_server, suppliers_pb2),
    "stats": (EchoStats, stats_pb2_grpc.add_StatsServiceServicer_to_server, None),
    "thresholds": (EchoThresholds, thresholds_pb2_grpc.add_ThresholdsServiceServicer_to_server, None),
    "cdre": (EchoCdre, cdre_pb2_grpc.add_CdrServiceServicer_to_server, cdre_pb2),
    "resources": (EchoResources, resources_pb2_grpc.add_ResourcesServiceServicer_to_server, resources_pb2),
}


def echo_service(name: str) -> type[BaseService]:
    """A BaseService named like the real one, serving the echo servicer."""
    servicer_cls, add, _ = _SERVICERS[name]

    def register(self: BaseService, server: grpc.aio.Server) -> list[str]:
        servicer = servicer_cls()
        add(servicer, server)
        # the full service name, from the base class the generated code derives it for
        base = servicer_cls.__mro__[1].__name__.removesuffix("Servicer")
        return [f"cgrates.v1.{base}"]

    return type(f"Echo_{name}", (BaseService,), {"name": name, "register": register})


# ---------------------------------------------------------------------- the echo "suite"


class EchoSuite:
    """Eight echo processes + the real SM on free loopback ports, children of this process."""

    def __init__(self, debit_interval: str, log_level: str, settings: list[tuple[str, str]] | None = None) -> None:
        from bench.target import settings_env
        from tests.suite import suite_env

        self.tmp = tempfile.mkdtemp(prefix="cgrpy-bench-echo-")
        # SM opens the StorDB only for its JSON-RPC API, which the bench does not use
        self.env = suite_env(f"sqlite:///{self.tmp}/unused.sqlite", CGRPY_DEBIT_INTERVAL=debit_interval,
                             CGRPY_LOG_LEVEL=log_level.upper())
        self.env.update(settings_env(settings or []))
        self.procs: list[subprocess.Popen[bytes]] = []

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.env[f'CGRPY_{name.upper()}_GRPC_PORT']}"

    def __enter__(self) -> EchoSuite:
        repo = Path(__file__).resolve().parent.parent
        log = open(Path(self.tmp) / "suite.log", "wb")  # noqa: SIM115 - closed with the processes
        self._log = log
        for name in BACKENDS:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "bench.echo", name], cwd=repo,
                                               env=self.env, stdout=log, stderr=subprocess.STDOUT))
        self.procs.append(subprocess.Popen([sys.executable, "-m", "services.sm"], cwd=repo, env=self.env,
                                           stdout=log, stderr=subprocess.STDOUT))
        try:
            self._wait_serving(timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name in SERVICES:
            with grpc.insecure_channel(self.addr(name)) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                while True:
                    if any(p.poll() is not None for p in self.procs):
                        raise RuntimeError(f"an echo suite process exited: {self.output()[-2000:]}")
                    try:
                        if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                                health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"echo suite: {name} not SERVING in {timeout}s")
                    time.sleep(0.2)

    def output(self) -> str:
        self._log.flush()
        return (Path(self.tmp) / "suite.log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._log.close()


# ---------------------------------------------------------------------- the mode


def register(sub: argparse._SubParsersAction) -> None:
    from bench.ramp import add_ramp_args
    from bench.target import add_load_args, add_set_arg

    p = sub.add_parser("echo", help="the same fan-out with do-nothing backends: the transport ceiling")
    add_ramp_args(p)
    add_load_args(p, call_length="20s")
    p.add_argument("--accounts", type=int, default=1000, help="accounts the calls are spread over")
    p.add_argument("--debit-interval", default="10s", help="SM debit interval")
    p.add_argument("--log-level", default="WARNING", help="log level of SM and the echo servers")
    add_set_arg(p)
    p.add_argument("--compare", type=Path, metavar="RESULT.json",
                   help="a ramp/calls result of the real suite: report it as a ratio of the echo ceiling")
    p.set_defaults(func=run)


def cpu_per_call_ms(result: dict[str, Any]) -> float | None:
    completed = result["calls"]["completed"]
    return round(1000 * result["processes_cpu_total"] / completed, 2) if completed else None


def compare(echo: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    real_knee = (real.get("ramp") or {}).get("knee_cps")
    if real_knee is None and real.get("mode", "calls") == "calls" and real["consistency"]["ok"]:
        real_knee = real["calls"]["achieved_cps"]  # a calls run: its rate, a lower bound of the knee
    echo_knee = echo["ramp"]["knee_cps"]
    e_cpu, r_cpu = cpu_per_call_ms(echo), cpu_per_call_ms(real)
    return {
        "real_result": {"mode": real.get("mode", "calls"), "started_utc": real["started_utc"],
                        "commit": real["commit"], "loadavg_before": real["loadavg_before"]},
        "echo_knee_cps": echo_knee, "real_knee_cps": real_knee,
        "knee_ratio": round(real_knee / echo_knee, 3) if real_knee and echo_knee else None,
        "echo_cpu_per_call_ms": e_cpu, "real_cpu_per_call_ms": r_cpu,
        # how much more CPU a real call costs than its transport alone
        "cpu_per_call_ratio": round(r_cpu / e_cpu, 2) if e_cpu and r_cpu else None,
        "echo_sm_cpu_per_call_ms": _svc_cpu_per_call(echo, "sm"),
        "real_sm_cpu_per_call_ms": _svc_cpu_per_call(real, "sm"),
    }


def _svc_cpu_per_call(result: dict[str, Any], name: str) -> float | None:
    row, completed = result["processes"].get(name), result["calls"]["completed"]
    return round(1000 * row["cpu_seconds"] / completed, 2) if row and completed else None


def run(args: argparse.Namespace) -> int:
    from bench.calls import emit, gen_config
    from bench.plan import write_plan
    from bench.ramp import ramp, schedule
    from bench.target import Target, loopback
    from cgrpy.units import SECOND, parse_duration

    sched = schedule(args.start_cps, args.factor, args.step_seconds, args.max_steps, args.max_cps)
    cfg = gen_config(args, cps=sched[0][0], duration_s=sum(s for _, s in sched), schedule=sched)
    bound_s = parse_duration(args.p99_bound) / SECOND
    real = json.loads(args.compare.read_text()) if args.compare else None
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cgrpy-bench-plan-") as tmp:
        plan = write_plan(Path(tmp), args.accounts, balance=Decimal(0))
        print("starting the echo suite (real SM + 7 echo servers) ...", file=sys.stderr)
        try:
            suite = stack.enter_context(EchoSuite(args.debit_interval, args.log_level, args.set))
        except RuntimeError as exc:
            print(f"bench echo: the echo suite did not start: {exc}", file=sys.stderr)
            return 2
        host, port = loopback(suite.env["CGRPY_OPENSIPS_LISTEN"])
        target = Target(host, port, suite.addr("rals"), suite.addr("cdre"),
                        f"http://127.0.0.1:{suite.env['CGRPY_SM_METRICS_PORT']}/metrics", os.getpid(), None)
        result = asyncio.run(ramp(cfg, plan, target, bound_s, mode="echo"))
    result["echo"] = compare(result, real) if real else {
        "echo_knee_cps": result["ramp"]["knee_cps"], "echo_cpu_per_call_ms": cpu_per_call_ms(result)}
    return emit(args, result)


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in _SERVICERS:
        raise SystemExit(f"usage: python -m bench.echo {{{','.join(_SERVICERS)}}}")
    run_service(echo_service(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
