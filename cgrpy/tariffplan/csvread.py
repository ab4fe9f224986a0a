"""Read a tariff-plan folder into raw rows (no validation beyond CSV shape).

The loader (``cgrpy.tariffplan.loader``) validates on top of this; tests and tools that only
need the cells use :func:`read_folder` directly.
"""

from __future__ import annotations

import csv
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


def read_file(path: Path, name: str) -> list[CsvRow]:
    """Rows of one file; ``#`` lines are comments (the header is one); a trailing comma is ok."""
    columns = FILE_COLUMNS[name]
    rows: list[CsvRow] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise CsvShapeError(path.name, reader.line_num, f"bad CSV: {exc}") from None
            line = reader.line_num
            if not cells or (len(cells) == 1 and cells[0] == ""):
                continue
            if cells[0].startswith("#"):
                continue
            if len(cells) == len(columns) + 1 and cells[-1] == "":
                cells = cells[:-1]
            if len(cells) != len(columns):
                raise CsvShapeError(
                    path.name, line, f"expected {len(columns)} columns, got {len(cells)}"
                )
            rows.append(CsvRow(path.name, line, dict(zip(columns, cells, strict=True))))
    return rows


def read_folder(folder: str | Path) -> TariffPlanRows:
    """Every known file of a folder as raw rows; a missing file means no rows."""
    base = Path(folder)
    out: TariffPlanRows = {}
    for name in FILE_COLUMNS:
        p = base / f"{name}.csv"
        out[name] = [r.cells for r in read_file(p, name)] if p.exists() else []
    return out
