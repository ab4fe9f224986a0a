"""deploy/kubernetes/: every object valid for a pinned Kubernetes version (kubernetes-validate,
its bundled schemas, strict: an unknown field fails), and consistent with cgrpy's settings and
with deploy/compose.yaml. No cluster is needed (docs/kubernetes.md says what was tried)."""

from __future__ import annotations

import copy
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from cgrpy.config import _NON_KEY_ENV, GRPC_PORTS, KEYS, METRICS_PORTS, SERVICES, load_settings

from .deployfiles import DEPLOY, compose, env_of
from .kustomize import KustomizeError, by_key, render

# Native gRPC probes are GA from 1.27; 1.30 is the oldest release the manifests are checked for.
KUBERNETES_VERSION = "1.30.0"
K8S = DEPLOY / "kubernetes"
OVERLAYS = ("example", "replicas")
STATELESS = ("attributes", "chargers", "suppliers", "cdre")
SCALED = (*STATELESS, "rals", "stats", "thresholds", "resources", "sm")  # several replicas in the replicas overlay
STACK = compose()["services"]


def rendered(overlay: str) -> dict[tuple[str, str], dict]:
    return by_key(render(K8S / "overlays" / overlay))


EXAMPLE = rendered("example")
REPLICAS = rendered("replicas")


def workload(objs: dict, name: str) -> dict:
    found = [o for (kind, n), o in objs.items() if n == name and kind in ("Deployment", "StatefulSet")]
    assert len(found) == 1, f"one Deployment or StatefulSet named {name}"
    return found[0]


def main_container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


def ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(overlay):
    objs = render(K8S / "overlays" / overlay)
    assert len(objs) >= 3 * len(SERVICES) + 4  # workload, Service, PDB each; namespace, config, job, secret
    for obj in objs:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_can_fail():
    bad = copy.deepcopy(workload(EXAMPLE, "rals"))
    probe = main_container(bad)["readinessProbe"]
    probe["grcp"] = probe.pop("grpc")  # a typo strict validation must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    bad = copy.deepcopy(workload(EXAMPLE, "rals"))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_renderer_refuses_what_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatches: []\n")
    with pytest.raises(KustomizeError, match="patches"):
        render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renderer_agrees_with_real_kustomize(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    real = by_key([d for d in yaml.safe_load_all(out) if d])
    assert real == rendered(overlay)


def test_one_workload_per_service_and_nothing_else():
    names = {n for (kind, n) in EXAMPLE if kind in ("Deployment", "StatefulSet")}
    assert names == {*SERVICES, "postgres"}


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_its_module_from_the_compose_image(name):
    obj = workload(EXAMPLE, name)
    c = main_container(obj)
    assert c["command"] == STACK[name]["command"] == ["python", "-m", f"services.{name}"]
    assert c["image"] == STACK[name]["image"]  # cgrpy:local in both
    assert {e["name"]: e.get("value") for e in c["env"]}["CGRPY_SERVICE"] == name
    assert obj["metadata"]["namespace"] == "cgrpy"


@pytest.mark.parametrize("name", SERVICES)
def test_ports_match_the_settings_defaults(name):
    c = main_container(workload(EXAMPLE, name))
    assert ports(c)["grpc"] == GRPC_PORTS[name] == load_settings(env={}).grpc_port(name)
    assert ports(c)["metrics"] == METRICS_PORTS[name]
    ann = workload(EXAMPLE, name)["spec"]["template"]["metadata"]["annotations"]
    assert ann == {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORTS[name]),
                   "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("name", SERVICES)
def test_probes_are_grpc_health_on_the_grpc_port(name):
    c = main_container(workload(EXAMPLE, name))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"] == {"port": GRPC_PORTS[name]}, probe  # service "" = the whole process
    # a big tariff plan may load for minutes: the startup probe must allow longer than cgr up does
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= KEYS["startup_timeout"].default / 1e9


@pytest.mark.parametrize("name", SERVICES)
def test_resources_match_compose_limits(name):
    res = main_container(workload(EXAMPLE, name))["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"]
    limits = STACK[name]["deploy"]["resources"]["limits"]
    assert float(res["limits"]["cpu"]) == float(limits["cpus"])
    assert res["limits"]["memory"] == limits["memory"].replace("M", "Mi").replace("G", "Gi")


@pytest.mark.parametrize("name", SERVICES)
def test_headless_service_and_disruption_budget(name):
    svc = EXAMPLE[("Service", name)]
    assert svc["spec"]["clusterIP"] == "None"  # DNS answers every ready pod: clients balance
    assert svc["spec"]["selector"] == workload(EXAMPLE, name)["spec"]["selector"]["matchLabels"]
    svc_ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert svc_ports["grpc"] == GRPC_PORTS[name] and svc_ports["metrics"] == METRICS_PORTS[name]
    pdb = EXAMPLE[("PodDisruptionBudget", name)]
    assert pdb["spec"]["selector"] == workload(EXAMPLE, name)["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("name", SERVICES)
def test_env_names_only_real_settings_and_the_secret_url(name):
    obj = workload(EXAMPLE, name)
    containers = obj["spec"]["template"]["spec"]["initContainers"] + [main_container(obj)]
    for c in containers:
        # the shared settings, and the API token from its Secret (README "Security")
        assert c["envFrom"] == [{"configMapRef": {"name": "cgrpy-env"}},
                                {"secretRef": {"name": "cgrpy-api-token"}}]
        env = {e["name"]: e for e in c["env"]}
        assert env["CGRPY_STORDB_URL"]["valueFrom"] == {
            "secretKeyRef": {"name": "cgrpy-stordb", "key": "uri"}}
        for var in env:
            assert var in _NON_KEY_ENV or var.removeprefix("CGRPY_").lower() in KEYS, var


@pytest.mark.parametrize("name", SERVICES)
def test_waits_for_the_tariff_plan_before_starting(name):
    init = workload(EXAMPLE, name)["spec"]["template"]["spec"]["initContainers"]
    assert [i["command"][:3] for i in init] == [["cgr", "migrate", "--wait-loaded"]]


def test_api_token_secret_holds_only_the_token_setting():
    data = EXAMPLE[("Secret", "cgrpy-api-token")]["stringData"]
    assert list(data) == ["CGRPY_API_TOKEN"] and len(data["CGRPY_API_TOKEN"]) >= 32


def _config_env() -> dict[str, str]:
    data = dict(EXAMPLE[("ConfigMap", "cgrpy-env")]["data"])
    data["CGRPY_STORDB_URL"] = EXAMPLE[("Secret", "cgrpy-stordb")]["stringData"]["uri"]
    return {k: v for k, v in data.items() if k.startswith("CGRPY_")}


def test_configmap_is_valid_settings_consistent_with_compose():
    settings = load_settings(env=_config_env())  # raises on an unknown or malformed setting
    compose_env = env_of(STACK["sm"])
    assert settings.stordb_url == compose_env["CGRPY_STORDB_URL"]
    assert settings.tpid == compose_env["CGRPY_TPID"] and settings.listen_host == "0.0.0.0"
    for name in SERVICES:
        targets = settings.addrs(name)
        assert len(targets) == 1
        assert targets[0].removeprefix("dns:///") == compose_env[f"CGRPY_{name.upper()}_ADDR"]
        # the stateless ones are reached through DNS: every ready replica of the headless Service
        assert targets[0].startswith("dns:///") == (name in SCALED and name != "sm"), name


def test_replicas_overlay_scales_the_stateless_services_and_rals():
    for name in SERVICES:
        assert workload(EXAMPLE, name)["spec"]["replicas"] == 1
        assert workload(REPLICAS, name)["spec"]["replicas"] == (2 if name in SCALED else 1), name


@pytest.mark.parametrize("name", ["rals", "stats", "thresholds", "resources"])
def test_partitioned_services_advertise_their_pod_ip(name: str) -> None:
    """A rals (stats, thresholds) pod listens on 0.0.0.0; the others forward requests to the
    owner of an account (queue, threshold) at the address it publishes: the pod IP from the
    downward API, a valid <name>_advertise value."""
    var = f"CGRPY_{name.upper()}_ADVERTISE"
    env = {e["name"]: e for e in main_container(workload(EXAMPLE, name))["env"]}
    ref = env[var]["valueFrom"]["fieldRef"]
    assert ref["fieldPath"] == "status.podIP"
    settings = load_settings(env={**_config_env(), var: "10.244.1.7"})
    assert settings.get(f"{name}_advertise") == "10.244.1.7"
    assert env_of(STACK[name])[var] == "*hostname"  # compose: the container's IP


def test_identity_only_where_it_matters():
    kinds = {name: workload(EXAMPLE, name)["kind"] for name in SERVICES}
    assert {n for n, k in kinds.items() if k == "StatefulSet"} == {"sm"}
    sm = workload(EXAMPLE, "sm")
    assert sm["spec"]["serviceName"] == "sm"
    spool = load_settings(env={k: v["value"] for k, v in
                               {e["name"]: e for e in main_container(sm)["env"]}.items()
                               if "value" in v and k.startswith("CGRPY_")}).sm_spool_path
    mounts = {m["name"]: m["mountPath"] for m in main_container(sm)["volumeMounts"]}
    assert spool.startswith(mounts["spool"] + "/")  # spool and sessions on the pod's own volume
    assert [t["metadata"]["name"] for t in sm["spec"]["volumeClaimTemplates"]] == ["spool"]
    # the lease is in Postgres: a rolling update starts the new pod before the old one stops
    assert workload(EXAMPLE, "resources")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_sm_listeners_match_settings_and_compose():
    c = main_container(workload(EXAMPLE, "sm"))
    env = {e["name"]: e.get("value") for e in c["env"]}
    compose_env = env_of(STACK["sm"])
    defaults = load_settings(env={})
    for key, port_name in (("opensips_listen", "opensips"), ("opensips_event_listen", "opensips-events"),
                           ("jsonrpc_listen", "jsonrpc"), ("http_listen", "http")):
        var = f"CGRPY_{key.upper()}"
        assert env[var] == compose_env[var]
        port = int(defaults.get(key).rpartition(":")[2])
        assert ports(c)[port_name] == port == int(env[var].rpartition(":")[2])
    proto = {p["name"]: p["protocol"] for p in c["ports"]}
    assert proto["opensips-events"] == "UDP" and proto["opensips"] == "TCP"


def test_migrate_load_job_matches_compose():
    job = EXAMPLE[("Job", "migrate-load")]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == STACK["migrate-load"]["image"]
    script = " ".join(c["command"])
    assert 'cgr migrate --db-url "$CGRPY_STORDB_URL"' in script
    assert "cgr load /usr/share/cgrpy/tariffplans/tutorial" in script and '--tpid "$CGRPY_TPID"' in script
    assert "cgr migrate" in " ".join(STACK["migrate-load"]["command"])


def test_example_postgres_matches_compose():
    pg = workload(EXAMPLE, "postgres")
    c = main_container(pg)
    assert c["image"] == STACK["postgres"]["image"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "cgrpy-stordb", "key": "password"}
    secret = EXAMPLE[("Secret", "cgrpy-stordb")]["stringData"]
    assert f":{secret['password']}@postgres:5432/" in secret["uri"]
