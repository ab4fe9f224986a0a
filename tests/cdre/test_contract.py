"""CdrService over gRPC: the real cdre server on loopback with a real StorDB (SQLite and Postgres).

Here every other service is switched off by flags or unreachable (their addresses point at a
closed port), so these tests pin cdre's own contract: storing, idempotence, queries, export,
session costs, input errors, crash resume. tests/cdre/test_contract_rals.py adds the real RALs.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.cgrid import cgrid
from cgrpy.event import CGREvent
from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from cgrpy.storage.models.cdrs import CdrRow
from cgrpy.units import SECOND, parse_time, to_unix_nano
from cgrpy.wire import event_to_pb
from services.cdre.cdr import CDR
from services.cdre.server import CdreServer
from services.cdre.store import CdrFilter, CdrStore
from tests.harness import serve

DEAD = "127.0.0.1:1"  # nothing listens: a call that should not happen fails fast
NOWHERE = {f"CGRPY_{s.upper()}_ADDR": DEAD
           for s in ("attributes", "chargers", "rals", "stats", "thresholds")}
OFF = ["*attributes:false", "*chargers:false", "*rals:false", "*stats:false",
       "*thresholds:false"]
ANSWER = "2014-08-04T13:00:00Z"
T_ANSWER = to_unix_nano(parse_time(ANSWER))


def cdr_event(origin: str = "call-1", rt: str = "*postpaid", account: str = "1001",
              destination: str = "1002", usage: str = "60s", answer: str = ANSWER,
              **extra: object) -> CGREvent:
    fields: dict[str, object] = {
        "Source": "OpenSIPS", "OriginHost": "127.0.0.1", "OriginID": origin,
        "RequestType": rt, "Tenant": "cgrates.org", "Category": "call", "Account": account,
        "Subject": account, "Destination": destination, "SetupTime": answer,
        "AnswerTime": answer, "Usage": usage, "DisconnectCause": "Downstream BYE",
    }
    fields.update(extra)
    return CGREvent(tenant="cgrates.org", id=origin, event=fields)


def req(ev: CGREvent, flags: list[str] | None = None) -> cdre_pb2.ProcessCDRRequest:
    return cdre_pb2.ProcessCDRRequest(event=event_to_pb(ev), flags=OFF if flags is None else flags)


def metric(result: str) -> float:
    return REGISTRY.get_sample_value("cgrpy_cdrs_processed_total", {"result": result}) or 0.0


async def rpc_error(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await coro
    return err.value


async def test_process_cdr_stores_once_and_reports_duplicate(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        stored0, dup0 = metric("stored"), metric("duplicate")
        first = await stub.ProcessCDR(req(cdr_event()))
        assert not first.duplicate
        run, = first.cdrs
        assert run.cgrid == cgrid("call-1", "127.0.0.1")
        assert (run.run_id, run.request_type, run.account, run.destination) == (
            "*default", "*postpaid", "1001", "1002")
        assert run.usage_ns == 60 * SECOND
        assert run.answer_time_unix_ns == T_ANSWER == run.setup_time_unix_ns
        assert run.cost == "-1"  # *rals:false → stored unrated
        assert run.extra_fields == {"DisconnectCause": "Downstream BYE"}
        assert run.order_id > 0

        again = await stub.ProcessCDR(req(cdr_event()))
        assert again.duplicate
        assert [c.order_id for c in again.cdrs] == [run.order_id]
        count = await stub.CountCDRs(cdre_pb2.CDRFilter())
        assert count.count == 1
        assert metric("stored") - stored0 == 1
        assert metric("duplicate") - dup0 == 1

        got = await stub.GetCDRs(cdre_pb2.CDRFilter(cgrids=[run.cgrid]))
        assert [c.order_id for c in got.cdrs] == [run.order_id]
        assert got.cdrs[0].cost == "-1" and got.cdrs[0].cost_details_json == ""


async def test_rated_cdr_keeps_the_given_cost(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        flags = [f for f in OFF if f != "*rals:false"]  # rals on: *rated with a Cost needs none
        resp = await stub.ProcessCDR(req(
            cdr_event("r-1", rt="*rated", account="1003", destination="1001", usage="1s",
                      Cost="0.3"), flags))
        run, = resp.cdrs
        assert (run.cost, run.cost_source, run.extra_info) == ("0.3", "*cdrs", "")
        got = await stub.GetCDRs(cdre_pb2.CDRFilter(request_types=["*rated"]))
        assert [c.cost for c in got.cdrs] == ["0.3"]


async def test_bad_input_is_invalid_argument_and_changes_nothing(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        err0 = metric("error")
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(usage="sixty"))))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.details().startswith("INVALID_ARGUMENT:Usage")
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(answer="yesterday-ish"))))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "SetupTime" in e.details() or "AnswerTime" in e.details()
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(Cost="1.2.3", rt="*rated"))))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "Cost" in e.details()
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(), ["*rals:maybe"])))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "*rals:maybe" in e.details()
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(), ["*bogus"])))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "*bogus" in e.details()
        e = await rpc_error(stub.ProcessCDR(cdre_pb2.ProcessCDRRequest()))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.details() == "MANDATORY_IE_MISSING: [Event]"
        assert (await stub.CountCDRs(cdre_pb2.CDRFilter())).count == 0
        assert metric("error") - err0 == 6

        e = await rpc_error(stub.GetCDRs(cdre_pb2.CDRFilter(order_by="price")))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "price" in e.details()
        e = await rpc_error(stub.CountCDRs(cdre_pb2.CDRFilter(min_cost="cheap")))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "min_cost" in e.details()
        e = await rpc_error(stub.GetCDRs(cdre_pb2.CDRFilter(min_cost="2", max_cost="1")))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "max cost" in e.details()


async def test_attributes_down_is_unavailable_and_stores_nothing(sqlite_url):
    async with serve(CdreServer, sqlite_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        e = await rpc_error(stub.ProcessCDR(req(cdr_event(), ["*stats:false"])))
        assert e.code() == grpc.StatusCode.UNAVAILABLE
        assert e.details().startswith("ATTRIBUTES_ERROR:SERVER_ERROR")
        assert (await stub.CountCDRs(cdre_pb2.CDRFilter())).count == 0


# --- queries -----------------------------------------------------------------------------------

CALLS = [
    # origin, account, destination, answer, usage, cost
    ("q1", "1001", "1002", "2014-08-04T13:00:00Z", "60s", "0.6"),
    ("q2", "1001", "1003", "2014-08-04T14:00:00Z", "20s", "0.2"),
    ("q3", "1002", "1001", "2014-08-05T09:00:00Z", "85s", "0.6418"),
    ("q4", "1003", "1001", "2014-08-06T09:00:00Z", "1s", "0.3"),
]


async def _seed(stub: cdre_pb2_grpc.CdrServiceStub) -> None:
    for origin, acct, dst, answer, usage, cost in CALLS:
        await stub.ProcessCDR(req(cdr_event(origin, rt="*rated", account=acct, destination=dst,
                                            usage=usage, answer=answer, Cost=cost)))


async def test_get_and_count_cdrs_filters(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)

        async def origins(**kw) -> list[str]:
            return [c.origin_id for c in (await stub.GetCDRs(cdre_pb2.CDRFilter(**kw))).cdrs]

        async def count(**kw) -> int:
            return (await stub.CountCDRs(cdre_pb2.CDRFilter(**kw))).count

        assert await origins() == ["q1", "q2", "q3", "q4"]
        assert await origins(accounts=["1001"]) == ["q1", "q2"]
        assert await origins(destination_prefixes=["100"]) == ["q1", "q2", "q3", "q4"]
        assert await origins(destination_prefixes=["1001"]) == ["q3", "q4"]
        day = to_unix_nano(parse_time("2014-08-05T00:00:00Z"))
        assert await origins(answer_time_start_unix_ns=day) == ["q3", "q4"]
        assert await origins(answer_time_end_unix_ns=day) == ["q1", "q2"]
        assert await origins(setup_time_start_unix_ns=day,
                             setup_time_end_unix_ns=day + 86400 * SECOND) == ["q3"]
        # min inclusive, max exclusive (CGRateS MinCost/MaxCost)
        assert await origins(min_cost="0.3", max_cost="0.6418") == ["q1", "q4"]
        assert await origins(order_by="cost desc") == ["q3", "q1", "q4", "q2"]
        assert await origins(order_by="answer_time desc", limit=2, offset=1) == ["q3", "q2"]
        assert await origins(run_ids=["*raw"]) == []
        assert await origins(request_types=["*rated"], tenants=["cgrates.org"],
                             subjects=["1003"], origin_ids=["q4", "q1"]) == ["q4"]
        assert await count() == 4
        assert await count(accounts=["1001", "1002"], limit=1) == 3  # limit ignored by count
        assert await count(min_cost="0.5") == 2


# --- export ------------------------------------------------------------------------------------


async def test_export_cdrs_writes_the_default_csv(db_url, tmp_path: Path):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        out = tmp_path / "exports"  # the SQLite StorDB lives in tmp_path itself
        out.mkdir()
        resp = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=cdre_pb2.CDRFilter(accounts=["1001", "1002"]), export_path=str(out)))
        assert resp.exported == 3 and list(resp.failed_cgrids) == []
        path = Path(resp.file)
        assert path.parent == out
        assert path.name.startswith("cdre_") and path.suffix == ".csv"
        rows = list(csv.reader(io.StringIO(path.read_text())))
        # *default template: CGRID,RunID,ToR,OriginID,RequestType,Tenant,Category,
        # Account,Subject,Destination,SetupTime,AnswerTime,Usage (Go duration),Cost (4 decimals)
        assert rows == [
            [cgrid("q1", "127.0.0.1"), "*default", "*voice", "q1", "*rated", "cgrates.org",
             "call", "1001", "1001", "1002", "2014-08-04T13:00:00Z", "2014-08-04T13:00:00Z",
             "1m0s", "0.6000"],
            [cgrid("q2", "127.0.0.1"), "*default", "*voice", "q2", "*rated", "cgrates.org",
             "call", "1001", "1001", "1003", "2014-08-04T14:00:00Z", "2014-08-04T14:00:00Z",
             "20s", "0.2000"],
            [cgrid("q3", "127.0.0.1"), "*default", "*voice", "q3", "*rated", "cgrates.org",
             "call", "1002", "1002", "1001", "2014-08-05T09:00:00Z", "2014-08-05T09:00:00Z",
             "1m25s", "0.6418"],
        ]
        # the export log: the same CDRs are not exported twice with the same profile
        again = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(export_path=str(out)))
        assert again.exported == 1 and again.file != resp.file
        last = list(csv.reader(io.StringIO(Path(again.file).read_text())))
        assert [r[3] for r in last] == ["q4"]
        none = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(export_path=str(out)))
        assert (none.exported, none.file) == (0, "")
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [path.name, Path(again.file).name])


async def test_export_id_file_name_include_exported_and_totals(sqlite_url, tmp_path: Path):
    """What `cgr cdrs export` needs from the RPC: its own ExportID or file name, exporting again
    on request, and the totals of the export in the answer."""
    async with serve(CdreServer, sqlite_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        out = tmp_path / "exports"
        flt = cdre_pb2.CDRFilter(accounts=["1001"])
        resp = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=flt, export_path=str(out), export_id="mine"))
        assert resp.file == str(out / "cdre_mine.csv") and resp.export_id == "mine"
        assert (resp.total_records, resp.exported, resp.total_cost) == (2, 2, "0.8")
        assert resp.first_order_id < resp.last_order_id and dict(resp.failed) == {}
        skipped = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=flt, export_path=str(out), file_name="again.csv"))
        assert (skipped.exported, skipped.file) == (0, "")  # exported once per profile
        again = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=flt, export_path=str(out), file_name="again.csv", include_exported=True))
        assert (again.exported, again.file) == (2, str(out / "again.csv"))
        bad = await rpc_error(stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            filter=flt, export_path=str(out), file_name="../x.csv", include_exported=True)))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "plain file name" in bad.details()


async def test_export_fwv_and_profile_as_json(sqlite_url, tmp_path: Path):
    async with serve(CdreServer, sqlite_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        out = tmp_path / "exports"  # the SQLite StorDB lives in tmp_path itself
        out.mkdir()
        profile = ('{"id": "acc", "fields": [{"path": "*exp.Account", "value": "~*req.Account",'
                   ' "width": 6, "padding": "*left"}, {"path": "*exp.Cost", "value": '
                   '"~*req.Cost", "rounding_decimals": 2, "width": 6, "padding": "*left"}]}')
        resp = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(
            export_profile=profile, format="fwv", export_path=str(out / "out"),
            filter=cdre_pb2.CDRFilter(accounts=["1001"])))
        assert resp.exported == 2 and resp.file.endswith(".fwv")
        assert Path(resp.file).read_text() == "  1001  0.60\n  1001  0.20\n"


async def test_export_bad_profile_or_path_is_invalid_argument(sqlite_url, tmp_path: Path):
    # /proc is an allowed root here only to reach the "cannot write" case
    env = {**NOWHERE, "CGRPY_API_EXPORT_ROOTS": f"{tmp_path},/proc"}
    async with serve(CdreServer, sqlite_url, env=env) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        out = tmp_path / "exports"  # the SQLite StorDB lives in tmp_path itself
        out.mkdir()
        afile = out / "a-file"
        afile.write_text("x")
        (out / "link").symlink_to("/etc")
        cases = [
            ({"export_profile": "*nope"}, "export_profile: unknown CDRe profile '*nope'"),
            ({"export_profile": "{not json"}, "export_profile: not a JSON object"),
            ({"export_profile": '{"fields": [{"value": "x"}]}'}, "export_profile: CDRe profile"),
            ({"format": "xml"}, "format: 'xml' not supported"),
            ({"export_path": "relative/dir"}, "export_path: 'relative/dir' must be an absolute directory"),
            ({"export_path": str(afile)}, "is not a directory"),
            ({"export_path": "/proc/cgrpy-cannot-exist"}, "export_path: cannot write to"),
            ({"export_path": "/etc"}, "outside the allowed directories"),
            ({"export_path": str(out / ".." / ".." / "..")}, "outside the allowed directories"),
            ({"export_path": str(out / "link")}, "outside the allowed directories"),
        ]
        for kw, text in cases:
            kw.setdefault("export_path", str(out))
            e = await rpc_error(stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(**kw)))
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, kw
            assert e.details().startswith("INVALID_ARGUMENT:") and text in e.details(), (
                kw, e.details())
        assert sorted(p.name for p in out.iterdir()) == ["a-file", "link"]
        # nothing was logged as exported: a good export still takes all four
        ok = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(export_path=str(out)))
        assert ok.exported == 4


async def test_export_path_defaults_to_setting(sqlite_url, tmp_path: Path):
    out = tmp_path / "exports"
    env = {**NOWHERE, "CGRPY_CDRE_EXPORT_PATH": str(out)}
    async with serve(CdreServer, sqlite_url, env=env) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        await _seed(stub)
        resp = await stub.ExportCDRs(cdre_pb2.ExportCDRsRequest(export_profile="*default",
                                                                format="csv"))
        assert Path(resp.file).parent == out and resp.exported == 4


# --- session costs -----------------------------------------------------------------------------


async def test_prepaid_cdr_takes_the_stored_session_cost(db_url):
    async with serve(CdreServer, db_url, env=NOWHERE) as svc:
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        cid = cgrid("pre-1", "127.0.0.1")
        details = f'{{"CGRID": "{cid}", "RunID": "*default", "Cost": 0.6, "Usage": 60000000000}}'
        await stub.StoreSessionCost(cdre_pb2.SessionCost(
            cgrid=cid, run_id="*default", origin_host="127.0.0.1", origin_id="pre-1",
            usage_ns=60 * SECOND, cost="0.6", cost_details_json=details))
        # RALs is unreachable: the CDR must take the session's cost, not rate it again
        flags = [f for f in OFF if f != "*rals:false"]
        resp = await stub.ProcessCDR(req(cdr_event("pre-1", rt="*prepaid"), flags))
        run, = resp.cdrs
        assert (run.cost, run.cost_source, run.extra_info) == ("0.6", "*sessions", "")
        assert '"Usage":60000000000' in run.cost_details_json.replace(" ", "")

        e = await rpc_error(stub.StoreSessionCost(cdre_pb2.SessionCost(cgrid=cid)))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.details() == "MANDATORY_IE_MISSING: [Cost]"
        e = await rpc_error(stub.StoreSessionCost(cdre_pb2.SessionCost(cost="1")))
        assert e.details() == "MANDATORY_IE_MISSING: [CGRID]"
        e = await rpc_error(stub.StoreSessionCost(cdre_pb2.SessionCost(cgrid="x", cost="1,5")))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "cost" in e.details()
        e = await rpc_error(stub.StoreSessionCost(
            cdre_pb2.SessionCost(cgrid="x", cost="1", cost_details_json="[1]")))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "cost_details_json" in e.details()


async def test_prepaid_without_session_cost_and_rals_down_is_retried_not_stored_unrated(sqlite_url):
    # RALs unreachable: the run is not stored with Cost -1 (nobody would collect the money);
    # the request fails UNAVAILABLE so the sender (SM's spool) retries it later.
    async with serve(CdreServer, sqlite_url, env={**NOWHERE, "CGRPY_RPC_TIMEOUT": "300ms"}) as svc:
        svc.runner.service.pipeline_config.session_cost_retries = 0
        stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
        err0 = metric("error")
        flags = [f for f in OFF if f != "*rals:false"]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            # cdre retries RALs until shortly before this deadline, then answers "retry later"
            await stub.ProcessCDR(req(cdr_event("pre-2", rt="*prepaid"), flags), timeout=1)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert err.value.details().startswith("RALS_ERROR:SERVER_ERROR")
        assert metric("error") - err0 == 1


# --- crash resume ------------------------------------------------------------------------------


async def test_start_up_finishes_rows_left_pending(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        store = CdrStore(engine)
        cdr = CDR(cgrid=cgrid("crash-1", "127.0.0.1"), origin_id="crash-1",
                  origin_host="127.0.0.1", request_type="*rated", account="1003",
                  subject="1003", destination="1001", cost=Decimal("0.3"),
                  answer_time=datetime(2014, 8, 4, 13, tzinfo=UTC), usage_ns=SECOND)
        st, dup = store.reserve(cdr)
        assert not dup
        with engine.begin() as conn:
            conn.execute(update(CdrRow).where(CdrRow.id == st.cdr.order_id)
                         .values(updated_at=datetime.now(UTC) - timedelta(seconds=5)))
        assert store.get_stored(CdrFilter())[0].rating_state == "pending"
        async with serve(CdreServer, db_url, env=NOWHERE) as svc:
            stub = cdre_pb2_grpc.CdrServiceStub(svc.channel)
            got, = (await stub.GetCDRs(cdre_pb2.CDRFilter())).cdrs
            assert (got.cost, got.cost_source) == ("0.3", "*cdrs")
        stored, = store.get_stored(CdrFilter())
        assert stored.rating_state == "rated"
    finally:
        engine.dispose()
