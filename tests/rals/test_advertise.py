"""The address a RALs process publishes with its partitions (peers forward an account's requests
there): the advertised one, never a wildcard listen address another process cannot dial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from cgrates.v1 import common_pb2, rals_pb2, rals_pb2_grpc
from cgrpy.config import ConfigError, load_settings
from cgrpy.netaddr import advertise_problem, advertised_address, is_wildcard
from cgrpy.runtime.healthcheck import check
from services.rals.partitions import partition_of
from tests.harness import load_tariffplan
from tests.suite import REPO, free_ports

TENANT = "cgrates.org"


def test_advertised_address_rules() -> None:
    assert advertised_address("", "127.0.0.1", 20053) == "127.0.0.1:20053"  # a concrete listen
    assert advertised_address("", "0.0.0.0", 20053) == ""  # a wildcard and nothing set: none
    assert advertised_address("", "::", 20053) == "" and advertised_address("", "[::]", 1) == ""
    assert advertised_address("10.244.1.7", "0.0.0.0", 20053) == "10.244.1.7:20053"  # pod IP
    assert advertised_address("10.0.0.1:30053", "0.0.0.0", 20053) == "10.0.0.1:30053"
    assert advertised_address("fd00::7", "::", 20053) == "[fd00::7]:20053"
    assert advertised_address("[fd00::7]:9", "::", 20053) == "[fd00::7]:9"
    assert advertised_address("rals-0.rals", "0.0.0.0", 20053) == "rals-0.rals:20053"
    assert advertised_address("*hostname", "0.0.0.0", 5).endswith(":5")
    assert is_wildcard("0.0.0.0") and is_wildcard("*") and not is_wildcard("10.0.0.1")


def test_a_wildcard_cannot_be_advertised() -> None:
    assert advertise_problem("0.0.0.0") and advertise_problem("[::]:20053")
    assert advertise_problem("10.0.0.1:http")
    assert advertise_problem("10.0.0.1") is None and advertise_problem("*hostname") is None
    with pytest.raises(ConfigError, match="rals_advertise"):
        load_settings(env={"CGRPY_RALS_ADVERTISE": "0.0.0.0"})


def _start(db_url: str, port: int, metrics: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGRPY_")}
    env.update({"CGRPY_STORDB_URL": db_url, "CGRPY_LISTEN_HOST": "0.0.0.0",
                "CGRPY_RALS_GRPC_PORT": str(port), "CGRPY_RALS_METRICS_PORT": str(metrics),
                "CGRPY_GRACE_PERIOD": "1s", **extra})
    return subprocess.Popen([sys.executable, "-m", "services.rals"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def wildcard_pair(pg_url: str) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    """Two RALs processes listening on 0.0.0.0: A advertises 127.0.0.1, B nothing."""
    load_tariffplan(pg_url, "tutorial")
    pa, ma, pb, mb = free_ports(4)
    procs = [_start(pg_url, pa, ma, CGRPY_RALS_ADVERTISE="127.0.0.1"), _start(pg_url, pb, mb)]
    addrs = [f"127.0.0.1:{pa}", f"127.0.0.1:{pb}"]
    try:
        deadline = time.monotonic() + 60
        for proc, addr in zip(procs, addrs, strict=True):
            while check(addr, "", 0.5) != "SERVING":
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                assert time.monotonic() < deadline, f"rals at {addr} not SERVING"
                time.sleep(0.1)
        yield addrs, procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _lease_names(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        rows = c.execute("SELECT application_name FROM pg_stat_activity WHERE datname = "
                         "current_database() AND application_name LIKE 'cgrpy-rals%'").fetchall()
    return {r[0] for r in rows}


def _two_accounts_in_distinct_partitions() -> tuple[str, str]:
    a = "adv-a"
    b = next(f"adv-b{i}" for i in range(100) if partition_of(TENANT, f"adv-b{i}") != partition_of(TENANT, a))
    return a, b


def test_wildcard_listeners_publish_the_advertised_address(
    wildcard_pair: tuple[list[str], list[subprocess.Popen[bytes]]], pg_url: str,
) -> None:
    addrs, procs = wildcard_pair
    acc_a, acc_b = _two_accounts_in_distinct_partitions()
    chans = [grpc.insecure_channel(a) for a in addrs]
    try:
        stubs = [rals_pb2_grpc.RalsServiceStub(c) for c in chans]
        for stub, acc in zip(stubs, (acc_a, acc_b), strict=True):  # each takes one partition
            stub.SetBalance(rals_pb2.SetBalanceRequest(
                tenant=TENANT, account=acc, balance_type="*monetary", value="10",
                balance=rals_pb2.Balance(id="b")), timeout=30)
        own = [s.GetOwnership(common_pb2.Empty(), timeout=5) for s in stubs]
        assert own[0].advertised == addrs[0] and own[0].mode == "advisory-locks"
        assert own[1].advertised == ""  # 0.0.0.0 and nothing set: publishes nothing
        assert list(own[0].partitions) == [partition_of(TENANT, acc_a)]
        assert list(own[1].partitions) == [partition_of(TENANT, acc_b)]
        # the published names: A's dialable address, never 0.0.0.0
        assert _lease_names(pg_url) == {f"cgrpy-rals {addrs[0]}", "cgrpy-rals"} or \
            _lease_names(pg_url) == {f"cgrpy-rals {addrs[0]}", "cgrpy-rals "}
        # B asked about A's account: forwarded to A (B does not take A's partition)
        for _ in range(3):
            acc = stubs[1].GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=acc_a), timeout=10)
            assert [b.value for b in acc.balances] == ["10"]
        assert list(stubs[1].GetOwnership(common_pb2.Empty(), timeout=5).partitions) == \
            [partition_of(TENANT, acc_b)]
        # A asked about B's account: B has no address, A serves it on the locked path, exactly
        stubs[0].AddBalance(rals_pb2.SetBalanceRequest(
            tenant=TENANT, account=acc_b, balance_type="*monetary", value="5",
            balance=rals_pb2.Balance(id="b")), timeout=30)
        acc = stubs[1].GetAccount(rals_pb2.AccountRequest(tenant=TENANT, account=acc_b), timeout=10)
        assert [b.value for b in acc.balances] == ["15"]
    finally:
        for c in chans:
            c.close()
    procs[1].send_signal(signal.SIGINT)
    procs[1].wait(timeout=15)
    err = procs[1].stderr.read().decode()  # type: ignore[union-attr]
    assert "rals.no_advertise_address" in err and "CGRPY_RALS_ADVERTISE" in err
