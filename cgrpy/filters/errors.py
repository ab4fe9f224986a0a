"""FilterS errors: the message is CGRateS's exact text (clients compare them literally)."""

from __future__ import annotations


class FilterError(Exception):
    """A filter could not be evaluated; aborts the request (callers wrap it as SERVER_ERROR).

    ``str(err)`` is the CGRateS text, e.g. ``NOT_FOUND:FLTR_X``, ``WRONG_PATH``,
    ``NOT_IMPLEMENTED:*test``, ``filter path: Account doesn't have a valid prefix``.
    """

    @property
    def text(self) -> str:
        return str(self)


class FilterNotFound(FilterError):
    """A referenced stored filter does not exist (``NOT_FOUND:<id>``)."""

    def __init__(self, filter_id: str) -> None:
        super().__init__(f"NOT_FOUND:{filter_id}")
        self.filter_id = filter_id


WRONG_PATH = "WRONG_PATH"
