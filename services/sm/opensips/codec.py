"""Streaming decoder for JSON values written back to back with no separator.

OpenSIPS writes one JSON object per request with no delimiter (spec A.1 "Framing: none"); a TCP
read may carry half an object, several objects, or split a multi-byte UTF-8 character. The scan
works on bytes: the structural characters (braces, brackets, quote, backslash) are ASCII and never
appear inside a UTF-8 multi-byte sequence, so counting them on raw bytes is exact and a split
character is only decoded once its object is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cgrpy.event import loads_exact

MAX_FRAME_BYTES = 1 << 20  # one OpenSIPS message is a few hundred bytes; refuse runaway input

_OPEN = {ord("{"), ord("[")}
_CLOSE = {ord("}"), ord("]")}
_QUOTE = ord('"')
_BACKSLASH = ord("\\")
_WS = {ord(" "), ord("\t"), ord("\r"), ord("\n")}


@dataclass(frozen=True)
class BadFrame:
    """Input that is not a JSON object/array: garbage between frames, invalid JSON, oversize."""

    text: bytes
    reason: str


class StreamDecoder:
    """Feed bytes in, get complete JSON values (``Decimal`` for fractions) or ``BadFrame`` out."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._pos = 0  # next byte to scan
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._max = max_frame

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a value."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        out: list[Any] = []
        buf = self._buf
        i = self._pos
        n = len(buf)
        while i < n:
            b = buf[i]
            if self._depth == 0:
                if b in _WS:
                    i += 1
                    del buf[:i]
                    n -= i
                    i = 0
                    continue
                if b not in _OPEN:
                    # Garbage at top level: drop it up to the next possible frame start.
                    j = i
                    while j < n and buf[j] not in _OPEN:
                        j += 1
                    out.append(BadFrame(bytes(buf[:j]), "not a JSON object"))
                    del buf[:j]
                    n -= j
                    i = 0
                    continue
                self._depth = 1
                i += 1
                continue
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif b == _BACKSLASH:
                    self._escape = True
                elif b == _QUOTE:
                    self._in_string = False
            elif b == _QUOTE:
                self._in_string = True
            elif b in _OPEN:
                self._depth += 1
            elif b in _CLOSE:
                self._depth -= 1
                if self._depth == 0:
                    frame = bytes(buf[: i + 1])
                    del buf[: i + 1]
                    n -= i + 1
                    i = 0
                    out.append(_decode(frame))
                    continue
            i += 1
        self._pos = i
        if self._depth > 0 and len(buf) > self._max:
            out.append(BadFrame(bytes(buf[:200]), f"frame larger than {self._max} bytes"))
            self.reset()
        return out

    def reset(self) -> None:
        self._buf.clear()
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escape = False


def _decode(frame: bytes) -> Any:
    try:
        return loads_exact(frame.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return BadFrame(frame, f"invalid JSON: {exc}")
