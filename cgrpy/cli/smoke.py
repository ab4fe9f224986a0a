"""`cgr smoke`: prove a deployment charges calls, end to end through OpenSIPS.

Registers the callee at OpenSIPS (a REGISTER whose Contact is a SIPp answering machine started
here), places N calls caller -> callee through OpenSIPS with SIPp, then asks SM's JSON-RPC API
(APIerSv2.GetCDRs, APIerSv2.GetAccount) whether every answered call has its *default CDR and
whether the caller's monetary balance went down by exactly the cost of those CDRs. One line of
verdict; exit 0 only when every call was answered, has its CDRs and was charged.

Run it where OpenSIPS can reach the SIPp contact: on the OpenSIPS host, or in the compose stack
with ``docker compose -f deploy/compose.yaml exec sm cgr smoke --sip opensips:5060``. The caller
must have no other calls while it runs (the debit is compared with the cost of these calls).
"""

from __future__ import annotations

import argparse
import functools
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from cgrpy.config import load_settings
from cgrpy.netaddr import split_host_port

UAC_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cgr smoke caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:{caller}@[remote_ip]>;tag=smoke[pid]-[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=smoke 1 1 IN IP[local_ip_type] [local_ip]
s=cgr smoke
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
From: <sip:{caller}@[remote_ip]>;tag=smoke[pid]-[call_number]
To: <sip:[service]@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <pause/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
From: <sip:{caller}@[remote_ip]>;tag=smoke[pid]-[call_number]
To: <sip:[service]@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


# The callee: answers every INVITE, echoing Record-Route so in-dialog requests (ACK, BYE) follow
# OpenSIPS's route set; BYE may come from the caller or from OpenSIPS (MaxUsage reached).
UAS_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cgr smoke callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Length: 0
]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=smoke 1 1 IN IP[local_ip_type] [local_ip]
s=cgr smoke
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <timewait milliseconds="2000"/>
</scenario>
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("smoke", help="place SIP calls through OpenSIPS with SIPp; check CDRs and debit")
    p.add_argument("--sip", default="127.0.0.1:5060", help="OpenSIPS host:port (default 127.0.0.1:5060)")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--caller", default="1001")
    p.add_argument("--callee", default="1002")
    p.add_argument("--tenant", default="cgrates.org")
    p.add_argument("--duration", type=float, default=2.0, help="seconds each call lasts (default 2)")
    p.add_argument("--rate", type=float, default=2.0, help="new calls per second (default 2)")
    p.add_argument("--jsonrpc", help="SM's HTTP JSON-RPC URL (default from CGRPY_HTTP_LISTEN)")
    p.add_argument("--sipp", default="sipp", help="SIPp binary (Debian package sip-tester)")
    p.add_argument("--cdr-timeout", type=float, default=20.0, help="seconds to wait for the CDRs")
    p.set_defaults(func=run)


class SmokeError(RuntimeError):
    """Something the smoke test cannot go on without; the message is the verdict's reason."""


@dataclass
class Target:
    ip: str
    port: int
    local_ip: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @classmethod
    def resolve(cls, hostport: str) -> Target:
        host, port = split_host_port(hostport)
        try:
            ip = socket.gethostbyname(host)
        except OSError as exc:
            raise SmokeError(f"cannot resolve OpenSIPS host {host!r}: {exc}") from None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((ip, int(port)))
            local_ip = s.getsockname()[0]
        return cls(ip, int(port), local_ip)

    def call_id(self, n: int) -> str:
        return f"smoke-{self.run_id}-{n}@{self.local_ip}"


@functools.cache
def _token() -> str:
    from cgrpy.security import resolve_token

    return resolve_token(load_settings())


