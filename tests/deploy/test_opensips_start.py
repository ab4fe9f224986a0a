"""A real OpenSIPS starts on the shipped deploy/opensips/opensips.cfg with no ERROR/CRITICAL line.

`opensips -C` only parses: module parameters and function flags (lookup's named flags, for one)
are checked when OpenSIPS really starts. Needs an OpenSIPS binary (``OPENSIPS_BIN`` or
``opensips`` on PATH) with the modules the script loads; skipped otherwise.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.suite import free_port

from .realosips import (
    RealOpenSIPS,
    create_opensips_tables,
    loopback_cfg,
    module_dir,
    opensips_bin,
    schema_dir,
)


class Acceptor:
    """A TCP listener where the cgrates module connects at start-up (SM's port)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def real_opensips_or_skip(tmp_path: Path, pg_url: str, sm_addr: str, sm_addr2: str = "") -> RealOpenSIPS:
    binary = opensips_bin()
    if binary is None:
        pytest.skip("no OpenSIPS binary: set OPENSIPS_BIN or put opensips on PATH")
    mpath, schemas = module_dir(binary), schema_dir(binary)
    if mpath is None or schemas is None:
        pytest.skip(f"{binary}: module folder or Postgres schema scripts not found "
                    "(set OPENSIPS_MPATH / OPENSIPS_SCHEMA_DIR)")
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    create_opensips_tables(libpq, schemas)
    db = "postgres://" + libpq.split("://", 1)[1].replace(":5432/", "/")
    mi_port = free_port()
    cfg = tmp_path / "opensips.cfg"
    cfg.write_text(loopback_cfg(mpath=mpath, db=db, sip_port=free_port(socket.SOCK_DGRAM),
                                mi_port=mi_port, sm_addr=sm_addr, sm_addr2=sm_addr2))
    return RealOpenSIPS(binary, cfg, tmp_path / "opensips.log", mi_port)


@pytest.fixture
def sm_acceptor() -> Iterator[Acceptor]:
    acc = Acceptor()
    yield acc
    acc.close()


def test_shipped_cfg_starts_clean_on_real_opensips(tmp_path: Path, pg_url: str, sm_acceptor: Acceptor) -> None:
    osips = real_opensips_or_skip(tmp_path, pg_url, f"127.0.0.1:{sm_acceptor.port}")
    osips.check()
    try:
        osips.start()
        time.sleep(2)  # workers connect to SM, DRouting and usrloc load from the database
        assert osips.mi("dr_reload").get("result") == "OK"
        assert osips.mi("ul_dump").get("result") is not None
    finally:
        osips.stop()
    log = osips.log_text()
    assert osips.problems() == [], "\n".join(osips.problems())
    assert "loaded 0 (discarded 0) gateways" in log
    assert sm_acceptor.conns, "the cgrates module never connected to SM"
