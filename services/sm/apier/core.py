"""The JSON-RPC method registry: :class:`Context` (what every handler may use) and the
``@method`` decorator that registers a handler under its CGRateS method names in
:data:`METHODS`. The handlers live in one module per subsystem next to this one (``accounts``,
``cdrs``, ``sessions``, ...), each imported by ``dispatch.py`` so its methods register.

A handler reads the CGRateS argument, calls the gRPC service(s) that own the data, and returns the
CGRateS v0.10 reply shape. No business logic lives in these modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from cgrates.v1 import common_pb2
from cgrpy.config import Settings
from cgrpy.wire import event_to_pb
from services.sm.apier.args import Args, cgr_event
from services.sm.apier.backends import Backends
from services.sm.sessions.core import SessionManager

Handler = Callable[["Context", Args], Awaitable[Any]]


@dataclass
class Context:
    settings: Settings
    backends: Backends
    sessions: SessionManager | None = None
    engine: Callable[[], Engine] | None = None
    # SessionSv1.SyncSessions: ask the switch which calls it has now (set by SM's server)
    sync_sessions: Callable[[], Awaitable[Any]] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tenant(self) -> str:
        return self.settings.default_tenant

    def event(self, a: Args) -> common_pb2.Event:
        return event_to_pb(cgr_event(a, self.tenant))


METHODS: dict[str, Handler] = {}
# Methods whose v0.10 argument is a bare JSON string (``APIerSv1.GetActions("ACT_1")``): the
# dispatcher hands it to the handler as this one field of an object.
STRING_ARGS: dict[str, str] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for n in names:
            METHODS[n] = fn
        return fn
    return register


def tenant_id(ctx: Context, a: Args) -> common_pb2.TenantID:
    """``utils.TenantID`` of the argument (``ID`` mandatory, ``Tenant`` defaulted)."""
    a.require("ID")
    return common_pb2.TenantID(tenant=a.str("Tenant") or ctx.tenant, id=a.str("ID"))


def tenant_request(ctx: Context, a: Args) -> common_pb2.TenantRequest:
    return common_pb2.TenantRequest(tenant=a.str("Tenant") or ctx.tenant)
