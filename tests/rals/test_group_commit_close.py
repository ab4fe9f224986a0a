"""A change that reaches RALs' group committer after it stopped fails at once instead of leaving
its worker thread waiting for ever (such a thread also kept the interpreter from exiting)."""

from __future__ import annotations

import threading

from cgrpy.storage.db import make_engine
from cgrpy.storage.migrate import upgrade
from services.rals.accounts.live import GroupCommitter, Pending, StoreClosed


def _pending() -> Pending:
    return Pending(account_row={}, full_account=False, balance_updates=[], balance_inserts=[],
                   balance_deletes=[], journal=[], request={})


def _commit_in_thread(gc: GroupCommitter, p: Pending) -> threading.Thread:
    t = threading.Thread(target=gc.commit, args=(p,), daemon=True)
    t.start()
    t.join(timeout=5)
    return t


def test_commit_after_close_fails_at_once(sqlite_url):
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        gc = GroupCommitter(engine)
        gc.close()
        p = _pending()
        assert not _commit_in_thread(gc, p).is_alive()
        assert isinstance(p.error, StoreClosed)
    finally:
        engine.dispose()


def test_change_queued_behind_the_stop_marker_fails(sqlite_url):
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        gc = GroupCommitter(engine)
        gc._q.put(None)  # closing races a change: the change lands behind the stop marker
        p = _pending()
        assert not _commit_in_thread(gc, p).is_alive()
        assert isinstance(p.error, StoreClosed)
        gc.close()
    finally:
        engine.dispose()
