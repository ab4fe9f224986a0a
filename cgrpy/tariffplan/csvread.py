"""Read a tariff-plan folder into raw rows (no validation beyond CSV shape).

The loader (``cgrpy.tariffplan.loader``) validates on top of this; tests and tools that only
need the cells use :func:`read_folder` directly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows


@dataclass(frozen=True)
class CsvRow:
    file: str  # e.g. "Rates.csv"
    line: int  # 1-based line number in the file
    cells: dict[str, str]


class CsvShapeError(ValueError):
    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


def _bad_utf8_line(path: Path) -> tuple[int, bytes]:
    """1-based number and content of the first line that is not UTF-8 (the text reader fails
    a whole buffer at a time, so its position says nothing about the line)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number, raw.rstrip(b"\r\n")
    return 1, b""


def iter_cells(path: Path, name: str) -> Iterator[tuple[int, list[str]] | CsvShapeError]:
    """Stream ``(line, cells in FILE_COLUMNS order)`` of one file, problems as values: a row
    with the wrong column count is reported and skipped; a CSV syntax error (e.g. an
    unterminated quote) or a line that is not UTF-8 is reported and ends the file (nothing after
    it can be trusted).

    ``#`` lines are comments (the header is one); a trailing comma is tolerated; a UTF-8 byte
    order mark at the start of the file is ignored.
    """
    ncols = len(FILE_COLUMNS[name])
    fname = path.name
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                msg = str(exc)
                if "EOF" in msg or "unexpected end of data" in msg:
                    msg = "unterminated quoted field"
                yield CsvShapeError(fname, reader.line_num, f"bad CSV: {msg}")
                return
            except UnicodeDecodeError:
                number, raw = _bad_utf8_line(path)
                yield CsvShapeError(fname, number, f"file is not UTF-8 (got {raw[:60]!r})")
                return
            if not cells or (len(cells) == 1 and cells[0] == ""):
                continue
            if cells[0].startswith("#"):
                continue
            if len(cells) != ncols:
                if len(cells) == ncols + 1 and cells[-1] == "":
                    cells.pop()
                else:
                    yield CsvShapeError(
                        fname, reader.line_num, f"expected {ncols} columns, got {len(cells)}"
                    )
                    continue
            yield reader.line_num, cells


def iter_file(path: Path, name: str) -> Iterator[CsvRow | CsvShapeError]:
    """Like :func:`iter_cells`, rows as :class:`CsvRow` (cells keyed by column name)."""
    columns = FILE_COLUMNS[name]
    fname = path.name
    for item in iter_cells(path, name):
        if isinstance(item, CsvShapeError):
            yield item
        else:
            yield CsvRow(fname, item[0], dict(zip(columns, item[1], strict=True)))


def read_file(path: Path, name: str) -> list[CsvRow]:
    """Rows of one file; raises :class:`CsvShapeError` on the first shape problem."""
    rows: list[CsvRow] = []
    for item in iter_file(path, name):
        if isinstance(item, CsvShapeError):
            raise item
        rows.append(item)
    return rows


def read_folder(folder: str | Path) -> TariffPlanRows:
    """Every known file of a folder as raw rows; a missing file means no rows."""
    base = Path(folder)
    out: TariffPlanRows = {}
    for name in FILE_COLUMNS:
        p = base / f"{name}.csv"
        out[name] = [r.cells for r in read_file(p, name)] if p.exists() else []
    return out
