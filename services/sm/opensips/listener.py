"""TCP listener for the OpenSIPS `cgrates` module (spec Part A): bi-directional JSON-RPC.

OpenSIPS opens several connections (one per worker + timer + an async pool) and is the client,
but SM also sends requests on them (DisconnectSession, GetActiveSessionIDs). Per connection a
reader task splits the byte stream into objects: replies resolve SM's pending requests at once,
requests go to a queue answered strictly in order (OpenSIPS ignores reply ids and takes the next
reply-shaped object as the answer, so replies must not overtake each other).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cgrpy.security import LOOPBACK, AllowList
from services.sm.opensips import messages as m
from services.sm.opensips.codec import BadFrame, StreamDecoder
from services.sm.opensips.jsonrpc import (
    Invalid,
    Reply,
    Request,
    classify,
    encode_error,
    encode_request,
    encode_result,
)
from services.sm.sessions.core import CHANNEL_MODULE, Session, SessionManager, counts_units

log = logging.getLogger(__name__)

READ_CHUNK = 65536
INCOMPLETE = "SERVER_ERROR: incomplete JSON frame at end of input"


class EngineRequestError(Exception):
    """OpenSIPS answered an SM request with an error string, or not at all."""


class OpenSIPSConnection:
    def __init__(self, listener: CgratesListener, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.listener = listener
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.decoder = StreamDecoder()
        self.pending: dict[Any, asyncio.Future[Reply]] = {}
        # requests, and ready error replies to frames that are not requests, in arrival order
        self.requests: asyncio.Queue[Request | bytes | None] = asyncio.Queue()
        self.closed = False
        self.bad_frames = 0

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    async def request(self, method: str, arg: Any, timeout: float) -> Any:
        """Send an SM -> OpenSIPS request and wait for its reply's ``result``."""
        if self.closed:
            raise EngineRequestError("connection closed")
        req_id = next(self.listener.ids)
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[req_id] = fut
        try:
            self.write(encode_request(method, arg, req_id))
            await self.writer.drain()
            reply = await asyncio.wait_for(fut, timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise EngineRequestError(f"{method}: no reply from {self.peer} ({type(exc).__name__})") from exc
        finally:
            self.pending.pop(req_id, None)
        if reply.error is not None:
            raise EngineRequestError(reply.error)
        return reply.result

    async def serve(self) -> None:
        worker = asyncio.ensure_future(self._answer_requests())
        try:
            while True:
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    break
                self._feed(data)
            if self.decoder.pending:  # answered after every earlier request, see below
                self.requests.put_nowait(encode_error(None, INCOMPLETE))
        except (ConnectionError, OSError) as exc:
            log.info("OpenSIPS connection %s lost: %s", self.peer, exc)
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self.requests.put_nowait(None)
            # the peer may only have half-closed: what it asked before is still answered
            await asyncio.gather(worker, return_exceptions=True)
            self.closed = True
            self.writer.close()

    def _feed(self, data: bytes) -> None:
        try:
            items = self.decoder.feed(data)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not cost the connection
            log.exception("decoding input from %s failed", self.peer)
            self.decoder.reset()
            items = [BadFrame(b"", f"undecodable input ({type(exc).__name__})")]
        for item in items:
            self._dispatch(item)

    def _dispatch(self, item: Any) -> None:
        if isinstance(item, BadFrame):
            self.bad_frames += 1
            self.listener.sm.metrics.inc("opensips_bad_frames")
            log.warning("bad frame from %s: %s", self.peer, item.reason)
            # queued behind the requests before it: OpenSIPS pairs replies with its requests
            # by order, so an error must not overtake the answer to an earlier request
            self.requests.put_nowait(encode_error(None, f"SERVER_ERROR: {item.reason}"))
            return
        msg = classify(item)
        if isinstance(msg, Request):
            self.requests.put_nowait(msg)
        elif isinstance(msg, Reply):
            fut = self.pending.get(msg.id)
            if fut is None and msg.id is None and len(self.pending) == 1:
                fut = next(iter(self.pending.values()))
            if fut is not None and not fut.done():
                fut.set_result(msg)
            else:
                log.warning("unexpected reply from %s: %r", self.peer, item)
        elif isinstance(msg, Invalid):
            log.warning("invalid message from %s (%s): %.200r", self.peer, msg.reason, item)
            # answer all but a malformed reply (OpenSIPS would take an answer to that for the
            # answer to its next request)
            if not isinstance(item, dict) or "method" in item:
                req_id = item.get("id") if isinstance(item, dict) else None
                self.requests.put_nowait(encode_error(req_id, f"SERVER_ERROR: {msg.reason}"))

    async def _answer_requests(self) -> None:
        while (req := await self.requests.get()) is not None:
            if isinstance(req, bytes):
                out = req
            else:
                try:
                    out = await self.listener.handle(req, self)
                except Exception as exc:  # never let one bad request take the connection down
                    log.exception("handling %s failed", req.method)
                    out = encode_error(req.id, f"SERVER_ERROR: {exc}")
            self.write(out)
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                return


class CgratesListener:
    def __init__(
        self,
        sm: SessionManager,
        host: str = "127.0.0.1",
        port: int = 2014,
        *,
        client_protocol: str = "SessionSv1",  # "SMGClientV1" for CGRateS client_protocol 0
        engine_request_timeout_s: float = 2.0,
        sync_interval_s: float = 0.0,  # GetActiveSessionIDs poll; 0 = off
        allowed: AllowList | None = None,  # source addresses; None = loopback only
    ) -> None:
        self.sm = sm
        self.allowed = allowed or AllowList(LOOPBACK)
        self.host = host
        self.port = port
        self.client_protocol = client_protocol
        self.engine_request_timeout_s = engine_request_timeout_s
        self.sync_interval_s = sync_interval_s
        self.connections: list[OpenSIPSConnection] = []
        self.ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._sync_task: asyncio.Task[None] | None = None
        # Answers the other SessionSv1 methods (ProcessEvent, ProcessMessage, ...): the
        # JSON-RPC API's dispatcher, set by SM's server; None = "can't find method".
        self.api: Callable[[Request], Awaitable[bytes]] | None = None
        if sm.disconnector is None:
            sm.disconnector = self.disconnect_session

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.sync_interval_s > 0:
            self._sync_task = asyncio.ensure_future(self._sync_forever())
        log.info("OpenSIPS cgrates listener on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._sync_task:
            self._sync_task.cancel()
        if self._server:
            self._server.close()
        for c in list(self.connections):
            c.writer.close()
        if self._server:
            await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not self.allowed.allows(peer[0] if peer else None):
            # not on the allow-list: it may not start, update or end calls; close before reading
            log.warning("OpenSIPS connection from %s refused: not in opensips_allowed_sources", peer)
            self.sm.metrics.inc("opensips_refused_connections")
            writer.close()
            return
        conn = OpenSIPSConnection(self, reader, writer)
        self.connections.append(conn)
        self.sm.metrics.inc("opensips_connections_total")
        try:
            await conn.serve()
        finally:
            self.connections.remove(conn)

    # ------------------------------------------------------------------ OpenSIPS -> SM

    async def handle(self, req: Request, conn: OpenSIPSConnection) -> bytes:
        arg = req.arg
        if arg is None and isinstance(req.params, list):
            return encode_error(req.id, "SERVER_ERROR: params must hold exactly one argument")
        if req.method not in m.METHODS and req.method.startswith("SessionSv1.") and self.api is not None:
            # cgrates_cmd("SessionSv1.ProcessEvent") & co: the same handlers as :2012/:2080
            return await self.api(req)
        try:
            sr = m.parse_request(req.method, arg)
        except m.RequestError as exc:
            return encode_error(req.id, str(exc))
        sm = self.sm
        units = counts_units(sr.event)
        if sr.kind is m.Kind.PING:
            return encode_result(req.id, "Pong")
        if sr.kind is m.Kind.GET_ACTIVE:
            rows = [_active_json(s) for s in sm.active_sessions()]
            return encode_result(req.id, rows) if rows else encode_error(req.id, "NOT_FOUND")
        if sr.kind in (m.Kind.AUTHORIZE, m.Kind.AUTHORIZE_DIGEST):
            auth = await sm.authorize(sr.event, sr.flags)
            if auth.error:
                return encode_error(req.id, auth.error)
            if sr.compat:
                return encode_result(req.id, m.compat_seconds(auth.max_usage_ns, units=units))
            if sr.kind is m.Kind.AUTHORIZE_DIGEST:
                return encode_result(req.id, m.authorize_digest_reply(auth, units=units))
            return encode_result(req.id, m.authorize_reply(auth))
        if sr.kind is m.Kind.INITIATE:
            init = await sm.initiate(sr.event, sr.flags, client=conn, channel=CHANNEL_MODULE)
            if init.error:
                return encode_error(req.id, init.error)
            if sr.compat:
                return encode_result(req.id, m.compat_seconds(init.max_usage_ns, units=units))
            if req.method.endswith("WithDigest"):
                return encode_result(req.id, m.initiate_digest_reply(init, units=units))
            return encode_result(req.id, m.initiate_reply(init))
        if sr.kind is m.Kind.UPDATE:
            upd = await sm.update(sr.event, sr.flags)
            if upd.error:
                return encode_error(req.id, upd.error)
            if sr.compat:
                return encode_result(req.id, m.compat_seconds(upd.max_usage_ns, units=units))
            return encode_result(req.id, m.update_reply(upd))
        if sr.kind is m.Kind.TERMINATE:
            err = await sm.terminate(sr.event, sr.flags)
            return encode_error(req.id, err) if err else encode_result(req.id, "OK")
        if sr.kind is m.Kind.PROCESS_CDR:
            err = await sm.process_cdr(sr.event)
            return encode_error(req.id, err) if err else encode_result(req.id, "OK")
        return encode_error(req.id, f"rpc: can't find method {req.method}")

    # ------------------------------------------------------------------ SM -> OpenSIPS

    def _open(self) -> list[OpenSIPSConnection]:
        return [c for c in self.connections if not c.closed]

    async def disconnect_session(self, session: Session, reason: str) -> bool:
        """SessionSv1.DisconnectSession on the connection that carried InitiateSession (any
        other connection of that OpenSIPS works too: dialog ids are global)."""
        ev = dict((session.start_event or session.event).event)
        if not isinstance(ev.get("DialogID"), int) or not isinstance(ev.get("DialogEntry"), int):
            log.warning("cannot disconnect %s: no integer DialogID/DialogEntry", session.origin_id)
            return False
        ev["Usage"] = int((time.monotonic() - session.started) * 1_000_000_000)
        arg = {"EventStart": ev, "Reason": reason}
        conns = self._open()
        first = session.client if isinstance(session.client, OpenSIPSConnection) else None
        if first in conns:
            conns.remove(first)
            conns.insert(0, first)
        for conn in conns:
            try:
                await conn.request(f"{self.client_protocol}.DisconnectSession", arg,
                                   self.engine_request_timeout_s)
                return True  # "OK" = accepted; the Terminate that follows closes the session
            except EngineRequestError as exc:
                log.warning("DisconnectSession %s via %s: %s", session.origin_id, conn.peer, exc)
        return False

    async def get_active_session_ids(self) -> set[tuple[str, str]] | None:
        """Union of GetActiveSessionIDs over every connection; None if none answered."""
        async def ask(c: OpenSIPSConnection) -> Any:
            return await c.request(f"{self.client_protocol}.GetActiveSessionIDs", "",
                                   self.engine_request_timeout_s)

        results = await asyncio.gather(*(ask(c) for c in self._open()), return_exceptions=True)
        seen: set[tuple[str, str]] | None = None
        for r in results:
            if isinstance(r, BaseException) or not isinstance(r, list):
                continue
            seen = seen or set()
            for row in r:
                if isinstance(row, dict):
                    seen.add((str(row.get("OriginID") or ""), str(row.get("OriginHost") or "")))
        return seen

    async def sync_once(self) -> list[str]:
        checked_at = time.monotonic()
        seen = await self.get_active_session_ids()
        if seen is None:
            return []
        return await self.sm.sync_active(seen, checked_at)

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval_s)
            try:
                await self.sync_once()
            except Exception:
                log.exception("session sync failed")


def _active_json(s: Session) -> dict[str, Any]:
    return {"CGRID": s.cgrid, "OriginID": s.origin_id, "OriginHost": s.origin_host,
            "RunIDs": [r.run_id for r in s.runs]}
