"""Every kind of bad input is rejected with FILE:LINE: column NAME: ... and changes nothing.

Each case copies the tutorial folder into tmp_path and breaks one thing. The database already
holds the good tutorial under the same tpid; a dump of every tp table must be identical after
the rejected load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.tariffplan.loader import load_folder
from cgrpy.tariffplan.validate import validate_folder
from tests.conftest import TARIFFPLANS
from tests.loader.helpers import append_line, copy_plan, dump, set_line


def _line(file: str, n: int, text: str) -> Callable[[Path], None]:
    return lambda d: set_line(d, file, n, text)


def _append(file: str, text: str) -> Callable[[Path], None]:
    return lambda d: append_line(d, file, text)


def _non_utf8(d: Path) -> None:
    path = d / "Attributes.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"CGRateS.org", b"CGRat\xe9S.org")  # Latin-1 e-acute
    path.write_bytes(b"\n".join(lines))


def _empty(d: Path) -> None:
    for p in d.iterdir():
        p.unlink()


def _unknown_file(d: Path) -> None:
    (d / "rates.csv").write_text("#Id\nX\n")


# (case id, how to break the folder, exact expected message)
CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("bad_number", _line("Rates.csv", 3, "RT_10CNT,0,0.05x,60s,1s,60s"),
     'Rates.csv:3: column Rate: not a number (got "0.05x")'),
    ("bad_duration", _line("Rates.csv", 4, "RT_20CNT,0.4,0.2,60 sec,60s,0s"),
     "Rates.csv:4: column RateUnit: not a duration (use e.g. 60s, 1m30s, 500ms, or a bare "
     'number of nanoseconds) (got "60 sec")'),
    ("bad_time", _line("RatingProfiles.csv", 3, "cgrates.org,call,1002,2014-13-45T00:00:00Z,RP_1002,"),
     "RatingProfiles.csv:3: column ActivationTime: not a time (use RFC3339 like "
     '2014-07-29T15:00:00Z, *unlimited, *monthly, +24h) (got "2014-13-45T00:00:00Z")'),
    ("bad_activation_interval",
     _line("Resources.csv", 2, "cgrates.org,ResGroup1,FLTR_RES,yesterday,-1,7,,false,true,10,*none"),
     "Resources.csv:2: column ActivationInterval: not an activation interval (use RFC3339 "
     'start[;end]) (got "yesterday")'),
    ("bad_rounding_method", _line("DestinationRates.csv", 2, "DR_1001_20CNT,DST_1001,RT_20CNT,*upp,4,0,"),
     "DestinationRates.csv:2: column RoundingMethod: unknown rounding method (use one of "
     '*down, *middle, *up) (got "*upp")'),
    ("bad_max_cost_strategy",
     _line("DestinationRates.csv", 4, "DR_1003_MAXCOST_DISC,DST_1003,RT_1CNT_PER_SEC,*up,4,0.12,*drop"),
     "DestinationRates.csv:4: column MaxCostStrategy: unknown MaxCostStrategy (use one of "
     '*disconnect, *free) (got "*drop")'),
    ("bad_boolean", _line("AccountActions.csv", 2, "cgrates.org,1001,AP_PACKAGE_10,,yes,"),
     'AccountActions.csv:2: column AllowNegative: not a boolean (use true or false) (got "yes")'),
    ("bad_integer", _line("DestinationRates.csv", 3, "DR_1002_20CNT,DST_1002,RT_20CNT,*up,four,0,"),
     'DestinationRates.csv:3: column RoundingDecimals: not an integer (got "four")'),
    ("bad_json_filter",
     _line("Actions.csv", 3, "ACT_LOG_WARNING,*log,,{bad,,,,,,,,,,,false,false,10"),
     'Actions.csv:3: column Filter: not valid JSON (got "{bad")'),
    ("bad_inline_filter",
     _line("Stats.csv", 2, "cgrates.org,Stats2,*string:~*req.Account,2014-07-29T15:00:00Z,100,-1,0,*tcc;*tcd,,false,true,30,*none"),
     "Stats.csv:2: column FilterIDs: inline filter '*string:~*req.Account' is not "
     'type:element:values (got "*string:~*req.Account")'),
    ("wrong_column_count", _line("Destinations.csv", 3, "DST_1001,1001,extra"),
     "Destinations.csv:3: expected 2 columns, got 3"),
    ("unterminated_quote", _line("Chargers.csv", 3, 'cgrates.org,Raw,,,*raw,"*constant:*req.RequestType:*none,0'),
     "Chargers.csv:3: bad CSV: unterminated quoted field"),
    ("missing_required_cell", _line("Destinations.csv", 2, "DST_1002,"),
     'Destinations.csv:2: column Prefix: must not be empty (got "")'),
    ("missing_profile_id", _line("Chargers.csv", 2, "cgrates.org,,,,*default,*none,0"),
     'Chargers.csv:2: column ID: must not be empty (got "")'),
    ("dangling_destination", _line("DestinationRates.csv", 3, "DR_1002_20CNT,DST_NOPE,RT_20CNT,*up,4,0,"),
     "DestinationRates.csv:3: column DestinationId: unknown Destinations ID 'DST_NOPE' "
     '(got "DST_NOPE")'),
    ("dangling_rate", _line("DestinationRates.csv", 2, "DR_1001_20CNT,DST_1001,RT_NOPE,*up,4,0,"),
     "DestinationRates.csv:2: column RatesTag: unknown Rates ID 'RT_NOPE' (got \"RT_NOPE\")"),
    ("dangling_destination_rate", _line("RatingPlans.csv", 7, "RP_SMS,DR_NOPE,*any,0"),
     "RatingPlans.csv:7: column DestinationRatesId: unknown DestinationRates ID 'DR_NOPE' "
     '(got "DR_NOPE")'),
    ("dangling_timing", _line("RatingPlans.csv", 2, "RP_1001,DR_1002_20CNT,PEAK,10"),
     "RatingPlans.csv:2: column TimingTag: unknown Timings ID 'PEAK' (got \"PEAK\")"),
    ("dangling_rating_plan", _line("RatingProfiles.csv", 5, "cgrates.org,sms,*any,2014-01-14T00:00:00Z,RP_NOPE,"),
     "RatingProfiles.csv:5: column RatingPlanId: unknown RatingPlans ID 'RP_NOPE' "
     '(got "RP_NOPE")'),
    ("dangling_actions", _line("ActionPlans.csv", 2, "AP_PACKAGE_10,ACT_NOPE,*asap,10"),
     "ActionPlans.csv:2: column ActionsId: unknown Actions ID 'ACT_NOPE' (got \"ACT_NOPE\")"),
    ("dangling_action_plan", _line("AccountActions.csv", 4, "cgrates.org,1003,AP_NOPE,,,"),
     "AccountActions.csv:4: column ActionPlanId: unknown ActionPlans ID 'AP_NOPE' "
     '(got "AP_NOPE")'),
    ("dangling_filter",
     _line("Stats.csv", 3, "cgrates.org,Stats2_1,FLTR_NOPE,2014-07-29T15:00:00Z,100,-1,0,*tcc;*tcd,,false,true,30,*none"),
     "Stats.csv:3: column FilterIDs: unknown Filters ID 'FLTR_NOPE' (got \"FLTR_NOPE\")"),
    ("duplicate_account", _append("AccountActions.csv", "cgrates.org,1002,AP_PACKAGE_10,,,"),
     "AccountActions.csv:5: column Account: duplicate account cgrates.org:1002 (first on "
     'line 3) (got "1002")'),
    ("duplicate_destination_prefix", _append("Destinations.csv", "DST_FS,10"),
     "Destinations.csv:6: column Prefix: duplicate prefix in destination 'DST_FS' (got \"10\")"),
    ("non_utf8", _non_utf8,
     "Attributes.csv:3: file is not UTF-8 (got b'cgrates.org,ATTR_1002_SIMPLEAUTH,simpleauth,"
     "*string:~*req.Ac')"),
    ("empty_folder", _empty, "{folder}: no tariff-plan CSV file found"),
    ("unknown_file_name", _unknown_file,
     "rates.csv: unknown tariff-plan file name (file names are case-sensitive, e.g. Rates.csv)"),
    ("unsane_rate_gis", _line("Rates.csv", 3, "RT_10CNT,0,0.05,60s,1s,90s"),
     "Rates.csv:3: column GroupIntervalStart: rate 'RT_10CNT': start is not a multiple of "
     'the previous slot\'s increment 1m0s (got "1m30s")'),
    ("unsane_rate_same_start", _line("Rates.csv", 5, "RT_20CNT,0,0.1,60s,1s,0s"),
     "Rates.csv:5: column GroupIntervalStart: rate 'RT_20CNT' has two slots starting at the "
     'same offset (got "0s")'),
    ("unsane_rate_zero_increment", _line("Rates.csv", 8, "RT_1CNT,0,0.01,60s,0s,0s"),
     'Rates.csv:8: column RateIncrement: must be greater than zero (got "0s")'),
    ("bad_timing_list",
     lambda d: (d / "Timings.csv").write_text("#Tag,Years,Months,MonthDays,WeekDays,Time\n"
                                             "WEEKEND,*any,*any,*any,6;x,00:00:00\n"),
     "Timings.csv:2: column WeekDays: not *any or a ;-separated list of integers (got \"6;x\")"),
]


@pytest.fixture
def engine(db_url):
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    good = load_folder(TARIFFPLANS / "tutorial", engine=eng, tpid="cgrpy")
    assert good.ok
    yield eng
    eng.dispose()


@pytest.mark.parametrize(("breaker", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_rejected_and_db_unchanged(engine, tmp_path, breaker, expected):
    folder = copy_plan(tmp_path)
    breaker(folder)
    before = dump(engine)
    result = load_folder(folder, engine=engine, tpid="cgrpy")
    assert not result.ok and not result.written
    messages = [str(p) for p in result.problems]
    assert expected.replace("{folder}", str(folder)) in messages, messages
    assert dump(engine) == before


def test_all_problems_collected(tmp_path):
    folder = copy_plan(tmp_path)
    set_line(folder, "Rates.csv", 3, "RT_10CNT,0,x,60s,1s,60s")
    set_line(folder, "Destinations.csv", 2, "DST_1002,")
    set_line(folder, "AccountActions.csv", 2, "cgrates.org,1001,AP_NOPE,,maybe,")
    result = validate_folder(folder)
    assert [str(p) for p in result.problems] == [
        'Destinations.csv:2: column Prefix: must not be empty (got "")',
        'Rates.csv:3: column Rate: not a number (got "x")',
        'AccountActions.csv:2: column AllowNegative: not a boolean (use true or false) (got "maybe")',
    ]


def test_problem_limit(tmp_path):
    folder = copy_plan(tmp_path)
    rows = "\n".join(f"DST_{i}," for i in range(150))
    (folder / "Destinations.csv").write_text("#Id,Prefix\n" + rows + "\n")
    result = validate_folder(folder, limit=100)
    assert len(result.problems) == 100 and result.truncated
    assert result.lines()[-1] == "... stopped after 100 problems"
