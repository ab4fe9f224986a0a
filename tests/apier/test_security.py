"""Secure by default: a suite with an API token, TLS (gRPC and HTTP, a self-signed certificate
made here with the openssl CLI) and an OpenSIPS allow-list. An unauthenticated or non-allowed
client cannot change money or files over :2014, :2020, :2012, :2080 or gRPC; the allowed one can.
And `cgr up` with no setup creates a token file the CLI reads."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.event import dumps_exact, loads_exact
from tests.apier.jsonrpc_client import TcpClient, err, ok
from tests.suite import REPO, Suite, suite_env

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token-for-tests"
TUTORIAL = REPO / "tariffplans" / "tutorial"
ACCOUNT = {"Tenant": "cgrates.org", "Account": "1001"}


def _self_signed(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=cgrpy-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def plan_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plans")


@pytest.fixture(scope="module")
def secure(pg_databases, tls_files, roots, plan_root):
    cert, key = tls_files
    env = suite_env(pg_databases.create(), CGRPY_API_TOKEN=TOKEN, CGRPY_OPENSIPS_ALLOWED_SOURCES="127.0.0.1",
                    CGRPY_API_TARIFFPLAN_ROOTS=f"{REPO / 'tariffplans'},{plan_root}",
                    CGRPY_GRPC_TLS_CERT=str(cert), CGRPY_GRPC_TLS_KEY=str(key), CGRPY_GRPC_TLS_CA=str(cert),
                    CGRPY_HTTP_TLS_CERT=str(cert), CGRPY_HTTP_TLS_KEY=str(key),
                    CGRPY_API_EXPORT_ROOTS=str(roots))
    with Suite(env, "--tariffplan", str(TUTORIAL)) as s:
        yield s


class Https:
    def __init__(self, addr: str, cafile: Path) -> None:
        self.addr = addr
        self.ctx = ssl.create_default_context(cafile=str(cafile))

    def call(self, method: str, arg: dict, headers: dict[str, str] | None = None) -> dict:
        import urllib.request

        body = dumps_exact({"method": method, "params": [arg], "id": 1}).encode()
        req = urllib.request.Request(f"https://{self.addr}/jsonrpc", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(req, timeout=30, context=self.ctx) as resp:
            return loads_exact(resp.read())


def _balance(api_call) -> str:
    acc = ok(api_call("APIerSv2.GetAccount", {**ACCOUNT, "APIKey": TOKEN}))
    return json.dumps(acc["BalanceMap"], sort_keys=True, default=str)


def test_jsonrpc_without_or_with_a_wrong_token_changes_no_money(secure, tls_files):
    tcp = TcpClient(secure.env["CGRPY_JSONRPC_LISTEN"])
    https = Https(secure.env["CGRPY_HTTP_LISTEN"], tls_files[0])
    before = _balance(tcp.call)
    grab = {**ACCOUNT, "BalanceType": "*monetary", "BalanceID": "stolen", "Value": 1000000}
    assert err(tcp.call("APIerSv1.SetBalance", grab)) == "MANDATORY_IE_MISSING: [APIKey]"
    assert err(tcp.call("APIerSv1.SetBalance", {**grab, "APIKey": "guess"})) == "UNAUTHORIZED_API"
    assert err(https.call("APIerSv1.SetBalance", grab)) == "MANDATORY_IE_MISSING: [APIKey]"
    assert err(https.call("APIerSv1.SetBalance", grab, {"Authorization": "Bearer guess"})) == "UNAUTHORIZED_API"
    assert err(https.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(TUTORIAL)})) \
        == "MANDATORY_IE_MISSING: [APIKey]"
    assert _balance(tcp.call) == before
    # the allowed caller, each way: APIKey (v0.10), APIOpts *apiKey (later CGRateS), Bearer header
    assert ok(tcp.call("APIerSv1.SetBalance", {**grab, "BalanceID": "a", "Value": 1, "APIKey": TOKEN})) == "OK"
    assert ok(tcp.call("APIerSv1.SetBalance", {**grab, "BalanceID": "b", "Value": 2,
                                               "APIOpts": {"*apiKey": TOKEN}})) == "OK"
    assert ok(https.call("APIerSv1.SetBalance", {**grab, "BalanceID": "c", "Value": 3},
                         {"Authorization": f"Bearer {TOKEN}"})) == "OK"
    ids = {b["ID"] for b in ok(tcp.call("APIerSv2.GetAccount", {**ACCOUNT, "APIKey": TOKEN}))
           ["BalanceMap"]["*monetary"]}
    assert {"a", "b", "c"} <= ids and "stolen" not in ids
    tcp.close()


def test_grpc_needs_the_token_but_health_stays_open(secure, tls_files):
    creds = grpc.ssl_channel_credentials(root_certificates=tls_files[0].read_bytes())
    with grpc.secure_channel(secure.addr("rals"), creds) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = rals_pb2_grpc.RalsServiceStub(ch)
        req = rals_pb2.SetBalanceRequest(tenant="cgrates.org", account="1001", balance_type="*monetary",
                                         value="1000000", balance=rals_pb2.Balance(id="grpc-stolen"))
        for md in (None, (("authorization", "Bearer guess"),)):
            with pytest.raises(grpc.RpcError) as e:
                stub.SetBalance(req, timeout=10, metadata=md)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", f"Bearer {TOKEN}"),)
        acc = stub.GetAccount(rals_pb2.AccountRequest(tenant="cgrates.org", account="1001"), timeout=10,
                              metadata=good)
        assert "grpc-stolen" not in {b.id for b in acc.balances}
        acc = stub.SetBalance(rals_pb2.SetBalanceRequest(
            tenant="cgrates.org", account="1001", balance_type="*monetary", value="1",
            balance=rals_pb2.Balance(id="grpc-ok")), timeout=10, metadata=good)
        assert "grpc-ok" in {b.id for b in acc.balances}
    # plaintext to a TLS server gets nowhere
    with grpc.insecure_channel(secure.addr("rals")) as ch, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)


def test_cli_uses_tls_and_token_from_settings(secure):
    out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "account", "get", "1001", "--json"],
                         cwd=REPO, env=secure.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    status = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "status"], cwd=REPO, env=secure.env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "UNREACHABLE" not in status.stdout, status.stdout + status.stderr


def _osips_initiate(src: str, addr: str) -> bytes:
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect((host, int(port)))
    ev = {"OriginID": f"allow-{src}", "OriginHost": "127.0.0.1", "Account": "1001", "Destination": "1002",
          "RequestType": "*prepaid", "AnswerTime": "*now", "Usage": "10s"}
    s.sendall(dumps_exact({"method": "SessionSv1.InitiateSession",
                           "params": [{"InitSession": True, "Event": ev}], "id": 1}).encode())
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            if data.rstrip().endswith(b"}"):
                break
    except (ConnectionError, TimeoutError):
        pass
    s.close()
    return data


def test_opensips_listener_refuses_a_source_not_allowed(secure):
    addr = secure.env["CGRPY_OPENSIPS_LISTEN"]
    assert _osips_initiate("127.0.0.2", addr) == b""  # closed before anything is read
    reply = loads_exact(_osips_initiate("127.0.0.1", addr))
    assert reply["error"] is None, reply


def test_event_datagrams_from_a_source_not_allowed_are_ignored(secure):
    host, port = secure.env["CGRPY_OPENSIPS_EVENT_LISTEN"].rsplit(":", 1)
    tcp = TcpClient(secure.env["CGRPY_JSONRPC_LISTEN"])
    before = _balance(tcp.call)
    cdr = {"jsonrpc": "2.0", "method": "E_ACC_CDR", "params": {
        "callid": "udp-stolen", "cgr_account": "1001", "cgr_destination": "1002", "cgr_reqtype": "*postpaid",
        "time": int(time.time()) - 60, "ms_duration": 60000, "sip_code": "200"}}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        s.sendto(json.dumps(cdr).encode(), (host, int(port)))
    time.sleep(1.5)
    cdrs = tcp.call("APIerSv2.GetCDRs", {"OriginIDs": ["udp-stolen"], "APIKey": TOKEN})
    assert cdrs["error"] is not None or not cdrs["result"], cdrs
    assert _balance(tcp.call) == before
    tcp.close()


def test_file_paths_only_under_the_configured_roots(secure, roots, plan_root, tmp_path):
    tcp = TcpClient(secure.env["CGRPY_JSONRPC_LISTEN"])
    key = {"APIKey": TOKEN}
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "Rates.csv").symlink_to("/etc/passwd")
    for folder in ("/etc", str(TUTORIAL / ".." / ".." / ".." / "etc"), str(tmp_path / "plan")):
        e = err(tcp.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": folder, **key}))
        assert "outside the allowed directories" in e and "root:" not in e, e
    link = plan_root / "link"  # a symlink inside a root, to outside it
    link.symlink_to("/etc")
    e = err(tcp.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(link), **key}))
    assert "outside the allowed directories" in e, e
    # a plan folder under a root whose file links out: refused, and the file's content not shown
    (plan_root / "tp").mkdir()
    (plan_root / "tp" / "Rates.csv").symlink_to("/etc/passwd")
    e = err(tcp.call("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": str(plan_root / "tp"), **key}))
    assert "outside the allowed directories" in e and "root:" not in e, e
    for path in ("/etc", str(roots / ".." / "elsewhere")):
        e = err(tcp.call("APIerSv1.ExportCDRs", {"ExportPath": path, "ExportFormat": "*file_csv", **key}))
        assert "outside the allowed directories" in e, e
    assert not (roots.parent / "elsewhere").exists()
    rep = ok(tcp.call("APIerSv1.ExportCDRs", {"ExportPath": str(roots), "ExportFormat": "*file_csv", **key}))
    assert rep is not None
    tcp.close()


def test_cgr_up_with_no_setup_makes_a_token_file_the_cli_reads(pg_databases, tmp_path):
    token_file = tmp_path / "var" / "api_token"
    env = suite_env(pg_databases.create(), CGRPY_API_TOKEN_FILE=str(token_file))
    with Suite(env) as s:
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        tcp = TcpClient(s.env["CGRPY_JSONRPC_LISTEN"])
        assert err(tcp.call("APIerSv2.GetAccount", ACCOUNT)) == "MANDATORY_IE_MISSING: [APIKey]"
        assert ok(tcp.call("CoreSv1.Ping", {"APIKey": token})) == "Pong"
        tcp.close()
        out = subprocess.run([sys.executable, "-m", "cgrpy.cli.main", "account", "set", "2001"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        with grpc.insecure_channel(s.addr("rals")) as ch, pytest.raises(grpc.RpcError) as e:
            rals_pb2_grpc.RalsServiceStub(ch).GetAccount(
                rals_pb2.AccountRequest(tenant="cgrates.org", account="2001"), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
