"""Docs that must stay true: the README's configuration table is generated from cgrpy.config."""

from __future__ import annotations

import subprocess
import sys

from cgrpy.config import markdown_table
from tests.conftest import REPO


def test_readme_config_table_is_current():
    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- config-table:start -->") + len("<!-- config-table:start -->")
    end = readme.index("<!-- config-table:end -->")
    assert readme[start:end].strip() == markdown_table().strip(), "run: python scripts/update_readme.py"


def test_generated_protobuf_code_matches_protos():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_readme_no_stale_not_yet_on_prepaid_rounding():
    """The end-of-session rounding is charged (tests/rals/test_accounts_service.py,
    tests/e2e/test_opensips_scenarios.py): the README must not say otherwise."""
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "RefundRounding yet" not in readme and "is not charged" not in readme
    assert "rounding of a prepaid run is charged (e.g. 0.60835 -> 0.6084" in readme
