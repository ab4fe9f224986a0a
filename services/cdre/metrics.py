"""cdre's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter

CDRS_PROCESSED = Counter(
    "cgrpy_cdrs_processed_total", "CDR runs processed, by result (stored, duplicate, error).", ["result"]
)
