"""The lifecycle every service process shares (CGRateS's servmanager, in small).

A service subclasses :class:`BaseService`: it names itself, registers its servicers and loads its
data. :func:`run_service` does the rest: logs, metrics endpoint, gRPC server with health and
reflection, readiness (SERVING only after ``load()``), graceful shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from cgrates.v1 import cache_pb2, cache_pb2_grpc, common_pb2, mux_pb2_grpc
from cgrpy.config import ConfigError, Settings, load_settings
from cgrpy.errors import CGRError
from cgrpy.runtime.auth import server_interceptors
from cgrpy.runtime.cache import CacheServicer
from cgrpy.runtime.cache import cache_counts as count_cache_items
from cgrpy.runtime.frame import FrameServer, server_ssl
from cgrpy.runtime.logs import EventLogger, get_logger, setup_logging
from cgrpy.runtime.loop import run as run_loop
from cgrpy.runtime.loop import set_switch_interval, tune_gc
from cgrpy.runtime.metrics import RpcMetrics, serve_metrics
from cgrpy.runtime.mux import MUX_SERVICE, Behaviour, HandlerTable, MuxServicer, RecordingServer
from cgrpy.runtime.status import status_code
from cgrpy.security import BEARER, grpc_server_credentials
from cgrpy.storage.db import MigrationError, make_engine
from cgrpy.tariffplan.columns import TariffPlanRows

# Exit codes (typed, so the supervisor can tell a bad config from a crash).
EXIT_OK = 0
EXIT_CONFIG = 78  # EX_CONFIG: bad configuration, port in use, StorDB unreachable
EXIT_CRASH = 70  # EX_SOFTWARE
# No port sharing (a second server on a taken port must fail, not split the traffic); no BDP
# probing (PINGs that size flow control for bulk transfers; the calls here are small and local,
# see CHANNEL_OPTIONS in cgrpy/runtime/client.py).
SERVER_OPTIONS: list[tuple[str, int]] = [("grpc.so_reuseport", 0), ("grpc.http2.bdp_probe", 0)]


class BaseService:
    """One subsystem process. Subclasses set ``name`` and implement ``register`` and ``load``."""

    name: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = get_logger(self.name)

    def register(self, server: grpc.aio.Server) -> list[str]:
        """Add the servicers; return their full service names (for health and reflection)."""
        raise NotImplementedError

    async def load(self) -> None:
        """Load data (tariff plan, state). Health says SERVING only after this returns."""

    async def close(self) -> None:
        """Release resources after the server stopped."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    _engine: Engine | None = None
    # What the service compiled at its last load/reload (CacheSv1.GetCacheStats): the TPID and
    # items per CGRateS cache ID, see cgrpy/runtime/cache.py. Empty for a service without a plan.
    cache_tpid: str = ""
    cache_counts: dict[str, int] = {}  # noqa: RUF012 - replaced (never mutated) by each load
    # host:port the gRPC server listens on, set by ServiceRunner before load() (port 0 resolved)
    bound_address: str = ""

    @property
    def engine(self) -> Engine:
        """The StorDB engine (created on first use, schema migrated)."""
        if self._engine is None:
            from cgrpy.storage.migrate import ensure_schema

            ensure_schema(self.settings.stordb_url, auto_migrate=self.settings.stordb_auto_migrate)
            self._engine = make_engine(self.settings.stordb_url)
        return self._engine

    async def fetch_tariffplan(self, tpid: str | None = None) -> TariffPlanRows:
        """The rows of tariff plan ``tpid`` (default: the configured one) from the StorDB.

        A TPID that was never loaded gives empty files: the service serves with no profiles
        rather than refusing to start (an operator loads a plan, then ReloadCache).
        """
        from cgrpy.storage.tariffplans import read_tariffplan

        tpid = tpid or self.settings.tpid
        return await asyncio.to_thread(read_tariffplan, self.engine, tpid)

    # --- ReloadCache: build the new compiled data once, off the loop, then swap it in ----------

    # Changes with every reload; the random part tells this process's reloads from a restart's.
    profile_version: str = ""
    # the tariff-plan files whose items CacheSv1.GetCacheStats reports (with "Filters")
    cache_files: ClassVar[tuple[str, ...]] = ()
    _boot: ClassVar[str] = secrets.token_hex(4)
    _generation: int = 0

    async def reload_cache(self, request: common_pb2.ReloadCacheRequest) -> common_pb2.ReloadCacheResponse:
        """The ReloadCache RPC: :meth:`reload` of the requested TPID (default: configured)."""
        tpid, loaded = await self.reload(request.tpid or None)
        return common_pb2.ReloadCacheResponse(tpid=tpid, loaded=loaded)

    async def reload(self, tpid: str | None = None) -> tuple[str, dict[str, int]]:
        """Compile tariff plan ``tpid`` (default: the configured one) and swap it in; returns the
        TPID and the counts ReloadCache reports. If building fails the old data stays in place.

        The build runs once, in a worker (:meth:`run_build`), so the loop keeps answering; the
        swap (:meth:`swap`) is synchronous, so no request sees half of it; what the old data held
        (clients, pools) is released afterwards (:meth:`retire`)."""
        tpid = tpid or self.settings.tpid
        rows = await self.fetch_tariffplan(tpid)
        new = await self.run_build(self.build, rows)
        old = self.swap(new, rows)
        # no await since the swap: a reply never pairs new data with the old version
        self._generation += 1
        self.profile_version = f"{self.name}:{self._boot}.{self._generation}"
        self.cache_tpid, self.cache_counts = tpid, count_cache_items(rows, self.cache_files)
        counts = self.counts(new, rows)
        self.log.info(f"{self.name}.loaded", tpid=tpid, **counts)
        await self.retire(old)
        return tpid, counts

    async def run_build(self, build: Callable[[TariffPlanRows], Any], rows: TariffPlanRows) -> Any:
        """Where :meth:`build` runs: a thread by default (a service with its own engine pool
        overrides this)."""
        return await asyncio.to_thread(build, rows)

    def build(self, rows: TariffPlanRows) -> Any:
        """The compiled data of ``rows`` (runs in a worker: no awaiting, no loop objects)."""
        raise NotImplementedError

    def swap(self, new: Any, rows: TariffPlanRows) -> Any:
        """Install ``new`` (plain assignments, no await) and return what it replaced."""
        raise NotImplementedError

    def counts(self, new: Any, rows: TariffPlanRows) -> dict[str, int]:
        """What ReloadCache reports as loaded, e.g. ``{"Stats": 3, "Filters": 5}``."""
        return {"Filters": len(rows.get("Filters", []))}

    async def retire(self, old: Any) -> None:
        """Release what the replaced data held: its ``close()`` (sync or async), if it has one."""
        close = getattr(old, "close", None)
        if close is None:
            return
        result = close()
        if asyncio.iscoroutine(result):
            await result


