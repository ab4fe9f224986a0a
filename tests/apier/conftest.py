"""One real suite (`cgr up` on a fresh Postgres) per test module, with JSON-RPC clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.apier.jsonrpc_client import HttpClient, TcpClient
from tests.suite import REPO, Suite, suite_env

TUTORIAL = REPO / "tariffplans" / "tutorial"


def start_suite(pg_databases, *args: str, **env: str) -> Iterator[Suite]:
    url = pg_databases.create()
    with Suite(suite_env(url, **env), *args) as s:
        yield s


@pytest.fixture(scope="module")
def suite(pg_databases) -> Iterator[Suite]:
    yield from start_suite(pg_databases, "--tariffplan", str(TUTORIAL))


@pytest.fixture(params=["tcp", "http"])
def api(request, suite):
    """The same contract over both transports."""
    if request.param == "tcp":
        c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
        yield c
        c.close()
    else:
        yield HttpClient(suite.env["CGRPY_HTTP_LISTEN"])


@pytest.fixture
def tcp(suite):
    c = TcpClient(suite.env["CGRPY_JSONRPC_LISTEN"])
    yield c
    c.close()


@pytest.fixture
def http(suite):
    return HttpClient(suite.env["CGRPY_HTTP_LISTEN"])
