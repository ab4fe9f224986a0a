"""ResourceSv1.* and the ResourceProfile provisioning over JSON-RPC (TCP and HTTP), on the real
suite with the tutorial plan: ResGroup1 limits accounts 1001-1003 together to 7 units."""

from __future__ import annotations

import itertools

import pytest

from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e

_ids = itertools.count()
ZERO = "0001-01-01T00:00:00Z"


def usage(uid: str, account: str, **extra: object) -> dict:
    return {"Tenant": "cgrates.org", "ID": f"ev-{uid}", "Event": {"Account": account}, "UsageID": uid, **extra}


def test_limit_allocation_message_release_and_reads(api):
    tag = f"u{next(_ids)}"
    uids = [f"{tag}-{i}" for i in range(7)]
    assert ok(api.call("ResourceSv1.AuthorizeResources", usage(uids[0], "1001", Units=1))) == "ResGroup1"
    for i, uid in enumerate(uids):
        assert ok(api.call("ResourceSv1.AllocateResources", usage(uid, ("1001", "1002", "1003")[i % 3]))) == "ResGroup1"
    assert ok(api.call("ResourceSv1.AllocateResources", usage(uids[3], "1001"))) == "ResGroup1"  # a retry
    assert err(api.call("ResourceSv1.AuthorizeResources", usage(f"{tag}-x", "1002"))) == "RESOURCE_UNAUTHORIZED"
    assert err(api.call("ResourceSv1.AllocateResources", usage(f"{tag}-x", "1002"))) == "RESOURCE_UNAVAILABLE"
    res = ok(api.call("ResourceSv1.GetResource", {"Tenant": "cgrates.org", "ID": "ResGroup1"}))
    assert sorted(res["Usages"]) == sorted(uids) and res["TTLIdx"] is None
    assert res["Usages"][uids[0]] == {"Tenant": "cgrates.org", "ID": uids[0], "ExpiryTime": ZERO, "Units": 1}
    found = ok(api.call("ResourceSv1.GetResourcesForEvent", usage(f"{tag}-q", "1003")))
    assert [r["ID"] for r in found] == ["ResGroup1"]
    assert err(api.call("ResourceSv1.GetResourcesForEvent", usage(f"{tag}-q2", "2002"))) == "NOT_FOUND"
    assert err(api.call("ResourceSv1.AllocateResources", usage("", "1001"))) == "MANDATORY_IE_MISSING: [UsageID]"
    assert err(api.call("ResourceSv1.AllocateResources", usage("bad", "1001", Units="two"))).startswith(
        "INVALID_ARGUMENT")
    for uid in uids:
        assert ok(api.call("ResourceSv1.ReleaseResources", usage(uid, "1001"))) == "OK"
    assert ok(api.call("ResourceSv1.GetResource", {"ID": "ResGroup1"}))["Usages"] == {}
    assert ok(api.call("ResourceSv1.Ping")) == "Pong"


def test_resource_profile_provisioning(tcp):
    prof = {"Tenant": "cgrates.org", "ID": "RES_1004", "FilterIDs": ["*string:~*req.Account:1004"],
            "UsageTTL": -1, "Limit": 1, "AllocationMessage": "ONE_CALL", "Blocker": False, "Stored": True,
            "Weight": 20, "ThresholdIDs": ["*none"]}
    assert ok(tcp.call("APIerSv1.SetResourceProfile", prof)) == "OK"
    got = ok(tcp.call("APIerSv1.GetResourceProfile", {"Tenant": "cgrates.org", "ID": "RES_1004"}))
    assert got == {**prof, "ActivationInterval": None}
    assert sorted(ok(tcp.call("APIerSv1.GetResourceProfileIDs", {"Tenant": "cgrates.org"}))) == ["RES_1004", "ResGroup1"]
    assert ok(tcp.call("ResourceSv1.AllocateResources", usage("p1", "1004"))) == "ONE_CALL"
    assert err(tcp.call("ResourceSv1.AllocateResources", usage("p2", "1004"))) == "RESOURCE_UNAVAILABLE"
    # a re-provisioned profile keeps the live usage (ReloadCache carries it over)
    assert ok(tcp.call("APIerSv1.SetResourceProfile", {**prof, "Limit": 2})) == "OK"
    assert ok(tcp.call("ResourceSv1.AllocateResources", usage("p2", "1004"))) == "ONE_CALL"
    assert err(tcp.call("ResourceSv1.AllocateResources", usage("p3", "1004"))) == "RESOURCE_UNAVAILABLE"
    assert err(tcp.call("APIerSv1.SetResourceProfile", {**prof, "Limit": "lots"})).startswith("INVALID_ARGUMENT")
    assert ok(tcp.call("APIerSv1.RemoveResourceProfile", {"Tenant": "cgrates.org", "ID": "RES_1004"})) == "OK"
    assert err(tcp.call("ResourceSv1.GetResource", {"ID": "RES_1004"})) == "NOT_FOUND"
