"""Event datagrams (real UDP) and MI dlg_end_dlg / event_subscribe against an in-test MI peer."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from cgrpy.event import CGREvent
from services.sm.opensips.datagram import EventDatagramListener
from services.sm.opensips.mi import MIClient, MIError, did_from_ints, reverse_hex
from services.sm.sessions.core import Session, SessionManager, SMConfig
from tests.conftest import TRACES
from tests.sm.fakes import FakeBackends


def _datagrams(trace: str) -> list[bytes]:
    out = []
    for line in (TRACES / trace).read_text().splitlines():
        rec = json.loads(line)
        if rec["direction"] == "opensips->consumer" and rec.get("transport") == "udp":
            out.append(rec["raw"].encode())
    return out


async def _replay(trace: str, fb: FakeBackends) -> tuple[SessionManager, EventDatagramListener]:
    sm = SessionManager(fb, SMConfig(debit_interval_ns=10 * 10**9))
    lst = EventDatagramListener(sm, origin_host="")
    port = await lst.start(port=0)
    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port))
    for d in _datagrams(trace):
        tr.sendto(d)
        await asyncio.sleep(0.02)  # events of one call arrive in order
        await lst.drain()
    tr.close()
    return sm, lst


async def test_e_acc_cdr_becomes_a_rated_cdr() -> None:
    fb = FakeBackends()
    sm, lst = await _replay("authorized_call.jsonl", fb)
    (ev, flags), = fb.cdrs
    assert flags == {"chargers": True, "attributes": True, "rals": True}
    assert ev.get("OriginID") == "1-6715@127.0.0.1" and ev.get("Usage") == "2006ms"
    assert ev.get("AnswerTime") == "1795677153" and ev.get("Account") == "1001"
    assert ev.get("RequestType") == "*prepaid" and ev.tenant == "cgrates.org"
    lst.stop()


async def test_missed_call_cdr_usage_zero_and_failed_event_ignored() -> None:
    fb = FakeBackends()
    sm, lst = await _replay("missed_cancel.jsonl", fb)
    (ev, _), = fb.cdrs
    assert ev.get("Usage") == "0s" and ev.get("DisconnectCause") == "487 Request Terminated"
    assert ev.get("Destination") == "1099" and ev.get("SetupTime") == "1795677183"
    lst.stop()


async def test_old_style_events_start_and_stop_a_prepaid_session() -> None:
    fb = FakeBackends()
    sm, lst = await _replay("event_old_style.jsonl", fb)
    assert sm.active_sessions() == []
    # 10 s debited at the INVITE event, BYE 2 s later -> 8 s refunded: 2 s at 0.01 per 10 ms
    assert fb.balances["1001"] == Decimal(98)
    lst.stop()
    await sm.shutdown()


def test_did_from_cgrates_integers() -> None:
    assert reverse_hex(3159) == "75c"
    assert did_from_ints(3159, 1986131823) == "75c.f67f1667"  # engine_disconnect.jsonl
    assert did_from_ints(3159, 1986131823 - 2**32) == "75c.f67f1667"  # json-c signed overflow


class FakeMI(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        req = json.loads(data)
        self.got.append(req)
        if req["params"].get("dialog_id") == "nope":
            rep = {"jsonrpc": "2.0", "error": {"code": 404, "message": "Requested Dialog not found"},
                   "id": req["id"]}
        else:
            rep = {"jsonrpc": "2.0", "result": "OK", "id": req["id"]}
        self.transport.sendto(json.dumps(rep, separators=(",", ":")).encode(), addr)


async def test_mi_dlg_end_and_subscribe_over_datagram() -> None:
    loop = asyncio.get_running_loop()
    tr, peer = await loop.create_datagram_endpoint(FakeMI, local_addr=("127.0.0.1", 0))
    port = tr.get_extra_info("sockname")[1]
    mi = MIClient(f"127.0.0.1:{port}")
    s = Session(cgrid="x", event=CGREvent(event={"OriginID": "1-8689@127.0.0.1", "DialogID": 1986131823,
                                                 "DialogEntry": 3159}))
    assert await mi.disconnect_session(s, "INSUFFICIENT_CREDIT") is True
    assert peer.got[-1]["method"] == "dlg_end_dlg"
    assert peer.got[-1]["params"] == {"dialog_id": "75c.f67f1667"}
    await mi.event_subscribe("E_ACC_CDR", "udp:127.0.0.1:2020", 61)
    assert peer.got[-1]["params"] == {"event": "E_ACC_CDR", "socket": "udp:127.0.0.1:2020", "expire": 61}
    try:
        await mi.dlg_end_dlg("nope")
        raise AssertionError("expected MIError")
    except MIError as e:
        assert e.code == 404
    tr.close()


def test_event_subscription_only_to_an_address_opensips_can_send_to() -> None:
    from services.sm.opensips.mi import advertised_event_socket

    assert advertised_event_socket("", 2020) is None  # cgrates-module mode: no subscription
    assert advertised_event_socket("udp:sm:2020", 2020) == "udp:sm:2020"
    assert advertised_event_socket("10.0.0.5", 40001) == "udp:10.0.0.5:40001"
    assert advertised_event_socket("10.0.0.5:0", 40001) == "udp:10.0.0.5:40001"
    for bad in ("udp:0.0.0.0:2020", "0.0.0.0", "[::]:2020", "sm:99999"):
        with pytest.raises(ValueError):
            advertised_event_socket(bad, 2020)
