"""OpenSIPS reads the DRouting tables with the password the stack created Postgres with: the
compose file's preprocessor (`opensips -p`) rewrites drouting's db_url, run here the way OpenSIPS
runs it (command line split on whitespace, the script on stdin) with the real `sed`."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from .deployfiles import COMPOSE, OPENSIPS_CFG, env_of

SED = shutil.which("sed")
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_with(env: dict[str, str]) -> dict[str, Any]:
    """The compose file as docker compose interpolates it with ``env`` set (``${X:-d}``, ``$$``)."""
    def sub(value: Any) -> Any:
        if isinstance(value, str):
            return _VAR.sub(lambda m: env.get(m.group(1)) or m.group(2) or "", value).replace("$$", "$")
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value
    return sub(yaml.safe_load(COMPOSE.read_text()))


def preprocessed_cfg(services: dict[str, Any]) -> str:
    """opensips.cfg after the opensips service's ``-p`` preprocessor (as OpenSIPS execs it)."""
    cmd = services["opensips"]["command"]
    argv = cmd[cmd.index("-p") + 1].split()  # cfg_pp.c: strtok on " \t\r\n", then execvp
    assert SED is not None
    out = subprocess.run(argv, input=OPENSIPS_CFG.read_text(), capture_output=True, text=True, check=True)
    return out.stdout


def drouting_db_url(cfg: str, module: str = "drouting") -> str:
    m = re.search(rf'^modparam\("{module}", "db_url", "([^"]+)"\)', cfg, re.M)
    assert m, f"{module} db_url missing"
    return m.group(1)


@pytest.mark.skipif(SED is None, reason="sed not installed")
@pytest.mark.parametrize("password", [None, "S3cretPw", "long-pass_w0rd.2"])
def test_drouting_db_url_follows_the_stack_password(password: str | None):
    services = compose_with({"CGRPY_DB_PASSWORD": password} if password else {})["services"]
    pg = env_of(services["postgres"])
    cfg = preprocessed_cfg(services)
    for module in ("drouting", "usrloc"):
        url = drouting_db_url(cfg, module)
        assert url == f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres/opensips"
    assert pg["POSTGRES_PASSWORD"] == (password or "cgrpy")
    # the database opensips-db creates and drouting-sync fills is the one OpenSIPS reads
    assert f"//cgrpy:{pg['POSTGRES_PASSWORD']}@postgres:5432/opensips" in " ".join(services["drouting-sync"]["command"])
    db_env = env_of(services["opensips-db"])
    assert db_env["OPENSIPS_DB_ADMIN_URL"] == f"postgresql://cgrpy:{pg['POSTGRES_PASSWORD']}@postgres"
    assert db_env["OPENSIPS_DB_NAME"] == "opensips"
    # nothing else in the script changes
    original = OPENSIPS_CFG.read_text().splitlines()
    changed = [(a, b) for a, b in zip(original, cfg.splitlines(), strict=True) if a != b]
    assert len(changed) == (2 if password else 0), changed


def test_shipped_cfg_holds_the_default_the_preprocessor_replaces():
    # if someone edits the db_url in opensips.cfg, the sed pattern must still match it
    services = compose_with({})["services"]
    cmd = services["opensips"]["command"]
    pattern = cmd[cmd.index("-p") + 1].split()[1].split("#")[1]
    assert pattern in drouting_db_url(OPENSIPS_CFG.read_text())
    assert cmd[:2] == ["-f", "/etc/opensips/opensips.cfg"]
