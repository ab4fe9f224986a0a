"""The compose service opensips-db succeeds only when OpenSIPS's tables exist.

Its command is run here as the container runs it (``sh -ec``), against the real Postgres, with
the admin URL and database name pointed at a test database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from .deployfiles import compose, env_of

SVC = compose()["services"]["opensips-db"]
DR_SCHEMA = Path(__file__).resolve().parents[1] / "drouting" / "opensips_dr_schema.sql"

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql (postgresql-client) not installed")


def run_opensips_db(pg_url: str, path: str) -> subprocess.CompletedProcess[str]:
    admin, name = pg_url.replace("postgresql+psycopg://", "postgresql://", 1).rsplit("/", 1)
    if "@" in admin and ":" not in admin.split("://", 1)[1].split("@", 1)[0]:
        admin = admin.replace("@", ":x@", 1)  # opensips-cli asks for a password when none is given
    env = {**env_of(SVC), "OPENSIPS_DB_ADMIN_URL": admin, "OPENSIPS_DB_NAME": name, "PATH": path}
    assert SVC["entrypoint"] == ["sh", "-ec"]
    return subprocess.run([shutil.which("sh") or "/bin/sh", "-ec", SVC["command"][0]], env=env, capture_output=True, text=True, timeout=120)


def _path_without_opensips_cli(tmp_path: Path) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("psql", "cat", "grep"):
        found = shutil.which(tool)
        if found and not (bindir / tool).exists():
            os.symlink(found, bindir / tool)
    return str(bindir)


def test_fails_with_the_real_error_when_the_tables_cannot_be_created(pg_url: str, tmp_path: Path):
    out = run_opensips_db(pg_url, _path_without_opensips_cli(tmp_path))
    assert out.returncode != 0, out.stdout
    assert "opensips-cli" in out.stderr and "not found" in out.stderr
    assert "created" not in out.stdout and "has its" not in out.stdout


def test_succeeds_when_the_tables_exist(pg_url: str, tmp_path: Path):
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(DR_SCHEMA.read_text())
        out = run_opensips_db(pg_url, _path_without_opensips_cli(tmp_path))
        assert out.returncode != 0  # DRouting alone is not enough: usrloc's location is missing
        conn.execute("CREATE TABLE location (contact_id BIGSERIAL PRIMARY KEY)")
    out = run_opensips_db(pg_url, _path_without_opensips_cli(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "has its DRouting and usrloc tables" in out.stdout


def test_creates_the_tables_with_opensips_cli(pg_url: str, tmp_path: Path):
    cli = shutil.which("opensips-cli")
    if cli is None:
        pytest.skip("opensips-cli not installed")
    out = run_opensips_db(pg_url, os.environ["PATH"])
    # the database exists already (the test created it): opensips-cli refuses, and says so
    assert out.returncode != 0
    assert "already exists" in (out.stdout + out.stderr)
