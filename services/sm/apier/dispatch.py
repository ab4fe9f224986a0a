"""One JSON-RPC message in, one reply out: envelopes as on the OpenSIPS connection
(``{"id","result","error"}``), errors as CGRateS words, never an exception to the transport."""

from __future__ import annotations

import logging
import time
from typing import Any

from cgrpy.errors import CGRError
from cgrpy.security import token_matches
from services.sm.apier import (  # noqa: F401 - each registers its methods in METHODS on import
    account_plans,
    accounts,
    accounts_v2,
    action_plans,
    attributes,
    caches,
    cdrs,
    chargers,
    legacy,
    provisioning,
    resources,
    responder,
    session_events,
    sessions,
    shared_groups,
    stats,
    status,
    suppliers,
    tariffplans,
    thresholds,
    tp_rating,
)
from services.sm.apier.args import Args
from services.sm.apier.core import METHODS, STRING_ARGS, Context
from services.sm.opensips.codec import BadFrame
from services.sm.opensips.jsonrpc import (
    Invalid,
    Reply,
    Request,
    classify,
    encode_error,
    encode_result,
)

log = logging.getLogger(__name__)


def _api_key(arg: Any) -> str | None:
    """The key a CGRateS client sends in the arguments, removed from them: ``APIKey`` at the top
    (v0.10's embedded ArgDispatcher) or ``APIOpts: {"*apiKey": ...}`` (later versions)."""
    if not isinstance(arg, dict):
        return None
    key = None
    for k in [k for k in arg if k.lower() == "apikey"]:
        key = arg.pop(k)
    opts = arg.get("APIOpts")
    if key is None and isinstance(opts, dict) and "*apiKey" in opts:
        key = opts.pop("*apiKey")
    return key if isinstance(key, str) else None


class Dispatcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.token = str(ctx.settings.api_token or "").encode()

    async def handle(self, msg: Any, bearer: str | None = None) -> bytes | None:
        """The reply bytes for a decoded message (None: nothing to answer, e.g. a stray reply).
        ``bearer``: the token of the HTTP ``Authorization`` header, if any."""
        if isinstance(msg, BadFrame):
            return encode_error(None, f"SERVER_ERROR: {msg.reason}")
        item = classify(msg)
        if isinstance(item, Reply):
            return None  # nobody here asked a question
        if isinstance(item, Invalid):
            req_id = msg.get("id") if isinstance(msg, dict) else None
            return encode_error(req_id, f"SERVER_ERROR: {item.reason}")
        if self.token:
            key = _api_key(item.arg)
            if not token_matches(bearer if bearer is not None else key, self.token):
                # checked before the method is even looked up: an anonymous caller learns nothing
                return encode_error(item.id, "UNAUTHORIZED_API" if (bearer or key) else
                                    "MANDATORY_IE_MISSING: [APIKey]")
        return await self.call(item)

    async def call(self, req: Request) -> bytes:
        handler = METHODS.get(req.method)
        if handler is None:
            return encode_error(req.id, f"rpc: can't find method {req.method}")
        started = time.perf_counter()
        try:
            if isinstance(req.params, list) and len(req.params) > 1:
                raise CGRError("SERVER_ERROR", "params must hold exactly one argument")
            arg = req.arg
            if isinstance(arg, str) and arg and req.method in STRING_ARGS:
                arg = {STRING_ARGS[req.method]: arg}
            result = await handler(self.ctx, Args(arg))
        except CGRError as exc:
            log.debug("api %s -> %s", req.method, exc.message)
            return encode_error(req.id, exc.message)
        except Exception as exc:  # a bug must not take the connection (or the process) down
            log.exception("api %s failed", req.method)
            return encode_error(req.id, f"SERVER_ERROR: {exc}")
        log.debug("api %s ok in %.1f ms", req.method, (time.perf_counter() - started) * 1000)
        return encode_result(req.id, result)
