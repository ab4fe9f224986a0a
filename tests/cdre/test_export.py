"""CDRe file contents, byte for byte: CSV with the *default template, one fixed-width profile,
file naming, atomic write, export log."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.cdre.cdr import CDR
from services.cdre.export import (
    FILE_FWV,
    ExportError,
    ExportProfile,
    FieldTemplate,
    csv_line,
    export_cdrs,
    fit_width,
    format_cost,
)
from services.cdre.store import CdrFilter, CdrStore

CG1 = "c396306b09183a97529185b169af43c5205c3a38"
CG2 = "df7f4be94a1a8ed1c283316517b762f9a435a75d"
NOW = datetime(2014, 8, 5, 0, 0, 0, tzinfo=UTC)


def _put(store: CdrStore, cdr: CDR, cost: Decimal) -> None:
    st, _ = store.reserve(cdr)
    store.finish(st.cdr.order_id, cost=cost, cost_source="*cdrs", cost_details=None,
                 extra_info="")


@pytest.fixture
def two_cdrs(store: CdrStore) -> CdrStore:
    _put(store, CDR(cgrid=CG1, origin_id="1-6715@127.0.0.1", origin_host="127.0.0.1",
                    request_type="*postpaid", account="1001", subject="1001", destination="1002",
                    setup_time=datetime(2014, 8, 4, 12, 59, 55, tzinfo=UTC),
                    answer_time=datetime(2014, 8, 4, 13, 0, 0, tzinfo=UTC),
                    usage_ns=85 * 10**9, extra_fields={"DisconnectCause": "Downstream BYE"}),
         Decimal("0.64175"))
    _put(store, CDR(cgrid=CG2, run_id="*raw", origin_id="Call, \"quoted\"",
                    request_type="*none", account="1003", subject="1003",
                    destination="1001", answer_time=datetime(2014, 8, 4, 14, 0, 0, tzinfo=UTC),
                    usage_ns=10**9), Decimal(-1))
    return store


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "export"


EXPECTED_CSV = (
    f"{CG1},*default,*voice,1-6715@127.0.0.1,*postpaid,cgrates.org,call,1001,1001,1002,"
    "2014-08-04T12:59:55Z,2014-08-04T13:00:00Z,1m25s,0.6418\n"
    f'{CG2},*raw,*voice,"Call, ""quoted""",*none,cgrates.org,call,1003,1003,1001,'
    "0001-01-01T00:00:00Z,2014-08-04T14:00:00Z,1s,-1.0000\n"
)


def test_default_csv_export(two_cdrs: CdrStore, out: Path):
    res = export_cdrs(two_cdrs, export_path=out, export_id="1407196800", now=NOW)
    assert res.path == out / "cdre_1407196800.csv"
    assert res.path.read_bytes() == EXPECTED_CSV.encode()
    assert (res.exported, res.total_records) == (2, 2)
    assert res.total_cost == Decimal("0.64175")
    assert res.exported_cgrids == [CG1, CG2] and res.failed == {}
    assert [p.name for p in out.iterdir()] == ["cdre_1407196800.csv"]  # no temp left
    # Exported once per profile: a second run selects nothing and writes nothing.
    again = export_cdrs(two_cdrs, export_path=out, export_id="2", now=NOW)
    assert again.path is None and again.exported == 0
    forced = export_cdrs(two_cdrs, export_path=out, export_id="3", include_exported=True,
                         now=NOW, flt=CdrFilter(run_ids=["*default"]))
    assert forced.path.read_text() == EXPECTED_CSV.splitlines(keepends=True)[0]


