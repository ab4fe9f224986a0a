"""FilterS: the filter language every profile subsystem shares (docs/profiles.md).

Public API: :class:`FilterS` (``from_rows``/``from_tariffplan``, ``passes``), :class:`FilterError`,
and in :mod:`cgrpy.filters.selection` the generic :class:`ProfileIndex` for profile selection.

v0.10 quirks and what cgrpy does:

1. Profile ActivationInterval ignored when the event has no Time -- kept (CGRateS tests rely on it).
2. An element without a known ``~*root`` (``Account``) is an error -- kept.
3. Ordering comparisons on strings/bools raise -- kept (``*eq`` works on strings).
4. ``""`` smart-parses to the zero time -- kept.
5. Profiles without ``*string``/``*prefix`` rules are invisible to indexed selects -- kept;
   explicit ID lists and ``indexed_selects=False`` reach them.
6. Prefix indexes off by default, longest prefix only -- kept (``prefix_fields``).
7. AttributeS falls back to ``*any`` only when the context has no candidates -- kept.
8. A repeated attribute profile is re-applied before the run loop stops -- kept.
9. Digest may start with a comma; non-``*req`` attribute paths have no effect -- kept.
10. ChargerS failing on NOT_FOUND from AttributeS -- fixed: treated as "no attributes".
15. Weight ties -- fixed: deterministic, lowest profile ID first.

Other differences: ``*timings`` can be evaluated when a FilterS is given Timings data
(``FilterS(timings=...)``); the services build theirs from the tariff plan without it, so they
answer ``NOT_IMPLEMENTED`` for every ``*timings`` rule as v0.10 does; malformed ``*rsr`` values and
ActivationIntervals in Filters rows are refused when the rows are compiled (v0.10 fails each
request instead); ``nested_fields`` index lookups are not implemented (flat event keys only).
"""

from cgrpy.filters.activation import ActivationInterval
from cgrpy.filters.errors import FilterError, FilterNotFound
from cgrpy.filters.filters import (
    Filter,
    FilterS,
    destinations_from_rows,
    filters_from_rows,
    parse_inline,
    split_list,
)
from cgrpy.filters.paths import Remotes
from cgrpy.filters.types import FilterRule, Timing, timings_from_rows

__all__ = [
    "ActivationInterval",
    "Filter",
    "FilterError",
    "FilterNotFound",
    "FilterRule",
    "FilterS",
    "Remotes",
    "Timing",
    "destinations_from_rows",
    "filters_from_rows",
    "parse_inline",
    "split_list",
    "timings_from_rows",
]
