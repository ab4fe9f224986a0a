"""EngineRunner.run_inline: engine work on the loop when it needs nothing remote, in a worker
when it does (rerun from the start) or when a worker holds the engine's lock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from cgrpy import errors as engine_errors
from cgrpy.errors import CGRError
from cgrpy.runtime.engine_runner import EngineRunner


@pytest.fixture
def runner():
    r = EngineRunner("test", workers=2)
    yield r
    r.close()


async def test_pure_work_runs_on_the_loop_thread(runner):
    assert await runner.run_inline(lambda: threading.get_ident()) == threading.get_ident()


async def test_work_that_calls_out_reruns_in_a_worker(runner):
    starts: list[int] = []

    async def remote() -> str:
        return "priced"

    def engine() -> tuple[str, int]:
        starts.append(threading.get_ident())
        return runner.call_remote(remote(), 2), threading.get_ident()

    answer, ident = await runner.run_inline(engine)
    assert answer == "priced" and ident != threading.get_ident()
    assert starts == [threading.get_ident(), ident]  # tried inline first, then once in a worker


async def test_a_lock_held_by_a_worker_sends_the_work_to_a_worker(runner):
    lock = threading.RLock()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait(5)

    def work() -> int:
        with lock:  # as the engines do
            return threading.get_ident()

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        pending = asyncio.create_task(runner.run_inline(work, lock=lock))
        await asyncio.sleep(0.05)
        assert not pending.done()  # waiting in a worker, the loop is free
        release.set()
        assert await pending != threading.get_ident()
    finally:
        release.set()
        t.join()


async def test_engine_errors_become_cgr_errors_inline(runner):
    def engine() -> None:
        raise engine_errors.NotFoundError()

    with pytest.raises(CGRError) as err:
        await runner.run_inline(engine)
    assert err.value.word == "NOT_FOUND"
