"""JSON-RPC envelopes as the OpenSIPS `cgrates` module reads and writes them (spec A.2, A.5).

OpenSIPS requests: ``{"method", "id", "params": [ {...} ]}`` (JSON-RPC 1.0, no ``jsonrpc``).
SM replies: ``{"id": <echo>, "result": <non-null>, "error": null}`` or ``result: null`` with a
*string* error - a reply with both null is not recognised by OpenSIPS, so success always carries
a value (``"OK"`` by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cgrpy.event import dumps_exact

_NO_ID = object()


@dataclass(frozen=True)
class Request:
    method: str
    params: Any
    id: Any = None
    has_id: bool = True

    @property
    def arg(self) -> Any:
        """The single argument: ``params[0]`` for the array form, the object itself otherwise."""
        if isinstance(self.params, list):
            return self.params[0] if len(self.params) == 1 else None
        return self.params


@dataclass(frozen=True)
class Reply:
    id: Any
    result: Any
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Invalid:
    message: Any
    reason: str


def classify(msg: Any) -> Request | Reply | Invalid:
    """Tell a request from a reply the way OpenSIPS does (method present -> request)."""
    if not isinstance(msg, dict):
        return Invalid(msg, "not a JSON object")
    if "method" in msg:
        method = msg["method"]
        if not isinstance(method, str) or not method:
            return Invalid(msg, "method must be a non-empty string")
        if "params" not in msg:
            return Invalid(msg, "params missing")
        has_id = "id" in msg
        return Request(method, msg["params"], msg.get("id"), has_id)
    result = msg.get("result")
    error = msg.get("error")
    if error is not None and not isinstance(error, str):
        return Invalid(msg, "error must be a string")
    if result is None and error is None:
        return Invalid(msg, "reply without result or error")
    if result is not None and error is not None:
        return Invalid(msg, "reply with both result and error")
    return Reply(msg.get("id"), result, error)


def encode_result(req_id: Any, result: Any = "OK") -> bytes:
    if result is None:
        result = "OK"  # null result is "malformed" to OpenSIPS
    return _line({"id": req_id, "result": result, "error": None})


def encode_error(req_id: Any, error: str) -> bytes:
    return _line({"id": req_id, "result": None, "error": str(error) or "SERVER_ERROR"})


def encode_request(method: str, arg: Any, req_id: Any = _NO_ID) -> bytes:
    msg: dict[str, Any] = {"method": method, "params": [arg]}
    if req_id is not _NO_ID:
        msg["id"] = req_id
    return _line(msg)


def _line(msg: dict[str, Any]) -> bytes:
    # CGRateS terminates each message with "\n"; harmless for OpenSIPS's tokenizer.
    return (dumps_exact(msg) + "\n").encode("utf-8")
