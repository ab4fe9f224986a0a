"""`cgr status` lists every replica: local ones on the port rule, the addresses of a dns:///
name (a Kubernetes headless Service) one by one, an explicit list as given."""

from __future__ import annotations

from cgrpy.cli import status
from cgrpy.config import load_settings


def test_local_replicas_follow_the_port_rule():
    s = load_settings(env={"CGRPY_REPLICAS": "3"})
    reps = status.replicas(s, "cdre")
    assert [(r["grpc"], r["metrics"]) for r in reps] == [
        ("127.0.0.1:20057", "127.0.0.1:9157"), ("127.0.0.1:20157", "127.0.0.1:9257"),
        ("127.0.0.1:20257", "127.0.0.1:9357")]
    assert [r["grpc"] for r in status.replicas(s, "rals")] == ["127.0.0.1:20053"]  # not stateless
    sm = status.replicas(s, "sm")
    assert sm[0]["opensips"] == "127.0.0.1:2014" and sm[0]["jsonrpc"] == "127.0.0.1:2012"


def test_a_dns_name_is_listed_address_by_address(monkeypatch):
    async def fake_resolve(target: str) -> list[str]:
        assert target == "dns:///attributes:20051"
        return ["10.1.0.7:20051", "10.1.0.9:20051"]

    monkeypatch.setattr(status, "resolve", fake_resolve)
    s = load_settings(env={"CGRPY_ATTRIBUTES_ADDR": "dns:///attributes:20051",
                           "CGRPY_CHARGERS_ADDR": "10.0.0.1:1,10.0.0.2:1"})
    assert [(r["grpc"], r["metrics"]) for r in status.replicas(s, "attributes")] == [
        ("10.1.0.7:20051", None), ("10.1.0.9:20051", None)]  # metrics port unknown: explicit
    assert [r["grpc"] for r in status.replicas(s, "chargers")] == ["10.0.0.1:1", "10.0.0.2:1"]


def test_a_name_that_does_not_resolve_stays_listed(monkeypatch):
    async def no_answer(target: str) -> list[str]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(status, "resolve", no_answer)
    s = load_settings(env={"CGRPY_ATTRIBUTES_ADDR": "dns:///attributes:20051"})
    assert [r["grpc"] for r in status.replicas(s, "attributes")] == ["dns:///attributes:20051"]


def test_status_names_the_resources_owner():
    """One partition holds every resource: the owner says so, the other replica passes on."""
    own = {"mode": "advisory-locks", "partitions": [7], "partitions_total": 64,
           "advertised": "127.0.0.1:20059"}
    assert status._owns("resources", {"ownership": own}) == "  owner of every resource as 127.0.0.1:20059"
    other = {**own, "partitions": [], "advertised": "127.0.0.1:20159"}
    assert status._owns("resources", {"ownership": other}) == "  passes requests to the owner"
    s = load_settings(env={"CGRPY_REPLICAS": "2", "CGRPY_STORDB_URL": "postgresql+psycopg://x@h/db"})
    assert [r["grpc"] for r in status.replicas(s, "resources")] == ["127.0.0.1:20059", "127.0.0.1:20159"]
