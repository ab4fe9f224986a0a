"""Rating errors carrying the CGRateS error word clients see (``RATING_PLAN_NOT_FOUND`` ...)."""

from __future__ import annotations

RATING_PLAN_NOT_FOUND = "RATING_PLAN_NOT_FOUND"
UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"
MAX_USAGE_EXCEEDED = "MAX_USAGE_EXCEEDED"
INVALID_ARGUMENT = "INVALID_ARGUMENT"


class RatingError(Exception):
    """``word`` is the CGRateS error string (what goes on the wire); ``detail`` explains."""

    def __init__(self, word: str, detail: str = "") -> None:
        super().__init__(f"{word}: {detail}" if detail else word)
        self.word = word
        self.detail = detail