NOT_READY = "NOT_READY"
_UNGATED = ("/grpc.health.v1.Health/", "/grpc.reflection.")  # answer before load() too


def make_guard(
    service: str, ready: Callable[[], bool] | None = None
) -> Callable[[str, Behaviour], Behaviour]:
    """What every unary behaviour of ``service`` runs inside, whichever transport carried it:
    metrics outside, then the readiness gate, error translation inside. Health and reflection
    answer whatever the state (health says NOT_SERVING until loaded)."""
    log = get_logger(service)

    def guard(method: str, inner: Behaviour) -> Behaviour:
        gate = ready if ready is not None and not method.startswith(_UNGATED) else None
        return guarded(log, service, method, gate, inner)

    return guard


def guarded(log: EventLogger, service: str, method: str, ready: Callable[[], bool] | None,
            inner: Behaviour) -> Behaviour:
    """``inner`` counted and timed (:class:`RpcMetrics`), answering UNAVAILABLE while ``ready()``
    is false, with a :class:`CGRError` turned into a gRPC status carrying the CGRateS word and any
    other exception into INTERNAL with a logged traceback (never a silent hang).

    One coroutine per call, built once per method: these were three nested wrappers, each a
    coroutine and an await per request, on every one of the ~12 requests a call makes.

    The readiness gate: the gRPC server listens before ``load()`` has finished (the health
    service must answer NOT_SERVING meanwhile); a call that arrives then is "try again shortly",
    never a final error: clients retry UNAVAILABLE and keep their work pending (cdre leaves the
    CDR pending, SM settles later) instead of giving up."""
    metrics = RpcMetrics.of("unary", method)
    not_ready = f"{NOT_READY}: {service} is loading"

    async def behaviour(request: Any, context: Any) -> Any:
        start = metrics.start()
        # a cancelled call (deadline, client gone) counts as OK, as it always has
        code: Any = grpc.StatusCode.OK
        try:
            if ready is not None and not ready():
                await context.abort(grpc.StatusCode.UNAVAILABLE, not_ready)
            try:
                response = await inner(request, context)
            except CGRError as exc:
                await context.abort(status_code(exc), exc.message)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except NotImplementedError:
                # the generated servicer base: an RPC a later issue will implement
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"NOT_IMPLEMENTED: {method}")
            except Exception as exc:  # noqa: BLE001 - the boundary: log and report INTERNAL
                log.exception("rpc.error", method=method, error=repr(exc))
                await context.abort(grpc.StatusCode.INTERNAL, f"SERVER_ERROR: {exc}")
            code = context.code() or grpc.StatusCode.OK
            return response
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except Exception:
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            metrics.finish(code, start)

    return behaviour


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Applies the service's guard to every unary RPC. The guarded handler of a method is built
    on its first call and reused: building closures and handler objects per call showed up in
    profiles of the small, frequent calls between services."""

    def __init__(self, guard: Callable[[str, Behaviour], Behaviour]) -> None:
        self._guard = guard
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        try:
            cached = self._handlers[method]
        except KeyError:
            pass
        else:
            if cached is not None:
                return cached
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._guard(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._handlers[method] = wrapped
        return wrapped


class ServiceRunner:
    """Runs one :class:`BaseService` until a signal; usable from tests (start/stop) too."""

    def __init__(self, service: BaseService, *, grpc_port: int | None = None, metrics_port: int | None = None) -> None:
        self.service = service
        s = service.settings
        self.host = s.listen_host
        self.grpc_port = s.grpc_port(service.name) if grpc_port is None else grpc_port
        self.metrics_port = s.metrics_port(service.name) if metrics_port is None else metrics_port
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.mux: MuxServicer | None = None
        self.frame: FrameServer | None = None
        self.service_names: list[str] = []
        self._metrics_server: Any = None
        self.log = service.log
        self.loaded = False  # load() finished: until then the service's RPCs answer UNAVAILABLE
        self.tune_gc = False  # run_service sets it: only a process of its own tunes its collector

    async def start(self) -> None:
        name = self.service.name
        try:
            if self.metrics_port >= 0:
                self._metrics_server = serve_metrics(self.host, self.metrics_port)
                if self.metrics_port == 0:
                    self.metrics_port = self._metrics_server[0].server_port
        except OSError as exc:
            raise ConfigError(f"{name}: metrics port {self.host}:{self.metrics_port} unavailable: {exc.strerror}") from None
        guard = make_guard(name, lambda: self.loaded)
        # the token check first: a refused call never reaches the guard, metrics or handler
        interceptors = [*server_interceptors(self.service.settings), GuardInterceptor(guard)]
        self.server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        # The Mux stream runs the very handlers the service registers, under the same guard.
        table = HandlerTable(guard)
        self.service_names = self.service.register(RecordingServer(self.server, table))  # type: ignore[arg-type]
        cache_pb2_grpc.add_CacheServiceServicer_to_server(
            CacheServicer(self.service), RecordingServer(self.server, table))  # type: ignore[arg-type]
        self.service_names.append(cache_pb2.DESCRIPTOR.services_by_name["CacheService"].full_name)
        self.mux = MuxServicer(table)
        mux_pb2_grpc.add_MuxServicer_to_server(self.mux, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [*self.service_names, MUX_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            creds = grpc_server_credentials(self.service.settings)
            address = f"{self.host}:{self.grpc_port}"
            port = (self.server.add_secure_port(address, creds) if creds is not None
                    else self.server.add_insecure_port(address))
        except RuntimeError as exc:
            raise ConfigError(f"{name}: gRPC port {self.host}:{self.grpc_port} unavailable ({exc})") from None
        if port == 0:
            raise ConfigError(f"{name}: gRPC port {self.host}:{self.grpc_port} unavailable (in use?)")
        self.grpc_port = port
        self.service.bound_address = f"{self.host}:{port}"
        await self._start_frame_lane()
        await self.server.start()
        self.log.info("service.starting", grpc=f"{self.host}:{self.grpc_port}", metrics=f"{self.host}:{self.metrics_port}")
        try:
            await self.service.load()
        except BaseException:
            await self._abort_start()
            raise
        self.loaded = True
        if self.tune_gc:
            st = self.service.settings
            tune_gc(st.gc_young_threshold, st.gc_full_threshold, st.gc_middle_threshold)
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)
        self.log.info("service.serving", grpc=f"{self.host}:{self.grpc_port}")

    async def _start_frame_lane(self) -> None:
        """The frame lane beside the gRPC port (``cgrpy.runtime.frame``), under the same token
        and TLS; named to clients through the Mux stream. Not bound: gRPC carries everything."""
        s = self.service.settings
        offset = s.frame_port_offset
        if offset < 0 or self.mux is None:
            return
        token = s.get("api_token")
        self.frame = FrameServer(self.mux, (BEARER + token).encode() if token else b"", server_ssl(s))
        port = 0 if offset == 0 else self.grpc_port + offset
        self.mux.frame_port = await self.frame.start(self.host, port)

    async def _abort_start(self) -> None:
        """``load()`` failed (bad configuration, StorDB down): release what ``start()`` opened.
        A started gRPC server left behind keeps gRPC's completion-queue poller alive, and closing
        the event loop then waits on it for ever: the process (or test run) hangs instead of
        exiting with the error."""
        if self.frame is not None:
            await self.frame.close(0)
        if self.server is not None:
            await self.server.stop(0)
        try:
            await self.service.close()
        except Exception:  # noqa: BLE001 - a half-loaded service; the load error is what matters
            self.log.exception("service.close_after_failed_load")
        self._stop_metrics()

    def _stop_metrics(self) -> None:
        if self._metrics_server is not None:
            httpd, _thread = self._metrics_server
            httpd.shutdown()
            httpd.server_close()
            self._metrics_server = None

    async def _set_all(self, status: int) -> None:
        await self.health.set("", status)
        for n in self.service_names:
            await self.health.set(n, status)

    async def stop(self, grace: float | None = None) -> None:
        if grace is None:
            grace = self.service.settings.grace_period / 1e9
        self.log.info("service.draining", grace_s=grace)
        await self.health.enter_graceful_shutdown()
        if self.mux is not None:
            self.mux.drain()
        if self.frame is not None:
            self.frame.drain()
        await asyncio.gather(*(
            ([self.server.stop(grace)] if self.server is not None else [])
            + ([self.frame.close(grace)] if self.frame is not None else [])))
        await self.service.close()
        self._stop_metrics()
        self.log.info("service.stopped")

    async def run_until_signal(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()


def run_service(service_cls: type[BaseService]) -> None:
    """Process entry point: ``python -m services.<name>``."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"cgrpy {service_cls.name}: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    setup_logging(service_cls.name, settings.log_level)
    runner = ServiceRunner(service_cls(settings))
    runner.tune_gc = True  # a process of its own: its collector is the service's to tune
    set_switch_interval(settings.gil_switch_interval)  # and its interpreter lock
    try:
        run_loop(runner.run_until_signal(), settings.event_loop)
    except (ConfigError, MigrationError) as exc:
        # a schema this code cannot run on is the operator's to fix (cgr migrate), like a
        # bad setting: one line, and the supervisor does not restart it in a loop
        print(f"cgrpy {service_cls.name}: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        pass
    sys.exit(EXIT_OK)
