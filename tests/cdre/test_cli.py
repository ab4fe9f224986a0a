"""`cgr cdrs list|count|export` against a cdre service over a migrated StorDB."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from cgrpy.cli.main import main
from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from services.cdre.cdr import CDR
from services.cdre.server import CdreServer
from services.cdre.store import CdrStore
from tests.cdre.test_contract import NOWHERE
from tests.harness import serve


def cli(*argv: str):
    # blocking gRPC from the CLI: off the loop that serves cdre
    return asyncio.to_thread(main, list(argv))


def _seed(url: str) -> None:
    migrate.upgrade(url)
    eng = make_engine(url)
    store = CdrStore(eng)
    for n, (acct, cost) in enumerate([("1001", "0.6418"), ("1002", "1.2")], start=1):
        st, _ = store.reserve(CDR(cgrid=f"{n:040x}", origin_id=f"o{n}", request_type="*postpaid",
                                  account=acct, subject=acct, destination="1003",
                                  answer_time=datetime(2014, 8, 4, 13, n, tzinfo=UTC),
                                  usage_ns=60 * 10**9))
        store.finish(st.cdr.order_id, cost=Decimal(cost), cost_source="*cdrs", cost_details=None,
                     extra_info="")
    eng.dispose()


async def test_cli_list_count_export(db_url: str, tmp_path: Path, capsys):
    _seed(db_url)
    async with serve(CdreServer, db_url, tariffplan=None, env=NOWHERE) as svc:
        addr = svc.addr
        assert await cli("cdrs", "count", "--addr", addr, "--account", "1002") == 0
        assert capsys.readouterr().out.strip() == "1"
        assert await cli("cdrs", "list", "--addr", addr, "--json", "--min-cost", "1") == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(c["Account"], c["Usage"], c["Cost"]) for c in listed] == [("1002", "1m0s", 1.2)]
        assert await cli("cdrs", "list", "--addr", addr) == 0
        table = capsys.readouterr().out
        assert "0.6418" in table and "(2 CDRs)" in table
        out = tmp_path / "exp"
        assert await cli("cdrs", "export", "--addr", addr, "--format", "csv", "--path", str(out),
                         "--export-id", "tut") == 0
        assert "exported 2 CDRs (total cost 1.8418)" in capsys.readouterr().out
        lines = (out / "cdre_tut.csv").read_text().splitlines()
        assert lines[0].endswith(",1m0s,0.6418") and lines[1].endswith(",1m0s,1.2000")
        assert await cli("cdrs", "export", "--addr", addr, "--path", str(out), "--json") == 0
        assert json.loads(capsys.readouterr().out)["Exported"] == 0


async def test_cli_bad_input_is_a_clear_error(sqlite_url: str, capsys):
    async with serve(CdreServer, sqlite_url, tariffplan=None, env=NOWHERE) as svc:
        addr = svc.addr
        assert await cli("cdrs", "list", "--addr", addr, "--answer-from", "yesterday") == 1
        assert "not a time" in capsys.readouterr().err
        assert await cli("cdrs", "list", "--addr", addr, "--order-by", "price") == 1
        assert "cannot order CDRs by 'price'" in capsys.readouterr().err
