"""CoreConn: cdre's group-committed writes on a bare psycopg connection (real Postgres).

The same Core statements must give the same rows, defaults and checks as through SQLAlchemy:
that is what lets the writer skip SQLAlchemy's per-statement execution context.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import bindparam, create_engine, select, update
from sqlalchemy.dialects import postgresql

from cgrpy.storage.migrate import upgrade_engine
from cgrpy.storage.models.cdrs import CdrRow
from cgrpy.storage.pgconn import CoreConn, PgConnection, libpq_url

T = CdrRow.__table__
INS = postgresql.insert(T).on_conflict_do_nothing(index_elements=["cgrid", "run_id"]).returning(T.c.id)
SEL = select(T).where(T.c.cgrid == bindparam("b_cgrid"))
UPD = update(T).where(T.c.id == bindparam("b_id"))
WHEN = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _row(cgrid: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "cgrid": cgrid, "run_id": "*default", "tor": "*voice", "request_type": "*prepaid",
        "tenant": "cgrates.org", "category": "call", "account": "1001", "subject": "1001",
        "destination": "1002", "answer_time": WHEN, "cost": Decimal("0.6000"),
        "created_at": WHEN, "updated_at": WHEN,
    }
    base.update(kw)
    return base


@pytest.fixture
def pg(pg_url: str):
    engine = create_engine(pg_url)
    upgrade_engine(engine)
    conn = PgConnection(libpq_url(engine), "test-coreconn")
    yield engine, conn
    conn.close()
    engine.dispose()


def test_insert_select_update_match_what_sqlalchemy_reads(pg) -> None:
    engine, conn = pg
    new_id = conn.run(lambda c: CoreConn(c).execute(INS, _row("a")).scalar_one_or_none())
    assert isinstance(new_id, int)
    # a duplicate inserts nothing and returns no id, as ON CONFLICT DO NOTHING does
    assert conn.run(lambda c: CoreConn(c).execute(INS, _row("a")).scalar_one_or_none()) is None
    done = conn.run(lambda c: CoreConn(c).execute(
        UPD, {"b_id": new_id, "cost": Decimal("1.25"), "extra_info": "x"}).rowcount)
    assert done == 1
    mine = conn.run(lambda c: CoreConn(c).execute(SEL, {"b_cgrid": "a"}).one())
    with engine.connect() as c:
        theirs = c.execute(SEL, {"b_cgrid": "a"}).one()
    assert tuple(mine) == tuple(theirs)
    # column defaults filled as SQLAlchemy does; money read back canonical, times aware UTC
    assert mine.origin_host == "" and mine.rating_state == "pending" and mine.rerate_count == 0
    assert str(mine.cost) == "1.25" and mine.answer_time == WHEN


def test_many_rows_in_one_call_and_the_column_types_still_check(pg) -> None:
    _, conn = pg
    conn.run(lambda c: CoreConn(c).execute(INS, [_row("b"), _row("c"), _row("d")]))
    n = conn.run(lambda c: len(CoreConn(c).execute(select(T.c.id)).all()))
    assert n == 3
    with pytest.raises(ValueError, match="more than 9 decimals"):
        conn.run(lambda c: CoreConn(c).execute(INS, _row("e", cost=Decimal("0.0000000001"))))
    with pytest.raises(ValueError, match="naive datetime"):
        conn.run(lambda c: CoreConn(c).execute(INS, _row("f", answer_time=datetime(2026, 1, 1))))
    # a failed statement rolled its transaction back: nothing of it stayed
    assert conn.run(lambda c: len(CoreConn(c).execute(select(T.c.id)).all())) == 3


def test_a_missing_mandatory_value_is_refused_before_postgres(pg) -> None:
    _, conn = pg
    row = _row("g")
    del row["tor"]
    with pytest.raises(Exception, match="tor"):
        conn.run(lambda c: CoreConn(c).execute(INS, row))
    assert isinstance(conn.run(lambda c: c), psycopg.Connection)
