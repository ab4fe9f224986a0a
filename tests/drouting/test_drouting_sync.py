"""cgr opensips drouting-sync against a real Postgres holding OpenSIPS's dr_* tables."""

from __future__ import annotations

import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from cgrpy.cli.main import main
from cgrpy.opensips.drouting import (
    DRoutingError,
    build_rows,
    gateway_addresses,
    parse_gateway_option,
)
from cgrpy.storage.db import make_engine
from tests.conftest import TARIFFPLANS

SCHEMA = Path(__file__).with_name("opensips_dr_schema.sql")
CFG = Path(__file__).resolve().parents[2] / "deploy" / "opensips" / "opensips.cfg"

pytestmark = pytest.mark.postgres


def test_gateway_convention():
    assert gateway_addresses("s1", "sip:10.0.0.5:5060; sip:gw2.carrier.net") == ["10.0.0.5:5060", "gw2.carrier.net"]
    assert gateway_addresses("s1", "") == []
    with pytest.raises(DRoutingError, match=r"supplier s1: SupplierParameters entry 'param1' is not sip:host\[:port\]"):
        gateway_addresses("s1", "param1")
    with pytest.raises(DRoutingError, match="99999"):
        gateway_addresses("s1", "sip:h:99999")


def test_build_rows_one_carrier_per_supplier_union_of_gateways():
    rows = build_rows([
        {"ID": "A", "SupplierID": "sup1", "SupplierParameters": "sip:1.1.1.1"},
        {"ID": "B", "SupplierID": "sup1", "SupplierParameters": "sip:2.2.2.2:5070;sip:1.1.1.1"},
        {"ID": "B", "SupplierID": "sup2", "SupplierParameters": ""},
    ])
    assert rows.carriers["sup1"]["gwlist"] == "sup1-1,sup1-2"
    assert [rows.gateways[g]["address"] for g in ("sup1-1", "sup1-2")] == ["1.1.1.1", "2.2.2.2:5070"]
    # no address: no gateway named after the supplier (OpenSIPS cannot resolve it), no carrier
    assert rows.skipped == ["sup2"] and "sup2" not in rows.carriers and "sup2-1" not in rows.gateways
    assert rows.rules["cgrpy:all suppliers"]["gwlist"] == "#sup1"


def test_operator_gateways_complete_the_tariff_plan():
    sup = [{"SupplierID": "sup1", "SupplierParameters": ""}, {"SupplierID": "sup2", "SupplierParameters": "sip:2.2.2.2"}]
    rows = build_rows(sup, {"sup1": ["gw:5060"], "sup2": ["3.3.3.3"]})
    assert rows.skipped == [] and rows.carriers["sup2"]["gwlist"] == "sup2-1,sup2-2"
    assert rows.gateways["sup1-1"]["address"] == "gw:5060"
    assert parse_gateway_option("sup1=sip:gw:5060") == ("sup1", ["gw:5060"])
    for bad in ("sup1", "sup1=", "=sip:gw", "sup1=gw:5060"):
        with pytest.raises(DRoutingError):
            parse_gateway_option(bad)
    with pytest.raises(DRoutingError, match="no such supplier"):
        build_rows(sup, {"sup9": ["gw"]})


@pytest.fixture
def stordb(pg_url: str) -> str:
    assert main(["migrate", "--db-url", pg_url]) == 0
    assert main(["load", str(TARIFFPLANS / "tutorial"), "--db-url", pg_url, "--tpid", "tut"]) == 0
    with make_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(SCHEMA.read_text())
    return pg_url


def _dump(url: str) -> dict[str, list[tuple]]:
    with make_engine(url).connect() as conn:
        return {
            "gw": conn.execute(text("SELECT id, gwid, address, type, state, description FROM dr_gateways ORDER BY gwid")).all(),
            "cr": conn.execute(text("SELECT id, carrierid, gwlist, flags, description FROM dr_carriers ORDER BY carrierid")).all(),
            "ru": conn.execute(text("SELECT ruleid, groupid, prefix, gwlist, description FROM dr_rules ORDER BY ruleid")).all(),
        }


def _sync(url: str, *extra: str) -> int:
    return main(["opensips", "drouting-sync", "--db-url", url, "--tpid", "tut", *extra])


def test_suppliers_without_address_are_skipped_with_a_warning(stordb, capsys):
    # SPL_ACNT_1001/1002/1003 all use supplier1 and supplier2, without parameters
    assert _sync(stordb) == 0
    out = capsys.readouterr()
    assert "0 carriers, 0 gateways; 0 inserted" in out.out
    for sid in ("supplier1", "supplier2"):
        assert f"warning: supplier {sid} has no gateway address" in out.err
    assert _dump(stordb) == {"gw": [], "cr": [], "ru": []}


