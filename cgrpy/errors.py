"""CGRateS error words and how they cross gRPC.

A service raises :class:`CGRError` with the CGRateS word (``NOT_FOUND``, ``INSUFFICIENT_CREDIT``
...); the runtime turns it into a gRPC status whose message *starts with that word*, and the
client turns it back, so SM can hand OpenSIPS the same text CGRateS would.
"""

from __future__ import annotations

import grpc

# CGRateS error word -> gRPC status code.
ERROR_CODES: dict[str, grpc.StatusCode] = {
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "RATING_PLAN_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ACCOUNT_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNAUTHORIZED_DESTINATION": grpc.StatusCode.FAILED_PRECONDITION,
    "INSUFFICIENT_CREDIT": grpc.StatusCode.FAILED_PRECONDITION,
    "ACCOUNT_DISABLED": grpc.StatusCode.FAILED_PRECONDITION,
    "MAX_USAGE_EXCEEDED": grpc.StatusCode.OUT_OF_RANGE,
    "MANDATORY_IE_MISSING": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "SERVER_ERROR": grpc.StatusCode.INTERNAL,
    "NOT_IMPLEMENTED": grpc.StatusCode.UNIMPLEMENTED,
    "PARTIALLY_EXECUTED": grpc.StatusCode.ABORTED,
    "UNSUPPORTED": grpc.StatusCode.UNIMPLEMENTED,
    # ResourceS: no matched resource has room (authorize / allocate).
    "RESOURCE_UNAUTHORIZED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RESOURCE_UNAVAILABLE": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class CGRError(Exception):
    """An error with a CGRateS word, e.g. ``CGRError("MANDATORY_IE_MISSING", "[Account]")``."""

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
        if self.word in ("SERVER_ERROR", "MANDATORY_IE_MISSING"):
            return f"{self.word}: {self.detail}"
        return f"{self.word}:{self.detail}"

    @property
    def status_code(self) -> grpc.StatusCode:
        return ERROR_CODES.get(self.word, grpc.StatusCode.UNKNOWN)

    @classmethod
    def from_message(cls, message: str) -> CGRError:
        """Inverse of :attr:`message`: split the leading word from the detail."""
        for sep in (": ", ":"):
            if sep in message:
                word, detail = message.split(sep, 1)
                if word.replace("_", "").isupper():
                    return cls(word, detail)
        return cls(message)
