"""CGRateS error words: the one error type every part of cgrpy raises.

A service raises :class:`CGRError` with the CGRateS word (``NOT_FOUND``, ``INSUFFICIENT_CREDIT``
...) and a detail; its text is what CGRateS prints. The runtime turns it into a gRPC status whose
message *starts with that word* (:mod:`cgrpy.runtime.status`), and the client turns it back, so SM
can hand OpenSIPS the same text CGRateS would. The subclasses below only name the common words.
"""

from __future__ import annotations

from typing import ClassVar


class CGRError(Exception):
    """An error with a CGRateS word, e.g. ``CGRError("MANDATORY_IE_MISSING", "[Account]")``."""

    # Inside RALs and cdre the text is always "WORD: detail" (what cdre stores as a CDR's
    # ExtraInfo); a subclass there sets this. On the wire the word and detail travel apart.
    spaced: ClassVar[bool] = False

    def __init__(self, word: str, detail: str = "", *, transient: bool = False) -> None:
        self.word = word
        self.detail = detail
        # True when the remote service could not be reached in time (retrying may succeed),
        # as opposed to an answer from it.
        self.transient = transient
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if not self.detail:
            return self.word
        # CGRateS writes "MANDATORY_IE_MISSING: [Account]" and "SERVER_ERROR: <text>" with a
        # space, and "NOT_FOUND:<id>" / "RALS_ERROR:INSUFFICIENT_CREDIT" without.
        if self.spaced or self.word in ("SERVER_ERROR", "MANDATORY_IE_MISSING"):
            return f"{self.word}: {self.detail}"
        return f"{self.word}:{self.detail}"

    @classmethod
    def from_message(cls, message: str) -> CGRError:
        """Inverse of :attr:`message`: split the leading word from the detail."""
        for sep in (": ", ":"):
            if sep in message:
                word, detail = message.split(sep, 1)
                if word.replace("_", "").isupper():
                    return cls(word, detail)
        return cls(message)


class NotFoundError(CGRError):
    """``NOT_FOUND`` or ``NOT_FOUND:<id>``."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("NOT_FOUND", detail)


class MandatoryIEMissingError(CGRError):
    """``MANDATORY_IE_MISSING: [Tenant ID]``: the fields a request lacks, space separated."""

    def __init__(self, *fields: str) -> None:
        self.fields = list(fields)
        super().__init__("MANDATORY_IE_MISSING", f"[{' '.join(fields)}]")


class PartiallyExecutedError(CGRError):
    """``PARTIALLY_EXECUTED``; ``details`` says what failed (not part of the text)."""

    def __init__(self, details: list[str] | None = None) -> None:
        self.details = list(details or [])
        super().__init__("PARTIALLY_EXECUTED")


class ServerError(CGRError):
    """``SERVER_ERROR: <text>``."""

    def __init__(self, detail: str) -> None:
        super().__init__("SERVER_ERROR", detail)
