"""Checks `cgr up` runs before starting anything, so a bad setup fails with one clear line."""

from __future__ import annotations

import socket

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cgrpy.config import SERVICES, ConfigError, Settings
from cgrpy.netaddr import split_host_port
from cgrpy.storage.db import make_engine


def ports_in_use(settings: Settings) -> list[str]:
    """Every address the suite would listen on that something else already holds."""
    wanted: list[tuple[str, str, int, int]] = []
    for name in SERVICES:
        for k in range(settings.replicas_of(name)):
            label = name if k == 0 else f"{name}-{k}"
            grpc_port, metrics_port = settings.replica_ports(name, k)
            wanted.append((f"{label} gRPC", settings.listen_host, grpc_port, socket.SOCK_STREAM))
            wanted.append((f"{label} metrics", settings.listen_host, metrics_port, socket.SOCK_STREAM))
    for k in range(settings.replicas_of("sm")):
        listeners = settings.sm_listeners(k)
        for label, key, kind in (
            ("OpenSIPS listener", "opensips_listen", socket.SOCK_STREAM),
            ("OpenSIPS events", "opensips_event_listen", socket.SOCK_DGRAM),
            ("JSON-RPC", "jsonrpc_listen", socket.SOCK_STREAM),
            ("HTTP JSON-RPC", "http_listen", socket.SOCK_STREAM),
        ):
            host, port = split_host_port(listeners[key])
            wanted.append((label if k == 0 else f"sm-{k} {label}", host, port, kind))
    busy = []
    for label, host, port, kind in wanted:
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                # Linux's SO_REUSEADDR still refuses a port with a listener on it, but not one
                # held only by TIME-WAIT sockets (a stopped suite leaves those for ~60 s); the
                # servers themselves bind the same way, so only a real listener is "busy".
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                busy.append(f"{label} {host}:{port} ({exc.strerror})")
    return busy


def check_stordb(url: str) -> None:
    """Raise ConfigError with one line if the StorDB cannot be reached."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        raise ConfigError(f"StorDB {engine.url.render_as_string(hide_password=True)} unreachable: {first}") from None
    finally:
        engine.dispose()
