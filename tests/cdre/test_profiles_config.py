"""Named CDRe export profiles from configuration (CGRPY_CDRE_PROFILES_FILE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.config import ConfigError
from services.cdre.server import CdreServer
from tests.cdre.test_contract import NOWHERE, _seed
from tests.harness import serve

PROFILES = {
    "accounts_fwv": {
        "export_format": "*file_fwv",
        "fields": [
            {"path": "*exp.Account", "value": "~*req.Account", "width": 6, "padding": "*left"},
            {"path": "*exp.Cost", "value": "~*req.Cost", "rounding_decimals": 2, "width": 6,
             "padding": "*left"},
        ],
    }
}


async def test_named_profile_from_config(sqlite_url, tmp_path: Path):
    cfg = tmp_path / "cdre_profiles.json"
    cfg.write_text(json.dumps(PROFILES))
    out = tmp_path / "exports"
    out.mkdir()
    async with serve(CdreServer, sqlite_url, env={**NOWHERE, "CGRPY_CDRE_PROFILES_FILE": str(cfg)}) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        resp = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            export_profile="accounts_fwv", format="fwv", export_path=str(out),
            filter=cdre_pb2.CDRFilter(accounts=["1001"])))
        assert resp.exported == 2
        assert Path(resp.file).read_text() == "  1001  0.60\n  1001  0.20\n"


async def test_bad_profiles_file_stops_start_up_with_one_line(sqlite_url, tmp_path: Path):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"p": {"fields": [], "colour": "blue"}}))
    with pytest.raises(ConfigError) as err:
        async with serve(CdreServer, sqlite_url, env={**NOWHERE, "CGRPY_CDRE_PROFILES_FILE": str(cfg)}):
            pass
    assert str(err.value).startswith(f"cdre_profiles_file {cfg}:") and "\n" not in str(err.value)
