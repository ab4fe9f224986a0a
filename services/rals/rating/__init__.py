"""RALs rating engine: pure, exact-money rating of calls against a compiled tariff plan.

Entry points::

    data = RatingData.from_rows(rows)          # rows: cgrpy.tariffplan TariffPlanRows
    cc = get_cost(data, CallDescriptor(...), rounding_decimals=5)
    cc.to_event_cost()                          # CGRateS EventCost dict (Decimal money)
    rating_max_usage(data, cd)                  # usage before MaxCost *disconnect / MaxRate cut

What the accounts debit engine reads from a :class:`CallCost` (names are stable):

* ``cc.cost`` (Decimal, DestinationRate-rounded), ``cc.raw_cost`` (unrounded), ``cc.connect_fee``
  (the fee actually charged: 0 when ``loop_index > 0`` or usage is 0; it is *not* inside any
  timespan's ``increments``: debit it first), ``cc.usage_ns`` (rated usage, rounded up to
  increments), ``cc.max_cost_so_far`` (carry into the next piece's descriptor),
  ``cc.event_cost_amount()`` (EventCost.Cost), ``cc.to_event_cost()``.
* ``cc.matched_subject / matched_prefix / matched_dest_id / rating_plan_id`` (of the first span).
* ``cc.timespans``: list of :class:`TimeSpan` with ``time_start``/``time_end`` (datetimes),
  ``start_ns``/``end_ns`` (unix ns, exact), ``duration_ns``, ``duration_index_ns`` (call offset
  at the span end), ``group_start_ns``, ``cost``, ``rate_slot``, ``matched_*``, ``rating_plan_id``,
  ``rate_interval`` (``.timing``, ``.weight``, ``.rating`` with ``connect_fee``,
  ``rounding_method``, ``rounding_decimals``, ``max_cost``, ``max_cost_strategy``, ``rates_id``,
  ``rates`` = rate slots ``group_interval_start_ns, value, unit_ns, increment_ns``), and
  ``increments``: list of :class:`Increment` ``(duration_ns, cost, compress_factor)`` —
  compressed like CGRateS: ``compress_factor`` identical consecutive increments; use
  ``ts.expanded_increments()`` for one-by-one debiting.

Errors are :class:`RatingError` with ``.word`` = the CGRateS error string.
"""

from .cost import CallCost
from .descriptor import CallDescriptor
from .engine import final_rounding, get_cost, rating_max_usage
from .errors import (
    MAX_USAGE_EXCEEDED,
    RATING_PLAN_NOT_FOUND,
    UNAUTHORIZED_DESTINATION,
    RatingError,
)
from .plan import RateInterval, RateSlot, Rating, RatingData, RatingDataError
from .selection import RatingInfo
from .timespans import Increment, TimeSpan

__all__ = [
    "CallCost",
    "CallDescriptor",
    "Increment",
    "MAX_USAGE_EXCEEDED",
    "RATING_PLAN_NOT_FOUND",
    "RateInterval",
    "RateSlot",
    "Rating",
    "RatingData",
    "RatingDataError",
    "RatingError",
    "RatingInfo",
    "TimeSpan",
    "UNAUTHORIZED_DESTINATION",
    "final_rounding",
    "get_cost",
    "rating_max_usage",
]
