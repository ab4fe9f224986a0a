"""AttributeS logic: the worked examples on the tutorial plan, types, runs, errors."""

from datetime import UTC, datetime

import pytest

from cgrpy.attributes.engine import (
    AttributeEngine,
    ProfileDataError,
    attributes_digest,
    profiles_from_rows,
)
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS

ORG = "cgrates.org"
HEADER = ("Tenant", "ID", "Contexts", "FilterIDs", "ActivationInterval", "AttributeFilterIDs",
          "Path", "Type", "Value", "Blocker", "Weight")


@pytest.fixture(scope="module")
def tutorial() -> AttributeEngine:
    return AttributeEngine.from_rows(read_folder(TARIFFPLANS / "tutorial"))


def rows(*lines: str) -> dict:
    """Attributes.csv lines (no header) -> TariffPlanRows."""
    return {"Attributes": [dict(zip(HEADER, line.split(","), strict=True)) for line in lines]}


def ev(tenant=ORG, time=None, **fields) -> CGREvent:
    return CGREvent(tenant=tenant, id="ev1", time=time, event=dict(fields))


# --- worked examples -----------------------------------------------------------------------------


def test_account_1001_sessions(tutorial):
    r = tutorial.process_event(ev(Account="1001", Destination="1002"), context="*sessions")
    assert r.matched_profiles == ["ATTR_1001_SESSIONAUTH"]
    assert r.altered_fields == ["*req.Password", "*req.RequestType", "*req.PaypalAccount",
                                "*req.LCRProfile"]
    assert r.event.event == {"Account": "1001", "Destination": "1002", "Password": "CGRateS.org",
                             "RequestType": "*prepaid", "PaypalAccount": "cgrates@paypal.com",
                             "LCRProfile": "premium_cli"}
    assert r.event.tenant == ORG
    assert r.digest() == ("Password:CGRateS.org,RequestType:*prepaid,"
                          "PaypalAccount:cgrates@paypal.com,LCRProfile:premium_cli")


def test_input_event_is_not_modified(tutorial):
    e = ev(Account="1001")
    tutorial.process_event(e, context="*sessions")
    assert e.event == {"Account": "1001"}


def test_account_1001_simpleauth(tutorial):
    r = tutorial.process_event(ev(Account="1001", Destination="1002"), context="simpleauth")
    assert r.matched_profiles == ["ATTR_1001_SIMPLEAUTH"]
    assert r.altered_fields == ["*req.Password"]
    assert r.event.event["Password"] == "CGRateS.org"


def test_account_1001_cdrs_falls_back_to_any_and_finds_nothing(tutorial):
    with pytest.raises(CGRError) as err:
        tutorial.process_event(ev(Account="1001", Destination="1002"), context="*cdrs")
    assert err.value.message == "NOT_FOUND"


def test_tenant_alias_two_runs_cdrs(tutorial):
    r = tutorial.process_event(ev(tenant="cgrates.com", SubscriberId="1006"), context="*cdrs",
                               process_runs=2)
    assert r.matched_profiles == ["ATTR_TNT_ALIAS", "ATTR_ACC_ALIAS"]
    assert r.altered_fields == ["*req.Account", "*req.RequestType", "*tenant"]
    assert r.event.tenant == ORG
    assert r.event.event == {"SubscriberId": "1006", "Account": "1001", "RequestType": "*prepaid"}


def test_tenant_alias_two_runs_sessions(tutorial):
    r = tutorial.process_event(ev(tenant="cgrates.com", SubscriberId="1006"),
                               context="*sessions", process_runs=2)
    assert r.matched_profiles == ["ATTR_TNT_ALIAS", "ATTR_1001_SESSIONAUTH"]
    assert r.altered_fields == ["*req.Account", "*req.RequestType", "*tenant", "*req.Password",
                                "*req.PaypalAccount", "*req.LCRProfile"]
    assert r.event.event["RequestType"] == "*prepaid"
    assert r.event.event["Password"] == "CGRateS.org"


def test_one_run_by_default(tutorial):
    r = tutorial.process_event(ev(tenant="cgrates.com", SubscriberId="1006"), context="*cdrs")
    assert r.matched_profiles == ["ATTR_TNT_ALIAS"]
    assert r.event.tenant == ORG


def test_path_without_req_has_no_effect_but_is_listed(tutorial):
    r = tutorial.process_event(ev(Account="1002"), context="*sessions")
    assert r.matched_profiles == ["ATTR_1002_SESSIONAUTH"]
    assert r.altered_fields[-1] == "ResourceAllocation"
    assert "ResourceAllocation" not in r.event.event
    assert r.event.event["RequestType"] == "*postpaid"


def test_get_attribute_for_event(tutorial):
    p = tutorial.get_attribute_for_event(ev(Account="1001"), context="*sessions")
    assert p.id == "ATTR_1001_SESSIONAUTH"
    d = p.to_dict()
    assert d["Contexts"] == ["*sessions"]
    assert d["FilterIDs"] == ["*string:~*req.Account:1001"]
    assert [a["Path"] for a in d["Attributes"]] == ["*req.Password", "*req.RequestType",
                                                    "*req.PaypalAccount", "*req.LCRProfile"]
    assert d["Attributes"][0]["Value"] == [{"Rules": "CGRateS.org", "AllFiltersMatch": False}]
    assert str(d["Weight"]) == "10"
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        tutorial.get_attribute_for_event(ev(Account="9999"), context="*sessions")


