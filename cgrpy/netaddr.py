"""``host:port`` addresses as the settings write them (``127.0.0.1:2012``, ``[::1]:2012``)."""

from __future__ import annotations


def split_host_port(addr: str, default_host: str = "") -> tuple[str, int]:
    """``"127.0.0.1:2012"`` -> ``("127.0.0.1", 2012)``; an empty host (``":2012"``) is
    ``default_host``; IPv6 brackets are removed. A port that is not a number raises ValueError."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or default_host, int(port)


def join_host_port(host: str, port: int) -> str:
    """Inverse of :func:`split_host_port`: an IPv6 host goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
