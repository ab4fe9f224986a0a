"""SM process: the OpenSIPS listeners (cgrates module TCP, event datagrams, MI) around the
session core, the gRPC SessionService for tools, and the gRPC backends to the other services."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import grpc
from sqlalchemy import make_url

from cgrates.v1 import common_pb2, sm_pb2, sm_pb2_grpc
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.netaddr import HOSTNAME, advertised_address, split_host_port
from cgrpy.runtime.server import BaseService
from cgrpy.security import AllowList
from cgrpy.storage.db import make_engine
from cgrpy.units import UnitError, money_str, parse_time, to_unix_nano
from cgrpy.wire import event_from_pb, event_to_pb
from services.sm import metrics
from services.sm.adoption import Adopter
from services.sm.apier.server import ApiServer
from services.sm.clients import GrpcBackends
from services.sm.forward import FORWARDED, OwnerForwarder, forwarded
from services.sm.opensips.datagram import EventDatagramListener
from services.sm.opensips.jsonrpc import Request
from services.sm.opensips.listener import CgratesListener, OpenSIPSConnection
from services.sm.opensips.mi import MIClient, advertised_event_socket, subscribe_forever
from services.sm.owners import OwnerLease, new_owner
from services.sm.sessions.core import (
    CHANNEL_EVENTS,
    CHANNEL_MODULE,
    Session,
    SessionManager,
    SMConfig,
)
from services.sm.sessions.types import AttributesReply, SessionFlags
from services.sm.spool import CdrSpool
from services.sm.sqlspool import SqlCdrSpool
from services.sm.sqlstore import SqlSessionStore
from services.sm.store import SessionStore, default_path

EXIT_OWNER_LOST = 75  # another replica adopted this one's sessions while it was cut off



def _put_attributes(reply: sm_pb2.SessionReply, attributes: AttributesReply | None) -> None:
    """AttributeS's answer into a SessionReply (nothing when it was not asked or matched)."""
    if attributes is None:
        return
    reply.attribute_profiles.extend(attributes.matched_profiles)
    reply.altered_fields.extend(attributes.altered_fields)
    reply.attributes_digest = attributes.digest() or ""
    reply.event.CopyFrom(event_to_pb(attributes.event))

class InstrumentedListener(CgratesListener):
    """The cgrates-module listener, counting and timing every answer to OpenSIPS."""

    # labelled children by (method, result): ``labels()`` validates and hashes its arguments
    # under a lock on every call; the methods are a handful, so each child is looked up once
    _children: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def handle(self, req: Request, conn: OpenSIPSConnection) -> bytes:
        start = time.perf_counter()
        reply = await super().handle(req, conn)
        method = req.method if req.method.startswith(("SessionSv1.", "SMGenericV1.")) else "other"
        result = "error" if b'"error":null' not in reply else "ok"
        children = self._children.get((method, result))
        if children is None:
            children = self._children[(method, result)] = (
                metrics.OPENSIPS_REQUESTS.labels(method, result), metrics.OPENSIPS_REPLY_SECONDS.labels(method))
        children[0].inc()
        children[1].observe(time.perf_counter() - start)
        return reply


def _flags(pb: sm_pb2.SessionFlags) -> SessionFlags:
    return SessionFlags(
        get_max_usage=pb.get_max_usage,
        get_attributes=pb.get_attributes,
        get_suppliers=pb.get_suppliers,
        process_thresholds=pb.process_thresholds,
        process_stats=pb.process_stat_queues,
        release_resources=pb.release_resources,
    )


def _session_extras(sm: SessionManager, cgrid: str) -> dict[str, Any]:
    s = sm.get_session(cgrid)
    if s is None:
        return {}
    try:
        answer = parse_time(s.event.get("AnswerTime"))
    except (UnitError, ValueError, TypeError):
        answer = None
    return {"tenant": s.event.tenant, "answer_time_unix_ns": to_unix_nano(answer) if answer else 0}


