"""Value typing and coercions and comparison semantics (docs/profiles.md)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.filters import FilterError
from cgrpy.filters.compare import (
    ZERO_TIME,
    Duration,
    comparable_field,
    compare,
    parse_time_detect,
    smart_parse,
    to_duration,
    to_float,
)
from cgrpy.iface import iface_as_string


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (1001, "1001"),
        (True, "true"),
        (False, "false"),
        (Decimal("20.0"), "20"),
        (Decimal("0.1574"), "0.1574"),
        (Decimal("1E+21"), "1000000000000000000000"),
        (Duration(90_000_000_000), "1m30s"),
        (Duration(0), "0s"),
        (Duration(120_000_000_000), "2m0s"),
        (datetime(2014, 7, 14, 14, 30, tzinfo=UTC), "2014-07-14T14:30:00Z"),
        (b"abc", "abc"),
        ("x", "x"),
        ({"a": 1}, '{"a":1}'),
    ],
)
def test_to_string(value, text):
    assert iface_as_string(value) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", 10),
        ("-3", -3),
        ("t", True),
        ("FALSE", False),
        ("35.5", Decimal("35.5")),
        ("", ZERO_TIME),
        ("2014-07-14T14:30:00Z", datetime(2014, 7, 14, 14, 30, tzinfo=UTC)),
        ("2014-07-14 14:30:00", datetime(2014, 7, 14, 14, 30, tzinfo=UTC)),
        ("1m50s", Duration(110_000_000_000)),
        ("-1ns", Duration(-1)),
        ("cgrates", "cgrates"),
    ],
)
def test_smart_parse(text, expected):
    got = smart_parse(text)
    assert got == expected
    assert type(got) is type(expected)


def test_smart_parse_now_and_relative():
    now = datetime(2020, 1, 1, tzinfo=UTC)
    assert smart_parse("*now", now) == now
    assert smart_parse("+1h", now) == datetime(2020, 1, 1, 1, tzinfo=UTC)


def test_time_detector_unix_and_errors():
    assert parse_time_detect("1389657600") == datetime(2014, 1, 14, tzinfo=UTC)
    assert parse_time_detect("20140114000000") == datetime(2014, 1, 14, tzinfo=UTC)
    assert parse_time_detect("2014-01-14T02:00:00+02:00") == datetime(2014, 1, 14, tzinfo=UTC)
    with pytest.raises(FilterError, match="Unsupported time format"):
        parse_time_detect("not a time")


def test_to_duration_numbers_are_nanoseconds():
    assert to_duration("60") == 60
    assert to_duration(60) == 60
    assert to_duration(Decimal("1.5")) == 1
    assert to_duration("1m") == 60_000_000_000
    assert to_duration("*unlimited") == -1
    with pytest.raises(FilterError):
        to_duration("abc")


def test_to_float():
    assert to_float("35.5") == Decimal("35.5")
    assert to_float(Duration(5)) == Decimal(5)
    with pytest.raises(FilterError):
        to_float("abc")


def cmp(op, field, const):
    return compare(op, comparable_field(field), smart_parse(const))


def test_duration_vs_number_compares_nanoseconds():
    # 20s = 20_000_000_000 ns > 10
    assert cmp("*gte", "20s", "10") is True
    assert cmp("*gt", Duration(120_000_000_000), "1m50s") is True
    assert cmp("*lt", Duration(120_000_000_000), "1m50s") is False


def test_floats_and_ints_mix():
    assert cmp("*gt", "20.0", "9.0") is True
    assert cmp("*eq", "40", "40.0") is True
    assert cmp("*eq", 40, "40.0") is True
    assert cmp("*lte", Decimal("10.0"), "10") is True
    assert cmp("*lt", Decimal("10.0"), "10") is False


def test_ordering_strings_is_an_error_but_eq_works():
    with pytest.raises(FilterError, match="unsupported comparison type"):
        cmp("*gt", "abc", "abd")
    assert cmp("*eq", "abc", "abc") is True
    with pytest.raises(FilterError, match="unsupported comparison type"):
        cmp("*eq", "true", "true")  # bools


def test_empty_string_is_zero_time_so_incomparable_with_number():
    with pytest.raises(FilterError, match="incomparable"):
        cmp("*gt", "", "10")


def test_times_compare_chronologically():
    now = datetime(2020, 1, 1, tzinfo=UTC)
    assert compare("*gte", comparable_field("2020-06-01T00:00:00Z"), smart_parse("*now", now))
    assert not compare("*gte", comparable_field("2019-06-01T00:00:00Z"), smart_parse("*now", now))
