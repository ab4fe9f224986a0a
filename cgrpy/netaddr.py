"""``host:port`` addresses as the settings write them (``127.0.0.1:2012``, ``[::1]:2012``)."""

from __future__ import annotations

import ipaddress
import socket


def split_host_port(addr: str, default_host: str = "") -> tuple[str, int]:
    """``"127.0.0.1:2012"`` -> ``("127.0.0.1", 2012)``; an empty host (``":2012"``) is
    ``default_host``; IPv6 brackets are removed. A port that is not a number raises ValueError."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or default_host, int(port)


def join_host_port(host: str, port: int) -> str:
    """Inverse of :func:`split_host_port`: an IPv6 host goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The advertise value that means "the address this machine's own name resolves to": in a
# container /etc/hosts maps the hostname to the container's (pod's) IP, so a compose service
# run with several replicas needs no per-replica setting.
HOSTNAME = "*hostname"


def is_wildcard(host: str) -> bool:
    """True for a listen host that means "every interface" (0.0.0.0, ::, empty, *): nothing
    another process can dial."""
    if host in ("", "*"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def with_default_port(value: str, port: int) -> str:
    """``value`` as ``host:port``: a host alone (``10.1.2.3``, ``fd00::7``, ``[fd00::7]``,
    ``rals-0.rals``) gets ``port``; ``host:port`` / ``[v6]:port`` keep theirs. A port that is
    not a number raises ValueError."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return join_host_port(host, int(rest[1:]) if rest.startswith(":") else port)
    try:
        ipaddress.ip_address(value)  # a bare IPv6 address has colons but no port
        return join_host_port(value, port)
    except ValueError:
        pass
    host, sep, tail = value.rpartition(":")
    if sep:
        return join_host_port(host, int(tail))
    return join_host_port(value, port)


def advertised_address(advertise: str, listen_host: str, port: int) -> str:
    """The ``host:port`` other processes reach this one at: ``advertise`` when set (a host alone
    takes ``port``; :data:`HOSTNAME` is this machine's name resolved), else the listen address
    when it is a concrete one. "" when there is none: a wildcard listen host and nothing set."""
    if advertise == HOSTNAME:
        return join_host_port(socket.gethostbyname(socket.gethostname()), port)
    if advertise:
        return with_default_port(advertise, port)
    if is_wildcard(listen_host):
        return ""
    return join_host_port(listen_host.strip("[]"), port)


def advertise_problem(value: str) -> str | None:
    """Why ``value`` cannot be an advertised address (None when it can): it must name one
    reachable host, never a wildcard."""
    if not value or value == HOSTNAME:
        return None
    try:
        host, port = split_host_port(with_default_port(value, 1))
    except ValueError:
        return f"{value!r} is not host, host:port or {HOSTNAME}"
    if is_wildcard(host) or "/" in host or not 0 < port < 65536:
        return f"{value!r}: give an address other processes can dial (not a wildcard)"
    return None
