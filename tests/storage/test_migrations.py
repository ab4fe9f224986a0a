"""The Alembic history builds the schema of ALL models, on SQLite and Postgres alike."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect

from cgrpy.storage import migrate
from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from cgrpy.storage.models.tp import TP_TABLES


def test_upgrade_to_head_has_no_drift(db_url):
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)  # idempotent: `cgr` migrates at every start
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            assert migrate.schema_diff(conn) == []
            # alembic's own "would autogenerate produce anything?" check
            command.check(migrate.alembic_config(conn))
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert {"tp_rates", "tp_destination_rates", "tp_dispatcher_hosts", "tariffplans"} <= tables
    migrate.check(db_url)


def test_tp_tables_cover_every_file():
    assert len(TP_TABLES) == 20
    rates = TP_TABLES["Rates"]
    assert rates.name == "tp_rates"
    assert [c.name for c in rates.columns] == [
        "pk", "tpid", "line", "id", "connect_fee", "rate", "rate_unit", "rate_increment",
        "group_interval_start", "raw",
    ]
    assert TP_TABLES["Resources"].c.filter_ids is not None
    assert TP_TABLES["DispatcherHosts"].c.tls is not None


def test_check_refuses_unmigrated_db(sqlite_url):
    with pytest.raises(migrate.MigrationError):
        migrate.check(sqlite_url)
