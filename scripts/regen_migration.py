"""Regenerate the single initial Alembic revision from ALL models in ``cgrpy.storage.models``.

Nothing is released yet, so the history is one revision. Whoever changes a model reruns:

    .venv/bin/python scripts/regen_migration.py

It autogenerates against a fresh temporary SQLite database (so the output does not depend on
any existing database), pins the revision id and the date line, and rewrites
``cgrpy/storage/migrations/versions/0001_initial.py``. Running it twice gives the same file.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import MIGRATIONS_DIR, alembic_config

REVISION = "0001"
TARGET = MIGRATIONS_DIR / "versions" / f"{REVISION}_initial.py"


def regenerate() -> Path:
    # Generate into a temporary versions folder and swap the file in at the end, so services or
    # tests starting meanwhile never see an empty history.
    with tempfile.TemporaryDirectory() as tmp:
        versions = Path(tmp) / "versions"
        versions.mkdir()
        engine = make_engine(f"sqlite:///{Path(tmp) / 'regen.sqlite'}")
        try:
            with engine.begin() as conn:
                cfg = alembic_config(conn)
                cfg.set_main_option("version_locations", str(versions))
                cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
                command.revision(cfg, message="initial", autogenerate=True, rev_id=REVISION)
        finally:
            engine.dispose()
        body = (versions / TARGET.name).read_text()
    body = re.sub(r"\n+Create Date: .*\n", "\n", body)
    # Autogenerate leaves a "commands auto generated" banner: drop it so reruns are byte-equal.
    body = re.sub(r"[ \t]*# ### .*### *\n", "", body)
    body = re.sub(r"[ \t]+\n", "\n", body)
    # First-party imports of custom column types form their own isort section (ruff-clean).
    body = re.sub(r"\nfrom alembic import op\n(import cgrpy)", "\nfrom alembic import op\n\n\\1", body)
    body = re.sub(r"\n{3,}revision:", "\n\nrevision:", body)
    for old in (MIGRATIONS_DIR / "versions").glob("*.py"):
        if old.name not in ("__init__.py", TARGET.name):
            old.unlink()
    staged = TARGET.with_suffix(".py.new")
    staged.write_text(body)
    staged.replace(TARGET)
    return TARGET


if __name__ == "__main__":
    path = regenerate()
    print(f"wrote {path}", file=sys.stderr)
