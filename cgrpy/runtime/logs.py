"""Structured logs: one line per event, ``key=value`` pairs (logfmt), service name on every line.

    log = get_logger("sm")
    log.info("session.disconnect", cgrid=cgrid, reason="INSUFFICIENT_CREDIT")
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_SERVICE = "cgr"


def _fmt(v: Any) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"service={_SERVICE}",
            f"event={_fmt(record.getMessage())}",
        ]
        if record.name and not record.name.startswith("cgrpy."):
            parts.append(f"logger={record.name}")
        for k, v in getattr(record, "fields", {}).items():
            parts.append(f"{k}={_fmt(v)}")
        if record.exc_info:
            parts.append(f"exc={_fmt(self.formatException(record.exc_info))}")
        return " ".join(parts)


class EventLogger:
    """A thin logger whose calls take the event name and its fields as keywords."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"cgrpy.{name}")

    def _emit(self, level: int, event: str, exc_info: bool = False, **fields: Any) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, event, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, exc_info=True, **fields)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route all cgrpy logs to stderr in logfmt, tagged with ``service``."""
    global _SERVICE
    _SERVICE = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    # The root logger, so modules logging through stdlib loggers (services.*) get the same
    # one-line format; grpc and asyncio stay at WARNING.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("grpc", "asyncio", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)
