"""deploy/prometheus: every service's metrics port is scraped; promtool accepts the files."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from cgrpy.config import METRICS_PORTS, SERVICES

from .deployfiles import ALERTS, PROMETHEUS, compose

CONFIG = yaml.safe_load(PROMETHEUS.read_text())


def _cgrpy_targets() -> dict[str, str]:
    job = next(j for j in CONFIG["scrape_configs"] if j["job_name"] == "cgrpy")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    out = {}
    for sc in job["static_configs"]:
        for target in sc["targets"]:
            out[sc["labels"]["service"]] = target
    return out


def test_every_service_metrics_port_is_scraped():
    assert _cgrpy_targets() == {name: f"{name}:{METRICS_PORTS[name]}" for name in SERVICES}


def test_scraped_hosts_are_compose_services():
    services = compose()["services"]
    for target in _cgrpy_targets().values():
        assert target.split(":")[0] in services


def test_alert_rules_file_is_loaded_and_mounted_beside_config():
    assert CONFIG["rule_files"] == ["alerts.yml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_check_config():
    out = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_check_rules():
    out = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
