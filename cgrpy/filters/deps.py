"""What a profile set (AttributeS, ChargerS) can read from an event, found in its tariff-plan rows.

A caller that keeps a reply (SM keeps Authorize's AttributeS/ChargerS answers for Initiate) may
reuse it for another event only if the profile set is the same and the event has the same values
in every field the set can read. This scan is deliberately coarse and errs on "not reusable":
every ``*req.<Field>`` written anywhere in the rows (filters, paths, values, inline profiles)
counts as read; any other dynamic reference (``~*vars``, ``~*stats``..., a bare ``~``), a time
keyword (``*now``, ``*daily``...) or an activation interval that can still change (an end, or a
start in the future) makes the whole set not reusable, because the answer then depends on more
than the event's fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.errors import FilterError
from cgrpy.tariffplan.columns import TariffPlanRows

_REQ_FIELD = re.compile(r"\*req\.([^.\[\]:;,\s~*]+)")
_OTHER_DYNAMIC = re.compile(r"~(?!\*req\.)")
_TIME_KEYWORDS = ("*now", "*daily", "*monthly", "*yearly", "*month_end")
_ACTIVATION_COLUMNS = ("ActivationInterval",)


@dataclass(frozen=True)
class EventInputs:
    """The event fields a profile set reads, and whether they are all it reads."""

    fields: frozenset[str]
    reusable: bool

    def __or__(self, other: EventInputs) -> EventInputs:
        return EventInputs(self.fields | other.fields, self.reusable and other.reusable)


NOT_REUSABLE = EventInputs(frozenset(), False)


def _activation_can_change(text: str, now: datetime) -> bool:
    try:
        ai = ActivationInterval.parse(text)
    except FilterError:
        return True
    if ai is None:
        return False
    return ai.expiry_time is not None or (ai.activation_time is not None and ai.activation_time >= now)


def event_inputs(rows: TariffPlanRows, tables: Iterable[str], *, extra: Iterable[str] = (),
                 now: datetime | None = None) -> EventInputs:
    """The fields the profiles in ``tables`` (plus the Filters they may name) can read.

    ``extra``: fields the engine itself reads whatever the profiles say (ChargerS: Context)."""
    now = now or datetime.now(UTC)
    fields: set[str] = set(extra)
    for table in (*tables, "Filters"):
        for row in rows.get(table, []):
            for column, cell in row.items():
                if not cell:
                    continue
                if column in _ACTIVATION_COLUMNS:
                    if _activation_can_change(cell, now):
                        return NOT_REUSABLE
                    continue
                if _OTHER_DYNAMIC.search(cell) or any(k in cell for k in _TIME_KEYWORDS):
                    return NOT_REUSABLE
                fields.update(_REQ_FIELD.findall(cell))
    return EventInputs(frozenset(fields), True)
