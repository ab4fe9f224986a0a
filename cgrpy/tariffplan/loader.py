"""Load a tariff-plan folder into the StorDB: validate everything, then one transaction.

Two streaming passes over the files: :func:`cgrpy.tariffplan.validate.validate_folder` keeps only
ID sets, then :func:`cgrpy.storage.tariffplans.replace_tariffplan` re-reads the files and writes
them (COPY on Postgres). A million-row folder therefore never sits in memory as dicts. If a file
changes between the passes so that it no longer parses, the write raises and the transaction
rolls back: the database is then exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from cgrpy.storage.tariffplans import replace_tariffplan
from cgrpy.tariffplan.columns import CSV_LOAD_ID, FILE_COLUMNS
from cgrpy.tariffplan.csvread import CsvShapeError, iter_cells
from cgrpy.tariffplan.validate import DEFAULT_LIMIT, Problem, validate_folder

# progress(phase "validate" | "write", file name, rows done, rows total or None)
LoadProgress = Callable[[str, str, int, int | None], None]


@dataclass
class LoadResult:
    tpid: str
    folder: str
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)  # rows per file (every file)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    truncated: bool = False
    written: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "tpid": self.tpid,
            "folder": self.folder,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "written": self.written,
            "rows": self.counts,
            "total_rows": self.total_rows,
            "problems": [str(p) for p in self.problems],
            "truncated": self.truncated,
            "warnings": [str(p) for p in self.warnings],
            "seconds": round(self.seconds, 3),
        }


class LoadAbortedError(RuntimeError):
    """A file stopped parsing between validation and writing (it was changed meanwhile)."""


def _strict_rows(path: Path, name: str) -> Iterator[tuple[int, list[str]]]:
    for item in iter_cells(path, name):
        if isinstance(item, CsvShapeError):
            raise LoadAbortedError(f"{item} (file changed during the load?)")
        yield item


def _counting(
    rows: Iterable[tuple[int, list[str]]], name: str, total: int | None,
    progress: LoadProgress, phase: str,
) -> Iterator[tuple[int, list[str]]]:
    n = 0
    for n, row in enumerate(rows, start=1):  # noqa: B007 - n is read after the loop
        if n % 10000 == 0:
            progress(phase, name, n, total)
        yield row
    progress(phase, name, n, total)


def load_folder(
    folder: str | Path,
    *,
    engine: Engine,
    tpid: str,
    dry_run: bool = False,
    progress: LoadProgress | None = None,
    limit: int = DEFAULT_LIMIT,
    load_id: str = CSV_LOAD_ID,
) -> LoadResult:
    """Validate ``folder`` and, unless ``dry_run`` or invalid, store it as ``tpid``; its rating
    profiles get ``load_id`` (their CSV has no LoadId column).

    The StorDB schema must be migrated already (:func:`cgrpy.storage.migrate.upgrade`).
    Returns the result; on validation problems nothing is written and ``result.ok`` is False.
    """
    started = time.perf_counter()
    base = Path(folder)
    result = LoadResult(tpid=tpid, folder=str(base), dry_run=dry_run)
    if not tpid or len(tpid) > 64:
        result.problems.append(
            Problem("--tpid", None, None, "tariff plan ID must be 1 to 64 characters", tpid)
        )
        return result
    checked = validate_folder(base, limit=limit)
    result.counts = {name: checked.counts.get(name, 0) for name in FILE_COLUMNS}
    result.problems, result.warnings = checked.problems, checked.warnings
    result.truncated = checked.truncated
    if not checked.ok or dry_run:
        result.seconds = time.perf_counter() - started
        return result

    def source(name: str) -> Iterable[tuple[int, list[str]]]:
        rows: Iterable[tuple[int, list[str]]] = _strict_rows(base / f"{name}.csv", name)
        if progress is not None:
            rows = _counting(rows, name, result.counts[name], progress, "write")
        return rows

    rows = {name: source(name) for name in checked.files if result.counts[name]}
    written = replace_tariffplan(engine, tpid, rows, source=str(base.resolve()), load_id=load_id)
    result.counts = written
    result.written = True
    result.seconds = time.perf_counter() - started
    return result
