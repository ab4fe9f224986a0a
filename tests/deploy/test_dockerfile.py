"""Dockerfile and .dockerignore: slim Python 3.11, pip install ., non-root, HEALTHCHECK."""

from __future__ import annotations

import fnmatch
import re

from .deployfiles import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.split(None, 1)
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _all(kind: str) -> list[str]:
    return [args for k, args in INSTRUCTIONS if k.upper() == kind]


def test_slim_python_311_base():
    assert _all("FROM") == ["python:3.11-slim"]


def test_installs_the_package():
    assert any(re.search(r"\bpip install \.(\s|$|&)", run) for run in _all("RUN"))


def test_runs_as_non_root_user():
    users = _all("USER")
    assert users, "no USER"
    user = users[-1].split(":")[0].strip()
    assert user not in ("root", "0")
    # the user is created in the image before it is switched to
    assert any("useradd" in run and "10001" in run for run in _all("RUN"))


def test_healthcheck_is_a_real_grpc_check_of_the_service():
    hc = _all("HEALTHCHECK")
    assert len(hc) == 1
    assert 'cgr health --service "$CGRPY_SERVICE"' in hc[0]


def test_one_image_runs_any_service():
    cmd = _all("CMD")[-1]
    assert "python -m services.$CGRPY_SERVICE" in cmd
    assert "CGRPY_LISTEN_HOST=0.0.0.0" in " ".join(_all("ENV"))


def test_copied_sources_exist_and_are_not_dockerignored():
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    for args in _all("COPY"):
        if args.startswith("--from"):
            continue
        for src in args.split()[:-1]:
            assert (ROOT / src).exists(), src
            assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), f"{src} is dockerignored"
    for needed in ("cgrpy", "services", "cgrates", "pyproject.toml"):
        assert needed in DOCKERFILE


def test_image_can_run_the_smoke_test():
    # `docker compose exec sm cgr smoke --sip opensips:5060` needs SIPp in the cgrpy image
    assert re.search(r"apt-get -y install --no-install-recommends sip-tester", DOCKERFILE)
    assert DOCKERFILE.index("sip-tester") < DOCKERFILE.index("USER 10001")
