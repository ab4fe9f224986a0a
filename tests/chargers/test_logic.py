"""ChargerS logic: tutorial DEFAULT/Raw runs, the CGRateS Charger1 example, errors (docs/profiles.md)."""

import pytest

from cgrpy.attributes.engine import AttributeEngine
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from services.chargers.logic import ChargerEngine, ProfileDataError, profiles_from_rows
from tests.conftest import TARIFFPLANS

ORG = "cgrates.org"
HEADER = ("Tenant", "ID", "FilterIDs", "ActivationInterval", "RunID", "AttributeIDs", "Weight")


@pytest.fixture(scope="module")
def plan():
    return read_folder(TARIFFPLANS / "tutorial")


@pytest.fixture(scope="module")
def attrs(plan) -> AttributeEngine:
    return AttributeEngine.from_rows(plan)


def chargers(*lines: str) -> list[dict]:
    return [dict(zip(HEADER, line.split(","), strict=True)) for line in lines]


def ev(**fields) -> CGREvent:
    return CGREvent(tenant=ORG, id="e1", event=dict(fields))


def test_tutorial_default_and_raw(plan, attrs):
    eng = ChargerEngine.from_rows(plan)
    event = ev(Account="1001", Destination="1002", RequestType="*prepaid")
    runs = eng.process_event(event, attrs.process_event)
    # both weight 0: ties ordered by profile ID ("DEFAULT" < "Raw")
    assert [r.charger_profile for r in runs] == ["DEFAULT", "Raw"]
    default, raw = runs
    assert default.run_id == "*default"
    assert default.attribute_profiles is None
    assert default.altered_fields == ["*req.RunID"]
    assert default.event.event == {"Account": "1001", "Destination": "1002",
                                   "RequestType": "*prepaid", "RunID": "*default"}
    assert raw.run_id == "*raw"
    assert raw.attribute_profiles == ["*constant:*req.RequestType:*none"]
    assert raw.altered_fields == ["*req.RunID", "*req.RequestType"]
    assert raw.event.event == {"Account": "1001", "Destination": "1002",
                               "RequestType": "*none", "RunID": "*raw"}
    assert raw.event.tenant == ORG and raw.event.id == "e1"
    assert event.event == {"Account": "1001", "Destination": "1002", "RequestType": "*prepaid"}
    d = raw.to_dict()
    assert d["ChargerSProfile"] == "Raw"
    assert d["AttributeSProfiles"] == ["*constant:*req.RequestType:*none"]
    assert default.to_dict()["AttributeSProfiles"] is None


def test_get_chargers_for_event(plan):
    eng = ChargerEngine.from_rows(plan)
    got = eng.get_chargers_for_event(ev(Account="1001"))
    assert [p.id for p in got] == ["DEFAULT", "Raw"]
    assert got[1].to_dict() == {
        "Tenant": ORG, "ID": "Raw", "FilterIDs": [], "ActivationInterval": None,
        "RunID": "*raw", "AttributeIDs": ["*constant:*req.RequestType:*none"],
        "Weight": got[1].weight,
    }
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        eng.get_chargers_for_event(CGREvent(tenant="other.org", event={"Account": "1001"}))


def test_cgrates_charger1_example(plan, attrs):
    # apier/v1/chargers_it_test.go: Charger1 with ATTR_1001_SIMPLEAUTH
    rows = dict(plan)
    rows["Chargers"] = chargers(
        f"{ORG},Charger1,*string:~*req.Account:1001,,*default,ATTR_1001_SIMPLEAUTH,20")
    eng = ChargerEngine.from_rows(rows)
    runs = eng.process_event(ev(Account="1001"), attrs.process_event)
    assert len(runs) == 1
    r = runs[0]
    assert r.to_dict()["ChargerSProfile"] == "Charger1"
    assert r.attribute_profiles == ["ATTR_1001_SIMPLEAUTH"]
    assert r.altered_fields == ["*req.RunID", "*req.Password"]
    assert r.event.event == {"Account": "1001", "Password": "CGRateS.org", "RunID": "*default"}
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        eng.process_event(ev(Account="1002"), attrs.process_event)


def test_weights_order_runs_and_context_passed():
    calls = []

    class Reply:
        def __init__(self, event):
            self.matched_profiles = ["X"]
            self.altered_fields = []
            self.event = event

    def fake_attributes(event, *, context, attribute_ids):
        calls.append((event.event["RunID"], context, attribute_ids))
        return Reply(event)

    rows = {"Chargers": chargers(
        f"{ORG},LOW,,,*low,,5",
        f"{ORG},HIGH,,,*high,A1;A2,10",
    )}
    eng = ChargerEngine.from_rows(rows)
    runs = eng.process_event(ev(Context="*custom"), fake_attributes)
    assert [r.run_id for r in runs] == ["*high", "*low"]
    assert calls == [("*high", "*custom", ["A1", "A2"]), ("*low", "*custom", None)]
    # no altered fields: the run keeps its own event, but matched profiles are reported
    assert runs[0].attribute_profiles == ["X"]
    assert runs[0].altered_fields == ["*req.RunID"]
    calls.clear()
    eng.process_event(ev(), fake_attributes)
    assert calls[0][1] == "*chargers"


