"""The ``*cgr_rpc`` action: its ExtraParameters, and one JSON-RPC call over TCP.

ExtraParameters is v0.10's JSON object ``{"Address", "Transport", "Method", "Attempts", "Async",
"Params"}``. :func:`parse_cgr_rpc` checks it where an action is loaded or set (the tariff-plan
validation, RALs's parser), so a malformed one is refused before anything changes; the error
names the field. ``Address`` ``*internal`` is cgrpy's own JSON-RPC API (RALs reaches it through SM's
gRPC ``CallApi``); ``host:port`` is a JSON-RPC server over TCP (v0.10's ``*json`` transport, Go's
``net/rpc/jsonrpc``: one JSON object per request and per reply on the connection). ``*gob``
(Go's binary encoding) is refused: nothing here speaks it; well-formed v0.10 (``unsupported``),
a set made over the API is refused, a folder with one loads with a warning and the action fails,
changing nothing, when it runs.

Templates: as in v0.10, ExtraParameters is a Go text/template with ``<< >>`` delimiters, filled
when the action runs from ``.Account`` (the account as v0.10's ``engine.Account`` JSON) and
``.Action`` (``engine.Action``: ``Id``, ``ActionType``, ``ExtraParameters``, ``Filter``,
``ExpirationString``, ``Weight``, ``Balance``). cgrpy fills field paths (``<<.Account.ID>>``,
``<<.Action.Balance.Value.Static>>``) to a text, a number, a boolean or ``<nil>`` (as Go prints a
nil pointer; a field *of* a nil pointer is an error, as in Go); anything else of Go's template language (pipelines, functions, ``if``/``range``)
and a path to a map or list are refused by name. A number is printed exactly (v0.10 prints Go's
``%v`` of a float64: ``1e+06`` for a million). Loading checks the template's paths and that
the text is valid ExtraParameters with every path filled.

:func:`jsonrpc_call` is blocking on purpose, run in a thread by RALs (as :mod:`cgrpy.httppost`).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.netaddr import split_host_port

INTERNAL = "*internal"
JSON_TRANSPORT = "*json"
GOB_TRANSPORT = "*gob"
_KNOWN = {"Address", "Transport", "Method", "Attempts", "Async", "Params"}
MAX_REPLY_BYTES = 16 * 1024 * 1024
# v0.10 fills ExtraParameters from the account and action with a Go template between << >>
_TEMPLATE = re.compile(r"<<(.*?)>>", re.S)
_FIELD_PATH = re.compile(r"\s*((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$")
TEMPLATE_ROOTS = ("Account", "Action")


class CgrRpcError(ValueError):
    """A bad ExtraParameters of a ``*cgr_rpc`` action; ``field`` names the culprit."""

    def __init__(self, field: str, message: str, *, unsupported: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        # well-formed for v0.10 but not runnable here (*gob, templates), not malformed
        self.unsupported = unsupported


class RpcError(Exception):
    """The call did not get an answer (unreachable, closed, not JSON) or the server answered
    with an error; the message names the address and method."""


@dataclass(frozen=True)
class CgrRpc:
    address: str  # "*internal" or "host:port"
    method: str
    params: Any
    attempts: int = 1
    async_: bool = False
    transport: str = JSON_TRANSPORT


def _address(obj: dict[str, Any]) -> str:
    addr = obj.get("Address", INTERNAL)
    if not isinstance(addr, str) or not addr.strip():
        raise CgrRpcError("ExtraParameters.Address", "expected *internal or host:port")
    addr = addr.strip()
    if addr in (INTERNAL, "*localhost"):
        return INTERNAL
    try:
        host, port = split_host_port(addr)
    except ValueError:
        raise CgrRpcError("ExtraParameters.Address", f"not host:port: {addr!r}") from None
    if not host or not 0 < port < 65536:
        raise CgrRpcError("ExtraParameters.Address", f"not host:port: {addr!r}")
    return addr


def _transport(obj: dict[str, Any]) -> str:
    t = obj.get("Transport") or JSON_TRANSPORT
    if t == GOB_TRANSPORT:
        raise CgrRpcError("ExtraParameters.Transport", "*gob is not supported (only *json)",
                          unsupported=True)
    if t != JSON_TRANSPORT:
        raise CgrRpcError("ExtraParameters.Transport", f"unknown transport {t!r} (only *json)")
    return t


def _attempts(obj: dict[str, Any]) -> int:
    raw = obj.get("Attempts", 1)
    try:
        if isinstance(raw, bool):
            raise ValueError
        n = int(str(raw).strip() or "1")
    except ValueError:
        raise CgrRpcError("ExtraParameters.Attempts", f"not an integer: {raw!r}") from None
    if not 1 <= n <= 10:
        raise CgrRpcError("ExtraParameters.Attempts", f"must be 1..10, got {n}")
    return n


def template_paths(text: str) -> list[list[str]]:
    """The field paths of ExtraParameters' ``<<...>>`` actions, each as its names
    (``<<.Account.ID>>`` -> ``["Account", "ID"]``); :class:`CgrRpcError` for anything else."""
    paths = []
    for m in _TEMPLATE.finditer(text):
        fm = _FIELD_PATH.fullmatch(m.group(1))
        names = fm.group(1).split(".")[1:] if fm else []
        if not names or names[0] not in TEMPLATE_ROOTS:
            raise CgrRpcError("ExtraParameters", f"template <<{m.group(1)}>>: only field paths of "
                              ".Account or .Action are supported", unsupported=True)
        paths.append(names)
    return paths


def _go_text(value: Any, path: str) -> str:
    """A value as Go's text/template prints it (exact for numbers, see the module doc)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
    raise CgrRpcError("ExtraParameters", f"template <<{path}>>: not a text, number or boolean")


