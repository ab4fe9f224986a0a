"""Fixtures shared by the RALs account-store tests: a fresh StorDB (SQLite and Postgres, per the
``db_url`` fixture) and a LiveStore over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cgrpy.storage.db import make_engine
from cgrpy.storage.models import Base
from services.rals.accounts.live import LiveStore
from services.rals.accounts.service import AccountService
from tests.rals.test_accounts_service import ROWS


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


@pytest.fixture
def live_service(engine: Engine) -> Iterator[AccountService]:
    """The tutorial's accounts served by an AccountService whose store is the in-memory LiveStore."""
    store = LiveStore(engine)
    service = AccountService(engine, ROWS, tpid="tutorial", store=store)
    service.provision()
    yield service
    store.close()
