"""Tariff plans in the StorDB ``tp_*`` tables: replace, read back, list, delete.

A tariff plan travels as :data:`cgrpy.tariffplan.columns.TariffPlanRows` (raw cell texts). Cells
are stored typed (see :mod:`cgrpy.storage.models.tp`) and come back as the exact loaded text.

:func:`replace_tariffplan` is one transaction: a re-load replaces the tpid atomically and a
failure leaves the database as it was. It takes any iterables per file (lists, or generators
streaming a big CSV file) and writes them with ``COPY`` on Postgres and batched ``executemany``
on SQLite, so a million-row plan is never held in memory as a whole.

The cells must have been validated (:mod:`cgrpy.tariffplan.validate`): a numeric cell that does
not parse raises ``ValueError`` and aborts the transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, Engine, delete, func, insert, select

from cgrpy.storage.models.tp import TP_TABLES, cell_kind, snake, tariffplans
from cgrpy.tariffplan.columns import EXTRA_COLUMNS, FILE_COLUMNS, TariffPlanRows, stored_columns
from cgrpy.tariffplan.csvread import CsvRow

# progress(file, rows written so far in that file)
Progress = Callable[[str, int], None]
# Per file: CsvRow, a raw-cell dict (line = position) or (line, cells in FILE_COLUMNS order).
RowSource = Mapping[str, Iterable[CsvRow | Mapping[str, str] | tuple[int, list[str]]]]

_BATCH = 5000
_CANON_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _decimal_text(cell: str) -> str:
    try:
        value = Decimal(cell)
    except InvalidOperation:
        raise ValueError(f"not a number: {cell!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {cell!r}")
    text = format(value, "f")
    return "0" if value == 0 and text.startswith("-") else text


def _bool(cell: str) -> bool:
    if cell in _TRUE:
        return True
    if cell in _FALSE:
        return False
    raise ValueError(f"not a boolean: {cell!r}")


_CANON_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


def _numeric(cell: str) -> tuple[object, bool]:
    if _CANON_DECIMAL.fullmatch(cell):  # the common case: stored and read back as written
        return cell, True
    if cell == "":
        return None, True
    norm = _decimal_text(cell)
    return norm, norm == cell


def _integer(cell: str) -> tuple[object, bool]:
    if cell == "":
        return None, True
    return int(cell), _CANON_INT.fullmatch(cell) is not None and cell != "-0"


def _boolean(cell: str) -> tuple[object, bool]:
    if cell == "":
        return None, True
    value = _bool(cell)
    return value, cell == ("true" if value else "false")


_CONVERTERS = {"numeric": _numeric, "int": _integer, "bool": _boolean}


def _typed_columns(file: str) -> list[tuple[int, str, Callable[[str], tuple[object, bool]]]]:
    """(position, column, cell text -> (DB value, text round-trips)) of the non-text columns."""
    return [
        (i, col, _CONVERTERS[cell_kind(file, col)])
        for i, col in enumerate(FILE_COLUMNS[file])
        if cell_kind(file, col) != "text"
    ]


def _row_cells(
    columns: tuple[str, ...], index: int, row: CsvRow | Mapping[str, str] | tuple[int, list[str]]
) -> tuple[int, list[str]]:
    """(line, cells in ``columns`` order; a cell the row lacks, such as an extra, is "")."""
    if isinstance(row, tuple):
        line, cells = row
        return line, [*cells, *([""] * (len(columns) - len(cells)))]
    if isinstance(row, CsvRow):
        return row.line, [row.cells.get(c, "") for c in columns]
    return index, [row.get(c, "") for c in columns]


def _db_rows(
    file: str, tpid: str, rows: Iterable[CsvRow | Mapping[str, str] | tuple[int, list[str]]],
    extras: Mapping[str, str] | None = None,
) -> Iterator[list[object]]:
    """DB values of ``rows``: tpid, line, the CSV cells, raw, then the extra cells (an empty one
    takes its value from ``extras``, e.g. the LoadId of a folder's load)."""
    columns = stored_columns(file)
    n_csv = len(FILE_COLUMNS[file])
    defaults = [(extras or {}).get(c, "") for c in columns[n_csv:]]
    typed = _typed_columns(file)
    for index, row in enumerate(rows, start=1):
        line, cells = _row_cells(columns, index, row)
        tail = [cell or default for cell, default in zip(cells[n_csv:], defaults, strict=True)]
        values: list[object] = [tpid, line, *cells[:n_csv], None, *tail]
        raw: dict[str, str] | None = None
        for i, col, conv in typed:
            value, exact = conv(cells[i])
            values[i + 2] = value
            if not exact:
                raw = raw or {}
                raw[col] = cells[i]
        if raw:
            values[n_csv + 2] = json.dumps(raw, ensure_ascii=False)
        yield values


def _db_columns(conn: Connection, file: str) -> list[str]:
    """Quoted column names (``limit`` is a reserved word)."""
    quote = conn.dialect.identifier_preparer.quote
    extras = (snake(c) for c in EXTRA_COLUMNS.get(file, ()))
    return [quote(c) for c in ("tpid", "line", *(snake(c) for c in FILE_COLUMNS[file]), "raw", *extras)]


def _copy_pg(
    conn: Connection, file: str, rows: Iterator[list[object]], progress: Progress | None
) -> int:
    table = TP_TABLES[file].name
    cols = ", ".join(_db_columns(conn, file))
    driver = conn.connection.driver_connection
    n = 0
    with driver.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for values in rows:
            copy.write_row(values)
            n += 1
            if progress is not None and n % _BATCH == 0:
                progress(file, n)
    return n


def _insert_batches(
    conn: Connection, file: str, rows: Iterator[list[object]], progress: Progress | None
) -> int:
    table = TP_TABLES[file].name
    cols = _db_columns(conn, file)
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    n = 0
    batch: list[tuple[object, ...]] = []
    for values in rows:
        batch.append(tuple(values))
        if len(batch) >= _BATCH:
            conn.exec_driver_sql(sql, batch)
            n += len(batch)
            batch = []
            if progress is not None:
                progress(file, n)
    if batch:
        conn.exec_driver_sql(sql, batch)
        n += len(batch)
    return n


def _delete_tpid(conn: Connection, tpid: str) -> None:
    for table in TP_TABLES.values():
        conn.execute(delete(table).where(table.c.tpid == tpid))
    conn.execute(delete(tariffplans).where(tariffplans.c.tpid == tpid))


def replace_tariffplan(
    engine: Engine,
    tpid: str,
    rows: RowSource,
    *,
    source: str = "",
    progress: Progress | None = None,
    load_id: str = "",
) -> dict[str, int]:
    """Store ``rows`` as tariff plan ``tpid``, replacing whatever that tpid held, atomically.

    ``rows`` maps file names (FILE_COLUMNS keys) to rows: raw-cell dicts (line = position) or
    :class:`CsvRow` (line from the CSV). Files missing from ``rows`` end up empty. A rating
    profile row without a LoadId gets ``load_id``. Returns the number of rows stored per file
    (every file present, 0 when empty).
    """
    if not tpid:
        raise ValueError("tpid must not be empty")
    unknown = set(rows) - set(FILE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown tariff-plan files: {sorted(unknown)}")
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        _delete_tpid(conn, tpid)
        write = _copy_pg if conn.dialect.name == "postgresql" else _insert_batches
        for file in FILE_COLUMNS:
            src = rows.get(file)
            stored = _db_rows(file, tpid, src, {"LoadId": load_id}) if src else None
            counts[file] = write(conn, file, stored, progress) if stored is not None else 0
            if progress is not None and counts[file]:
                progress(file, counts[file])
        conn.execute(
            insert(tariffplans).values(
                tpid=tpid,
                loaded_at=datetime.now(UTC),
                source=source,
                row_counts=json.dumps(counts),
            )
        )
    return counts


def _to_text(kind: str, value: object) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "numeric" and isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def iter_tariffplan_file(
    conn: Connection, tpid: str, file: str, *, extras: bool = False
) -> Iterator[CsvRow]:
    """Rows of one file of ``tpid`` in original line order, cells as the loaded text; with
    ``extras`` also the cells the CSV has no column for (:data:`EXTRA_COLUMNS`)."""
    table = TP_TABLES[file]
    columns = FILE_COLUMNS[file]
    kinds = [cell_kind(file, c) for c in columns]
    extra = EXTRA_COLUMNS.get(file, ()) if extras else ()
    db_cols = [table.c[snake(c)] for c in columns]
    stmt = (
        select(table.c.line, table.c.raw, *db_cols, *(table.c[snake(c)] for c in extra))
        .where(table.c.tpid == tpid)
        .order_by(table.c.pk)
        .execution_options(yield_per=_BATCH)
    )
    for rec in conn.execute(stmt):
        cells = {
            col: _to_text(kind, value)
            for col, kind, value in zip(columns, kinds, rec[2:2 + len(columns)], strict=True)
        }
        if rec.raw:
            cells.update(json.loads(rec.raw))
        cells.update(zip(extra, (v or "" for v in rec[2 + len(columns):]), strict=True))
        yield CsvRow(f"{file}.csv", rec.line, cells)


def read_tariffplan(engine: Engine, tpid: str, *, extras: bool = False) -> TariffPlanRows:
    """Tariff plan ``tpid`` back as raw rows (every file present; empty list when none); with
    ``extras`` the rows also carry the cells no CSV has (a rating profile's LoadId)."""
    with engine.connect() as conn:
        return {
            file: [r.cells for r in iter_tariffplan_file(conn, tpid, file, extras=extras)]
            for file in FILE_COLUMNS
        }


def list_tpids(engine: Engine) -> list[str]:
    """TPIDs with rows in any tp table or a ``tariffplans`` record, sorted."""
    found: set[str] = set()
    with engine.connect() as conn:
        found.update(conn.scalars(select(tariffplans.c.tpid)))
        for table in TP_TABLES.values():
            found.update(conn.scalars(select(table.c.tpid).distinct()))
    return sorted(found)


def tariffplan_info(engine: Engine, tpid: str) -> dict[str, object] | None:
    """The ``tariffplans`` record of ``tpid`` (loaded_at, source, row_counts) or None."""
    with engine.connect() as conn:
        rec = conn.execute(select(tariffplans).where(tariffplans.c.tpid == tpid)).first()
    if rec is None:
        return None
    return {
        "tpid": rec.tpid,
        "loaded_at": rec.loaded_at,
        "source": rec.source,
        "row_counts": json.loads(rec.row_counts),
    }


def delete_tariffplan(engine: Engine, tpid: str) -> bool:
    """Remove every row of ``tpid``; True if anything was there."""
    existed = tpid in list_tpids(engine)
    with engine.begin() as conn:
        _delete_tpid(conn, tpid)
    return existed


# (file, {column: cell} the replaced rows match, new raw-cell rows)
RowReplacement = tuple[str, Mapping[str, str], list[Mapping[str, str]]]


def replace_rows(
    engine: Engine,
    tpid: str,
    changes: Iterable[RowReplacement],
    check: Callable[[TariffPlanRows, TariffPlanRows], None] | None = None,
) -> TariffPlanRows:
    """Replace a few rows of ``tpid`` in one transaction (runtime provisioning of one profile).

    For each change the rows of ``file`` whose cells equal ``match`` are deleted and ``rows``
    appended after the file's last line. ``check(before, after)`` sees the whole plan before and
    after inside the same transaction and raises to refuse the change (nothing is written).
    Returns the plan after the change.
    """
    changes = list(changes)
    for file, match, _ in changes:
        if file not in FILE_COLUMNS:
            raise ValueError(f"unknown tariff-plan file: {file}")
        unknown = set(match) - set(FILE_COLUMNS[file])
        if unknown:
            raise ValueError(f"{file}: unknown columns {sorted(unknown)}")
    with engine.begin() as conn:
        before = {f: [r.cells for r in iter_tariffplan_file(conn, tpid, f, extras=True)]
                  for f in FILE_COLUMNS}
        after = {f: list(rows) for f, rows in before.items()}
        for file, match, rows in changes:
            kept = [r for r in after[file] if any(r.get(c) != v for c, v in match.items())]
            after[file] = kept + [{c: row.get(c, "") for c in stored_columns(file)} for row in rows]
        if check is not None:
            check(before, after)
        for file, match, rows in changes:
            table = TP_TABLES[file]
            cond = [table.c.tpid == tpid, *(table.c[snake(c)] == v for c, v in match.items())]
            conn.execute(delete(table).where(*cond))
            if not rows:
                continue
            last = conn.scalar(select(func.max(table.c.line)).where(table.c.tpid == tpid)) or 0
            cells = [(last + i, [r.get(c, "") for c in stored_columns(file)]) for i, r in enumerate(rows, 1)]
            write = _copy_pg if conn.dialect.name == "postgresql" else _insert_batches
            write(conn, file, _db_rows(file, tpid, cells), None)
        if conn.scalar(select(tariffplans.c.tpid).where(tariffplans.c.tpid == tpid)) is None:
            conn.execute(insert(tariffplans).values(
                tpid=tpid, loaded_at=datetime.now(UTC), source="api",
                row_counts=json.dumps({f: len(r) for f, r in after.items()}),
            ))
    return after