def fill_template(text: str, data: dict[str, Any]) -> str:
    """ExtraParameters with each ``<<.Path>>`` replaced by its value in ``data`` (v0.10 field
    names; a missing field is an error naming it, as Go's "can't evaluate field")."""
    template_paths(text)

    def one(m: re.Match[str]) -> str:
        path = m.group(1).strip()
        node: Any = data
        for name in path.split(".")[1:]:
            if node is None:  # as Go: "nil pointer evaluating ..." (an action run without account)
                raise CgrRpcError("ExtraParameters", f"template <<{path}>>: nil pointer before {name}")
            if not isinstance(node, dict) or name not in node:
                raise CgrRpcError("ExtraParameters", f"template <<{path}>>: no field {name}")
            node = node[name]
        return _go_text(node, path)

    return _TEMPLATE.sub(one, text)


def parse_cgr_rpc(text: str) -> CgrRpc:
    """ExtraParameters -> :class:`CgrRpc`; :class:`CgrRpcError` naming the bad field. A
    template is checked with every path filled with 0 (valid inside or outside a JSON string);
    its call is built from :func:`fill_template`'s text when the action runs."""
    if template_paths(text):
        text = _TEMPLATE.sub("0", text)
    try:
        obj = loads_exact(text) if text.strip() else None
    except (json.JSONDecodeError, ValueError) as exc:
        raise CgrRpcError("ExtraParameters", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CgrRpcError("ExtraParameters", "expected a JSON object with Method")
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise CgrRpcError(f"ExtraParameters.{unknown[0]}", "unknown field")
    method = obj.get("Method")
    if not isinstance(method, str) or "." not in method.strip():
        raise CgrRpcError("ExtraParameters.Method", "missing or not Service.Method")
    params = obj.get("Params")
    is_async = obj.get("Async", False)
    if not isinstance(is_async, bool):
        raise CgrRpcError("ExtraParameters.Async", f"not a boolean: {is_async!r}")
    return CgrRpc(address=_address(obj), method=method.strip(), params=params,
                  attempts=_attempts(obj), async_=is_async, transport=_transport(obj))


def _read_reply(sock: socket.socket, where: str) -> dict[str, Any]:
    buf = b""
    decoder = json.JSONDecoder()
    while len(buf) < MAX_REPLY_BYTES:
        chunk = sock.recv(65536)
        if not chunk:
            raise RpcError(f"{where}: connection closed before a reply")
        buf += chunk
        text = buf.decode("utf-8", errors="strict").lstrip()
        try:
            end = decoder.raw_decode(text)[1]
        except json.JSONDecodeError:
            continue  # not a whole object yet
        reply = loads_exact(text[:end])
        if not isinstance(reply, dict):
            raise RpcError(f"{where}: reply is not a JSON object")
        return reply
    raise RpcError(f"{where}: reply larger than {MAX_REPLY_BYTES} bytes")


def jsonrpc_call(address: str, method: str, params: Any, timeout_s: float) -> Any:
    """One JSON-RPC request over TCP (Go's jsonrpc codec: ``{"method", "params": [arg], "id"}``);
    the ``result``, or :class:`RpcError` with the server's ``error`` or what went wrong."""
    where = f"{address} {method}"
    host, port = split_host_port(address)
    request = dumps_exact({"method": method, "params": [params], "id": 1}).encode() + b"\n"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(request)
            reply = _read_reply(sock, where)
    except (OSError, UnicodeDecodeError) as exc:
        raise RpcError(f"{where}: {exc}") from None
    if reply.get("error") not in (None, ""):
        raise RpcError(f"{where}: {reply['error']}")
    return reply.get("result")


__all__ = ["INTERNAL", "CgrRpc", "CgrRpcError", "RpcError", "fill_template", "jsonrpc_call",
           "parse_cgr_rpc", "template_paths"]
