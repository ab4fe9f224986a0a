"""FilterS: the filter language every profile subsystem shares (spec profile-subsystems §1–§3).

Public API: :class:`FilterS` (``from_rows``/``from_tariffplan``, ``passes``), :class:`FilterError`,
and in :mod:`cgrpy.filters.selection` the generic :class:`ProfileIndex` for profile selection.
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
