"""A real HTTP receiver on loopback for the online-export tests: records every POST, answers
500 to the first ``fail_first`` of them, and can be stopped and started again on its port
(connection refused while down)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.suite import free_port


@dataclass(frozen=True)
class Post:
    path: str
    content_type: str
    body: bytes
    status: int


class Receiver:
    def __init__(self, port: int | None = None, fail_first: int = 0) -> None:
        self.port = port or free_port()
        self.fail_first = fail_first
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cdrs"

    def accepted(self) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.status == 200]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec._lock:
                    status = 500 if rec.fail_first > 0 else 200
                    rec.fail_first -= status == 500
                    rec.posts.append(Post(self.path, self.headers.get("Content-Type", ""),
                                          body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="test-http-receiver")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
