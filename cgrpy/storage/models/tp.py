"""Tables owned by the loader (tariff-plan rows as loaded, keyed by tpid).

One table ``tp_<snake_file>`` per file of :data:`cgrpy.tariffplan.columns.FILE_COLUMNS`, with a
surrogate integer primary key ``pk``, ``tpid`` (indexed), the CSV columns in snake_case (``Id`` →
``id``, ``FilterIDs`` → ``filter_ids``) and ``line`` (the CSV line the row came from, for
messages). Row order inside a tpid is the insertion order (= file order), i.e. ``ORDER BY pk``.

Column types:

* money and weights are ``NUMERIC`` without precision/scale. CGRateS declares ``tp_rates.rate``
  as ``NUMERIC(10,4)`` and ``connect_fee`` as ``NUMERIC(7,4)``, so a rate of ``0.00167`` is
  silently stored as ``0.0017``; we keep every digit (deliberate
  difference). SQLite has no exact decimal type (its NUMERIC affinity turns ``0.1`` into a
  float), so there the same columns are ``TEXT`` holding the decimal text unchanged.
* durations and times are stored as the original text, as CGRateS does (``60s``, ``1``, ``*asap``).
* integers ``INTEGER``, booleans ``BOOLEAN``, everything else ``TEXT``; an empty cell is NULL.
* ``raw``: a typed column cannot give back every spelling of its value (``TRUE`` vs ``true``,
  ``.5`` vs ``0.5``, ``007``); the rare cells whose text is not the canonical rendering of their
  typed value are kept here verbatim as a JSON object ``{column: text}`` so a tariff plan read
  back from StorDB is cell-for-cell what was loaded.
* cells a row has that its CSV file has not (:data:`cgrpy.tariffplan.columns.EXTRA_COLUMNS`,
  ``tp_rating_profiles.load_id``) come after ``raw``, ``TEXT NOT NULL DEFAULT ''``.
"""

from __future__ import annotations

import re
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from cgrpy.storage.models.base import Base
from cgrpy.tariffplan.columns import EXTRA_COLUMNS, FILE_COLUMNS

CellKind = Literal["text", "numeric", "int", "bool"]

# Exact decimal everywhere: NUMERIC on Postgres, the decimal text on SQLite (see module doc).
EXACT_NUMERIC: TypeEngine = Numeric(asdecimal=True).with_variant(Text(), "sqlite")

# Columns that are not plain text, per file (CSV column name -> kind).
_KINDS: dict[str, dict[str, CellKind]] = {
    "Rates": {"ConnectFee": "numeric", "Rate": "numeric"},
    "DestinationRates": {"RoundingDecimals": "int", "MaxCost": "numeric"},
    "RatingPlans": {"Weight": "numeric"},
    "Actions": {
        "BalanceWeight": "numeric", "BalanceBlocker": "bool", "BalanceDisabled": "bool",
        "Weight": "numeric",
    },
    "ActionPlans": {"Weight": "numeric"},
    "ActionTriggers": {
        "ThresholdValue": "numeric", "Recurrent": "bool", "BalanceWeight": "numeric",
        "BalanceBlocker": "bool", "BalanceDisabled": "bool", "Weight": "numeric",
    },
    "AccountActions": {"AllowNegative": "bool", "Disabled": "bool"},
    "Resources": {"Limit": "numeric", "Blocker": "bool", "Stored": "bool", "Weight": "numeric"},
    "Stats": {
        "QueueLength": "int", "MinItems": "int", "Stored": "bool", "Blocker": "bool",
        "Weight": "numeric",
    },
    "Thresholds": {
        "MaxHits": "int", "MinHits": "int", "Blocker": "bool", "Weight": "numeric",
        "Async": "bool",
    },
    "Suppliers": {"SupplierWeight": "numeric", "SupplierBlocker": "bool", "Weight": "numeric"},
    "Attributes": {"Blocker": "bool", "Weight": "numeric"},
    "Chargers": {"Weight": "numeric"},
    "DispatcherProfiles": {"ConnWeight": "numeric", "ConnBlocker": "bool", "Weight": "numeric"},
    "DispatcherHosts": {"TLS": "bool"},
}

_SQL_TYPES: dict[CellKind, TypeEngine] = {
    "text": Text(),
    "numeric": EXACT_NUMERIC,
    "int": BigInteger(),
    "bool": Boolean(),
}


def snake(name: str) -> str:
    """``DestinationRates`` → ``destination_rates``, ``FilterIDs`` → ``filter_ids``."""
    name = name.replace("IDs", "Ids").replace("ID", "Id").replace("TTL", "Ttl").replace("TLS", "Tls")
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def cell_kind(file: str, column: str) -> CellKind:
    return _KINDS.get(file, {}).get(column, "text")


def _make_table(file: str) -> Table:
    cols = [
        Column("pk", Integer, primary_key=True, autoincrement=True),
        Column("tpid", String(64), nullable=False, index=True),
        Column("line", Integer, nullable=False),
    ]
    for csv_col in FILE_COLUMNS[file]:
        cols.append(Column(snake(csv_col), _SQL_TYPES[cell_kind(file, csv_col)], nullable=True))
    cols.append(Column("raw", Text, nullable=True))
    # not in the CSV (see EXTRA_COLUMNS): "" for rows stored before the column existed
    cols += [Column(snake(c), Text, nullable=False, server_default="") for c in EXTRA_COLUMNS.get(file, ())]
    return Table(f"tp_{snake(file)}", Base.metadata, *cols)


# File name (as in FILE_COLUMNS) -> its table, in FILE_COLUMNS order.
TP_TABLES: dict[str, Table] = {file: _make_table(file) for file in FILE_COLUMNS}

# One row per loaded tariff plan: when, from where, how many rows per file (JSON object).
tariffplans = Table(
    "tariffplans",
    Base.metadata,
    Column("tpid", String(64), primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("row_counts", Text, nullable=False, default="{}"),
)
