"""A loopback TCP relay in front of a real server, to make its link stall on demand.

    async with Relay(rals.addr) as relay:      # clients dial relay.addr
        relay.hold()                           # what clients send is kept back (a stalled link)
        relay.release()                        # ... and delivered

Nothing is faked: the client and the server speak their real protocol through it; only the
timing of the client's bytes changes, as on a congested or paused network path.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Relay:
    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def addr(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        pipes = [asyncio.create_task(self._pipe(reader, up_writer, gated=True)),
                 asyncio.create_task(self._pipe(up_reader, writer, gated=False))]
        self._tasks.update(pipes)
        for p in pipes:
            p.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, gated: bool) -> None:
        try:
            while data := await src.read(65536):
                if gated:
                    await self._open.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