def test_attributes_not_found_is_ignored_other_errors_abort(attrs):
    rows = {"Chargers": chargers(f"{ORG},C,,,*default,,0")}
    eng = ChargerEngine.from_rows(rows)
    # empty AttributeIDs and nothing in *chargers: v0.10 fails, we treat it as "no attributes"
    runs = eng.process_event(ev(Account="1001"), attrs.process_event)
    assert runs[0].attribute_profiles is None
    assert runs[0].event.event == {"Account": "1001", "RunID": "*default"}

    def broken(event, **kw):
        raise CGRError("SERVER_ERROR", "boom")

    with pytest.raises(CGRError) as err:
        eng.process_event(ev(), broken)
    assert err.value.word == "SERVER_ERROR"

    def crashing(event, **kw):
        raise RuntimeError("connection lost")

    with pytest.raises(CGRError, match="SERVER_ERROR.*connection lost"):
        eng.process_event(ev(), crashing)


async def test_async_variant(plan, attrs):
    eng = ChargerEngine.from_rows(plan)

    async def remote(event, **kw):
        return attrs.process_event(event, **kw)

    runs = await eng.process_event_async(ev(Account="1001"), remote)
    assert [r.event.event["RunID"] for r in runs] == ["*default", "*raw"]
    assert runs[1].event.event["RequestType"] == "*none"


def test_filters_and_missing_event(plan, attrs):
    rows = dict(plan)
    rows["Chargers"] = chargers(f"{ORG},ONLY1001,FLTR_ACNT_1001,,*default,*none,0")
    eng = ChargerEngine.from_rows(rows)
    assert len(eng.process_event(ev(Account="1001"), attrs.process_event)) == 1
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        eng.process_event(ev(Account="1002"), attrs.process_event)
    with pytest.raises(CGRError, match=r"MANDATORY_IE_MISSING: \[Event\]"):
        eng.process_event(None, attrs.process_event)


def test_bad_rows():
    with pytest.raises(ProfileDataError, match="RunID is mandatory"):
        profiles_from_rows(chargers(f"{ORG},C,,,,*none,0"))
    with pytest.raises(ProfileDataError, match=r"Chargers row 1 \(cgrates.org:C\): Weight"):
        profiles_from_rows(chargers(f"{ORG},C,,,*default,*none,x"))


@pytest.mark.parametrize("attr_ids", [
    "*constant:*req.RequestType:*none",
    "*constant:*req.Extra.Deep:a:b:c",  # value with colons, nested path
    "*constant:*req.Subject:*remove",
    "*constant:*req.Subject:~*req.Account",  # dynamic parts: *constant ignores them
    "*constant:*req.A:1;*constant:*req.B:2",  # two inline profiles: the lower ID is applied
    "*constant:*cgrep.X:1",  # a root other than *req: listed as altered, no effect
])
def test_inline_constant_attributes_answer_as_attributes_would_without_asking(plan, attrs,
                                                                              attr_ids):
    rows = {**plan, "Chargers": chargers(f"{ORG},C1,,,*default,{attr_ids},0")}
    asked = []

    def attributes(event, **kw):
        asked.append(kw)
        return attrs.process_event(event, **kw)

    event = ev(Account="1001", Subject="1001", RequestType="*prepaid")
    [run] = ChargerEngine.from_rows(rows).process_event(event, attributes)
    assert asked == []
    expected = attrs.process_event(CGREvent(ORG, "e1", event.time, {**event.event, "RunID": "*default"}),
                                   context="*chargers", attribute_ids=attr_ids.split(";"))
    assert run.attribute_profiles == expected.matched_profiles
    assert run.altered_fields == ["*req.RunID", *expected.altered_fields]
    assert run.event.event == expected.event.event


def test_a_charger_naming_an_attributes_profile_still_asks_attributes(plan, attrs):
    rows = {**plan, "Chargers": chargers(
        f"{ORG},C1,,,*default,*constant:*req.A:1;ATTR_1001_SIMPLEAUTH,0")}
    asked = []

    def attributes(event, **kw):
        asked.append(kw["attribute_ids"])
        return attrs.process_event(event, **kw)

    ChargerEngine.from_rows(rows).process_event(ev(Account="1001"), attributes)
    assert asked == [["*constant:*req.A:1", "ATTR_1001_SIMPLEAUTH"]]
