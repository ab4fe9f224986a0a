"""RSR mini language (docs/profiles.md)."""

import pytest

from cgrpy.filters import FilterError
from cgrpy.filters.paths import DataProvider
from cgrpy.filters.rsr import RSRFilterNotPassing, compile_rsr, compile_rsr_list, split_rsr_list


def dp(**fields) -> DataProvider:
    return DataProvider({"*req": fields})


def test_constant_and_dynamic():
    assert compile_rsr("CGRateS.org").text_value(dp()) == "CGRateS.org"
    assert compile_rsr("~*req.Account").text_value(dp(Account=1001)) == "1001"
    with pytest.raises(FilterError, match="^NOT_FOUND$"):
        compile_rsr("~*req.Account").text_value(dp())


def test_search_replace_expands_first_match():
    p = compile_rsr(r"~*req.Account:s/^(\d+)$/+$1/")
    assert p.text_value(dp(Account="1001")) == "+1001"
    p = compile_rsr(r"~*req.Destination:s/^\+49(\d+)/0$1/")
    assert p.text_value(dp(Destination="+4915112")) == "015112"
    assert p.text_value(dp(Destination="1002")) == "1002"  # no match: unchanged
    two = compile_rsr(r"~*req.D:s/^00(\d+)/+$1/:s/^\+(\d+)/$1/")
    assert two.text_value(dp(D="0049")) == "49"


def test_converters():
    assert compile_rsr("~*req.U{*duration_seconds}").text_value(dp(U="1m30s")) == "90"
    assert compile_rsr("~*req.U{*duration_nanoseconds}").text_value(dp(U="1s")) == "1000000000"
    assert compile_rsr("~*req.U{*duration}").text_value(dp(U=90_000_000_000)) == "1m30s"
    assert compile_rsr("~*req.C{*multiply:3&*round:2}").text_value(dp(C="0.1111")) == "0.33"
    assert compile_rsr("~*req.C{*divide:4}").text_value(dp(C="1")) == "0.25"
    assert compile_rsr("~*req.IP{*ip2hex}").text_value(dp(IP="192.168.0.1")) == "0xc0a80001"
    with pytest.raises(FilterError, match="unsupported converter"):
        compile_rsr("~*req.C{*bogus}")


@pytest.mark.parametrize(
    ("atom", "value", "ok"),
    [
        ("", "x", True),
        ("~^00", "0045", True),
        ("~^00", "1045", False),
        ("!~^00", "1045", True),
        ("^$", "", True),
        ("^$", "a", False),
        ("^1001$", "1001", True),
        ("^1001$", "10011", False),
        ("^10", "1001", True),
        ("01$", "1001", True),
        ("01$", "1002", False),
        (">=10", "10", True),
        ("<10", "10", False),
        (">5", "1m", True),  # duration vs number: ns
        (">5", "abc", False),  # comparison error -> false
        ("00", "1001", True),  # contains
        ("!00", "1001", False),
    ],
)
def test_filter_atoms(atom, value, ok):
    assert compile_rsr(f"~*req.F({atom})").passes(dp(F=value)) is ok


def test_several_atoms_all_must_pass():
    p = compile_rsr("~*req.F(^10&02$)")
    assert p.passes(dp(F="1002"))
    assert not p.passes(dp(F="1003"))


def test_filter_rejects_in_attribute_value():
    with pytest.raises(RSRFilterNotPassing):
        compile_rsr("~*req.F(^10)").text_value(dp(F="20"))


def test_lists_and_backticks():
    assert split_rsr_list("a;`b;c`;d") == ["a", "b;c", "d"]
    assert [p.rule for p in compile_rsr_list("~*req.A;_;~*req.B")] == ["~*req.A", "_", "~*req.B"]
    assert compile_rsr_list("") == []


def test_malformed():
    with pytest.raises(FilterError, match=r"^invalid RSRFilter start rule in string: <\(10\)>$"):
        compile_rsr("(10)")
