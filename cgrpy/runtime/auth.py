"""The API token on gRPC: checked per call by a server interceptor, sent by every client.

A call must carry the metadata ``authorization: Bearer <api_token>``. Health
(``grpc.health.v1.Health``) and server reflection stay open: probes (Docker, Kubernetes,
``cgr status``) and ``grpcurl list`` need no secret, and neither reads nor changes data. The
Mux stream is one RPC: its opening call is checked once, and the calls it then carries run on
that authenticated stream.

The check costs a dict lookup and one ``hmac.compare_digest`` per RPC; the refusing handlers
are built once per method, never per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cgrpy.security import (
    AUTH_HEADER,
    BEARER,
    grpc_channel_credentials,
    resolve_token,
    token_matches,
)

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
UNAUTHENTICATED = "UNAUTHENTICATED: missing or wrong API token (metadata authorization: Bearer <api_token>)"


async def _deny_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)


async def _deny_stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)


_DENY = {
    "unary_unary": grpc.unary_unary_rpc_method_handler(_deny_unary),
    "unary_stream": grpc.unary_stream_rpc_method_handler(_deny_unary),
    "stream_unary": grpc.stream_unary_rpc_method_handler(_deny_stream),
    "stream_stream": grpc.stream_stream_rpc_method_handler(_deny_stream),
}


def _deny_for(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    if handler is None or handler.unary_unary is not None:
        return _DENY["unary_unary"]
    if handler.unary_stream is not None:
        return _DENY["unary_stream"]
    if handler.stream_unary is not None:
        return _DENY["stream_unary"]
    return _DENY["stream_stream"]


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) every call without the token, except health and reflection."""

    def __init__(self, token: str) -> None:
        self._expected = (BEARER + token).encode()
        self._deny: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        for key, value in details.invocation_metadata or ():
            if key == AUTH_HEADER:
                if token_matches(value, self._expected):
                    return await continuation(details)
                break
        method = details.method
        if method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        deny = self._deny.get(method)
        if deny is None:
            deny = self._deny[method] = _deny_for(await continuation(details))
        return deny


def server_interceptors(settings: Any) -> list[grpc.aio.ServerInterceptor]:
    token = settings.get("api_token")
    return [TokenInterceptor(token)] if token else []


def call_metadata(settings: Any) -> tuple[tuple[str, str], ...] | None:
    """What a client sends with every call (None when no token is configured)."""
    token = resolve_token(settings)
    return ((AUTH_HEADER, BEARER + token),) if token else None


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                           grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """For the CLI's blocking channels: adds the token to each call's metadata."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._md = metadata

    def _details(self, d: Any) -> Any:
        md = tuple(d.metadata or ()) + self._md
        return _Details(d.method, d.timeout, md, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: Any, metadata: Any, credentials: Any, wait_for_ready: Any,
                 compression: Any) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


class _AioMetadata(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._md = metadata

    def _details(self, d: Any) -> Any:
        md = grpc.aio.Metadata(*(tuple(d.metadata or ()) + self._md))
        return grpc.aio.ClientCallDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def _options(settings: Any, options: list[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    out = list(options or [])
    name = settings.get("grpc_tls_server_name")
    if name and settings.get("grpc_tls_ca"):
        out.append(("grpc.ssl_target_name_override", name))
    return out


def channel(settings: Any, addr: str, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A blocking channel to ``addr`` with the suite's TLS and token (the CLI's calls)."""
    creds = grpc_channel_credentials(settings)
    opts = _options(settings, options)
    ch = grpc.secure_channel(addr, creds, opts) if creds else grpc.insecure_channel(addr, opts)
    md = call_metadata(settings)
    return grpc.intercept_channel(ch, _MetadataInterceptor(md)) if md else ch


def aio_channel(settings: Any, addr: str, options: list[tuple[str, Any]] | None = None, *,
                with_token: bool = True) -> grpc.aio.Channel:
    """An asyncio channel to ``addr`` with the suite's TLS (and the token unless the caller
    passes it itself, as ServiceClient does to keep the per-call path lean)."""
    creds = grpc_channel_credentials(settings)
    opts = _options(settings, options)
    md = call_metadata(settings) if with_token else None
    interceptors = [_AioMetadata(md)] if md else None
    if creds:
        return grpc.aio.secure_channel(addr, creds, opts, interceptors=interceptors)
    return grpc.aio.insecure_channel(addr, opts, interceptors=interceptors)
