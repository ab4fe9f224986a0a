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
