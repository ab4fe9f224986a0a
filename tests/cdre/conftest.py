"""StorDB with every model's tables, on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.cdre.store import CdrStore


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> CdrStore:
    return CdrStore(engine)