class SessionServicer(sm_pb2_grpc.SessionServiceServicer):
    def __init__(self, owner: SmServer) -> None:
        self.owner = owner

    @property
    def sm(self) -> SessionManager:
        assert self.owner.sm is not None
        return self.owner.sm

    def _event(self, request: Any, context: Any = None) -> Any:
        if context is not None and any(m[0] == FORWARDED for m in (context.invocation_metadata() or ())):
            forwarded.set(True)  # another replica passed it on: answer it here (this RPC's task)
        return event_from_pb(request.event, self.owner.settings.default_tenant)

    async def AuthorizeEvent(self, request: sm_pb2.SessionRequest, context: Any) -> sm_pb2.SessionReply:
        res = await self.sm.authorize(self._event(request), _flags(request.flags))
        if res.error:
            raise CGRError.from_message(res.error)
        reply = sm_pb2.SessionReply(max_usage_ns=res.max_usage_ns if res.max_usage_ns is not None else -1)
        _put_attributes(reply, res.attributes)
        if res.suppliers is not None:
            reply.suppliers_digest = res.suppliers.digest() or ""
        reply.threshold_ids.extend(res.threshold_ids or [])
        reply.stat_queue_ids.extend(res.stat_queue_ids or [])
        return reply

    async def InitiateSession(self, request: sm_pb2.SessionRequest, context: Any) -> sm_pb2.SessionReply:
        res = await self.sm.initiate(self._event(request), _flags(request.flags))
        if res.error:
            raise CGRError.from_message(res.error)
        reply = sm_pb2.SessionReply(max_usage_ns=res.max_usage_ns if res.max_usage_ns is not None else -1)
        reply.threshold_ids.extend(res.threshold_ids or [])
        reply.stat_queue_ids.extend(res.stat_queue_ids or [])
        return reply

    async def UpdateSession(self, request: sm_pb2.SessionRequest, context: Any) -> sm_pb2.SessionReply:
        res = await self.sm.update(self._event(request, context), _flags(request.flags))
        if res.error:
            raise CGRError.from_message(res.error)
        reply = sm_pb2.SessionReply(max_usage_ns=res.max_usage_ns if res.max_usage_ns is not None else -1)
        _put_attributes(reply, res.attributes)  # a forwarded GetAttributes gets them back
        return reply

    async def TerminateSession(self, request: sm_pb2.SessionRequest, context: Any) -> sm_pb2.SessionReply:
        err = await self.sm.terminate(self._event(request, context), _flags(request.flags))
        if err:
            raise CGRError.from_message(err)
        return sm_pb2.SessionReply()

    async def ProcessCDR(self, request: sm_pb2.SessionRequest, context: Any) -> sm_pb2.SessionReply:
        err = await self.sm.process_cdr(self._event(request, context))
        if err:
            raise CGRError.from_message(err)
        return sm_pb2.SessionReply()

    async def GetActiveSessions(
        self, request: sm_pb2.ActiveSessionsRequest, context: Any
    ) -> sm_pb2.ActiveSessionsResponse:
        out = sm_pb2.ActiveSessionsResponse()
        for info in await self.sm.get_active_sessions_live():
            if request.account and info.account != request.account:
                continue
            if request.origin_id and info.origin_id != request.origin_id:
                continue
            if request.cgrid and info.cgrid != request.cgrid:
                continue
            out.sessions.add(
                cgrid=info.cgrid, run_id=info.run_id, origin_id=info.origin_id,
                origin_host=info.origin_host, account=info.account, destination=info.destination,
                request_type=info.request_type, usage_ns=info.duration_ns,
                debited_usage_ns=info.debited_ns, cost=money_str(info.cost),
                max_usage_left_ns=info.max_usage_left_ns if info.max_usage_left_ns is not None else -1,
                **_session_extras(self.sm, info.cgrid),
            )
        return out

    async def DisconnectSession(
        self, request: sm_pb2.DisconnectSessionRequest, context: Any
    ) -> common_pb2.Empty:
        cgrid = request.cgrid
        if not cgrid and request.origin_id:
            cgrid = next((s.cgrid for s in self.sm.get_active_sessions() if s.origin_id == request.origin_id), "")
        if not cgrid or not await self.sm.disconnect(cgrid, request.reason or "FORCED_DISCONNECT"):
            raise CGRError("NOT_FOUND", cgrid or request.origin_id)
        return common_pb2.Empty()


    async def CallApi(self, request: sm_pb2.ApiCallRequest, context: Any) -> sm_pb2.ApiCallReply:
        """The JSON-RPC method as :2012 runs it; the gRPC caller is already authenticated."""
        api = getattr(self.owner, "api", None)
        if api is None:
            raise CGRError("NOT_READY", "sm's API is not started")
        if not request.method:
            raise CGRError("MANDATORY_IE_MISSING", "[Method]")
        try:
            params = loads_exact(request.params_json) if request.params_json else None
        except ValueError as exc:
            raise CGRError("INVALID_ARGUMENT", f"params_json: {exc}") from None
        reply = loads_exact(await api.dispatcher.call(Request(request.method, [params], id=1)))
        if reply.get("error"):
            raise CGRError.from_message(str(reply["error"]))
        return sm_pb2.ApiCallReply(result_json=dumps_exact(reply.get("result")))


