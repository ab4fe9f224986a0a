"""TariffPlanService over gRPC against the real RALs and AttributeS processes on a real StorDB:
a provisioned profile behaves exactly like the same profile loaded from CSV, survives a restart,
and a bad one is refused naming the field with the tp tables unchanged."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import grpc

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc, common_pb2, tariffplan_pb2
from cgrpy.tariffplan.csvread import read_folder
from services.attributes.server import AttributesServer
from services.rals.server import RalsServer
from tests.attributes.test_contract import fields, request, store_plan
from tests.conftest import TARIFFPLANS
from tests.harness import serve
from tests.provisioning.common import addrs, dump, get, rpc_error, set_req, stub

FILTER = {"Tenant": "cgrates.org", "ID": "FLTR_PROV",
          "Rules": [{"Type": "*string", "Element": "~*req.Account", "Values": ["1010"]}]}
PROFILE = {
    "Tenant": "cgrates.org", "ID": "ATTR_PROV", "Contexts": ["*any"], "FilterIDs": ["FLTR_PROV"],
    "Attributes": [
        {"FilterIDs": [], "Path": "*req.Password", "Type": "*constant", "Value": [{"Rules": "secret"}]},
        {"Path": "*req.RequestType", "Type": "*constant", "Value": "*postpaid"},
    ],
    "Blocker": False, "Weight": 20,
}
CSV_ATTRIBUTES = """#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight
cgrates.org,ATTR_PROV,*any,FLTR_PROV,,,*req.Password,*constant,secret,false,20
cgrates.org,ATTR_PROV,,,,,*req.RequestType,*constant,*postpaid,,
"""
CSV_FILTERS = """#Tenant,ID,Type,Element,Values,ActivationInterval
cgrates.org,FLTR_PROV,*string,~*req.Account,1010,
"""
EVENT = {"Account": "1010", "Destination": "1002"}


def csv_snippet(tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    (tmp_path / "Attributes.csv").write_text(CSV_ATTRIBUTES)
    (tmp_path / "Filters.csv").write_text(CSV_FILTERS)
    return read_folder(tmp_path)


async def test_provisioned_equals_csv_and_survives_restart(db_url, tmp_path):
    async with serve(AttributesServer, db_url) as attrs:
        astub = attributes_pb2_grpc.AttributesServiceStub(attrs.channel)
        err = await rpc_error(astub.ProcessEvent(request(EVENT)))
        assert err.code() == grpc.StatusCode.NOT_FOUND  # nothing for 1010 in the tutorial

        async with serve(RalsServer, db_url, tariffplan=None, env=addrs(attributes=attrs.addr)) as rals:
            tps = stub(rals.channel)
            res = await tps.SetProfile(set_req("Filter", FILTER))
            assert dict(res.rows) == {"Filters": 1}
            assert res.reloaded["attributes"] == "reloaded"
            assert res.reloaded["chargers"] == "not running"
            res = await tps.SetProfile(set_req("Attribute", PROFILE))
            assert (res.tenant, res.id, dict(res.rows)) == ("cgrates.org", "ATTR_PROV", {"Attributes": 2})
            assert dict(res.reloaded) == {"attributes": "reloaded", "chargers": "not running"}

            provisioned = await astub.ProcessEvent(request(EVENT))
            assert list(provisioned.matched_profiles) == ["ATTR_PROV"]
            assert fields(provisioned) == {**EVENT, "Password": "secret", "RequestType": "*postpaid"}

            back = await get(rals.channel, "Attribute", {"Tenant": "cgrates.org", "ID": "ATTR_PROV"})
            assert back["Attributes"][1] == {"FilterIDs": [], "Path": "*req.RequestType", "Type": "*constant",
                                             "Value": [{"Rules": "*postpaid", "AllFiltersMatch": False}]}
            assert (back["Weight"], back["Contexts"], back["FilterIDs"]) == (20, ["*any"], ["FLTR_PROV"])
            ids = await tps.GetProfileIDs(tariffplan_pb2.ProfileIDsRequest(kind="Attribute"))
            assert "ATTR_PROV" in ids.ids and "ATTR_1001_SIMPLEAUTH" in ids.ids

        # The rows stored are the rows the CSV files carry.
        csv = csv_snippet(tmp_path)
        stored = dump(db_url)
        assert [r for r in stored["Attributes"] if r["ID"] == "ATTR_PROV"] == csv["Attributes"]
        assert [r for r in stored["Filters"] if r["ID"] == "FLTR_PROV"] == csv["Filters"]

    # Restart: a new AttributeS on the same StorDB (no plan loaded by the harness) still applies it.
    async with serve(AttributesServer, db_url, tariffplan=None) as attrs:
        astub = attributes_pb2_grpc.AttributesServiceStub(attrs.channel)
        after_restart = await astub.ProcessEvent(request(EVENT))
        # the same answer; only profile_version differs (it changes with every restart)
        assert after_restart.profile_version != provisioned.profile_version
        assert _unversioned(after_restart) == _unversioned(provisioned)

    # The same profile loaded from CSV (tutorial + the snippet) gives the same answer.
    plan = read_folder(TARIFFPLANS / "tutorial")
    plan["Attributes"] = plan["Attributes"] + csv["Attributes"]
    plan["Filters"] = plan["Filters"] + csv["Filters"]
    store_plan(db_url, plan)
    async with serve(AttributesServer, db_url, tariffplan=None) as attrs:
        astub = attributes_pb2_grpc.AttributesServiceStub(attrs.channel)
        from_csv = await astub.ProcessEvent(request(EVENT))
        assert _unversioned(from_csv) == _unversioned(provisioned)
        for ctx in ("*sessions", "simpleauth"):  # tutorial profiles unaffected either way
            one = await astub.ProcessEvent(request({"Account": "1001"}, context=ctx))
            assert "ATTR_PROV" not in one.matched_profiles


def _unversioned(resp: attributes_pb2.AttributesProcessEventResponse) -> attributes_pb2.AttributesProcessEventResponse:
    out = attributes_pb2.AttributesProcessEventResponse()
    out.CopyFrom(resp)
    out.ClearField("profile_version")
    return out


BAD = [
    ({**PROFILE, "FilterIDs": ["FLTR_NOPE"]}, "column FilterIDs: unknown Filters ID 'FLTR_NOPE'"),
    ({**PROFILE, "Weight": "abc"}, "column Weight: not a number (got 'abc')"),
    ({**PROFILE, "Attributes": [{"Path": "*req.X", "Type": "*substitute", "Value": "1"}]},
     "column Type: unknown attribute type"),
    ({**PROFILE, "Weight": [1]}, "Weight: expected a number, got a list"),
    ({**PROFILE, "Attributes": []}, "Attributes: an attribute profile needs at least one attribute"),
]


async def test_bad_profiles_refused_nothing_changed(db_url):
    async with serve(RalsServer, db_url, env=addrs()) as rals:
        tps = stub(rals.channel)
        before = dump(db_url)
        for profile, expected in BAD:
            err = await rpc_error(tps.SetProfile(set_req("Attribute", profile)))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, profile
            assert err.details().startswith("INVALID_ARGUMENT:"), err.details()
            assert expected in err.details(), err.details()
        assert "Attribute cgrates.org:ATTR_PROV row 1: column FilterIDs" in (
            await rpc_error(tps.SetProfile(set_req("Attribute", BAD[0][0])))).details()
        assert dump(db_url) == before

        # Removing a filter that a tutorial profile still uses is refused the same way.
        err = await rpc_error(tps.RemoveProfile(set_req("Filter", {"ID": "FLTR_ACNT_1001"})))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown Filters ID 'FLTR_ACNT_1001'" in err.details()
        assert dump(db_url) == before

        err = await rpc_error(tps.SetProfile(set_req("Attribute", {"Attributes": []})))
        assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "MANDATORY_IE_MISSING: [ID]")
        err = await rpc_error(tps.SetProfile(set_req("Gizmo", PROFILE)))
        assert "unknown kind 'Gizmo'" in err.details()
        err = await rpc_error(tps.GetProfile(set_req("Attribute", {"ID": "ATTR_NOPE"})))
        assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        err = await rpc_error(tps.RemoveProfile(set_req("Charger", {"ID": "NOPE"})))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        err = await rpc_error(tps.SetProfile(set_req("Charger", {"ID": "DEFAULT", "RunID": "*x"}, no_overwrite=True)))
        assert (err.code(), err.details()) == (grpc.StatusCode.ALREADY_EXISTS, "EXISTS")
        assert dump(db_url) == before


async def test_every_kind_round_trips_and_removes(sqlite_url):
    objects = {
        "Filter": {**FILTER, "ActivationInterval": {"ActivationTime": "2014-07-29T15:00:00Z",
                                                     "ExpiryTime": "0001-01-01T00:00:00Z"}},
        "Charger": {"Tenant": "cgrates.org", "ID": "CRG_PROV", "FilterIDs": ["FLTR_PROV"], "ActivationInterval": None,
                    "RunID": "*rated", "AttributeIDs": ["*none"], "Weight": Decimal("2.5")},
        "Supplier": {"Tenant": "cgrates.org", "ID": "SPP_PROV", "FilterIDs": ["FLTR_PROV"], "ActivationInterval": None,
                     "Sorting": "*weight", "SortingParameters": [],
                     "Suppliers": [{"ID": "s1", "FilterIDs": [], "AccountIDs": [], "RatingPlanIDs": ["RP_1001"],
                                    "ResourceIDs": [], "StatIDs": [], "Weight": 10, "Blocker": False,
                                    "SupplierParameters": ""},
                                   {"ID": "s2", "FilterIDs": [], "AccountIDs": [], "RatingPlanIDs": [],
                                    "ResourceIDs": [], "StatIDs": [], "Weight": 20, "Blocker": False,
                                    "SupplierParameters": "p"}],
                     "Weight": 10},
        "StatQueue": {"Tenant": "cgrates.org", "ID": "STS_PROV", "FilterIDs": ["FLTR_PROV"], "ActivationInterval": None,
                      "QueueLength": 100, "TTL": -1, "MinItems": 0,
                      "Metrics": [{"MetricID": "*acd", "FilterIDs": []}, {"MetricID": "*tcc", "FilterIDs": []},
                                  {"MetricID": "*asr", "FilterIDs": ["*gte:~*req.Usage:1s"]}],
                      "Stored": False, "Blocker": True, "Weight": 20, "ThresholdIDs": ["*none"]},
        "Threshold": {"Tenant": "cgrates.org", "ID": "THD_PROV", "FilterIDs": ["FLTR_PROV"], "ActivationInterval": None,
                      "MaxHits": -1, "MinHits": 1, "MinSleep": 1_000_000_000, "Blocker": False, "Weight": 10,
                      "ActionIDs": ["ACT_PROV"], "Async": True},
        "Actions": {"ActionsId": "ACT_PROV", "Actions": [
            {"Identifier": "*topup", "ExtraParameters": "", "Filter": "", "BalanceId": "b1",
             "BalanceType": "*monetary", "Categories": "", "DestinationIds": "*any", "RatingSubject": "",
             "SharedGroups": "", "ExpiryTime": "*unlimited", "TimingTags": "", "Units": 5,
             "BalanceWeight": 10, "BalanceBlocker": "false", "BalanceDisabled": "false", "Weight": 10}]},
        "ActionPlan": {"Id": "AP_PROV", "ActionPlan": [{"ActionsId": "ACT_PROV", "TimingId": "*asap", "Weight": 10}]},
        "ActionTriggers": {"GroupID": "STANDARD_TRIGGERS_PROV", "ActionTriggers": [
            {"UniqueID": "t1", "ThresholdType": "*min_balance", "ThresholdValue": 2, "Recurrent": False,
             "MinSleep": 0, "ExpiryTime": "", "ActivationTime": "", "BalanceID": "", "BalanceType": "*monetary",
             "BalanceCategories": [], "BalanceDestinationIds": [], "BalanceRatingSubject": "",
             "BalanceSharedGroups": [], "BalanceExpirationDate": "", "BalanceTimingTags": [],
             "BalanceWeight": 0, "BalanceBlocker": False, "BalanceDisabled": False, "ActionsId": "ACT_PROV",
             "Weight": 10}]},
    }
    async with serve(RalsServer, sqlite_url, env=addrs()) as rals:
        tps = stub(rals.channel)
        before = dump(sqlite_url)
        # Actions before the threshold naming them, filter first: the loader's reference order.
        for kind in ("Filter", "Actions", "Charger", "Supplier", "StatQueue", "Threshold", "ActionPlan",
                     "ActionTriggers"):
            await tps.SetProfile(set_req(kind, objects[kind]))
        for kind, obj in objects.items():
            key = {"Tenant": "cgrates.org", "ID": obj.get("ID") or obj.get("Id") or obj.get("ActionsId")
                   or obj.get("GroupID")}
            if kind in ("Actions", "ActionPlan", "ActionTriggers"):
                key = {"ID": key["ID"]}
            back = await get(rals.channel, kind, key)
            if kind == "Actions":
                back["Actions"][0]["Units"] = int(back["Actions"][0]["Units"])
            assert back == {**obj, "Weight": obj["Weight"]} if "Weight" in obj else back == obj, kind
        stats = dump(sqlite_url)["Stats"]
        assert [(r["Metrics"], r["MetricFilterIDs"]) for r in stats if r["Id"] == "STS_PROV"] == [
            ("*acd;*tcc", ""), ("*asr", "*gte:~*req.Usage:1s")]
        # Tenant-less kinds list without a tenant; *all lists every tenant.
        ids = await tps.GetProfileIDs(tariffplan_pb2.ProfileIDsRequest(kind="Actions"))
        assert "ACT_PROV" in ids.ids and "ACT_TOPUP_RST_10" in ids.ids
        # Remove in reverse dependency order: back to the tutorial rows exactly.
        for kind in ("ActionTriggers", "ActionPlan", "Threshold", "StatQueue", "Supplier", "Charger", "Actions",
                     "Filter"):
            obj = objects[kind]
            key = {"ID": obj.get("ID") or obj.get("Id") or obj.get("ActionsId") or obj.get("GroupID")}
            await tps.RemoveProfile(set_req(kind, key))
        assert dump(sqlite_url) == before
        tpids = await tps.GetTPIds(common_pb2.Empty())
        assert list(tpids.tpids) == ["cgrpy"]
        rows = await tps.GetTPRows(tariffplan_pb2.TPRowsRequest(tpid="cgrpy", file="Rates", id="RT_20CNT"))
        assert [r.json for r in rows.rows][0].startswith('{"Id":"RT_20CNT","ConnectFee":"0.4"')
        assert len(rows.rows) == 2
