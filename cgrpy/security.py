"""Who may talk to the suite, and where API calls may read or write files.

- :class:`AllowList`: source addresses allowed on the OpenSIPS listeners (:2014, :2020); the
  default is loopback only.
- The API token (``api_token``): callers of the JSON-RPC API (:2012, :2080) and of every gRPC
  service must present it; compared in constant time. :func:`ensure_token_file` is how
  ``cgr up`` gives a one-box install a token with no setup.
- :func:`path_under_roots`: a directory an API call names must lie under a configured root,
  after ``..`` and symlinks are resolved.
- TLS contexts for the HTTP API and credentials for gRPC, from certificate files in settings.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.0/8,::1"
AUTH_HEADER = "authorization"  # gRPC metadata key (lower case) and HTTP header
BEARER = "Bearer "


class AllowList:
    """Source addresses allowed to connect: CIDRs or single addresses, comma-separated; ``*``
    allows any. Answers are cached per address (a switch has few)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        items = [s.strip() for s in spec.split(",") if s.strip()]
        self.any = "*" in items
        self.networks = [ipaddress.ip_network(s, strict=False) for s in items if s != "*"]
        self._seen: dict[str, bool] = {}

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if host is None:
            return False
        known = self._seen.get(host)
        if known is None:
            try:
                addr = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                known = False
            else:
                if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                    addr = addr.ipv4_mapped
                known = any(addr in net for net in self.networks)
            if len(self._seen) < 4096:
                self._seen[host] = known
        return known


def check_allow_list(spec: str) -> str | None:
    """A config validator: None if ``spec`` parses, else what is wrong."""
    try:
        AllowList(spec)
    except ValueError as exc:
        return f"not a list of addresses or networks: {exc}"
    return None


def token_matches(presented: str | bytes | None, expected: bytes) -> bool:
    """Constant-time comparison; ``expected`` empty means no token is configured (all pass)."""
    if not expected:
        return True
    if presented is None:
        return False
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(presented, expected)


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None if it is not one)."""
    if value is None or not value.startswith(BEARER):
        return None
    return value[len(BEARER):].strip()


def ensure_token_file(path: str) -> str:
    """The token stored in ``path``, creating the file (mode 0600, random token) when missing.
    ``cgr up`` hands it to the services; the CLI reads it: one box works with no setup and a
    process of another user cannot read it."""
    p = Path(path)
    if p.exists():
        return read_token_file(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def read_token_file(path: str) -> str:
    return Path(path).read_text().strip()


def resolve_token(settings: Any) -> str:
    """The token a client presents: ``api_token``, else the content of ``api_token_file`` if
    that file exists, else none."""
    token = settings.get("api_token")
    if token:
        return str(token)
    path = settings.get("api_token_file")
    if path and Path(path).is_file():
        return read_token_file(path)
    return ""


# --- file paths named by API callers ------------------------------------------------------------


class PathRefused(ValueError):
    """A path outside the configured roots; the message names the path and the roots only."""


def roots_of(spec: str) -> list[Path]:
    return [Path(s.strip()).resolve() for s in spec.split(",") if s.strip()]


def export_roots(settings: Any) -> list[Path]:
    """Where ExportCDRs may write: ``api_export_roots``, else the ``cdre_export_path`` directory."""
    return roots_of(settings.get("api_export_roots") or settings.get("cdre_export_path"))


def path_under_roots(path: str, roots: Iterable[Path], what: str) -> Path:
    """``path`` resolved (``..`` and symlinks), if it lies under one of ``roots``; else
    :class:`PathRefused`. Nothing is read: only the path is looked at."""
    roots = list(roots)
    if not path:
        raise PathRefused(f"{what}: empty path")
    resolved = Path(path).resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    allowed = ", ".join(str(r) for r in roots) or "none configured"
    raise PathRefused(f"{what}: {path!r} is outside the allowed directories ({allowed})")


def folder_under_roots(path: str, roots: Iterable[Path], what: str) -> Path:
    """Like :func:`path_under_roots` for a folder whose files will be read: each entry that is a
    symlink must resolve under a root too (a link to /etc/passwd inside a plan folder is refused)."""
    roots = list(roots)
    folder = path_under_roots(path, roots, what)
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_symlink():
                path_under_roots(str(entry), roots, f"{what} entry {entry.name!r}")
    return folder


# --- TLS ----------------------------------------------------------------------------------------


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext | None:
    """TLS for an HTTP listener, or None when no certificate is configured."""
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key or None)
    return ctx


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def grpc_server_credentials(settings: Any) -> Any:
    """``grpc.ssl_server_credentials`` from ``grpc_tls_cert``/``_key`` (None: plaintext); with
    ``grpc_tls_client_ca`` set, clients must present a certificate signed by it."""
    import grpc

    cert = settings.get("grpc_tls_cert")
    if not cert:
        return None
    client_ca = _read(settings.get("grpc_tls_client_ca"))
    return grpc.ssl_server_credentials([(_read(settings.get("grpc_tls_key")), _read(cert))],
                                       root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def grpc_channel_credentials(settings: Any) -> Any:
    """``grpc.ssl_channel_credentials`` when ``grpc_tls_ca`` is set (None: plaintext); the
    client certificate is ``grpc_tls_cert``/``_key`` when the servers ask for one."""
    import grpc

    ca = settings.get("grpc_tls_ca")
    if not ca:
        return None
    cert = _read(settings.get("grpc_tls_cert"))
    key = _read(settings.get("grpc_tls_key"))
    return grpc.ssl_channel_credentials(root_certificates=_read(ca), private_key=key, certificate_chain=cert)
