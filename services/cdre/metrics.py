"""cdre's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CDRS_PROCESSED = Counter(
    "cgrpy_cdrs_processed_total", "CDR runs processed, by result (stored, duplicate, error).", ["result"]
)
CDR_EXPORTS = Counter(
    "cgrpy_cdr_exports_total",
    "Online CDR export posts by exporter and result (delivered; retry: failed, will be retried "
    "with backoff; failed: attempts used up, kept and retried later).",
    ["exporter", "result"],
)
CDR_EXPORTS_FAILED = Gauge(
    "cgrpy_cdr_exports_failed", "Online CDR exports marked failed and kept, by exporter.",
    ["exporter"],
)
