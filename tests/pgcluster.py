"""A private, throw-away Postgres cluster for tests that stop and start the database.

The machine's shared Postgres (127.0.0.1:5432) is used by everyone's tests, so a test that needs
a store outage gets its own cluster: ``initdb`` into a temporary directory with the Debian
binaries, run as the ``postgres`` OS user (Postgres refuses to run as root), on a free loopback
port, trust auth, its socket in the data directory. The fixture :func:`private_pg` yields the
running cluster and always stops and removes it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.suite import free_port

DB_NAME = "cgrpy"


def pg_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<v>/bin`` that has initdb (``CGRPY_PG_BINDIR`` overrides)."""
    if env := os.environ.get("CGRPY_PG_BINDIR"):
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("no Postgres server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PgCluster:
    """One private cluster: ``start()``/``stop()`` as often as the test needs, ``destroy()`` at the end."""

    def __init__(self, root: Path | None = None, port: int | None = None, user: str = "postgres") -> None:
        self.bindir = pg_bindir()
        self.user = user
        self.root = root or Path(tempfile.mkdtemp(prefix="cgrpy-pg-"))
        self.datadir = self.root / "data"
        self.port = port or free_port()
        self.logfile = self.root / "postgres.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def libpq_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.root)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                               f"\n{self.log_tail()}")
        return proc

    def init(self) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-sync", "-N")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", str(self.logfile), "-w", "start")
        self.wait_ready()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "stop", "-m", "fast", "-w")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_db(self, name: str = DB_NAME) -> None:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def destroy(self) -> None:
        if self.datadir.exists() and self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "stop", "-m", "immediate", "-w", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PgCluster]:
    """A running private cluster with an empty database ``cgrpy`` (``.url``); removed afterwards."""
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
        cluster.create_db()
        yield cluster
    finally:
        cluster.destroy()
