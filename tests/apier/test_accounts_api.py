"""Accounts and action plans over JSON-RPC, against a real suite (Postgres, tutorial plan):
APIerSv2.GetAccounts, SetAccount with action plans and triggers, the action-plan API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e


def _ids(reply: list[dict] | None) -> list[str]:
    return [a["ID"].removeprefix("cgrates.org:") for a in reply or []]


def test_get_accounts_pages_and_filters(tcp, http):
    for name, neg in (("ga_a", True), ("ga_b", False), ("ga_c", True)):
        assert ok(tcp.call("APIerSv2.SetAccount", {"Account": name, "ExtraOptions": {"AllowNegative": neg}})) == "OK"
    everything = _ids(ok(http.call("APIerSv2.GetAccounts", {"Tenant": "cgrates.org"})))
    assert everything == sorted(everything)
    assert {"1001", "1002", "1003", "ga_a", "ga_b", "ga_c"} <= set(everything)

    page = ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", "ga_b", "ga_c"], "Offset": 1, "Limit": 1}))
    assert _ids(page) == ["ga_b"]
    # the same shape as APIerSv2.GetAccount, balances exact
    assert page[0] == ok(tcp.call("APIerSv2.GetAccount", {"Account": "ga_b"}))
    acc = ok(http.call("APIerSv2.GetAccounts", {"AccountIDs": ["1001"]}))[0]
    assert acc["BalanceMap"]["*monetary"][0]["Value"] == Decimal("10")

    flt = ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", "ga_b", "ga_c", "nobody"],
                                               "Filter": {"AllowNegative": True}}))
    assert _ids(flt) == ["ga_a", "ga_c"]
    assert ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["nobody"]})) == []
    assert ok(tcp.call("APIerSv2.GetAccounts", {"Tenant": "no.such.tenant"})) == []
    assert ok(tcp.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a"], "Offset": 5})) == []


def test_get_accounts_bad_arguments(api):
    assert err(api.call("APIerSv2.GetAccounts", {"AccountIDs": ["ga_a", ""]})) == "MANDATORY_IE_MISSING: [AccountIDs]"
    assert "Filter: unknown field 'Blocked'" in err(api.call("APIerSv2.GetAccounts", {"Filter": {"Blocked": True}}))
    assert "Limit: must not be negative" in err(api.call("APIerSv2.GetAccounts", {"Limit": -1}))
    assert "Offset" in err(api.call("APIerSv2.GetAccounts", {"Offset": "x"}))
