"""UDP listener for OpenSIPS ``event_datagram`` accounting events (spec B.1, B.2).

Each datagram is one JSON-RPC 2.0 notification (``E_ACC_CDR``, ``E_ACC_MISSED_EVENT``,
``E_ACC_EVENT``); nothing is sent back. CGRateS data comes from the acc extras ``cgr_*`` and
``dialog_id`` (the names the old CGRateS OpenSIPS SM used).

* ``E_ACC_CDR`` -> ProcessCDR (answered call). Usage is taken from ``ms_duration`` (exact), not
  ``duration`` (acc rounds it *up* to the second).
* ``E_ACC_MISSED_EVENT`` -> ProcessCDR with Usage 0.
* ``E_ACC_EVENT`` INVITE 200 -> InitiateSession (prepaid debit loop; cut via MI), BYE 200 ->
  TerminateSession with usage = BYE time - answer time. Failed-transaction ``E_ACC_EVENT``s
  duplicate the missed-call event and are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cgrpy import jsonlimits
from cgrpy.cgrid import cgrid_of
from cgrpy.event import DEFAULT_TENANT, CGREvent
from cgrpy.security import LOOPBACK, AllowList
from cgrpy.units import UnitError, check_field, parse_time
from services.sm.sessions.core import CHANNEL_EVENTS, SessionManager
from services.sm.sessions.types import SessionFlags

log = logging.getLogger(__name__)

_EXTRAS = {
    "cgr_reqtype": "RequestType",
    "cgr_account": "Account",
    "cgr_subject": "Subject",
    "cgr_destination": "Destination",
    "cgr_category": "Category",
    "cgr_supplier": "Supplier",
}


def event_from_acc(params: dict[str, Any], origin_host: str = "") -> CGREvent:
    fields: dict[str, Any] = {"Source": "OpenSIPS", "OriginID": str(params.get("callid") or ""),
                              "OriginHost": origin_host}
    for extra, name in _EXTRAS.items():
        if params.get(extra) is not None:
            fields[name] = params[extra]
    if params.get("dialog_id"):
        fields["dialog_id"] = params["dialog_id"]
    if isinstance(params.get("created"), int):
        fields["SetupTime"] = str(params["created"])
    tenant = str(params.get("cgr_tenant") or DEFAULT_TENANT)
    return CGREvent(tenant=tenant, event=fields, time=parse_time(fields.get("SetupTime")))


class EventDatagramListener(asyncio.DatagramProtocol):
    def __init__(self, sm: SessionManager, *, origin_host: str = "", allowed: AllowList | None = None) -> None:
        self.sm = sm
        self.allowed = allowed or AllowList(LOOPBACK)
        self.origin_host = origin_host
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 2020) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self.transport = transport  # type: ignore[assignment]
        return int(transport.get_extra_info("sockname")[1])

    def stop(self) -> None:
        if self.transport:
            self.transport.close()

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.allowed.allows(addr[0] if addr else None):
            self.sm.metrics.inc("event_refused_datagrams")
            log.warning("event datagram from %s refused: not in opensips_allowed_sources", addr)
            return
        try:
            msg = jsonlimits.loads(data)
            name, params = msg["method"], msg["params"]
            if not isinstance(params, dict):
                raise ValueError("params must be an object")
        except (ValueError, KeyError, TypeError) as exc:  # JSONLimitError is a ValueError
            self.sm.metrics.inc("event_bad_datagrams")
            log.warning("bad event datagram from %s: %s", addr, exc)
            return
        task = asyncio.ensure_future(self.handle(name, params))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, name: str, params: dict[str, Any]) -> None:
        try:
            for key in ("time", "created", "ms_duration", "duration"):
                if params.get(key) is not None:
                    check_field(key, params[key])
            ev = event_from_acc(params, self.origin_host)
        except UnitError as exc:
            self.sm.metrics.inc("event_bad_datagrams")
            log.warning("%s refused: %s", name, exc)
            return
        if not ev.get("OriginID"):
            log.warning("%s without callid ignored", name)
            return
        reason = f"{params.get('sip_code') or ''} {params.get('sip_reason') or ''}".strip()
        if name == "E_ACC_CDR":
            ev.event["AnswerTime"] = str(params.get("time"))
            ms = params.get("ms_duration")
            ev.event["Usage"] = f"{ms}ms" if isinstance(ms, int) else f"{params.get('duration', 0)}s"
            active = self.sm.get_session(cgrid_of(ev))
            if active is not None and not active.done.is_set():
                await self.sm.terminate(ev)
            await self.sm.process_cdr(ev)
        elif name == "E_ACC_MISSED_EVENT":
            ev.event["Usage"] = "0s"
            ev.event["DisconnectCause"] = reason
            await self.sm.process_cdr(ev)
        elif name == "E_ACC_EVENT" and str(params.get("sip_code")) == "200":
            if params.get("method") == "INVITE":
                ev.event["AnswerTime"] = str(params.get("time"))
                await self.sm.initiate(ev, SessionFlags(get_max_usage=True), channel=CHANNEL_EVENTS)
            elif params.get("method") == "BYE":
                s = self.sm.get_session(cgrid_of(ev))
                if s is None:
                    log.warning("BYE event for unknown call %s", ev.get("OriginID"))
                    return
                answer = parse_time(s.event.get("AnswerTime"))
                bye = parse_time(str(params.get("time")))
                usage_s = int((bye - answer).total_seconds()) if answer and bye else 0
                ev.event["Usage"] = f"{max(0, usage_s)}s"
                await self.sm.terminate(ev)
