"""The shipped Prometheus setup against a live suite: a real `prometheus` binary, started here on
loopback with deploy/prometheus/prometheus.yml (only the targets rewritten to the suite's
127.0.0.1 metrics ports), scrapes all eight services and evaluates the shipped alert rules; and
every metric a dashboard panel or an alert queries is in the services' real `/metrics` output
after one call went through SM (so a renamed metric breaks this test, not the dashboard)."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.config import SERVICES
from tests.opensips_client import FakeOpenSIPS
from tests.suite import REPO, Suite, free_port, suite_env

from .deployfiles import ALERTS, PROMETHEUS
from .test_metrics_names import alert_exprs, metric_names, panel_exprs

pytestmark = pytest.mark.e2e

PROMETHEUS_BIN = shutil.which("prometheus")
SCRAPE_INTERVAL = "1s"


# ---------------------------------------------------------------- helpers (pure)

def live_scrape_config(shipped: dict[str, Any], metrics_ports: dict[str, int], prom_port: int,
                       rules_dir: Path) -> dict[str, Any]:
    """The shipped config with each service's target moved to 127.0.0.1:<its metrics port> and
    Prometheus's self-scrape to its test port; jobs, labels and rule files stay as shipped (rule
    files resolved against the shipped folder); intervals shortened so the test is quick."""
    cfg = copy.deepcopy(shipped)
    cfg["global"]["scrape_interval"] = SCRAPE_INTERVAL
    cfg["global"]["evaluation_interval"] = SCRAPE_INTERVAL
    cfg["rule_files"] = [str(rules_dir / f) for f in shipped["rule_files"]]
    for job in cfg["scrape_configs"]:
        for sc in job["static_configs"]:
            if job["job_name"] == "cgrpy":
                sc["targets"] = [f"127.0.0.1:{metrics_ports[sc['labels']['service']]}"]
            else:
                sc["targets"] = [f"127.0.0.1:{prom_port}" if t.endswith(":9090") else t for t in sc["targets"]]
    return cfg


_TYPE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$", re.M)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", re.M)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def exposed_names(text: str) -> set[str]:
    """Every series name a Prometheus scrape of this exposition can store: the sample names, and
    for declared families without samples yet (a labelled counter nobody incremented) the names
    Prometheus would store for their type (counter -> _total, histogram -> _bucket/_sum/_count)."""
    names = set(_SAMPLE.findall(text))
    for family, kind in _TYPE.findall(text):
        names.add(family)
        base = family.removesuffix("_total") if kind == "counter" else family
        names |= {base + s for s in _SUFFIXES.get(kind, ())}
    return names


def test_exposed_names_follow_prometheus_suffixes():
    text = (
        "# HELP a_total x\n# TYPE a_total counter\n"          # prometheus_client Counter
        "# HELP b x\n# TYPE b counter\n"                        # CounterMetricFamily, no samples
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1.0\n"
        "# HELP g x\n# TYPE g gauge\ng{q=\"x\"} 2\n"
    )
    names = exposed_names(text)
    assert {"a_total", "b_total", "h_bucket", "h_sum", "h_count", "g"} <= names
    assert "g_total" not in names and "b_bucket" not in names and "h_total" not in names


def test_live_config_keeps_jobs_labels_and_rules():
    shipped = yaml.safe_load(PROMETHEUS.read_text())
    ports = {name: 20000 + i for i, name in enumerate(SERVICES)}
    cfg = live_scrape_config(shipped, ports, 19090, ALERTS.parent)
    assert [j["job_name"] for j in cfg["scrape_configs"]] == [j["job_name"] for j in shipped["scrape_configs"]]
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "cgrpy")
    assert {sc["labels"]["service"]: sc["targets"] for sc in job["static_configs"]} == {
        n: [f"127.0.0.1:{p}"] for n, p in ports.items()}
    assert cfg["rule_files"] == [str(ALERTS)]
    assert shipped["global"]["scrape_interval"] == "15s"  # the shipped dict is not touched


# ---------------------------------------------------------------- live fixtures

def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def metrics_port(suite: Suite, service: str) -> int:
    return int(suite.env[f"CGRPY_{service.upper()}_METRICS_PORT"])


# The tutorial plus what docs/deploy.md tells an operator to add for per-supplier quality: a StatS
# queue per supplier, filtered on the Supplier field the OpenSIPS script records in the CDR
# (weight above the tutorial's blocking Stats2, so both count the call).
SUPPLIER_QUEUE = "cgrates.org,STATS_SUPPLIER1,*string:~*req.Supplier:supplier1,2014-07-29T15:00:00Z,100,-1,0,*asr;*acd,,false,false,40,*none\n"


@pytest.fixture(scope="module")
def suite(pg_databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    tp = tmp_path_factory.mktemp("tp") / "tutorial"
    shutil.copytree(REPO / "tariffplans" / "tutorial", tp)
    with (tp / "Stats.csv").open("a") as f:
        f.write(SUPPLIER_QUEUE)
    env = suite_env(pg_databases.create(), CGRPY_DEBIT_INTERVAL="1s")
    with Suite(env, "--tariffplan", str(tp)) as s:
        yield s


@pytest.fixture(scope="module")
def prometheus(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the suite; its base URL. Always stopped at the end."""
    if PROMETHEUS_BIN is None:
        pytest.skip("prometheus binary not installed (Debian package `prometheus`; .ci/run installs it)")
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    cfg = live_scrape_config(yaml.safe_load(PROMETHEUS.read_text()),
                             {name: metrics_port(suite, name) for name in SERVICES}, port, ALERTS.parent)
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [PROMETHEUS_BIN, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not get ready (rc={proc.poll()}):\n{(tmp / 'prometheus.log').read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def _one_call(suite: Suite) -> None:
    host, port = suite.env["CGRPY_OPENSIPS_LISTEN"].split(":")
    now = int(time.time())
    call = {"Source": "OpenSIPS", "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
            "OriginID": "prom-live-1@127.0.0.1", "Account": "1001", "Destination": "1002",
            # branch_route[supplier_branch] in opensips.cfg: $cgr(Supplier) = $avp(dr_carrier)
            "Supplier": "supplier1"}
    async with FakeOpenSIPS(host, int(port)) as osips:
        auth = await osips.call("SessionSv1.AuthorizeEventWithDigest", {**call, "SetupTime": str(now)},
                                ProcessStats=True)
        assert auth["error"] is None, auth
        init = await osips.call("SessionSv1.InitiateSession",
                                {**call, "SetupTime": str(now), "AnswerTime": str(now),
                                 "DialogID": 1, "DialogEntry": 1}, InitSession=True, ProcessStats=True)
        assert init["error"] is None, init
        term = await osips.call("SessionSv1.TerminateSession", {**call, "AnswerTime": str(now), "Usage": "2s"},
                                TerminateSession=True, ProcessStats=True)
        assert term["error"] is None, term
        cdr = await osips.call("SessionSv1.ProcessCDR",
                               {**call, "Usage": "2s", "AnswerTime": str(now), "DisconnectCause": "Downstream BYE"},
                               ProcessStats=True)
        assert cdr["result"] == "OK", cdr


def scrape_all(suite: Suite) -> dict[str, str]:
    out = {}
    for name in SERVICES:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port(suite, name)}/metrics", timeout=5) as resp:
            out[name] = resp.read().decode()
    return out


@pytest.fixture(scope="module")
def live_metrics(suite: Suite) -> dict[str, str]:
    """Every service's /metrics after one prepaid call (authorize, initiate, terminate, CDR)."""
    asyncio.run(_one_call(suite))
    deadline = time.monotonic() + 15
    while True:  # SM spools the CDR; cdre counts it a moment later and forwards it to StatS
        scraped = scrape_all(suite)
        if (re.search(r'^cgrpy_cdrs_processed_total\{[^}]*\} [1-9]', scraped["cdre"], re.M)
                and re.search(r'^cgrpy_stats_metric_value\{[^}]*queue="Stats2"', scraped["stats"], re.M)) \
                or time.monotonic() > deadline:
            return scraped
        time.sleep(0.2)


# ---------------------------------------------------------------- live tests

def test_prometheus_scrapes_all_eight_services_up(suite: Suite, prometheus: str):
    deadline = time.monotonic() + 20
    while True:
        targets = [t for t in http_json(f"{prometheus}/api/v1/targets?state=active")["activeTargets"]
                   if t["labels"].get("job") == "cgrpy"]
        health = {t["labels"]["service"]: t["health"] for t in targets}
        if (len(targets) == len(SERVICES) and set(health.values()) == {"up"}) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    errors = {t["labels"]["service"]: t["lastError"] for t in targets if t["lastError"]}
    assert health == dict.fromkeys(SERVICES, "up"), errors
    for t in targets:
        assert t["scrapeUrl"] == f"http://127.0.0.1:{metrics_port(suite, t['labels']['service'])}/metrics"
    # the CgrpyServiceDown alert's own series: all eight report up == 1
    up = http_json(f"{prometheus}/api/v1/query?query=" + urllib.parse.quote('up{job="cgrpy"}'))["result"]
    assert {r["metric"]["service"]: r["value"][1] for r in up} == dict.fromkeys(SERVICES, "1")


def test_shipped_alert_rules_load_and_evaluate_without_errors(prometheus: str):
    shipped = yaml.safe_load(ALERTS.read_text())
    expected = {g["name"]: [r["alert"] for r in g["rules"]] for g in shipped["groups"]}
    deadline = time.monotonic() + 20
    while True:
        groups = http_json(f"{prometheus}/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if (rules and all(r["health"] != "unknown" for r in rules)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {g["name"]: [r["name"] for r in g["rules"]] for g in groups} == expected
    for r in rules:
        assert r["type"] == "alerting"
        assert (r["health"], r.get("lastError", "")) == ("ok", ""), r["name"]
    # a healthy suite fires nothing that says a service is down
    down = next(r for r in rules if r["name"] == "CgrpyServiceDown")
    assert down["alerts"] == [], down["alerts"]


@pytest.mark.parametrize(("where", "expr"), [("alert " + a, e) for a, e in alert_exprs()]
                         + [("panel " + p, e) for p, e in panel_exprs()])
def test_query_is_valid_promql_for_the_real_prometheus(prometheus: str, where: str, expr: str):
    # a query Prometheus cannot parse would leave a panel empty or an alert dead
    url = f"{prometheus}/api/v1/query?query=" + urllib.parse.quote(expr)
    try:
        http_json(url)
    except urllib.error.HTTPError as exc:
        pytest.fail(f"{where}: {exc.read().decode()}")


def test_one_call_produced_sm_cdre_and_stats_series(live_metrics: dict[str, str]):
    sm, cdre, stats = live_metrics["sm"], live_metrics["cdre"], live_metrics["stats"]
    assert re.search(r'^cgrpy_sm_calls_started_total\{result="ok"\} 1(\.0)?$', sm, re.M), sm
    assert re.search(r'^cgrpy_sm_authorizations_total\{outcome="authorized"\} 1(\.0)?$', sm, re.M), sm
    assert re.search(r'^cgrpy_sm_reply_seconds_count\{method="SessionSv1.AuthorizeEventWithDigest"\} 1(\.0)?$',
                     sm, re.M), sm
    assert re.search(r'^cgrpy_cdrs_processed_total\{[^}]*\} [1-9]', cdre, re.M), cdre
    # Stats2 (FLTR_ACNT_1001_1002, *tcc;*tcd) counted the call
    assert re.search(r'^cgrpy_stats_metric_value\{[^}]*queue="Stats2"', stats, re.M), stats


@pytest.mark.parametrize(("where", "expr"), [("alert " + a, e) for a, e in alert_exprs()]
                         + [("panel " + p, e) for p, e in panel_exprs()])
def test_every_queried_metric_is_in_the_live_output(live_metrics: dict[str, str], where: str, expr: str):
    exposed = set().union(*(exposed_names(t) for t in live_metrics.values())) | {"up"}  # `up`: Prometheus's own
    used = metric_names(expr)
    assert used, f"{where}: no metric in {expr!r}"
    assert used <= exposed, f"{where}: {sorted(used - exposed)} not in any service's /metrics"


def test_a_renamed_metric_is_caught(live_metrics: dict[str, str]):
    exposed = set().union(*(exposed_names(t) for t in live_metrics.values()))
    assert "cgrpy_sm_calls_started_total" in exposed
    assert not metric_names("sum(rate(cgrpy_sm_calls_begun_total[1m]))") <= exposed


def test_chosen_supplier_is_recorded_in_the_stored_cdr(suite: Suite, live_metrics: dict[str, str]):
    # what opensips.cfg's branch route puts in $cgr(Supplier) reaches the CDR (ExtraFields)
    async def stored() -> list:
        async with grpc.aio.insecure_channel(suite.addr("cdre")) as ch:
            flt = cdre_pb2.CDRFilter(origin_ids=["prom-live-1@127.0.0.1"])
            return list((await cdre_pb2_grpc.CdrServiceStub(ch).GetCDRs(flt)).cdrs)

    cdrs = asyncio.run(stored())
    assert {c.run_id for c in cdrs} == {"*default", "*raw"}
    assert {c.extra_fields["Supplier"] for c in cdrs} == {"supplier1"}


def test_per_supplier_asr_and_acd_reach_prometheus(prometheus: str, live_metrics: dict[str, str]):
    # the series the ASR/ACD panels and the CgrpyAsrLow/CgrpyAcdLow alerts read, per supplier
    def value(metric: str) -> str | None:
        q = f'cgrpy_stats_metric_value{{queue="STATS_SUPPLIER1",metric="{metric}"}}'
        result = http_json(f"{prometheus}/api/v1/query?query=" + urllib.parse.quote(q))["result"]
        return result[0]["value"][1] if result else None

    deadline = time.monotonic() + 15
    while (value("*asr") is None or value("*acd") is None) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (value("*asr"), value("*acd")) == ("100", "2"), re.findall(r"^cgrpy_stats.*$", live_metrics["stats"], re.M)
