"""Rating errors carrying the CGRateS error word clients see (``RATING_PLAN_NOT_FOUND`` ...)."""

from __future__ import annotations

from cgrpy.errors import CGRError

RATING_PLAN_NOT_FOUND = "RATING_PLAN_NOT_FOUND"
UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"
MAX_USAGE_EXCEEDED = "MAX_USAGE_EXCEEDED"
INVALID_ARGUMENT = "INVALID_ARGUMENT"


class RatingError(CGRError):
    """A rating failure; ``word`` is the CGRateS error string (what goes on the wire)."""

    spaced = True
