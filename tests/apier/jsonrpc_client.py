"""Minimal CGRateS JSON-RPC clients for the tests: TCP (objects back to back) and HTTP POST."""

from __future__ import annotations

import itertools
import socket
import urllib.request
from typing import Any

from cgrpy.event import dumps_exact, loads_exact
from services.sm.opensips.codec import StreamDecoder

_ids = itertools.count(1)


class TcpClient:
    def __init__(self, addr: str, timeout: float = 30.0) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.decoder = StreamDecoder()
        self.buffer: list[Any] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> Any:
        while not self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by server")
            self.buffer.extend(self.decoder.feed(data))
        return self.buffer.pop(0)

    def call(self, method: str, arg: Any = None) -> dict[str, Any]:
        req_id = next(_ids)
        self.send_raw(dumps_exact({"method": method, "params": [arg if arg is not None else {}], "id": req_id}).encode())
        reply = self.read_reply()
        assert reply["id"] == req_id, reply
        return reply

    def close(self) -> None:
        self.sock.close()


def http_post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class HttpClient:
    def __init__(self, addr: str) -> None:
        self.url = f"http://{addr}/jsonrpc"

    def call(self, method: str, arg: Any = None) -> dict[str, Any]:
        req_id = next(_ids)
        body = dumps_exact({"method": method, "params": [arg if arg is not None else {}], "id": req_id}).encode()
        status, data = http_post(self.url, body)
        assert status == 200, (status, data)
        reply = loads_exact(data)
        assert reply["id"] == req_id, reply
        return reply


def ok(reply: dict[str, Any]) -> Any:
    assert reply["error"] is None, reply
    return reply["result"]


def err(reply: dict[str, Any]) -> str:
    assert reply["result"] is None, reply
    assert isinstance(reply["error"], str) and reply["error"], reply
    return reply["error"]
