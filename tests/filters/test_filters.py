"""FilterS: every v0.10 filter type and its negation, inline filters, Pass, errors (docs/profiles.md)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.event import CGREvent
from cgrpy.filters import FilterError, FilterS, Timing, parse_inline
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS

NOW = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
TENANT = "cgrates.org"


@pytest.fixture(scope="module")
def fs() -> FilterS:
    return FilterS.from_tariffplan(read_folder(TARIFFPLANS / "tutorial"))


def ev(**fields) -> CGREvent:
    return CGREvent(tenant=TENANT, event=dict(fields))


def passes(fs: FilterS, flt: str, event: CGREvent) -> bool:
    return fs.passes(TENANT, [flt], event, now=NOW)


# (filter, event fields, expected); the "*not" form of each row must give the opposite.
TYPE_CASES = [
    ("*string:~*req.Account:1001", {"Account": "1001"}, True),
    ("*string:~*req.Account:1001", {"Account": 1001}, True),  # compared as text
    ("*string:~*req.Account:1001", {"Account": "1002"}, False),
    ("*string:~*req.Account:1001", {}, False),
    ("*string:~*req.Account:~*req.Subject", {"Account": "1", "Subject": "1"}, True),
    ("*string:~*req.Account:~*req.Subject", {"Account": "1"}, False),  # dynamic miss skipped
    ("*string:~*req.Account:~Account", {"Account": "~Account"}, False),  # unknown root
    ("*prefix:~*req.Destination:10", {"Destination": "1002"}, True),
    ("*prefix:~*req.Destination:10", {"Destination": "2002"}, False),
    ("*prefix:~*req.Destination:10", {}, False),
    ("*suffix:~*req.Destination:02", {"Destination": "1002"}, True),
    ("*suffix:~*req.Destination:02", {"Destination": "1003"}, False),
    ("*empty:~*req.Field:", {}, True),
    ("*empty:~*req.Field:", {"Field": None}, True),
    ("*empty:~*req.Field:", {"Field": ""}, True),
    ("*empty:~*req.Field:", {"Field": []}, True),
    ("*empty:~*req.Field:", {"Field": {}}, True),
    ("*empty:~*req.Field:", {"Field": 0}, False),
    ("*empty:~*req.Field:", {"Field": False}, False),
    ("*empty:~*req.Field:", {"Field": "x"}, False),
    ("*exists:~*req.Supplier:", {"Supplier": ""}, True),
    ("*exists:~*req.Supplier:", {"Supplier": None}, True),
    ("*exists:~*req.Supplier:", {}, False),
    ("*destinations:~*req.Destination:DST_FS", {"Destination": "1002"}, True),
    ("*destinations:~*req.Destination:DST_FS", {"Destination": "2002"}, False),
    ("*destinations:~*req.Destination:DST_1003", {"Destination": "1003"}, True),
    ("*destinations:~*req.Destination:DST_1003", {}, False),
    ("*rsr::~*req.8(~^004)", {"8": "0045664"}, True),
    ("*rsr::~*req.8(~^004)", {"8": "00545664"}, False),
    ("*rsr::~*req.MaxUsage{*duration_nanoseconds}(>0)", {"MaxUsage": 123}, True),
    ("*rsr::~*req.MaxUsage{*duration_nanoseconds}(>0)", {"MaxUsage": 0}, False),
    ("*rsr::~*req.MaxUsage{*duration_nanoseconds}(>0)", {"MaxUsage": -1}, False),
    ("*rsr::~*req.Category(^$)", {}, True),
    ("*rsr::~*req.Category(^$)", {"Category": "call"}, False),
    ("*rsr::~Tenant(cgrates)", {"Tenant": "cgrates.org"}, False),
    ("*gt:~*req.Usage:10", {"Usage": "20s"}, True),
    ("*gt:~*req.Usage:1m", {"Usage": "20s"}, False),
    ("*gte:~*req.Usage:10", {"Usage": 10}, True),
    ("*gte:~*req.Cost:10.5", {"Cost": Decimal("10.4")}, False),
    ("*lt:~*req.ASR:40.0", {"ASR": Decimal("39.9")}, True),
    ("*lt:~*req.ASR:40.0", {"ASR": "40"}, False),
    ("*lte:~*req.ASR:40.0", {"ASR": "40"}, True),
    ("*lte:~*req.ASR:40.0", {"ASR": 41}, False),
    ("*gt:~*req.Usage:10", {}, False),
    ("*eq:~*req.Weight:40", {"Weight": "40.0"}, True),
    ("*eq:~*req.Weight:40", {"Weight": 41}, False),
    ("*eq:~*req.Name:abc", {"Name": "abc"}, True),
    ("*eq:~*req.Name:abc", {}, False),
]


@pytest.mark.parametrize(("flt", "fields", "expected"), TYPE_CASES)
def test_type_and_negation(fs, flt, fields, expected):
    assert passes(fs, flt, ev(**fields)) is expected
    ftype, rest = flt.split(":", 1)
    negated = ("*noteq" if ftype == "*eq" else "*not" + ftype[1:]) + ":" + rest
    if ftype in ("*gt", "*gte", "*lt", "*lte"):
        return  # v0.10 has no *notgt family
    assert passes(fs, negated, ev(**fields)) is (not expected)


@pytest.mark.parametrize("ni", ["*nistring", "*niprefix", "*nisuffix", "*niexists"])
def test_non_indexed_variants_evaluate_like_their_base(fs, ni):
    values = {"*nistring": "1002", "*niprefix": "10", "*nisuffix": "02", "*niexists": ""}
    flt = f"{ni}:~*req.Destination:{values[ni]}"
    assert passes(fs, flt, ev(Destination="1002")) is True
    assert passes(fs, flt, ev(Other="x")) is False


def test_or_across_values_and_and_across_rules_and_filters(fs):
    assert passes(fs, "*string:~*req.Account:1001;1002", ev(Account="1002"))
    # FLTR_ACNT_1001_1002: Account in {1001,1002} AND RunID=*default AND Destination in {...}
    full = ev(Account="1002", RunID="*default", Destination="1001")
    assert fs.passes(TENANT, ["FLTR_ACNT_1001_1002"], full, now=NOW)
    assert not fs.passes(TENANT, ["FLTR_ACNT_1001_1002"],
                         ev(Account="1002", Destination="1001"), now=NOW)
    assert not fs.passes(TENANT, ["FLTR_ACNT_1001_1002"],
                         ev(Account="1003", RunID="*default", Destination="1001"), now=NOW)
    # FLTR_DST_FS: Account 1001 AND Destination in DST_FS (prefix 10)
    assert fs.passes(TENANT, ["FLTR_DST_FS"], ev(Account="1001", Destination="1002"), now=NOW)
    assert not fs.passes(TENANT, ["FLTR_DST_FS"], ev(Account="1001", Destination="2002"), now=NOW)
    # two filter IDs: AND
    assert fs.passes(TENANT, ["FLTR_ACNT_1001", "*prefix:~*req.Destination:10"],
                     ev(Account="1001", Destination="1002"), now=NOW)
    assert not fs.passes(TENANT, ["FLTR_ACNT_1001", "*prefix:~*req.Destination:20"],
                         ev(Account="1001", Destination="1002"), now=NOW)


def test_empty_filter_list_passes(fs):
    assert fs.passes(TENANT, [], ev()) is True


def test_rsr_values_are_anded(fs):
    flt = "*rsr::~*req.Subject(~^1.*1$);~*req.Destination(1002)"
    f = FilterS.from_rows([{"Tenant": TENANT, "ID": "R", "Type": "*rsr", "Element": "",
                            "Values": "~*req.Subject(~^1.*1$);~*req.Destination(1002)",
                            "ActivationInterval": ""}])
    assert f.passes(TENANT, ["R"], ev(Subject="1001", Destination="1002"))
    assert not f.passes(TENANT, ["R"], ev(Subject="1001", Destination="1003"))
    assert not f.passes(TENANT, ["R"], ev(Subject="1002", Destination="1002"))
    # inline form of the same rule cannot carry two values through a CSV ';' list, but can here
    assert parse_inline(flt).rules[0].values == ("~*req.Subject(~^1.*1$)", "~*req.Destination(1002)")


def test_nested_and_indexed_paths(fs):
    e = ev(A={"B": "x", "L": ["p", "q"]})
    assert passes(fs, "*string:~*req.A.B:x", e)
    assert passes(fs, "*string:~*req.A.L[1]:q", e)
    assert not passes(fs, "*string:~*req.A.L[5]:q", e)
    with pytest.raises(FilterError, match="^WRONG_PATH$"):
        passes(fs, "*string:~*req.A.B.C:x", e)


def test_activation_interval_of_filters_uses_wall_clock():
    rows = [
        {"Tenant": TENANT, "ID": "OLD", "Type": "*string", "Element": "~*req.Account",
         "Values": "1001", "ActivationInterval": "2014-07-29T15:00:00Z;2015-01-01T00:00:00Z"},
        {"Tenant": TENANT, "ID": "CUR", "Type": "*string", "Element": "~*req.Account",
         "Values": "1001", "ActivationInterval": "2014-07-29T15:00:00Z"},
    ]
    f = FilterS.from_rows(rows)
    e = ev(Account="1002")  # fails the rule, but OLD is skipped, not evaluated
    assert f.passes(TENANT, ["OLD"], ev(Account="1001"), now=NOW) is False  # all skipped
    assert f.passes(TENANT, ["OLD", "CUR"], ev(Account="1001"), now=NOW) is True
    assert f.passes(TENANT, ["OLD", "CUR"], e, now=NOW) is False
    # inside the interval: evaluated normally; bounds are exclusive
    assert f.passes(TENANT, ["OLD"], ev(Account="1001"),
                    now=datetime(2014, 10, 1, tzinfo=UTC)) is True
    assert f.passes(TENANT, ["OLD"], ev(Account="1001"),
                    now=datetime(2014, 7, 29, 15, 0, tzinfo=UTC)) is False


# --- inline parsing -----------------------------------------------------------------------------


def test_inline_parsing_rules():
    assert parse_inline("*string:~*req.Account:1001;1002").rules[0].values == ("1001", "1002")
    assert parse_inline("*string:~*req.Account:1007:error").rules[0].values == ("1007:error",)
    assert parse_inline("*exists:~*req.Supplier:").rules[0].values == ("",)
    r = parse_inline("*rsr::~*req.Destination(1002)").rules[0]
    assert (r.type, r.element, r.values) == ("*rsr", "", ("~*req.Destination(1002)",))
    assert parse_inline("*string:~*req.Tenant:cgrates.org:1001").rules[0].values == (
        "cgrates.org:1001",)


def test_inline_errors(fs):
    with pytest.raises(FilterError, match=r"^inline parse error for string: \*exists:\*req.S$"):
        passes(fs, "*exists:*req.S", ev())
    with pytest.raises(FilterError,
                       match=r"^invalid RSRFilter start rule in string: <\(10\)>$"):
        passes(fs, "*rsr:~*req.Account:(10)", ev())


# --- errors --------------------------------------------------------------------------------------


def test_errors(fs):
    with pytest.raises(FilterError, match="^NOT_FOUND:FLTR_MISSING$"):
        fs.passes(TENANT, ["FLTR_MISSING"], ev(Account="1001"))
    # stored filters are per tenant
    with pytest.raises(FilterError, match="^NOT_FOUND:FLTR_ACNT_1001$"):
        fs.passes("cgrates.com", ["FLTR_ACNT_1001"], ev(Account="1001"))
    with pytest.raises(FilterError, match="^filter path: Account doesn't have a valid prefix$"):
        passes(fs, "*string:Account:1001", ev(Account="1001"))
    with pytest.raises(FilterError, match=r"^NOT_IMPLEMENTED:\*test$"):
        passes(fs, "*test:~*req.Account:1001", ev(Account="1001"))
    with pytest.raises(FilterError, match=r"^NOT_IMPLEMENTED:\*stats$"):
        passes(fs, "*stats:~*req.Account:1001", ev(Account="1001"))
    with pytest.raises(FilterError, match="incomparable"):
        passes(fs, "*gt:~*req.Usage:10", ev(Usage=""))
    with pytest.raises(FilterError, match="unsupported comparison type"):
        passes(fs, "*gt:~*req.Account:abc", ev(Account="abd"))
    # errors are not inverted by negation
    with pytest.raises(FilterError):
        passes(fs, "*notstring:Account:1001", ev(Account="1001"))


def test_request_prefix_counts_as_req(fs):
    # v0.10 matches the prefix without a dot: "~*request" is accepted but resolves to nothing
    assert passes(fs, "*string:~*request.Account:1001", ev(Account="1001")) is False


def test_comparison_constants_and_dynamic_values(fs):
    assert passes(fs, "*gte:~*req.ExpiryTime:*now", ev(ExpiryTime="2021-01-01T00:00:00Z"))
    assert not passes(fs, "*gte:~*req.ExpiryTime:*now", ev(ExpiryTime="2019-01-01T00:00:00Z"))
    # a dynamic value is not re-parsed: the string "10" vs a number is incomparable
    with pytest.raises(FilterError, match="incomparable"):
        passes(fs, "*gt:~*req.Usage:~*req.Limit", ev(Usage=20, Limit="10"))
    assert passes(fs, "*gt:~*req.Usage:~*req.Limit", ev(Usage=20, Limit=10))
    # converters are not applied to elements: looked up literally, missing -> false
    assert not passes(fs, "*gt:~*req.ASR{*duration_seconds}:1", ev(ASR=5))


def test_timings_not_implemented_without_data_and_evaluated_with_it():
    plain = FilterS()
    with pytest.raises(FilterError, match="^NOT_IMPLEMENTED$"):
        plain.passes(TENANT, ["*timings:~*req.AnswerTime:PEAK"],
                     ev(AnswerTime="2020-01-06T09:00:00Z"))
    timings = {"PEAK": Timing("PEAK", week_days=frozenset({1, 2, 3, 4, 5}), start_time="08:00:00")}
    f = FilterS(timings=timings)
    monday_9 = ev(AnswerTime="2020-01-06T09:00:00Z")
    monday_7 = ev(AnswerTime="2020-01-06T07:00:00Z")
    sunday_9 = ev(AnswerTime="2020-01-05T09:00:00Z")
    assert f.passes(TENANT, ["*timings:~*req.AnswerTime:PEAK"], monday_9)
    assert not f.passes(TENANT, ["*timings:~*req.AnswerTime:PEAK"], monday_7)
    assert not f.passes(TENANT, ["*timings:~*req.AnswerTime:PEAK"], sunday_9)
    assert f.passes(TENANT, ["*nottimings:~*req.AnswerTime:PEAK"], sunday_9)


def test_remote_roots_need_a_connection():
    from cgrpy.filters import Remotes

    f = FilterS(remotes=Remotes(
        stats=lambda tenant, q: {"*tcd": 3_600_000_000_000} if q == "Stats2" else None,
        accounts=lambda tenant, a: {"BalanceMap": {"*monetary": [{"Value": 10}]}},
    ))
    assert f.passes(TENANT, ["*gte:~*stats.Stats2.*tcd:1h"], ev())
    assert not f.passes(TENANT, ["*gte:~*stats.Other.*tcd:1h"], ev())
    assert f.passes(TENANT, ["*gt:~*accounts.1001.BalanceMap.*monetary[0].Value:5"], ev())
    with pytest.raises(FilterError, match="DISCONNECTED"):
        FilterS().passes(TENANT, ["*gte:~*stats.Stats2.*tcd:1h"], ev())


def test_vars_root_for_suppliers(fs):
    assert fs.passes(TENANT, ["*gte:~*vars.*cost:1"], ev(), extra_roots={"*vars": {"*cost": 2}})


def test_from_rows_merges_rows_and_names_bad_rows():
    f = FilterS.from_rows(read_folder(TARIFFPLANS / "tutorial")["Filters"])
    flt = f.get(TENANT, "FLTR_ACNT_1001_1002")
    assert [r.type for r in flt.rules] == ["*string"] * 3
    assert flt.rules[1].values == ("*default",)
    assert flt.activation is not None
    assert flt.activation.activation_time == datetime(2014, 7, 29, 15, tzinfo=UTC)
    with pytest.raises(FilterError, match=r"Filters row 1 \(cgrates.org:X\).*\(10\)"):
        FilterS.from_rows([{"Tenant": TENANT, "ID": "X", "Type": "*rsr", "Element": "",
                            "Values": "(10)", "ActivationInterval": ""}])
