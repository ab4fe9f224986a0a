"""Configuration: built-in defaults < optional file (``CGRPY_CONFIG``) < ``CGRPY_*`` variables.

Every key, its default and its CGRateS name (where there is one) is declared once in ``KEYS``;
the README's configuration table is generated from it (``cgr config --markdown``). An unknown key
or a malformed value raises :class:`ConfigError` with one line naming the key and the problem.
The file is TOML (``.toml``) or JSON (``.json``) with the same keys in lower case.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgrpy.netaddr import advertise_problem
from cgrpy.security import check_allow_list
from cgrpy.units import UnitError, format_duration, parse_duration

SERVICES: tuple[str, ...] = (
    "attributes",
    "chargers",
    "rals",
    "suppliers",
    "stats",
    "thresholds",
    "cdre",
    "resources",
    "sm",
)
# Stateless over the StorDB: `cgr up` can start several processes of each (setting `replicas`).
STATELESS_SERVICES: tuple[str, ...] = ("attributes", "chargers", "suppliers", "cdre")
# One owner per partition of the keys (RALs accounts, stat queues, thresholds; ResourceS: one
# partition for all its resources) through Postgres advisory locks (cgrpy/runtime/partitions.py):
# several processes only on a Postgres StorDB (on SQLite one process owns everything).
PARTITIONED_SERVICES: tuple[str, ...] = ("rals", "stats", "thresholds", "resources")
# Sessions in the StorDB, one owner replica each, adopted when it dies (services/sm/adoption.py):
# several processes only on a Postgres StorDB (on SQLite each SM keeps its own session file).
SHARED_SESSION_SERVICES: tuple[str, ...] = ("sm",)
# SM's own listeners; replica k listens on each one's port + k * REPLICA_PORT_STEP too.
SM_LISTENERS: tuple[str, ...] = ("opensips_listen", "opensips_event_listen", "jsonrpc_listen", "http_listen")
# Replica k (0, 1, ...) of a service listens on the service's gRPC and metrics ports + k * this:
# attributes 20051, 20151, 20251...; metrics 9151, 9251...; all below 32768 up to MAX_REPLICAS.
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 10
# Ports in the order the services were added (resources, the ninth, after sm).
_PORT_ORDER = ("attributes", "chargers", "rals", "suppliers", "stats", "thresholds", "cdre", "sm", "resources")
GRPC_PORTS = dict(zip(_PORT_ORDER, range(20051, 20060), strict=True))
METRICS_PORTS = dict(zip(_PORT_ORDER, range(9151, 9160), strict=True))


class ConfigError(ValueError):
    """Bad configuration; ``str()`` is one line naming the key and what is wrong."""


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # str | int | duration | bool | json_list
    default: Any
    doc: str
    cgrates: str = ""


def _k(name: str, kind: str, default: Any, doc: str, cgrates: str = "") -> Key:
    return Key(name, kind, default, doc, cgrates)


_BASE_KEYS: list[Key] = [
    _k("listen_host", "str", "127.0.0.1", "Address every server binds (loopback by default)."),
    _k("stordb_url", "str", "sqlite:///var/stordb.sqlite",
       "SQLAlchemy URL of the StorDB, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/cgrpy.",
       "stor_db"),
    _k("stordb_auto_migrate", "bool", True,
       "Upgrade the StorDB schema to this code's revision when a process starts (cgr up, each "
       "service). Off: a process whose StorDB is behind refuses to start, naming `cgr migrate`."),
    _k("tpid", "str", "cgrpy", "Tariff plan ID the services load and `cgr load` writes by default.",
       "tpid"),
    _k("default_tenant", "str", "cgrates.org", "Tenant used when a request names none.",
       "general.default_tenant"),
    _k("default_category", "str", "call", "Category used when a request names none.",
       "general.default_category"),
    _k("rounding_decimals", "int", 5, "Decimals of the global *middle rounding of money.",
       "general.rounding_decimals"),
    _k("debit_interval", "duration", 10_000_000_000,
       "SM periodic debit interval for *prepaid sessions; 0s = charge at terminate only.",
       "sessions.debit_interval"),
    _k("session_ttl", "duration", 0, "Terminate a session not updated for this long (0 = off).",
       "sessions.session_ttl"),
    _k("sm_channel_sync_interval", "duration", 0,
       "Every this long SM asks each OpenSIPS connection for its calls (GetActiveSessionIDs) and "
       "closes the sessions it no longer has (0 = off).", "sessions.channel_sync_interval"),
    _k("sm_restore_confirm_timeout", "duration", 300_000_000_000,
       "After an SM restart a restored session is charged again only once OpenSIPS confirms it "
       "(GetActiveSessionIDs); unconfirmed for this long, it is closed at what was charged before."),
    _k("sm_reply_timeout", "duration", 2_000_000_000,
       "SM answers OpenSIPS within this time even if a backend hangs."),
    _k("sm_backend_retry", "duration", 10_000_000_000,
       "How long SM retries a RALs debit that failed for want of RALs (restarting, unreachable), "
       "with the same request id, before the failed-backend policy applies. A settlement (final "
       "debit, refund) is retried until it succeeds, across SM restarts."),
    _k("sm_cdr_wait", "duration", 60_000_000_000,
       "After a TerminateSession, how long SM waits for the call's ProcessCDR before posting the "
       "CDRs built from the session itself (the ProcessCDR was lost, or went to an SM that died); "
       "a ProcessCDR arriving later adds no CDR. 0 = never post without ProcessCDR."),
    _k("sm_backend_failure_policy", "str", "deny",
       "On a failed backend during authorize: deny (refuse the call) or allow (let it through)."),
    _k("sm_spool_path", "str", "var/sm_cdr_spool.sqlite",
       "SM's durable CDR spool (CDRs accepted from OpenSIPS, not yet stored by cdre). On a "
       "Postgres StorDB the spool is the StorDB's sm_cdr_spool (shared by the SM replicas) and this "
       "file keeps only CDRs taken while the StorDB refused writes."),
    _k("sm_cdr_direct_timeout", "duration", 500_000_000,
       "How long SM waits for cdre to store a call's CDRs before it spools them instead (answering "
       "OpenSIPS after the spool's commit; the spool delivers them, cdre stores a (CGRID, RunID) "
       "once). At most half of sm_reply_timeout is used, leaving the spool time; 0s = always spool."),
    _k("sm_cdr_batch_window", "duration", 20_000_000,
       "How long SM's spool gathers CDRs (already durable, already answered) before handing them "
       "to cdre in one message; 0s = at once. Longer = fewer, larger messages; later CDRs in cdre."),
    _k("opensips_listen", "str", "127.0.0.1:2014", "SM listener for OpenSIPS's cgrates module."),
    _k("opensips_event_listen", "str", "127.0.0.1:2020",
       "SM UDP listener for OpenSIPS event_datagram events."),
    _k("opensips_mi_url", "str", "", "OpenSIPS MI (http://host:port/mi or udp:host:port); empty = off."),
    _k("opensips_event_advertise", "str", "",
       "Event mode only: udp:host:port OpenSIPS sends E_ACC_* events to (reachable from the switch, "
       "not 0.0.0.0); set with opensips_mi_url to subscribe. Empty = no subscription (cgrates module)."),
    _k("jsonrpc_listen", "str", "127.0.0.1:2012", "CGRateS-compatible JSON-RPC over TCP.",
       "listen.rpc_json"),
    _k("http_listen", "str", "127.0.0.1:2080", "CGRateS-compatible JSON-RPC over HTTP (/jsonrpc).",
       "listen.http"),
    _k("cdrs_events_interval", "duration", 250_000_000,
       "How long cdre gathers the events of stored CDRs before sending them to StatS and "
       "ThresholdS in one ProcessEvents each (durable meanwhile, off the CDR's reply). Longer = "
       "fewer messages; counts that lag that much more."),
    _k("cdre_export_path", "str", "/tmp", "Directory CDR exports are written to (tutorial: /tmp).",
       "cdre.*default.export_path"),
    _k("cdre_profiles_file", "str", "",
       "JSON file of named CDRe export profiles {name: {fields...}} besides the built-in *default.",
       "cdre"),
    _k("cdrs_online_cdr_exports", "json_list", [],
       "CDRe profile ids (in cdre_profiles_file, export_format *http_post, *http_json_cdr or "
       "*amqp_json_cdr) every stored CDR is exported to, from cdre's durable outbox "
       "(README \"Online CDR export\").", "cdrs.online_cdr_exports"),
    _k("cdre_export_failed_retry", "duration", 300_000_000_000,
       "An online export that used up its profile's attempts is kept, marked failed, and "
       "retried after this long (0 = only on demand: `cgr cdrs retry-exports`)."),
    _k("opensips_allowed_sources", "str", "127.0.0.0/8,::1",
       "Source addresses allowed on the OpenSIPS listeners (TCP cgrates module, UDP events): "
       "comma-separated addresses or networks (10.0.0.0/8), * = any. Others are refused."),
    _k("api_token", "str", "",
       "Secret every caller of the JSON-RPC API (:2012/:2080) and of the gRPC services must present "
       "(see Security). Empty: `cgr up` uses api_token_file; a service run alone then accepts anyone."),
    _k("api_token_file", "str", "var/api_token",
       "Where `cgr up` keeps the API token when api_token is empty (created mode 0600 with a random "
       "token if missing) and where the CLI reads it. Empty = no token (any local caller)."),
    _k("api_tariffplan_roots", "str", "tariffplans",
       "Comma-separated directories APIerSv1.LoadTariffPlanFromFolder may read under (symlinks and "
       ".. resolved first); anything else is refused."),
    _k("api_export_roots", "str", "",
       "Comma-separated directories ExportCDRs may write under (empty = cdre_export_path only)."),
    _k("http_tls_cert", "str", "", "PEM certificate (chain) for TLS on the HTTP API (:2080); empty = plain HTTP."),
    _k("http_tls_key", "str", "", "PEM private key of http_tls_cert (empty: in the certificate file)."),
    _k("grpc_tls_cert", "str", "",
       "PEM certificate of the gRPC servers (TLS on when set); clients present it too when asked."),
    _k("grpc_tls_key", "str", "", "PEM private key of grpc_tls_cert."),
    _k("grpc_tls_ca", "str", "", "PEM CA that clients verify the gRPC servers with (TLS on for clients when set)."),
    _k("grpc_tls_client_ca", "str", "",
       "PEM CA the gRPC servers verify client certificates with (mutual TLS when set)."),
    _k("grpc_tls_server_name", "str", "",
       "Name clients expect in the servers' certificate when it differs from the address they dial."),
    _k("startup_timeout", "duration", 120_000_000_000,
       "`cgr up` waits this long for every service to be SERVING (a big plan takes a while)."),
    _k("grace_period", "duration", 5_000_000_000,
       "On SIGTERM: stop accepting, let in-flight calls finish for this long, then exit."),
    _k("rpc_timeout", "duration", 2_000_000_000, "Deadline of every gRPC call between services."),
    _k("rpc_resolve_interval", "duration", 5_000_000_000,
       "How often a client re-resolves a dns:/// service address, so replicas that started or "
       "stopped join or leave its rotation (also at once, at most each second, after a failure)."),
    _k("rpc_transport", "str", "frame",
       "Calls between services: frame (the Mux envelopes over a plain TCP connection, the "
       "server's frame lane, found through its gRPC stream; falls back to mux), mux (many calls "
       "over one gRPC stream per channel, unary fallback) or unary (one gRPC call each)."),
    _k("frame_port_offset", "int", 1000,
       "Each service's frame lane listens on its gRPC port + this (20051 -> 21051); 0 = any free "
       "port (named to clients through the gRPC stream); -1 = no lane (gRPC only)."),
    _k("event_loop", "str", "uvloop",
       "Event loop of every service process: uvloop (libuv, less CPU per message) or asyncio "
       "(the standard library's)."),
    _k("gc_young_threshold", "int", 10_000,
       "Python's garbage collector runs its young-generation pass after this many new container "
       "objects (Python's default: 700); what a service loaded before it serves is frozen out of "
       "the collector's scans. A pass stalls the process about 1-2 us per object it walks once "
       "SM holds thousands of calls (50000: 60-100 ms passes in SM at 179 calls/s; 10000: "
       "9-20 ms). 0 = Python's defaults."),
    _k("gil_switch_interval", "duration", 5_000_000,
       "How long a thread waiting for the interpreter lock waits before the running thread is made "
       "to hand it over (Python's sys.setswitchinterval; its default is 5ms). A service's "
       "group-commit writer thread takes the lock back after every database round trip, so "
       "while the event loop is busy each of its statements can wait this long."),
    _k("gc_full_threshold", "int", 1000,
       "A full collector pass (over every live session, cached account and profile: 100+ ms "
       "with a few thousand calls up, the whole process stalled) runs at most once per this "
       "many middle passes (Python's default: 10), i.e. after gc_young_threshold x "
       "gc_middle_threshold x this new objects (30 million by default). Only with "
       "gc_young_threshold above 0."),
    _k("gc_middle_threshold", "int", 3,
       "A middle collector pass runs after this many young passes (Python's default: 10) and "
       "walks what survived them: while calls ramp up nearly everything does, so "
       "gc_young_threshold x (this + 1) objects bound its stall (50000 x 11: 420-490 ms in SM "
       "at 179 calls/s; 10000 x 4: 80-100 ms). Only with gc_young_threshold above 0."),
    _k("log_level", "str", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    _k("replicas", "int", 1,
       "`cgr up` starts this many processes of each stateless service (attributes, chargers, "
       "suppliers, cdre) and, on a Postgres StorDB, of rals, stats, thresholds and resources "
       "(accounts, queues and thresholds partitioned between them; one resources replica owns "
       "every resource and the others pass their requests to it); "
       "replica k listens on the service's ports + 100*k, and clients spread calls over all of "
       "them (1..10)."),
]
for _svc in SERVICES:
    _BASE_KEYS += [
        _k(f"{_svc}_grpc_port", "int", GRPC_PORTS[_svc], f"gRPC port of {_svc}."),
        _k(f"{_svc}_metrics_port", "int", METRICS_PORTS[_svc], f"Prometheus /metrics port of {_svc}."),
        _k(f"{_svc}_addr", "str", "",
           f"Where other services reach {_svc} (default listen_host:grpc_port): host:port, several "
           "host:port separated by commas, or dns:///host:port (every address the name resolves "
           "to); calls are spread over the live ones (README \"Scale out\")."),
    ]
for _svc in ("attributes", "chargers", "suppliers", "stats", "thresholds", "resources"):
    _BASE_KEYS += [
        _k(f"{_svc}_string_indexed_fields", "json_list", None,
           f"Fields {_svc} indexes by exact value (unset = all; [] = none).",
           f"{_svc}.string_indexed_fields"),
        _k(f"{_svc}_prefix_indexed_fields", "json_list", [],
           f"Fields {_svc} indexes by prefix ([] = none; null = all).", f"{_svc}.prefix_indexed_fields"),
    ]

_BASE_KEYS.append(_k(
    "rals_advertise", "str", "",
    "Where other RALs replicas reach this one (they forward an account's requests to its owner): "
    "a host (the gRPC port it listens on is added) or host:port; *hostname = the IP this "
    "machine's name resolves to (a container's own). Empty: the listen address, if it is not a "
    "wildcard (0.0.0.0, ::); with a wildcard and nothing here, replicas serve each other's "
    "accounts on the slow locked path and RALs logs an error. Kubernetes: the pod IP."))
for _svc, _what in (("stats", "stat queue"), ("thresholds", "threshold"), ("resources", "resource")):
    _BASE_KEYS.append(_k(
        f"{_svc}_advertise", "str", "",
        f"Where other {_svc} replicas reach this one (they pass a {_what}'s updates to its owner): "
        "a host (the gRPC port it listens on is added) or host:port; *hostname = the IP this "
        "machine's name resolves to. Empty: the listen address, if it is not a wildcard; with a "
        f"wildcard and nothing here the other replicas cannot reach the {_what}s this one owns "
        "and fail those requests. Kubernetes: the pod IP."))

KEYS: dict[str, Key] = {k.name: k for k in _BASE_KEYS}


def _parse(key: Key, raw: Any) -> Any:
    try:
        if key.kind == "str":
            if not isinstance(raw, str):
                raise ValueError("expected text")
            return raw
        if key.kind == "int":
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if key.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if key.kind == "duration":
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            return parse_duration(str(raw))
        if key.kind == "json_list":
            value = json.loads(raw) if isinstance(raw, str) else raw
            if value is not None and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
                raise ValueError("expected a JSON list of strings")
            return value
    except (ValueError, UnitError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config {key.name}: {exc} (got {raw!r})") from None
    raise ConfigError(f"config {key.name}: unknown kind {key.kind}")


# gRPC target schemes that name several addresses themselves: such a value is one target,
# handed to gRPC as it is (pick-first over its addresses), never split here.
_GRPC_SCHEMES = ("ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def split_targets(value: str) -> tuple[str, ...]:
    """The gRPC targets of a ``*_addr`` value: ``a:1,b:2`` -> ``("a:1", "b:2")``; a
    ``dns:///name:port`` target stays one entry (the client resolves it to its replicas), and
    so does a value in one of gRPC's own multi-address schemes (``ipv4:a:1,b:2``)."""
    if value.startswith(_GRPC_SCHEMES):
        return (value,)
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _target_problem(value: str) -> str | None:
    for target in split_targets(value):
        if target.startswith(_GRPC_SCHEMES):
            continue
        hostport = target.removeprefix("dns:///")
        host, sep, port = hostport.rpartition(":")
        if "/" in hostport or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            return f"{target!r} is not host:port or dns:///host:port"
    return None


_VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "sm_backend_failure_policy": lambda v: None if v in ("deny", "allow") else "must be deny or allow",
    "log_level": lambda v: None if v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR") else "unknown level",
    "rounding_decimals": lambda v: None if 0 <= v <= 12 else "must be 0..12",
    "rpc_transport": lambda v: None if v in ("frame", "mux", "unary") else "must be frame, mux or unary",
    "frame_port_offset": lambda v: None if -1 <= v <= 30000 else "must be -1..30000",
    "event_loop": lambda v: None if v in ("uvloop", "asyncio") else "must be uvloop or asyncio",
    "gc_young_threshold": lambda v: None if v >= 0 else "must be 0 or more",
    "gc_full_threshold": lambda v: None if v >= 1 else "must be 1 or more",
    "gc_middle_threshold": lambda v: None if v >= 1 else "must be 1 or more",
    "gil_switch_interval": lambda v: None if 0 < v <= 1_000_000_000 else "must be above 0 and at most 1s",
    "replicas": lambda v: None if 1 <= v <= MAX_REPLICAS else f"must be 1..{MAX_REPLICAS}",
    **{f"{svc}_addr": _target_problem for svc in SERVICES},
    "opensips_allowed_sources": check_allow_list,
    "rals_advertise": advertise_problem,
    "stats_advertise": advertise_problem,
    "thresholds_advertise": advertise_problem,
    "resources_advertise": advertise_problem,
}
# Settings never shown in clear (`cgr config show`, logs).
SECRET_KEYS = frozenset({"api_token"})


