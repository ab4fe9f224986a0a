"""*cgr_rpc ExtraParameters checked field by field (cgrpy/cgrrpc.py), and one JSON-RPC call over
TCP to a real server on loopback: the result, the server's error, nobody listening."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cgrpy.cgrrpc import INTERNAL, CgrRpcError, RpcError, fill_template, jsonrpc_call, parse_cgr_rpc
from tests.apier.test_actions_rpc_cdrlog import JsonRpcReceiver
from tests.suite import free_port


def test_defaults_and_exact_params() -> None:
    rpc = parse_cgr_rpc('{"Method": "APIerSv2.SetAccount", "Params": {"Value": 0.1}}')
    assert (rpc.address, rpc.transport, rpc.attempts, rpc.async_) == (INTERNAL, "*json", 1, False)
    assert rpc.params == {"Value": Decimal("0.1")}
    assert parse_cgr_rpc('{"Address": "*localhost", "Method": "A.B"}').address == INTERNAL
    assert parse_cgr_rpc('{"Address": "10.0.0.1:2012", "Method": "A.B", "Attempts": "3"}').attempts == 3


@pytest.mark.parametrize(("text", "field", "unsupported"), [
    ("", "ExtraParameters", False),
    ("[1]", "ExtraParameters", False),
    ('{"Method": "NoDot"}', "ExtraParameters.Method", False),
    ('{"Method": "A.B", "Attempts": 0}', "ExtraParameters.Attempts", False),
    ('{"Method": "A.B", "Attempts": true}', "ExtraParameters.Attempts", False),
    ('{"Method": "A.B", "Async": "yes"}', "ExtraParameters.Async", False),
    ('{"Method": "A.B", "Address": "host"}', "ExtraParameters.Address", False),
    ('{"Method": "A.B", "Transport": "*msgpack"}', "ExtraParameters.Transport", False),
    ('{"Method": "A.B", "Adress": "x:1"}', "ExtraParameters.Adress", False),
    ('{"Method": "A.B", "Transport": "*gob"}', "ExtraParameters.Transport", True),
    ('{"Method": "A.B", "Params": {"Id": "<<printf \\"%s\\" .Account.ID>>"}}', "ExtraParameters", True),
    ('{"Method": "A.B", "Params": {"Id": "<<.Sq.ID>>"}}', "ExtraParameters", True),
    ('{"Method": "A.B", "Params": <<.Account.ID>>x}', "ExtraParameters", False),  # not JSON once filled
])
def test_bad_parameters_name_the_field(text: str, field: str, unsupported: bool) -> None:
    with pytest.raises(CgrRpcError) as exc:
        parse_cgr_rpc(text)
    assert exc.value.field == field and str(exc.value).startswith(field)
    assert exc.value.unsupported is unsupported


def test_jsonrpc_call_over_tcp() -> None:
    rec = JsonRpcReceiver(fail_first=1)
    try:
        with pytest.raises(RpcError, match="SERVER_ERROR: try again"):
            jsonrpc_call(rec.addr, "Remote.Take", {"A": Decimal("1.10")}, 5.0)
        assert jsonrpc_call(rec.addr, "Remote.Take", {"A": Decimal("1.10")}, 5.0) == "OK"
        assert rec.calls[1] == {"method": "Remote.Take", "params": [{"A": Decimal("1.10")}], "id": 1}
    finally:
        rec.close()
    with pytest.raises(RpcError, match="Remote.Take"):
        jsonrpc_call(f"127.0.0.1:{free_port()}", "Remote.Take", {}, 2.0)


def test_a_template_is_checked_at_load_and_filled_when_the_action_runs() -> None:
    text = ('{"Method": "APIerSv2.SetDestination", "Params": {"Id": "<<.Account.GetID>>", '
            '"Weight": <<.Action.Weight>>, "Type": "<<.Action.Balance.Type>>", '
            '"Neg": <<.Account.AllowNegative>>, "Uuid": "<<.Action.Balance.Uuid>>"}}')
    assert parse_cgr_rpc(text).method == "APIerSv2.SetDestination"  # paths filled with 0
    filled = fill_template(text, {
        "Account": {"ID": "cgrates.org:1001", "GetID": "1001", "AllowNegative": False},
        "Action": {"Weight": Decimal("10.50"), "Balance": {"Type": "*monetary", "Uuid": None}},
    })
    assert parse_cgr_rpc(filled).params == {"Id": "1001", "Weight": Decimal("10.5"),
                                           "Type": "*monetary", "Neg": False, "Uuid": "<nil>"}


@pytest.mark.parametrize(("text", "data", "named"), [
    ('{"Method": "A.B", "Params": "<<.Account.Nope>>"}', {"Account": {"ID": "x"}}, "no field Nope"),
    ('{"Method": "A.B", "Params": "<<.Account.ID>>"}', {"Account": None}, "nil pointer"),
    ('{"Method": "A.B", "Params": "<<.Account.BalanceMap>>"}', {"Account": {"BalanceMap": {}}},
     "not a text, number or boolean"),
])
def test_a_template_that_cannot_be_filled_names_the_path(text: str, data: dict, named: str) -> None:
    with pytest.raises(CgrRpcError, match=named):
        fill_template(text, data)
