"""`cgr cdrs export` through the cdre service: CDRs posted over gRPC, exported on the CLI's
request into the service's ``cdre_export_path`` setting's directory (the tutorial's /tmp by
default)."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from cgrates.v1 import cdre_pb2_grpc
from cgrpy.cgrid import cgrid
from cgrpy.cli.main import main
from services.cdre.server import CdreServer
from tests.cdre.test_contract import NOWHERE, cdr_event, req
from tests.harness import serve


async def test_cli_exports_what_the_service_stored(db_url: str, tmp_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "exports"
    env = {**NOWHERE, "CGRPY_CDRE_EXPORT_PATH": str(out)}
    async with serve(CdreServer, db_url, env=env) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await stub.ProcessCDR(req(cdr_event("cli-1", rt="*rated", account="1003",
                                            destination="1001", usage="1s", Cost="0.3")))
        await stub.ProcessCDR(req(cdr_event("cli-2", rt="*rated", usage="1m25s",
                                            Cost="0.64175")))
        monkeypatch.setenv("CGRPY_CDRE_ADDR", svc.addr)
        assert await asyncio.to_thread(main, ["cdrs", "export", "--export-id", "e2e"]) == 0
        assert f"exported 2 CDRs (total cost 0.94175) to {out}/cdre_e2e.csv" in capsys.readouterr().out
        rows = list(csv.reader(io.StringIO((out / "cdre_e2e.csv").read_text())))
        assert [(r[0], r[3], r[12], r[13]) for r in rows] == [
            (cgrid("cli-1", "127.0.0.1"), "cli-1", "1s", "0.3000"),
            # Cost printed from the exact decimal, half away from zero (CGRateS: float %.4f)
            (cgrid("cli-2", "127.0.0.1"), "cli-2", "1m25s", "0.6418"),
        ]
        # the export log: the same CDRs are not exported twice
        assert await asyncio.to_thread(main, ["cdrs", "export"]) == 0
        assert "nothing exported (0 selected" in capsys.readouterr().out