class Settings:
    """Resolved configuration. Attribute access by key name: ``settings.debit_interval``."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.sources = dict(sources)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str) -> Any:
        return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def grpc_port(self, service: str) -> int:
        return int(self._values[f"{service}_grpc_port"])

    def metrics_port(self, service: str) -> int:
        return int(self._values[f"{service}_metrics_port"])

    def addr(self, service: str) -> str:
        """One gRPC target where ``service`` is reached (the first of several; a dns:/// target
        as it is, gRPC resolves it): for one-off clients such as health checks."""
        return self.addrs(service)[0]

    def addrs(self, service: str) -> tuple[str, ...]:
        """Every gRPC target of ``service`` (:func:`split_targets`); ``ServiceClient`` spreads
        its calls over them. Without an explicit address: each local replica's."""
        explicit = split_targets(self._values[f"{service}_addr"])
        return explicit or tuple(f"{self.listen_host}:{self.replica_ports(service, k)[0]}"
                                 for k in range(self.replicas_of(service)))

    def replicas_of(self, service: str) -> int:
        """How many processes of ``service`` `cgr up` starts."""
        shared = (*PARTITIONED_SERVICES, *SHARED_SESSION_SERVICES)
        if service in STATELESS_SERVICES or (service in shared and self.partitioned):
            return int(self._values["replicas"])
        return 1

    @property
    def partitioned(self) -> bool:
        """The StorDB can share the account space between processes (Postgres)."""
        return str(self._values["stordb_url"]).startswith("postgresql")

    def replica_ports(self, service: str, k: int) -> tuple[int, int]:
        """(gRPC, metrics) port of replica ``k`` of ``service`` on this machine."""
        step = REPLICA_PORT_STEP * k
        return self.grpc_port(service) + step, self.metrics_port(service) + step

    def sm_listeners(self, k: int) -> dict[str, str]:
        """SM replica ``k``'s listeners (``SM_LISTENERS``: each port + k·REPLICA_PORT_STEP)."""
        out = {}
        for key in SM_LISTENERS:
            host, _, port = str(self._values[key]).rpartition(":")
            out[key] = f"{host}:{int(port) + REPLICA_PORT_STEP * k}"
        return out

    def env(self) -> dict[str, str]:
        """These settings as CGRPY_* variables, to hand to child processes."""
        out: dict[str, str] = {}
        for name, value in self._values.items():
            key = KEYS[name]
            if key.kind == "duration":
                out[f"CGRPY_{name.upper()}"] = format_duration(value)
            elif key.kind == "json_list":
                if value is not None:
                    out[f"CGRPY_{name.upper()}"] = json.dumps(value)
            else:
                out[f"CGRPY_{name.upper()}"] = str(value)
        return out


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path}: not found")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a table of keys")
    return data