def test_sync_tutorial_suppliers_then_resync_is_noop(stordb, capsys):
    gws = ("--gateway", "supplier1=sip:gw1.example.net:5060", "--gateway", "supplier2=sip:10.0.0.9")
    assert _sync(stordb, *gws) == 0
    out = capsys.readouterr()
    assert "2 carriers, 2 gateways; 5 inserted, 0 updated, 0 deleted" in out.out and "warning" not in out.err
    first = _dump(stordb)
    assert [(r.carrierid, r.gwlist) for r in first["cr"]] == [("supplier1", "supplier1-1"), ("supplier2", "supplier2-1")]
    assert [(r.gwid, r.address) for r in first["gw"]] == [("supplier1-1", "gw1.example.net:5060"), ("supplier2-1", "10.0.0.9")]
    assert [(r.groupid, r.prefix, r.gwlist) for r in first["ru"]] == [("0", "", "#supplier1,#supplier2")]
    assert _sync(stordb, *gws) == 0
    assert "0 inserted, 0 updated, 0 deleted" in capsys.readouterr().out
    assert _dump(stordb) == first  # same ids too: nothing rewritten


def test_changed_suppliers_reload_and_resync(stordb, tmp_path, capsys):
    assert _sync(stordb, "--gateway", "supplier2=sip:supplier2") == 0
    tp = tmp_path / "tp"
    shutil.copytree(TARIFFPLANS / "tutorial", tp)
    csv = (tp / "Suppliers.csv").read_text()
    csv = csv.replace(",supplier1,,,,,,10,,,10", ",supplier1,,,,,,10,,sip:10.0.0.1:5060;sip:10.0.0.2,10")
    csv = "\n".join(line for line in csv.splitlines() if "supplier2" not in line or "SPL_ACNT_1001" in line) + "\n"
    csv = csv.replace("cgrates.org,SPL_ACNT_1001,,,,,supplier2,", "cgrates.org,SPL_ACNT_1001,,,,,supplier3,")
    (tp / "Suppliers.csv").write_text(csv)
    assert main(["load", str(tp), "--db-url", stordb, "--tpid", "tut"]) == 0
    capsys.readouterr()
    assert _sync(stordb, "--gateway", "supplier3=sip:10.0.0.3") == 0
    assert "5 inserted, 1 updated, 2 deleted" in capsys.readouterr().out
    after = _dump(stordb)
    assert [(r.carrierid, r.gwlist) for r in after["cr"]] == [("supplier1", "supplier1-1,supplier1-2"), ("supplier3", "supplier3-1")]
    assert [(r.gwid, r.address) for r in after["gw"]] == [
        ("supplier1-1", "10.0.0.1:5060"), ("supplier1-2", "10.0.0.2"), ("supplier3-1", "10.0.0.3")]
    assert [r.gwlist for r in after["ru"]] == ["#supplier1,#supplier3"]


def test_operator_rows_are_kept_and_never_overwritten(stordb, capsys):
    with make_engine(stordb).begin() as conn:
        conn.execute(text("INSERT INTO dr_carriers (carrierid, gwlist, description) VALUES ('manual', 'x', 'by hand')"))
    assert _sync(stordb) == 0
    assert ("manual", "x") in [(r.carrierid, r.gwlist) for r in _dump(stordb)["cr"]]
    with make_engine(stordb).begin() as conn:
        conn.execute(text("INSERT INTO dr_gateways (gwid, address) VALUES ('supplier9-1', '1.2.3.4')"))
        conn.execute(text("UPDATE tp_suppliers SET supplier_id = 'supplier9' WHERE supplier_id = 'supplier2'"))
    before = _dump(stordb)
    assert _sync(stordb, "--gateway", "supplier9=sip:5.6.7.8") == 1
    assert "dr_gateways: gwid 'supplier9-1' exists and was not created by cgrpy" in capsys.readouterr().err
    assert _dump(stordb) == before  # one transaction: nothing half-written


def test_bad_parameters_change_nothing(stordb, capsys):
    with make_engine(stordb).begin() as conn:
        conn.execute(text("UPDATE tp_suppliers SET supplier_parameters = 'param1' WHERE supplier_id = 'supplier1'"))
    assert _sync(stordb) == 1
    assert "supplier supplier1: SupplierParameters entry 'param1'" in capsys.readouterr().err
    assert _dump(stordb)["cr"] == []


class _MI(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _MI.calls.append(body)
        out = json.dumps({"jsonrpc": "2.0", "result": "OK", "id": body["id"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def test_dr_reload_over_mi_only_when_something_changed(stordb, capsys):
    server = HTTPServer(("127.0.0.1", 0), _MI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/mi"
    try:
        _MI.calls.clear()
        assert _sync(stordb, "--mi-url", url, "--gateway", "supplier1=sip:gw") == 0
        assert [c["method"] for c in _MI.calls] == ["dr_reload"]
        assert _sync(stordb, "--mi-url", url, "--gateway", "supplier1=sip:gw") == 0
        assert len(_MI.calls) == 1
    finally:
        server.shutdown()


def test_opensips_cfg_relies_only_on_schema_tables_and_columns():
    ddl = SCHEMA.read_text()
    tables = dict(re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", ddl, re.S))
    cfg = CFG.read_text()
    for table in re.findall(r'modparam\("drouting", "dr\w_table", "(\w+)"\)', cfg):
        assert table in tables
    # column overrides (drg_*_col) would have to name real columns; the script uses none
    assert not re.search(r'modparam\("drouting", "\w+_col"', cfg)
    assert {"dr_gateways", "dr_carriers", "dr_rules"} <= set(re.findall(r'"(dr_\w+)"', cfg))