def jsonrpc(url: str, method: str, params: dict[str, Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": [params]}).encode()
    headers = {"Content-Type": "application/json"}
    token = _token()
    if token:
        headers["Authorization"] = f"Bearer {token}"  # the API token (README "Security")
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            reply = json.loads(resp.read(), parse_float=Decimal)
    except OSError as exc:
        raise SmokeError(f"JSON-RPC {url}: {exc}") from None
    if reply.get("error"):
        return {"error": reply["error"]}
    return reply.get("result")


def monetary(url: str, tenant: str, account: str) -> Decimal:
    acc = jsonrpc(url, "APIerSv2.GetAccount", {"Tenant": tenant, "Account": account})
    if not isinstance(acc, dict) or "error" in acc:
        raise SmokeError(f"account {tenant}:{account}: {acc}")
    balances = (acc.get("BalanceMap") or {}).get("*monetary") or []
    return sum((Decimal(str(b.get("Value", 0))) for b in balances), Decimal(0))


def sip_register(t: Target, user: str, contact_port: int, expires: int) -> None:
    """REGISTER user@OpenSIPS with Contact sip:user@local_ip:contact_port (expires 0: remove)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((t.local_ip, 0))
        s.settimeout(1.0)
        lport = s.getsockname()[1]
        msg = (f"REGISTER sip:{t.ip}:{t.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {t.local_ip}:{lport};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:{user}@{t.ip}>;tag={secrets.token_hex(4)}\r\n"
               f"To: <sip:{user}@{t.ip}>\r\nCall-ID: reg-{t.run_id}@{t.local_ip}\r\n"
               f"CSeq: {1 if expires else 2} REGISTER\r\n"
               f"Contact: <sip:{user}@{t.local_ip}:{contact_port}>;expires={expires}\r\n"
               f"Expires: {expires}\r\nContent-Length: 0\r\n\r\n")
        for _ in range(4):
            s.sendto(msg.encode(), (t.ip, t.port))
            try:
                while True:
                    status = s.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
                    if not status.startswith("SIP/2.0 1"):
                        break
            except TimeoutError:
                continue
            if status.startswith("SIP/2.0 200"):
                return
            raise SmokeError(f"REGISTER {user}: {status}")
    raise SmokeError(f"REGISTER {user}: no answer from {t.ip}:{t.port}")


def free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def run_calls(args: argparse.Namespace, t: Target, work: Path) -> int:
    """SIPp callee (answers) + SIPp caller (N calls); returns the number of answered calls."""
    uas_port = free_udp_port(t.local_ip)
    (work / "callee.xml").write_text(UAS_SCENARIO)
    uas = subprocess.Popen([args.sipp, "-sf", str(work / "callee.xml"), "-i", t.local_ip, "-p", str(uas_port), "-nostdin",
                            "-trace_err", "-error_file", str(work / "uas_errors.log")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    try:
        time.sleep(0.5)
        if uas.poll() is not None:
            raise SmokeError(f"SIPp answering machine exited {uas.returncode}")
        sip_register(t, args.callee, uas_port, 300)
        try:
            return _uac(args, t, work)
        finally:
            sip_register(t, args.callee, uas_port, 0)
    finally:
        uas.terminate()
        try:
            uas.wait(timeout=5)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait()


def _uac(args: argparse.Namespace, t: Target, work: Path) -> int:
    scenario = work / "caller.xml"
    scenario.write_text(UAC_SCENARIO.format(caller=args.caller))
    stat = work / "caller_stat.csv"
    cmd = [args.sipp, f"{t.ip}:{t.port}", "-sf", str(scenario), "-s", args.callee, "-m", str(args.calls),
           "-r", str(args.rate), "-d", str(int(args.duration * 1000)), "-i", t.local_ip,
           "-p", str(free_udp_port(t.local_ip)), "-cid_str", f"smoke-{t.run_id}-%u@%s", "-nostdin",
           "-recv_timeout", "15000", "-timeout", f"{int(args.calls / args.rate + args.duration + 60)}s",
           "-timeout_error", "-trace_stat", "-stf", str(stat), "-fd", "1",
           "-trace_err", "-error_file", str(work / "caller_errors.log")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if out.returncode not in (0, 1) or not stat.exists():
        raise SmokeError(f"SIPp exited {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}")
    rows = [line.split(";") for line in stat.read_text().splitlines() if line.strip()]
    last = dict(zip(rows[0], rows[-1], strict=False))
    return int(last.get("SuccessfulCall(C)", "0"))


def runs_by_call(cdrs: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in cdrs:
        out.setdefault(c["OriginID"], set()).add(c.get("RunID", ""))
    return out


def complete(cdrs: list[dict[str, Any]], answered: int) -> bool:
    """Every answered call has a *default CDR and the same runs as every other call."""
    runs = runs_by_call(cdrs)
    every = set().union(*runs.values()) if runs else set()
    with_default = [r for r in runs.values() if "*default" in r]
    return len(with_default) >= answered and all(r == every for r in runs.values())


def wait_cdrs(args: argparse.Namespace, url: str, t: Target, answered: int) -> list[dict[str, Any]]:
    ids = [t.call_id(n) for n in range(1, args.calls + 1)]
    deadline = time.monotonic() + args.cdr_timeout
    while True:
        got = jsonrpc(url, "APIerSv2.GetCDRs", {"OriginIDs": ids})
        cdrs = got if isinstance(got, list) else []
        if complete(cdrs, answered) or time.monotonic() > deadline:
            return cdrs
        time.sleep(0.5)


def verdict(args: argparse.Namespace, answered: int, cdrs: list[dict[str, Any]], debit: Decimal) -> tuple[bool, str]:
    default = [c for c in cdrs if c.get("RunID") == "*default"]
    charged = {c["OriginID"] for c in default}
    cost = sum((Decimal(str(c["Cost"])) for c in default), Decimal(0))
    problems = []
    if answered != args.calls:
        problems.append(f"{args.calls - answered} of {args.calls} calls not answered")
    if len(charged) != answered:
        problems.append(f"{answered - len(charged)} answered calls without a *default CDR")
    runs = runs_by_call(cdrs)
    every = set().union(*runs.values()) if runs else set()
    partial = [oid for oid, r in runs.items() if r != every]
    if partial:
        problems.append(f"{len(partial)} calls without all of their CDRs ({', '.join(sorted(every))})")
    if any(Decimal(str(c["Cost"])) < 0 for c in default):
        problems.append("CDRs with a rating error (Cost -1)")
    if debit != cost:
        problems.append(f"debit {debit} != cost {cost}")
    facts = (f"{answered}/{args.calls} calls answered, {len(cdrs)} CDRs ({len(default)} *default), "
             f"{args.tenant}:{args.caller} debited {debit}, CDR cost {cost}")
    if problems:
        return False, f"smoke: FAIL: {'; '.join(problems)} ({facts})"
    return True, f"smoke: OK: {facts}"


def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.rate <= 0 or args.duration < 0:
        print("smoke: FAIL: --calls, --rate and --duration must be positive")
        return 2
    if shutil.which(args.sipp) is None:
        print(f"smoke: FAIL: SIPp not found ({args.sipp}; Debian package sip-tester)")
        return 2
    url = args.jsonrpc or _default_jsonrpc()
    try:
        t = Target.resolve(args.sip)
        before = monetary(url, args.tenant, args.caller)
        with tempfile.TemporaryDirectory(prefix="cgr-smoke-") as tmp:
            answered = run_calls(args, t, Path(tmp))
        cdrs = wait_cdrs(args, url, t, answered)
        time.sleep(0.5)  # the last debits land with the CDRs; read the balance after them
        debit = before - monetary(url, args.tenant, args.caller)
    except SmokeError as exc:
        print(f"smoke: FAIL: {exc}")
        return 1
    ok, line = verdict(args, answered, cdrs, debit)
    print(line)
    return 0 if ok else 1


def _default_jsonrpc() -> str:
    host, port = split_host_port(load_settings().http_listen)
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/jsonrpc"