# --- substitution types ---------------------------------------------------------------------------


def one(path, type_, value, **fields):
    eng = AttributeEngine.from_rows(rows(f"{ORG},A,*any,,,,{path},{type_},{value},false,0"))
    return eng.process_event(ev(**fields), context="*any")


def test_constant_variable_composed():
    assert one("*req.F", "*constant", "x;~*req.G", G="g").event.event["F"] == "x"
    assert one("*req.F", "*variable", "~*req.G;_;~*req.H", G="g", H=5).event.event["F"] == "g_5"
    assert one("*req.F", "", "~*req.G", G="g").event.event["F"] == "g"
    assert one("*req.F", "*composed", "_x", F="a").event.event["F"] == "a_x"
    assert one("*req.F", "*composed", "_x").event.event["F"] == "_x"


def test_variable_with_search_replace():
    r = one("*req.Account", "*variable", r"~*req.Account:s/^(\d+)$/+$1/", Account="1001")
    assert r.event.event["Account"] == "+1001"


def test_usage_difference_sum_value_exponent_sipcid():
    r = one("*req.U", "*usage_difference", "~*req.End;~*req.Start",
            End="2020-01-01T00:00:10Z", Start="2020-01-01T00:00:00Z")
    assert r.event.event["U"] == "10s"
    assert one("*req.S", "*sum", "10;~*req.A;~*req.B", A=20, B="20").event.event["S"] == "50"
    assert one("*req.S", "*sum", "1.5;~*req.A", A="2").event.event["S"] == "3.5"
    assert one("*req.S", "*sum", "1m;~*req.A", A="30s").event.event["S"] == "1m30s"
    assert one("*req.E", "*value_exponent", "~*req.M;~*req.X", M="2", X="3").event.event["E"] == (
        "2000")
    assert one("*req.E", "*value_exponent", "1.234567;0").event.event["E"] == "1.23457"
    r = one("*req.C", "*sipcid", "~*req.cid;~*req.to;~*req.from", cid="12345", to="1002",
            **{"from": "1001"})
    assert r.event.event["C"] == "12345;1001;1002"


def test_substitution_errors():
    with pytest.raises(CGRError, match="SERVER_ERROR.*invalid arguments"):
        one("*req.U", "*usage_difference", "~*req.End", End="2020-01-01T00:00:10Z")
    with pytest.raises(CGRError, match="SERVER_ERROR.*invalid arguments"):
        one("*req.S", "*sum", "10")
    # missing field read by a dynamic value in run 1 -> NOT_FOUND (indistinguishable, as v0.10)
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        one("*req.F", "*variable", "~*req.Missing")


def test_remove_and_tenant_composed():
    r = one("*req.F", "*constant", "*remove", F="a", G="b")
    assert r.event.event == {"G": "b"}
    assert r.altered_fields == ["*req.F"]
    r = one("*tenant", "*composed", ".test")
    assert r.event.tenant == "cgrates.org.test"


def test_nested_path_write():
    r = one("*req.A.B", "*constant", "v", A={"C": 1})
    assert r.event.event["A"] == {"C": 1, "B": "v"}


def test_attribute_filters_see_the_modified_event():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},A,*any,,,,*req.F,*constant,one,false,0",
        f"{ORG},A,,,,*string:~*req.F:one,*req.G,*constant,two,,",
        f"{ORG},A,,,,*string:~*req.F:zzz,*req.H,*constant,three,,",
    ))
    r = eng.process_event(ev(), context="*any")
    assert r.event.event == {"F": "one", "G": "two"}
    assert r.altered_fields == ["*req.F", "*req.G"]


# --- selection, weights, blockers, process runs ---------------------------------------------------


def test_heaviest_profile_wins_and_ties_go_to_lowest_id():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},B,*any,*string:~*req.Account:1,,,*req.F,*constant,B,false,10",
        f"{ORG},A,*any,*string:~*req.Account:1,,,*req.F,*constant,A,false,10",
        f"{ORG},C,*any,*string:~*req.Account:1,,,*req.F,*constant,C,false,5",
    ))
    r = eng.process_event(ev(Account="1"), context="*any")
    assert r.matched_profiles == ["A"]
    r = eng.process_event(ev(Account="1"), context="*any", process_runs=3)
    assert r.matched_profiles == ["A"]  # same profile again stops the runs