class SmServer(BaseService):
    name = "sm"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.sm: SessionManager | None = None
        self.backends: GrpcBackends | None = None
        self.listener: CgratesListener | None = None
        self.datagrams: EventDatagramListener | None = None
        self.spool: CdrSpool | SqlCdrSpool | None = None
        self._collector: metrics.SessionCollector | None = None
        self.session_store: SessionStore | SqlSessionStore | None = None
        self.owner_lease: OwnerLease | None = None
        self.adopter: Adopter | None = None
        self.forwarder: OwnerForwarder | None = None
        self._reconcile: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self.mi: MIClient | None = None

    def register(self, server: grpc.aio.Server) -> list[str]:
        sm_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(self), server)
        return [sm_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name]

    async def load(self) -> None:
        s = self.settings
        local = CdrSpool(s.sm_spool_path, window_s=s.sm_cdr_batch_window / 1e9)
        if str(s.stordb_url).startswith("postgresql"):
            # shared by the SM replicas: a CDR outlives the replica that took it
            self.spool = SqlCdrSpool(make_engine(s.stordb_url), local, window_s=s.sm_cdr_batch_window / 1e9)
        else:
            self.spool = local
        self.backends = GrpcBackends(s, self.spool)
        self.spool.start(self.backends.deliver_cdrs)
        cfg = SMConfig(
            debit_interval_ns=s.debit_interval,
            reply_deadline_s=s.sm_reply_timeout / 1e9,
            failed_backend_policy=s.sm_backend_failure_policy,
            session_ttl_ns=s.session_ttl,
            backend_retry_s=s.sm_backend_retry / 1e9,
            cdr_wait_s=s.sm_cdr_wait / 1e9,
        )
        self.sm = SessionManager(self.backends, cfg)
        mi: MIClient | None = None
        if s.opensips_mi_url:
            transport = "http" if s.opensips_mi_url.startswith("http") else "datagram"
            address = s.opensips_mi_url.removeprefix("udp:")
            mi = MIClient(address, transport=transport)
        self.mi = mi
        host, port = split_host_port(s.opensips_listen)
        self.listener = InstrumentedListener(
            self.sm, host, port, engine_request_timeout_s=s.sm_reply_timeout / 1e9,
            sync_interval_s=s.sm_channel_sync_interval / 1e9, allowed=AllowList(s.opensips_allowed_sources))
        self.sm.disconnector = self._disconnect
        await self.listener.start()
        ehost, eport = split_host_port(s.opensips_event_listen)
        self.datagrams = EventDatagramListener(self.sm, allowed=AllowList(s.opensips_allowed_sources))
        event_port = await self.datagrams.start(ehost, eport)
        advertised = advertised_event_socket(s.opensips_event_advertise, event_port)
        if mi is not None and advertised is not None:
            # event mode: keep OpenSIPS's acc events subscribed (renewed; healed after its restart)
            self._subscriber = asyncio.create_task(subscribe_forever(mi, advertised))
        sender = self.backends.sender
        self._collector = metrics.register_session_collector(
            self.sm, self.spool.depth, lambda: len(self.listener.connections) if self.listener else 0,
            (lambda: dict(sender.counts)) if sender is not None else None)
        if str(s.stordb_url).startswith("postgresql"):
            await self._shared_sessions(self._advertised())
        else:
            self._restore_sessions()
        self.log.info("sm.listening", opensips=f"{host}:{self.listener.port}", events=f"{ehost}:{eport}")
        # CGRateS-compatible JSON-RPC API (TCP + HTTP), served by this process (services/sm/apier)
        self.api = ApiServer(s, sessions=self.sm, engine=lambda: self.engine)
        self.api.ctx.sync_sessions = self.listener.sync_once
        self.listener.api = self.api.dispatcher.call  # the other SessionSv1 methods on :2014
        await self.api.start()

    async def _drain(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        if self.sm is not None:
            left = await self.sm.drain(grace_s)
            self.log.info("sm.drain.sessions", still_closing=left,
                          active_persisted=len(self.sm.active_sessions()))
        # the shared spool (Postgres) needs no drain: the other replicas forward it; this
        # replica's local file (a fallback there) does
        spool = self.spool.fallback if isinstance(self.spool, SqlCdrSpool) else self.spool
        if spool is None or spool.depth() == 0:
            return
        self.log.info("sm.drain.spool", depth=spool.depth())
        while spool.depth() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.log.info("sm.drain.spool_done", left=spool.depth())

    async def _disconnect(self, session: Session, reason: str) -> bool:
        """End the call on the channel it came from: a cgrates-module call by DisconnectSession on
        the module's connection (MI may not even reach that OpenSIPS), an event-interface call by
        MI ``dlg_end_dlg``. A session made over the API has no channel: module first, then MI."""
        assert self.listener is not None
        if session.channel == CHANNEL_EVENTS:
            return self.mi is not None and await self.mi.disconnect_session(session, reason)
        if await self.listener.disconnect_session(session, reason):
            return True
        if session.channel == CHANNEL_MODULE or self.mi is None:
            return False
        return await self.mi.disconnect_session(session, reason)

    def _restore_sessions(self) -> None:
        """Sessions survive a restart (services/sm/store.py): adopt them uncharged until the
        switch confirms each (see ``_reconcile_restored``)."""
        assert self.sm is not None
        self.session_store = SessionStore(default_path(self.settings.sm_spool_path))
        self.sm.store = self.session_store
        restored = self.sm.restore(self.session_store.load())
        if restored:
            self.log.info("sm.sessions_restored", count=len(restored))
            self._reconcile = asyncio.create_task(self._reconcile_restored())

    async def _shared_sessions(self, name: str) -> None:
        """Postgres StorDB: sessions live in ``sm_sessions``, owned by this replica under a new
        owner name, and the sessions of replicas that died (or of this one's previous run) are
        adopted now and whenever one dies later (services/sm/adoption.py)."""
        assert self.sm is not None
        url = make_url(self.settings.stordb_url)
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        owner = new_owner(name)
        self.owner_lease = OwnerLease(conninfo, owner, on_lost=self._owner_lost)
        await asyncio.to_thread(self.owner_lease.acquire)
        store = SqlSessionStore(make_engine(self.settings.stordb_url), owner)
        self.session_store = store
        self.sm.store = store
        self.adopter = Adopter(self.sm, store, self.owner_lease, on_adopted=self._adopted)
        await self.adopter.sweep()
        self.sm.on_unknown = self.adopter.missing
        self.forwarder = OwnerForwarder(self.settings, store, self.settings.sm_reply_timeout / 1e9,
                                        self.adopter.missing)
        self.sm.forward = self.forwarder
        self.adopter.start()
        self.log.info("sm.sessions_shared", owner=owner, adopted=self.adopter.adopted)

    def _advertised(self) -> str:
        """Where the other replicas reach this one's SessionService (it starts the owner name):
        the gRPC listen address, or this machine's address when that is a wildcard."""
        s = self.settings
        port = s.grpc_port(self.name)
        return advertised_address("", s.listen_host, port) or advertised_address(HOSTNAME, s.listen_host, port)

    def _adopted(self, active: list[Session]) -> None:
        if active and (self._reconcile is None or self._reconcile.done()):
            self._reconcile = asyncio.create_task(self._reconcile_restored())

    def _owner_lost(self) -> None:
        # Another replica holds this one's sessions now: stop at once, writing nothing more.
        self.log.error("sm.owner_lost_exiting", code=EXIT_OWNER_LOST)
        os._exit(EXIT_OWNER_LOST)

    async def _reconcile_restored(self) -> None:
        """Ask OpenSIPS (it reconnects on its next request) which restored calls it still has:
        those resume charging, the others are closed; whatever nobody confirmed within
        ``sm_restore_confirm_timeout`` is closed at what was charged before the restart."""
        assert self.sm is not None and self.listener is not None
        deadline = time.monotonic() + self.settings.sm_restore_confirm_timeout / 1e9
        while waiting := self.sm.awaiting_switch():
            if time.monotonic() >= deadline:
                ended = await self.sm.close_unconfirmed()
                self.log.warning("sm.restored_unconfirmed_closed", closed=len(ended))
                return
            if self.listener.connections and any(s.channel != CHANNEL_EVENTS for s in waiting):
                seen = await self.listener.get_active_session_ids()
                if seen is not None:
                    ended = await self.sm.confirm_restored(seen)
                    self.log.info("sm.restored_reconciled", closed=len(ended))
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        """Stop in order: no new calls (listeners closed), closes in flight finish (settlements,
        CDR hand-offs), the spool is flushed to cdre, then the rest; each wait bounded by the
        grace period. Active calls stay persisted and resume after a restart."""
        api = getattr(self, "api", None)
        if api is not None:
            await api.stop()
        for task in (self._reconcile, self._subscriber):
            if task is not None:
                task.cancel()
        if self.adopter is not None:
            await self.adopter.close()
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.listener is not None:
            await self.listener.stop()
        if self.datagrams is not None:
            self.datagrams.stop()
        await self._drain(self.settings.grace_period / 1e9)
        if self.sm is not None:
            await self.sm.shutdown()
        if self.backends is not None and self.backends.sender is not None:
            await self.backends.sender.close()  # its fallback is the spool: before the spool
        if self.spool is not None:
            await self.spool.close()
        if self.session_store is not None:
            await asyncio.to_thread(self.session_store.close)
        if self.owner_lease is not None:  # after the last write: the adopter then sees it all
            self.owner_lease.close()
        if self.backends is not None:
            await self.backends.close()
        if self._collector is not None:
            metrics.unregister(self._collector)
        await super().close()
