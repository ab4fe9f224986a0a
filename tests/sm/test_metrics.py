"""SM's Prometheus collector exports the metrics the operators' dashboards use (values read at scrape time)."""

from __future__ import annotations

from services.sm.metrics import SessionCollector
from services.sm.sessions.core import SessionManager
from tests.sm.fakes import FakeBackends


def test_collector_exports_the_issue_metrics() -> None:
    sm = SessionManager(FakeBackends())
    sm.metrics.inc("authorizations", "authorized")
    sm.metrics.inc("authorizations", "denied")
    sm.metrics.inc("debits", "*default")
    sm.metrics.inc("disconnects", "INSUFFICIENT_CREDIT")
    sm.metrics.inc("replies_over_deadline", "authorize")
    fams = {f.name: f for f in SessionCollector(sm, lambda: 3, lambda: 4).collect()}
    value = {(f.name, tuple(s.labels.values())): s.value for f in fams.values() for s in f.samples
             if not s.name.endswith("_created")}
    assert value[("cgrpy_sm_active_sessions", ())] == 0
    assert value[("cgrpy_sm_opensips_connections", ())] == 4
    assert value[("cgrpy_sm_cdr_spool_depth", ())] == 3
    assert value[("cgrpy_sm_authorizations", ("authorized",))] == 1
    assert value[("cgrpy_sm_authorizations", ("denied",))] == 1
    assert value[("cgrpy_sm_debits", ("*default",))] == 1
    assert value[("cgrpy_sm_disconnects", ("INSUFFICIENT_CREDIT",))] == 1
    assert value[("cgrpy_sm_replies_over_deadline", ("authorize",))] == 1