# CGRPY_ variables that are not settings keys (read elsewhere) and so are not "unknown".
_NON_KEY_ENV = {"CGRPY_CONFIG", "CGRPY_TEST_PG", "CGRPY_SERVICE"}


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Resolve defaults, file and environment (and explicit overrides, e.g. CLI flags)."""
    env = os.environ if env is None else env
    values = {k.name: k.default for k in KEYS.values()}
    sources = {k.name: "default" for k in KEYS.values()}
    cfg_path = env.get("CGRPY_CONFIG")
    if cfg_path:
        for name, raw in _read_file(Path(cfg_path)).items():
            key = KEYS.get(name.lower())
            if key is None:
                raise ConfigError(f"config file {cfg_path}: unknown key {name!r}")
            values[key.name] = _parse(key, raw)
            sources[key.name] = "file"
    for var, raw in env.items():
        if not var.startswith("CGRPY_") or var in _NON_KEY_ENV:
            continue
        key = KEYS.get(var[len("CGRPY_") :].lower())
        if key is None:
            raise ConfigError(f"environment {var}: unknown setting")
        values[key.name] = _parse(key, raw)
        sources[key.name] = "env"
    for name, raw in (overrides or {}).items():
        values[name] = _parse(KEYS[name], raw)
        sources[name] = "override"
    for name, check in _VALIDATORS.items():
        problem = check(values[name])
        if problem:
            raise ConfigError(f"config {name}: {problem} (got {values[name]!r})")
    _check_grpc_tls(values)
    return Settings(values, sources)


def _check_grpc_tls(values: Mapping[str, Any]) -> None:
    """TLS settings that only make sense together. A client CA without a server certificate
    would leave every gRPC server plaintext, so the mutual TLS the operator asked for would
    silently be off and any local process could call; a certificate without its key cannot
    serve at all."""
    if values["grpc_tls_client_ca"] and not values["grpc_tls_cert"]:
        raise ConfigError("config grpc_tls_client_ca: mutual TLS needs grpc_tls_cert and grpc_tls_key "
                          "(without them the gRPC servers would be plaintext, open to any client)")
    if bool(values["grpc_tls_cert"]) != bool(values["grpc_tls_key"]):
        raise ConfigError("config grpc_tls_cert, grpc_tls_key: set both or neither "
                          f"(got cert {values['grpc_tls_cert']!r}, key {values['grpc_tls_key']!r})")


def markdown_table() -> str:
    """The configuration reference for the README."""
    lines = ["| variable | default | CGRateS | meaning |", "|---|---|---|---|"]
    for k in KEYS.values():
        default = format_duration(k.default) if k.kind == "duration" else json.dumps(k.default) if k.kind == "json_list" else k.default
        lines.append(f"| `CGRPY_{k.name.upper()}` | `{default}` | {k.cgrates or ''} | {k.doc} |")
    return "\n".join(lines)