def test_chained_runs_and_blocker():
    lines = [
        f"{ORG},R1,*any,*string:~*req.Step:1,,,*req.Step,*constant,2,false,30",
        f"{ORG},R2,*any,*string:~*req.Step:2,,,*req.Step,*constant,3,true,20",
        f"{ORG},R3,*any,*string:~*req.Step:3,,,*req.Step,*constant,4,false,10",
    ]
    eng = AttributeEngine.from_rows(rows(*lines))
    r = eng.process_event(ev(Step="1"), context="*any", process_runs=5)
    assert r.matched_profiles == ["R1", "R2"]  # R2 is a blocker
    assert r.event.event["Step"] == "3"
    assert r.altered_fields == ["*req.Step"]
    # a later run finding nothing ends processing without error
    r = eng.process_event(ev(Step="3"), context="*any", process_runs=5)
    assert r.matched_profiles == ["R3"]
    assert r.event.event["Step"] == "4"
    # blocker on the first run stops too
    r = eng.process_event(ev(Step="2"), context="*any", process_runs=5)
    assert r.matched_profiles == ["R2"]


def test_repeated_composed_profile_is_reapplied_before_stopping():
    # v0.10 quirk kept: P matched again in run 2 is applied before the loop stops
    eng = AttributeEngine.from_rows(rows(f"{ORG},P,*any,,,,*req.F,*composed,_x,false,0"))
    r = eng.process_event(ev(F="a"), context="*any", process_runs=2)
    assert r.matched_profiles == ["P"]
    assert r.event.event["F"] == "a_x_x"


def test_explicit_attribute_ids_and_inline():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},A,ctx1,*string:~*req.Account:1,,,*req.F,*constant,A,false,10",
        f"{ORG},B,ctx1,*string:~*req.Account:1,,,*req.F,*constant,B,false,20",
        f"{ORG},NOIDX,ctx1,*gt:~*req.Usage:1,,,*req.F,*constant,NOIDX,false,0",
    ))
    e = ev(Account="1", Usage=5)
    assert eng.process_event(e, context="other", attribute_ids=["A", "B"]).matched_profiles == ["B"]
    assert eng.process_event(e, context="ctx1", attribute_ids=["NOIDX"]).matched_profiles == [
        "NOIDX"]
    r = eng.process_event(e, context="x", attribute_ids=["*constant:*req.RequestType:*none"])
    assert r.matched_profiles == ["*constant:*req.RequestType:*none"]
    assert r.altered_fields == ["*req.RequestType"]
    assert r.event.event["RequestType"] == "*none"


def test_activation_interval_uses_event_time():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},OLD,*any,,2014-01-01T00:00:00Z;2015-01-01T00:00:00Z,,*req.F,*constant,x,false,0"))
    with pytest.raises(CGRError, match="^NOT_FOUND$"):
        eng.process_event(ev(time=datetime(2016, 1, 1, tzinfo=UTC)), context="*any")
    assert eng.process_event(ev(time=datetime(2014, 6, 1, tzinfo=UTC)),
                             context="*any").matched_profiles == ["OLD"]
    # no event Time: interval ignored (v0.10 quirk kept)
    assert eng.process_event(ev(), context="*any").matched_profiles == ["OLD"]


def test_attributes_marker():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},A,*any,*string:~*req.Account:1,,,*req.Category,*constant,call,false,0"))
    with pytest.raises(CGRError) as err:
        eng.process_event(ev(Account="2", Category="*attributes"), context="*any")
    assert err.value.message == "MANDATORY_IE_MISSING: [Category]"
    r = eng.process_event(ev(Account="1", Category="*attributes"), context="*any")
    assert r.event.event["Category"] == "call"
    with pytest.raises(CGRError, match=r"MANDATORY_IE_MISSING: \[Subject\]"):
        eng.process_event(ev(Account="1", Subject="*attributes"), context="*any")


def test_filter_errors_become_server_error():
    eng = AttributeEngine.from_rows(rows(
        f"{ORG},A,*any,*string:~*req.Account:1;*gt:~*req.U:1,,,*req.F,*constant,x,false,0"))
    with pytest.raises(CGRError) as err:
        eng.process_event(ev(Account="1", U=""), context="*any")
    assert err.value.word == "SERVER_ERROR"
    assert "incomparable" in err.value.message


def test_missing_event():
    eng = AttributeEngine.from_rows(rows(f"{ORG},A,*any,,,,*req.F,*constant,x,false,0"))
    with pytest.raises(CGRError, match=r"MANDATORY_IE_MISSING: \[CGREvent\]"):
        eng.process_event(None, context="*any")


def test_digest_quirk_leading_comma():
    e = ev(Subject="1001")
    assert attributes_digest(["*req.Account", "*req.Subject"], e) == ",Subject:1001"
    e = ev(Account="1001", Subject="1001")
    assert attributes_digest(["*req.Account", "*req.Subject"], e) == "Account:1001,Subject:1001"
    assert attributes_digest([], e) == ""


def test_bad_rows_are_named():
    with pytest.raises(ProfileDataError, match=r"Attributes row 1 \(cgrates.org:A\): Weight"):
        profiles_from_rows(rows(f"{ORG},A,*any,,,,*req.F,*constant,x,false,heavy")["Attributes"])
    with pytest.raises(ProfileDataError, match=r"Attributes"):
        profiles_from_rows(rows(f"{ORG},A,*any,,,,,,,false,0")["Attributes"])
