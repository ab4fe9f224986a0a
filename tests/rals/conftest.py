"""Fixtures shared by the RALs account-store tests: a fresh StorDB (SQLite and Postgres, per the
``db_url`` fixture) and a LiveStore over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.rals.accounts.live import LiveStore


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def live(engine: Engine) -> Iterator[LiveStore]:
    store = LiveStore(engine)
    yield store
    store.close()
