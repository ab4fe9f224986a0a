"""Add the next Alembic revision: what the models in ``cgrpy.storage.models`` have that the
landed revisions do not build.

    .venv/bin/python scripts/new_migration.py "sm sessions and cdr spool"

A revision that landed on main is frozen: an operator's StorDB may already be at it, and Alembic
never runs a revision twice, so an edit would never reach that database. Change the models, then
run this script; it autogenerates against a fresh temporary SQLite database upgraded to the
current head (so the output does not depend on any existing database), numbers the revision
after the last one, writes ``versions/NNNN_<slug>.py`` and appends its checksum to
``versions/SHA256SUMS`` (tests/storage/test_migrations.py refuses a landed file that changed).
Read the result before committing: autogenerate does not see renames or data to move.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import MIGRATIONS_DIR, alembic_config, upgrade_engine

VERSIONS = MIGRATIONS_DIR / "versions"
SUMS = VERSIONS / "SHA256SUMS"


def next_revision() -> str:
    numbers = [int(p.name[:4]) for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")]
    return f"{max(numbers, default=0) + 1:04d}"


def tidy(body: str) -> str:
    """Make the generated text stable and ruff-clean (the same models give the same file)."""
    body = re.sub(r"\n+Create Date: .*\n", "\n", body)
    body = re.sub(r"[ \t]*# ### .*### *\n", "", body)
    body = re.sub(r"[ \t]+\n", "\n", body)
    # first-party imports of custom column types form their own isort section
    body = re.sub(r"\nfrom alembic import op\n(import cgrpy)", "\nfrom alembic import op\n\n\\1", body)
    body = re.sub(r"\n{4,}def ", "\n\n\ndef ", body)
    return re.sub(r"\n{3,}revision:", "\n\nrevision:", body)


def generate(message: str) -> Path:
    rev = next_revision()
    with tempfile.TemporaryDirectory() as tmp:
        staged_dir = Path(tmp) / "versions"
        staged_dir.mkdir()
        engine = make_engine(f"sqlite:///{Path(tmp) / 'head.sqlite'}")
        try:
            upgrade_engine(engine)
            with engine.begin() as conn:
                cfg = alembic_config(conn)
                cfg.set_main_option("version_locations", f"{VERSIONS} {staged_dir}")
                cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
                cfg.set_main_option("truncate_slug_length", "60")
                script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev,
                                          version_path=str(staged_dir))
        finally:
            engine.dispose()
        staged = Path(script.path)  # type: ignore[union-attr]
        body = tidy(staged.read_text())
    if "op." not in body.split("def upgrade", 1)[1].split("def downgrade", 1)[0]:
        raise SystemExit("the models equal the head schema: no revision to add")
    target = VERSIONS / staged.name
    target.write_text(body)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with SUMS.open("a") as fh:
        fh.write(f"{digest}  {target.name}\n")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        raise SystemExit('usage: scripts/new_migration.py "what the revision adds"')
    print(f"wrote {generate(sys.argv[1].strip())}", file=sys.stderr)
