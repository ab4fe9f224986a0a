"""Actions *cdrlog and *cgr_rpc over the JSON-RPC API against a real suite (Postgres, tutorial):
a *cdrlog CDR is stored by cdre and found by APIerSv1.GetCDRs / CDRsV1.GetCDRs, already rated;
*cgr_rpc calls a real JSON-RPC server on loopback (retried per Attempts) and cgrpy's own API
(*internal); a malformed or unrunnable *cgr_rpc is refused by SetActions, naming the field."""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e


class JsonRpcReceiver:
    """A JSON-RPC server over TCP on loopback (Go's jsonrpc codec): records every request and
    answers the first ``fail_first`` with an error."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[dict[str, Any]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while not buf.rstrip().endswith(b"}"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                req = json.loads(buf, parse_float=Decimal)
                self.calls.append(req)
                failing = len(self.calls) <= self.fail_first
                reply = {"id": req["id"], "result": None if failing else "OK",
                         "error": "SERVER_ERROR: try again" if failing else None}
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


def _wait(probe, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not seen in {timeout}s")


def test_cdrlog_cdr_is_stored_rated_and_found_by_get_cdrs(tcp, http) -> None:
    acc = "cdrlog_api_1"
    assert ok(tcp.call("APIerSv2.SetAccount", {"Account": acc})) == "OK"
    assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_CDRLOG_API", "Overwrite": True, "Actions": [
        {"Identifier": "*topup", "BalanceId": "gift", "BalanceType": "*monetary", "Units": "2.5",
         "Weight": 20},
        {"Identifier": "*cdrlog", "Weight": 10}]})) == "OK"
    assert ok(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_CDRLOG_API"})) == "OK"

    def cdrs() -> list[dict]:
        reply = tcp.call("APIerSv1.GetCDRs", {"Accounts": [acc]})
        return reply["result"] or [] if not reply.get("error") else []

    [cdr] = _wait(cdrs)
    assert (cdr["Source"], cdr["RunID"], cdr["ToR"]) == ("*cdrlog", "*topup", "*monetary")
    assert (cdr["Account"], cdr["Subject"], cdr["RequestType"]) == (acc, acc, "*none")
    assert Decimal(str(cdr["Cost"])) == Decimal("2.5")
    # stored as given: no ChargerS runs (one CDR, RunID the action type), no second debit
    [v1] = ok(http.call("CDRsV1.GetCDRs", {"Accounts": [acc]}))
    assert v1["CGRID"] == cdr["CGRID"]
    account = ok(tcp.call("APIerSv2.GetAccount", {"Account": acc}))
    gift = [b for b in account["BalanceMap"]["*monetary"] if b["ID"] == "gift"]
    assert [b["Value"] for b in gift] == [Decimal("2.5")]


def test_cgr_rpc_calls_a_json_rpc_server_with_attempts(tcp) -> None:
    rec = JsonRpcReceiver(fail_first=1)
    try:
        params = {"Tenant": "cgrates.org", "Account": "rpc_remote", "Amount": Decimal("1.25")}
        assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_RPC_REMOTE", "Overwrite": True, "Actions": [
            {"Identifier": "*cgr_rpc", "ExtraParameters": json.dumps({
                "Address": rec.addr, "Transport": "*json", "Method": "Remote.Take", "Attempts": 2,
                "Async": False, "Params": {"Tenant": "cgrates.org", "Account": "rpc_remote", "Amount": 1.25}}),
             "Weight": 10}]})) == "OK"
        assert ok(tcp.call("APIerSv1.ExecuteAction", {"ActionsId": "ACT_RPC_REMOTE"})) == "OK"
        _wait(lambda: len(rec.calls) >= 2)
        first, second = rec.calls[:2]  # the first answered an error: tried again
        assert first["method"] == second["method"] == "Remote.Take"
        assert second["params"] == [params]
        time.sleep(1.0)
        assert len(rec.calls) == 2  # Attempts: 2, and the second succeeded
    finally:
        rec.close()


def test_cgr_rpc_template_is_filled_from_the_account_and_the_action(tcp, http) -> None:
    rec = JsonRpcReceiver()
    try:
        acc = "rpc_tpl_1"
        assert ok(tcp.call("APIerSv2.SetAccount", {"Account": acc})) == "OK"
        extra = ('{"Address": "ADDR", "Method": "Remote.Dest", "Params": {"Id": "<<.Account.GetID>>", '
                 '"Full": "<<.Account.ID>>", "Set": "<<.Action.Id>>", "Weight": <<.Action.Weight>>, '
                 '"Neg": <<.Account.AllowNegative>>}}').replace("ADDR", rec.addr)
        assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_RPC_TPL", "Overwrite": True, "Actions": [
            {"Identifier": "*cgr_rpc", "ExtraParameters": extra, "Weight": 10}]})) == "OK"
        assert ok(http.call("APIerSv1.ExecuteAction", {"Account": acc, "ActionsId": "ACT_RPC_TPL"})) == "OK"
        _wait(lambda: rec.calls)
        assert rec.calls[0]["method"] == "Remote.Dest"
        assert rec.calls[0]["params"] == [{"Id": acc, "Full": f"cgrates.org:{acc}", "Set": "ACT_RPC_TPL",
                                           "Weight": 10, "Neg": False}]
    finally:
        rec.close()


def test_cgr_rpc_internal_calls_cgrpy_s_own_api(tcp) -> None:
    assert ok(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_RPC_INTERNAL", "Overwrite": True, "Actions": [
        {"Identifier": "*cgr_rpc", "ExtraParameters": json.dumps({
            "Address": "*internal", "Method": "APIerSv2.SetAccount",
            "Params": {"Tenant": "cgrates.org", "Account": "rpc_internal_made"}}), "Weight": 10}]})) == "OK"
    assert ok(tcp.call("APIerSv1.ExecuteAction", {"ActionsId": "ACT_RPC_INTERNAL"})) == "OK"
    made = _wait(lambda: tcp.call("APIerSv2.GetAccount", {"Account": "rpc_internal_made"}).get("result"))
    assert made["ID"] == "cgrates.org:rpc_internal_made"


@pytest.mark.parametrize(("extra", "named"), [
    ("not json", "ExtraParameters: not JSON"),
    (json.dumps({"Address": "*internal", "Params": {}}), "ExtraParameters.Method"),
    (json.dumps({"Address": "127.0.0.1:2013", "Transport": "*gob", "Method": "APIerSv2.SetAccount"}),
     "ExtraParameters.Transport: *gob"),
    (json.dumps({"Method": "APIerSv2.SetAccount", "Params": {"Account": '<<.Account.ID | printf "%s">>'}}),
     "ExtraParameters: template <<.Account.ID | printf"),
    (json.dumps({"Address": "nowhere", "Method": "APIerSv2.SetAccount"}), "ExtraParameters.Address"),
])
def test_bad_cgr_rpc_is_refused_and_changes_nothing(tcp, extra: str, named: str) -> None:
    e = err(tcp.call("APIerSv1.SetActions", {"ActionsId": "ACT_RPC_BAD", "Actions": [
        {"Identifier": "*cgr_rpc", "ExtraParameters": extra, "Weight": 10}]}))
    assert e.startswith("INVALID_ARGUMENT") and named in e
    assert "NOT_FOUND" in err(tcp.call("APIerSv1.GetActions", "ACT_RPC_BAD"))
