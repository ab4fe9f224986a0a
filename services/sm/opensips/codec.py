"""Streaming decoder for JSON values written back to back with no separator.

OpenSIPS writes one JSON object per request with no delimiter (spec A.1 "Framing: none"); a TCP
read may carry half an object, several objects, or split a multi-byte UTF-8 character.

Bytes go through an incremental UTF-8 decoder (a split character waits for its other bytes;
invalid bytes become lone surrogates so the frame holding them is refused, not the stream), then
the stdlib C scanner (``JSONDecoder.raw_decode``, within the bounds of ``cgrpy.jsonlimits``:
nesting depth, length of number literals) takes one whole value at a time. Only when it fails
does a bracket count find out whether the value is incomplete (wait for more) or invalid or out
of bounds (report exactly that value and go on after it): the count runs over runs of brackets
and whole strings, whose delimiters are ASCII and never part of a multi-byte character, so a
value nested 100,000 levels deep costs two regex matches, not 200,000 steps.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from cgrpy.jsonlimits import JSONLimitError, raw_decode

MAX_FRAME_BYTES = 1 << 20  # one OpenSIPS message is a few hundred bytes; refuse runaway input

_WS = re.compile(r"[ \t\r\n]*")
_NEXT_OPEN = re.compile(r"[{\[]")
# a run of opening or of closing brackets, a whole string, or a string's quote with no end yet
_TOKENS = re.compile(r'[{\[]+|[}\]]+|"[^"\\]*(?:\\.[^"\\]*)*"|"', re.DOTALL)
_SURROGATE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


@dataclass(frozen=True)
class BadFrame:
    """Input that is not a JSON object/array: garbage between frames, invalid JSON, oversize."""

    text: bytes
    reason: str


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _frame_end(text: str, start: int) -> int | None:
    """Index after the value opened at ``start`` (balanced brackets, strings skipped), or None
    while it is incomplete."""
    depth = 0
    for m in _TOKENS.finditer(text, start):
        c = text[m.start()]
        if c == '"':
            if m.end() - m.start() == 1:
                return None  # a string that has not ended yet
        elif c in "{[":
            depth += m.end() - m.start()
        elif m.end() - m.start() >= depth:
            return m.start() + depth
        else:
            depth -= m.end() - m.start()
    return None


class StreamDecoder:
    """Feed bytes in, get complete JSON values (``Decimal`` for fractions) or ``BadFrame`` out."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._text = ""  # decoded input not yet returned (the start of an incomplete value)
        self._max = max_frame

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a value."""
        return len(_bytes(self._text)) + len(self._utf8.getstate()[0])

    def feed(self, data: bytes) -> list[Any]:
        text = self._text + self._utf8.decode(data)
        out: list[Any] = []
        i, n = 0, len(text)
        while i < n:
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if i >= n:
                break
            if text[i] not in "{[":
                # Garbage at top level: drop it up to the next possible frame start.
                m = _NEXT_OPEN.search(text, i)
                j = m.start() if m else n
                out.append(BadFrame(_bytes(text[i:j]), "not a JSON object"))
                i = j
                continue
            try:
                value, end = raw_decode(text, i)
            except ValueError as exc:
                end = _frame_end(text, i)
                if end is None:
                    break  # incomplete: wait for the rest
                reason = str(exc) if isinstance(exc, JSONLimitError) else f"invalid JSON: {exc}"
                out.append(BadFrame(_bytes(text[i:end]), reason))
                i = end
                continue
            if _SURROGATE.search(text, i, end):
                out.append(BadFrame(_bytes(text[i:end]), "invalid JSON: not UTF-8"))
            else:
                out.append(value)
            i = end
        self._text = text[i:] if i < n else ""
        if len(self._text) * 4 > self._max and self.pending > self._max:
            out.append(BadFrame(_bytes(self._text)[:200], f"frame larger than {self._max} bytes"))
            self.reset()
        return out

    def reset(self) -> None:
        self._text = ""
        self._utf8.reset()
