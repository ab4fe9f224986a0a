"""Calling another service: one channel per service, a deadline on every call, retries only
for calls the caller marks idempotent, CGRateS error words turned back into CGRError."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import grpc

from cgrpy.config import Settings
from cgrpy.errors import CGRError

T = TypeVar("T")

# Transient failures worth another try (for idempotent calls only).
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class ServiceClient:
    """A channel to one service plus a stub; ``await client.call("GetCost", req)``."""

    def __init__(self, settings: Settings, service: str, stub_cls: type, *, addr: str | None = None) -> None:
        self.service = service
        self.addr = addr or settings.addr(service)
        self.timeout = settings.rpc_timeout / 1e9
        self.channel = grpc.aio.insecure_channel(self.addr)
        self.stub = stub_cls(self.channel)

    async def call(
        self,
        method: str,
        request: Any,
        *,
        idempotent: bool = False,
        timeout: float | None = None,
        attempts: int = 3,
    ) -> Any:
        fn = getattr(self.stub, method)
        tries = attempts if idempotent else 1
        delay = 0.05
        for attempt in range(1, tries + 1):
            try:
                return await fn(request, timeout=timeout or self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _RETRYABLE and attempt < tries:
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise to_cgr_error(self.service, method, exc) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.channel.close()


def to_cgr_error(service: str, method: str, exc: grpc.aio.AioRpcError) -> CGRError:
    details = exc.details() or ""
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CGRError("SERVER_ERROR", f"{service}.{method} {exc.code().name}: {details}", transient=True)
    return CGRError.from_message(details) if details else CGRError("SERVER_ERROR", exc.code().name)
