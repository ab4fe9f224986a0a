"""Running a committed ``*cgr_rpc`` action: the JSON-RPC call named in its ExtraParameters
(checked when the action was loaded, :mod:`cgrpy.cgrrpc`), tried ``Attempts`` times.

``*internal`` goes to cgrpy's own JSON-RPC API through SM's gRPC ``CallApi`` (the methods SM
serves on :2012/:2080); ``host:port`` is a JSON-RPC server over TCP. It runs after the set
committed and in the background (``Async`` or not: a set never waits for a remote server, and a
call never reports a change that was rolled back); a call that never succeeded is logged
(``action.cgr_rpc_failed``, naming the address and method) and counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

from cgrpy.cgrrpc import INTERNAL, RpcError, jsonrpc_call
from cgrpy.errors import CGRError

RPC_TIMEOUT_S = 10.0
ACTION_RPCS = Counter("cgrpy_rals_action_rpcs_total",
                      "*cgr_rpc actions called or given up, by outcome", ["outcome"])

InternalCall = Callable[[str, Any, float], Awaitable[Any]]


async def call_once(data: dict[str, Any], internal: InternalCall) -> Any:
    if data["address"] == INTERNAL:
        return await internal(data["method"], data["params"], RPC_TIMEOUT_S)
    return await asyncio.to_thread(jsonrpc_call, data["address"], data["method"], data["params"],
                                   RPC_TIMEOUT_S)


async def run_cgr_rpc(data: dict[str, Any], internal: InternalCall, log: Any, *, actions_id: str,
                      account: str, first_pause_s: float = 0.5) -> bool:
    """Call until one attempt succeeds (True) or ``attempts`` are used up (False, logged)."""
    attempts = int(data.get("attempts", 1))
    pause = first_pause_s
    for attempt in range(1, attempts + 1):
        try:
            await call_once(data, internal)
            ACTION_RPCS.labels(outcome="called").inc()
            return True
        except (RpcError, CGRError) as exc:
            if attempt == attempts:
                ACTION_RPCS.labels(outcome="failed").inc()
                log.error("action.cgr_rpc_failed", address=data["address"], method=data["method"],
                          actions=actions_id, account=account, attempts=attempt, error=str(exc))
                return False
            await asyncio.sleep(pause)
            pause *= 2
    return False
