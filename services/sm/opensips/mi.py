"""OpenSIPS 3.x management interface client (spec B.3-B.5): JSON-RPC 2.0 over mi_datagram (UDP)
or mi_http (POST /mi). Used to end dialogs (``dlg_end_dlg``) and to (re)subscribe to events."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import urllib.request
from typing import Any

from cgrpy.netaddr import split_host_port
from services.sm.sessions.core import Session

log = logging.getLogger(__name__)


class MIError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"MI error {code}: {message}")
        self.code = code
        self.message = message


def reverse_hex(n: int) -> str:
    """OpenSIPS DID halves: lower-case hex written least-significant nibble first."""
    return format(n, "x")[::-1]


def did_from_ints(dialog_entry: int, dialog_id: int) -> str:
    """``$DLG_did`` from the cgrates module's DialogEntry (h_entry) and DialogID (h_id); DialogID
    can arrive negative (json-c signed 32-bit), so it is masked back to unsigned first."""
    return f"{reverse_hex(dialog_entry & 0xFFFFFFFF)}.{reverse_hex(dialog_id & 0xFFFFFFFF)}"


def dialog_ref(event: dict[str, Any]) -> str | None:
    """What ``dlg_end_dlg`` accepts for this call: the DID if known, else the Call-ID."""
    if isinstance(event.get("DialogID"), int) and isinstance(event.get("DialogEntry"), int):
        return did_from_ints(event["DialogEntry"], event["DialogID"])
    if event.get("dialog_id"):
        return str(event["dialog_id"])
    oid = str(event.get("OriginID") or "")
    return oid.split("|", 1)[0] or None


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.future.done():
            self.future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class MIClient:
    def __init__(self, address: str, *, transport: str = "datagram", timeout_s: float = 2.0) -> None:
        """``address``: ``host:port`` for datagram, ``http://host:port/mi`` for http."""
        if transport not in ("datagram", "http"):
            raise ValueError(f"MI transport must be 'datagram' or 'http', not {transport!r}")
        self.address = address
        self.transport = transport
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        req: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(self._ids)}
        if params is not None:
            req["params"] = params
        body = json.dumps(req, separators=(",", ":")).encode()
        raw = await (self._udp(body) if self.transport == "datagram" else self._http(body))
        reply = json.loads(raw)
        if reply.get("error") is not None:
            err = reply["error"]
            raise MIError(int(err.get("code", 500)), str(err.get("message", "")))
        return reply.get("result")

    async def _udp(self, body: bytes) -> bytes:
        host, port = split_host_port(self.address)
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_Reply, remote_addr=(host, port))
        try:
            transport.sendto(body)
            return await asyncio.wait_for(proto.future, self.timeout_s)
        finally:
            transport.close()

    async def _http(self, body: bytes) -> bytes:
        def post() -> bytes:
            rq = urllib.request.Request(self.address, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(rq, timeout=self.timeout_s) as resp:  # noqa: S310
                return resp.read()

        return await asyncio.to_thread(post)

    async def dlg_end_dlg(self, dialog_id: str, extra_hdrs: str | None = None) -> None:
        params: dict[str, Any] = {"dialog_id": dialog_id}
        if extra_hdrs:
            params["extra_hdrs"] = extra_hdrs
        await self.call("dlg_end_dlg", params)

    async def event_subscribe(self, event: str, socket: str, expire: int) -> None:
        await self.call("event_subscribe", {"event": event, "socket": socket, "expire": expire})

    async def disconnect_session(self, session: Session, reason: str) -> bool:
        """SM disconnector for event mode: end the dialog through MI."""
        ref = dialog_ref((session.start_event or session.event).event)
        if ref is None:
            return False
        try:
            await self.dlg_end_dlg(ref)
            return True
        except (MIError, OSError, TimeoutError) as exc:
            log.warning("dlg_end_dlg %s (%s) failed: %s", ref, reason, exc)
            return False


ACC_EVENTS = ("E_ACC_CDR", "E_ACC_MISSED_EVENT", "E_ACC_EVENT")


def advertised_event_socket(advertise: str, event_port: int) -> str | None:
    """The ``udp:host:port`` SM asks OpenSIPS to send acc events to, or None (no subscription).

    Empty ``advertise`` is the cgrates-module mode (the shipped opensips.cfg raises no acc
    events). A wildcard host is refused: OpenSIPS cannot send to 0.0.0.0. Port 0 or none means the
    port SM's event listener is bound to."""
    value = advertise.strip()
    if not value:
        return None
    host, _, port = value.removeprefix("udp:").rpartition(":")
    if not host:
        host, port = port, ""
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "*"):
        raise ValueError(f"opensips_event_advertise {advertise!r}: give an address OpenSIPS can send to")
    if port and not (port.isdigit() and 0 <= int(port) < 65536):
        raise ValueError(f"opensips_event_advertise {advertise!r}: bad port")
    return f"udp:{host}:{int(port) if port and int(port) else event_port}"


async def subscribe_forever(mi: MIClient, socket: str, interval_s: float = 60.0,
                            events: tuple[str, ...] = ACC_EVENTS) -> None:
    """Re-subscribe every ``interval_s`` with ``expire`` one second longer, so a subscription
    never lapses and an OpenSIPS restart (subscriptions are in memory) is healed in one period."""
    while True:
        for ev in events:
            try:
                await mi.event_subscribe(ev, socket, int(interval_s) + 1)
            except (MIError, OSError, TimeoutError) as exc:
                log.warning("event_subscribe %s -> %s failed: %s", ev, socket, exc)
        await asyncio.sleep(interval_s)
