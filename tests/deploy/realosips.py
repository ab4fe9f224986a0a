"""Start a real OpenSIPS on the shipped deploy/opensips/opensips.cfg, on loopback.

The binary comes from ``OPENSIPS_BIN`` or ``opensips`` on PATH; tests skip with a reason when
there is none. The shipped file is turned into a loopback copy by a few exact rewrites (each must
match, so a changed file fails here instead of silently starting something else): module folder
of that binary, SIP socket and MI port on 127.0.0.1, the stack's Postgres URL to a test database,
the `sm` host name to the address where SM (or a listener standing in its place) listens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .deployfiles import OPENSIPS_CFG

STARTUP_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|ALERT|EMERGENCY):")
SCHEMAS = ("standard", "drouting", "usrloc")


def opensips_bin() -> Path | None:
    found = os.environ.get("OPENSIPS_BIN") or shutil.which("opensips")
    return Path(found) if found and Path(found).is_file() else None


def module_dir(binary: Path) -> Path | None:
    """The folder of modules that belongs to ``binary`` (source tree or installed prefix)."""
    if os.environ.get("OPENSIPS_MPATH"):
        return Path(os.environ["OPENSIPS_MPATH"])
    prefix = binary.resolve().parent.parent
    for cand in (binary.resolve().parent / "modules",  # a source tree: modules/<m>/<m>.so
                 prefix / "lib/x86_64-linux-gnu/opensips/modules",
                 prefix / "lib64/opensips/modules", prefix / "lib/opensips/modules"):
        if (cand / "tm.so").exists() or (cand / "tm" / "tm.so").exists():
            return cand
    return None


def schema_dir(binary: Path) -> Path | None:
    """OpenSIPS's own Postgres table scripts (``<module>-create.sql``) shipped with ``binary``."""
    if os.environ.get("OPENSIPS_SCHEMA_DIR"):
        return Path(os.environ["OPENSIPS_SCHEMA_DIR"])
    here = binary.resolve().parent
    for cand in (here / "scripts/postgres", here.parent / "share/opensips/postgres",
                 Path("/usr/share/opensips/postgres")):
        if (cand / "drouting-create.sql").exists():
            return cand
    return None


def create_opensips_tables(libpq_url: str, schemas: Path) -> None:
    """What ``opensips-cli -x database create`` does for the modules the script uses."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        for name in SCHEMAS:
            conn.execute((schemas / f"{name}-create.sql").read_text())


def _sub(text: str, pattern: str, repl: str, count: int) -> str:
    out, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == count, f"opensips.cfg: expected {count} x {pattern!r}, found {n}"
    return out


def loopback_cfg(*, mpath: Path, db: str, sip_port: int, mi_port: int, sm_addr: str,
                 sm_addr2: str = "") -> str:
    """The shipped script with loopback addresses; ``db`` is OpenSIPS's URL ``postgres://u@h/db``;
    the second engine (SM replica) at ``sm_addr2``, or ``sm_addr`` too."""
    text = OPENSIPS_CFG.read_text()
    text = _sub(text, r'^mpath="[^"]*"', f'mpath="{mpath}/"', 1)
    text = _sub(text, r"^socket=udp:eth0:5060$", f"socket=udp:127.0.0.1:{sip_port}", 1)
    text = _sub(text, r'"postgres://cgrpy:cgrpy@postgres/opensips"', f'"{db}"', 2)
    text = _sub(text, r'"cgrates_engine", "sm:2014"', f'"cgrates_engine", "{sm_addr}"', 1)
    text = _sub(text, r'"cgrates_engine", "sm-2:2014"', f'"cgrates_engine", "{sm_addr2 or sm_addr}"', 1)
    text = _sub(text, r'^modparam\("httpd", "port", 8888\)$',
                f'modparam("httpd", "port", {mi_port})\nmodparam("httpd", "ip", "127.0.0.1")', 1)
    return text


@dataclass
class RealOpenSIPS:
    binary: Path
    cfg: Path
    log: Path
    mi_port: int
    proc: subprocess.Popen[bytes] | None = None

    def check(self) -> str:
        """``opensips -C``: parse only."""
        out = subprocess.run([str(self.binary), "-C", "-f", str(self.cfg)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout + out.stderr

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen([str(self.binary), "-F", "-f", str(self.cfg)],
                                         stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"opensips exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                self.mi("uptime")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"opensips MI not up after {timeout}s:\n{self.log_text()}")

    def mi(self, method: str, params: dict[str, object] | None = None) -> object:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})
        req = urllib.request.Request(f"http://127.0.0.1:{self.mi_port}/mi", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if STARTUP_PROBLEM.search(line)]
