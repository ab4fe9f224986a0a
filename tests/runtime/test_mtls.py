"""Mutual TLS on gRPC: a real service started with ``grpc_tls_cert``/``_key`` and
``grpc_tls_client_ca`` serves a client presenting a certificate of that CA (the suite's own
ServiceClient and health check, configured by settings, and a plain gRPC client) and refuses
one without a certificate, one with a certificate of another CA, and plaintext. The CA and the
certificates are made here with the openssl CLI."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from cgrates.v1 import mux_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.frame import FrameLane, LaneClosed
from cgrpy.runtime.healthcheck import check
from services.rals.server import RalsServer
from tests.harness import serve

GET_COST = rals_pb2.CallDescriptor(
    tenant="cgrates.org", category="call", subject="1001", account="1001", destination="1002",
    tor="*voice", time_start_unix_ns=1705312800 * 10**9, usage_ns=60 * 10**9)


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> None:
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")


def _leaf(d: Path, ca: str, name: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr")
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext")


@dataclass(frozen=True)
class Pki:
    d: Path

    def pem(self, name: str) -> bytes:
        return (self.d / f"{name}.pem").read_bytes()

    def key(self, name: str) -> bytes:
        return (self.d / f"{name}.key").read_bytes()

    def path(self, name: str, kind: str = "pem") -> str:
        return str(self.d / f"{name}.{kind}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    # a service's certificate is also what it presents when it calls another service
    _leaf(d, "ca", "service", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                              "extendedKeyUsage=serverAuth,clientAuth\n")
    _leaf(d, "ca", "client", "extendedKeyUsage=clientAuth\n")
    _leaf(d, "other-ca", "stranger", "extendedKeyUsage=clientAuth\n")
    return Pki(d)


def _server_env(pki: Pki) -> dict[str, str]:
    return {"CGRPY_GRPC_TLS_CERT": pki.path("service"), "CGRPY_GRPC_TLS_KEY": pki.path("service", "key"),
            "CGRPY_GRPC_TLS_CLIENT_CA": pki.path("ca")}


async def _get_cost(addr: str, creds: grpc.ChannelCredentials | None) -> str:
    ch = grpc.aio.secure_channel(addr, creds) if creds else grpc.aio.insecure_channel(addr)
    async with ch:
        resp = await rals_pb2_grpc.RalsServiceStub(ch).GetCost(GET_COST, timeout=5)
    return resp.cost


async def _lane_refuses_what_grpc_refuses(port: int, pki: Pki) -> None:
    def ctx(cert: str | None) -> ssl.SSLContext:
        c = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=pki.path("ca"))
        if cert:
            c.load_cert_chain(pki.path(cert), pki.path(cert, "key"))
        return c

    good = FrameLane("127.0.0.1", port, b"", ctx("client"), "127.0.0.1")
    await good.connect()
    good.close()
    for why, tls in {"plaintext": None, "no client certificate": ctx(None),
                     "a certificate of another CA": ctx("stranger")}.items():
        with pytest.raises((LaneClosed, ssl.SSLError, ConnectionError, OSError)):
            lane = FrameLane("127.0.0.1", port, b"", tls, "127.0.0.1")
            await lane.connect()
            # TLS 1.3: a refused client certificate shows on the first exchange, not the handshake
            await lane.request(1, mux_pb2.MuxRequest(id=1, method="/x/y"))
        assert why


async def test_mutual_tls_serves_a_client_certificate_of_the_ca_and_refuses_others(sqlite_url, pki):
    async with serve(RalsServer, sqlite_url, env=_server_env(pki)) as rals:
        addr = rals.addr
        # the suite's own clients, from settings: the CA to verify the server, their certificate
        suite = load_settings(env={**_server_env(pki), "CGRPY_GRPC_TLS_CA": pki.path("ca"),
                                   "CGRPY_RALS_ADDR": addr})
        client = ServiceClient(suite, "rals", rals_pb2_grpc.RalsServiceStub)
        try:
            assert (await client.call("GetCost", GET_COST)).cost == "0.6"
            # the frame lane, found through the stream, is TLS with the same certificates
            for _ in range(100):
                if client._mux.lane is not None and client._mux.lane.up:
                    break
                await asyncio.sleep(0.02)
            assert (await client.call("GetCost", GET_COST)).cost == "0.6"
            assert client._mux.lane_calls >= 1
        finally:
            await client.close()
        await _lane_refuses_what_grpc_refuses(rals.runner.mux.frame_port, pki)
        # health checks (cgr up, cgr status, Docker) present the certificate too; blocking
        # calls, so off this loop, which serves RALs
        assert await asyncio.to_thread(check, addr, "", 5.0, suite) == "SERVING"
        # any client holding a certificate of the CA
        ok = grpc.ssl_channel_credentials(pki.pem("ca"), pki.key("client"), pki.pem("client"))
        assert await _get_cost(addr, ok) == "0.6"

        refused = {
            "no client certificate": grpc.ssl_channel_credentials(pki.pem("ca")),
            "a certificate of another CA": grpc.ssl_channel_credentials(
                pki.pem("ca"), pki.key("stranger"), pki.pem("stranger")),
            "plaintext": None,
        }
        for why, creds in refused.items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _get_cost(addr, creds)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, why
        # health needs no token, but under mutual TLS it needs a certificate like any call
        no_cert = load_settings(env={"CGRPY_GRPC_TLS_CA": pki.path("ca")})
        assert await asyncio.to_thread(check, addr, "", 2.0, no_cert) == "UNREACHABLE"


def test_tls_settings_that_would_leave_grpc_open_are_refused(pki):
    """``grpc_tls_client_ca`` alone would leave every server plaintext and open to anyone; a
    certificate without its key cannot serve: start-up (which loads the settings) refuses both
    with one line naming the settings."""
    with pytest.raises(ConfigError, match="grpc_tls_client_ca: mutual TLS needs grpc_tls_cert"):
        load_settings(env={"CGRPY_GRPC_TLS_CLIENT_CA": pki.path("ca")})
    with pytest.raises(ConfigError, match="grpc_tls_cert, grpc_tls_key: set both"):
        load_settings(env={"CGRPY_GRPC_TLS_CERT": pki.path("service")})
