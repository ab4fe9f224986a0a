"""Shared helpers for the loader tests: copy/break tariff-plan folders, dump every tp table."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from sqlalchemy import Engine, select

from cgrpy.storage.models.tp import TP_TABLES, tariffplans
from cgrpy.tariffplan.columns import FILE_COLUMNS
from tests.conftest import TARIFFPLANS


def copy_plan(tmp_path: Path, name: str = "tutorial") -> Path:
    dst = tmp_path / name
    shutil.copytree(TARIFFPLANS / name, dst)
    return dst


def set_line(folder: Path, file: str, lineno: int, text: str) -> None:
    """Replace 1-based line ``lineno`` of ``file``."""
    path = folder / file
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def append_line(folder: Path, file: str, text: str) -> int:
    """Append a line; returns its 1-based number."""
    path = folder / file
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append(text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def count_rows(folder: Path) -> dict[str, int]:
    """Data rows per file, counted independently of the loader: csv rows that are not blank
    and not ``#`` comments."""
    counts = {name: 0 for name in FILE_COLUMNS}
    for name in FILE_COLUMNS:
        path = folder / f"{name}.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as fh:
            for cells in csv.reader(fh):
                if cells and any(cells) and not cells[0].startswith("#"):
                    counts[name] += 1
    return counts


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every tp table (and the tariffplans register), in primary-key order."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in [*TP_TABLES.values(), tariffplans]:
            pk = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*pk))]
    return out
