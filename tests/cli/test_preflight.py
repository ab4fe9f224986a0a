"""`cgr up`'s pre-flight port check: only a real listener is "in use"; defaults avoid the
kernel's ephemeral range."""

from __future__ import annotations

import socket

from cgrpy.cli.preflight import ports_in_use
from cgrpy.config import SERVICES, load_settings
from tests.suite import free_port


def _settings(grpc_port: int):
    env = {f"CGRPY_{n.upper()}_GRPC_PORT": str(free_port()) for n in SERVICES}
    env |= {f"CGRPY_{n.upper()}_METRICS_PORT": str(free_port()) for n in SERVICES}
    env["CGRPY_STATS_GRPC_PORT"] = str(grpc_port)
    env["CGRPY_OPENSIPS_LISTEN"] = f"127.0.0.1:{free_port()}"
    env["CGRPY_OPENSIPS_EVENT_LISTEN"] = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    env["CGRPY_JSONRPC_LISTEN"] = f"127.0.0.1:{free_port()}"
    env["CGRPY_HTTP_LISTEN"] = f"127.0.0.1:{free_port()}"
    return load_settings(env)


def _leave_time_wait(port: int) -> None:
    """A server on `port` that closes its side first: the port is left in TIME-WAIT, as a
    stopped suite leaves its own server ports."""
    with socket.socket() as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = lsock.accept()
        conn.close()  # the server closes first: its end goes to TIME-WAIT
        client.recv(1)
        client.close()
    with socket.socket() as probe:  # proves the port really is held by TIME-WAIT
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return
    raise AssertionError(f"port {port} was not left in TIME-WAIT")


def test_time_wait_is_not_in_use():
    port = free_port()
    _leave_time_wait(port)
    assert ports_in_use(_settings(port)) == []


def test_a_listener_is_in_use():
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        port = lsock.getsockname()[1]
        busy = ports_in_use(_settings(port))
    assert len(busy) == 1 and busy[0].startswith(f"stats gRPC 127.0.0.1:{port}")


def test_default_ports_stay_below_the_ephemeral_range():
    s = load_settings({})
    for name in SERVICES:
        assert s.grpc_port(name) < 32768, name
        assert s.metrics_port(name) < 32768, name
    for key in ("opensips_listen", "opensips_event_listen", "jsonrpc_listen", "http_listen"):
        assert int(s.get(key).rpartition(":")[2]) < 32768, key