def _fwv_profile() -> ExportProfile:
    F = FieldTemplate
    return ExportProfile(id="fwv1", export_format=FILE_FWV, fields=(
        F("TypeOfRecord", "*hdr.TypeOfRecord", "*constant", "10", width=2),
        F("Filler1", "*hdr.Filler1", "*filler", "", width=3),
        F("ExportID", "*hdr.ExportID", "*handler", "*export_id", width=6, padding="*zeroleft"),
        F("Created", "*hdr.Created", "*handler", "*time_now", width=12,
          layout="020106150405"),
        F("TypeOfRecord", "*exp.TypeOfRecord", "*constant", "20", width=2),
        F("Account", "*exp.Account", value="~*req.Account", width=6, padding="*right"),
        F("Destination", "*exp.Destination", value="~*req.Destination", width=3,
          strip="*xright"),
        F("Usage", "*exp.Usage", value="~*req.Usage{*duration_seconds}", width=5,
          padding="*zeroleft"),
        F("Cost", "*exp.Cost", value="~*req.Cost", width=9, padding="*zeroleft",
          rounding_decimals=4),
        F("Cause", "*exp.Cause", value="~*req.DisconnectCause", width=8, strip="*right",
          padding="*right"),
        F("TypeOfRecord", "*trl.TypeOfRecord", "*constant", "90", width=2),
        F("Number", "*trl.Number", "*handler", "*cdrs_number", width=4, padding="*zeroleft"),
        F("Duration", "*trl.Duration", "*handler", "*cdrs_duration{*duration_seconds}",
          width=6, padding="*zeroleft"),
        F("Cost", "*trl.Cost", "*handler", "*cdrs_cost", width=10, padding="*zeroleft",
          rounding_decimals=4),
        F("FirstAnswer", "*trl.First", "*handler", "*first_cdr_atime", layout="15:04"),
    ))


def test_fixed_width_export(two_cdrs: CdrStore, out: Path):
    res = export_cdrs(two_cdrs, _fwv_profile(), export_path=out, export_id="42", now=NOW)
    assert res.path == out / "cdre_42.fwv"
    assert res.path.read_text() == (
        "10   000042050814000000\n"
        "201001  10x000850000.6418Downstre\n"
        "201003  10x0000100-1.0000        \n"
        "90000200008600000.641813:00\n"
    )


def test_export_with_filter_and_file_name(two_cdrs: CdrStore, out: Path):
    res = export_cdrs(two_cdrs, flt=CdrFilter(accounts=["1003"]), export_path=out,
                      file_name="tutorial.csv", now=NOW)
    assert res.path == out / "tutorial.csv"
    assert res.path.read_text() == EXPECTED_CSV.splitlines(keepends=True)[1]


def test_failed_cdr_is_reported_not_exported(two_cdrs: CdrStore, out: Path):
    prof = ExportProfile(id="strict", fields=(
        FieldTemplate("Acc", "*exp.Acc", value="~*req.Account"),
        FieldTemplate("Cause", "*exp.Cause", value="~*req.DisconnectCause", mandatory=True),
    ))
    res = export_cdrs(two_cdrs, prof, export_path=out, export_id="7", now=NOW)
    assert res.exported == 1 and list(res.failed) == [CG2]
    assert "mandatory" in res.failed[CG2]
    assert res.path.read_text() == "1001,Downstream BYE\n"


def test_dry_run_and_empty_export_write_nothing(store: CdrStore, out: Path):
    assert export_cdrs(store, export_path=out, now=NOW).path is None
    assert not out.exists()


def test_helpers():
    assert format_cost(Decimal("1.01"), 4) == "1.0100"
    assert format_cost(Decimal(-1), 4) == "-1.0000"
    assert format_cost(Decimal("0.64175"), 4) == "0.6418"
    assert format_cost(Decimal("1.5"), 2, 2) == "150.00"
    assert csv_line(["a", "", " b", "c\nd"]) == 'a,," b","c\nd"\n'
    t = FieldTemplate("x", "*exp.x", width=4)
    with pytest.raises(ExportError, match="no strip rule"):
        fit_width("12345", t)
    with pytest.raises(ExportError, match="no padding rule"):
        fit_width("1", t)
    assert fit_width("12345", FieldTemplate("x", "*exp.x", width=4, strip="*left")) == "2345"
    assert fit_width("12345", FieldTemplate("x", "*exp.x", width=4, strip="*xleft")) == "x345"
    with pytest.raises(ExportError, match="export_format"):
        ExportProfile(export_format="*kafka_json_map")
