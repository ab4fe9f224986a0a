"""ThresholdS engine: counts hits of matching thresholds and fires their actions (docs/profiles.md).

Differences from CGRateS v0.10, on purpose:

* A threshold whose state was removed at MaxHits is skipped; v0.10 aborts the whole request
  with NOT_FOUND for every later event that matches its profile (so other thresholds matching the
  same event stopped working too).
* When synchronous actions fail the request still answers PARTIALLY_EXECUTED, but the state is
  persisted (and removed at MaxHits) like after a success; v0.10 keeps the new Hits/Snooze only in
  its cache, so what a restart shows differed from what GetThreshold showed.

Kept as v0.10 does: Hits count every matching event (also while snoozed or below MinHits), and
the state is removed when Hits reaches MaxHits even if that hit did not fire.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cgrpy.errors import MandatoryIEMissingError, NotFoundError
from cgrpy.event import CGREvent, validate_event
from cgrpy.filters.selection import CandidateIDs, Passes, select_profiles
from cgrpy.iface import iface_as_string
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.tariffplan.rows import group_rows
from cgrpy.units import to_unix_nano
from services.thresholds.state import UNLIMITED_HITS, Threshold, ThresholdProfile
from services.thresholds.store import ThresholdStore

log = logging.getLogger(__name__)

# execute_actions(tenant, account or None, action_ids): RALs ExecuteActions; raises on failure.
ExecuteActions = Callable[[str, str | None, list[str]], Any]
Spawn = Callable[[Callable[[], None]], Any]

_background: ThreadPoolExecutor | None = None


def _default_spawn(fn: Callable[[], None]) -> Any:
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="threshold-actions")
    return _background.submit(fn)


@dataclass
class ThresholdProcessResult:
    threshold_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # threshold ID -> action failure
    fired: list[str] = field(default_factory=list)
    # matched thresholds another process owns (partitioned ThresholdS), in match order
    remote: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)  # every matched threshold, in match order
    repeats: list[str] = field(default_factory=list)  # had counted this event already: left

    @property
    def partially_executed(self) -> bool:
        return bool(self.errors)


class ThresholdEngine:
    def __init__(
        self,
        profiles: list[ThresholdProfile],
        passes: Passes,
        execute_actions: ExecuteActions,
        *,
        store: ThresholdStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        spawn: Spawn = _default_spawn,
        candidate_ids: CandidateIDs | None = None,
    ) -> None:
        self.passes = passes
        self.candidate_ids = candidate_ids
        self.execute_actions = execute_actions
        self.store = store
        self.clock = clock
        self.spawn = spawn
        self._lock = threading.RLock()
        self.profiles = {(p.tenant, p.id): p for p in profiles}
        saved = store.load_all() if store is not None else {}
        self.states: dict[tuple[str, str], Threshold] = {}
        for key in self.profiles:
            if key in saved:
                st = saved[key]
                if st is not None:
                    self.states[key] = st
            else:
                self.states[key] = Threshold(*key)
        for key, rows in (store.load_applied() if store is not None else {}).items():
            if key in self.states:
                self.states[key].applied.load(rows)

    @classmethod
    def from_rows(
        cls,
        rows: TariffPlanRows,
        passes: Passes,
        execute_actions: ExecuteActions,
        *,
        store: ThresholdStore | None = None,
        clock: Callable[[], datetime] | None = None,
        spawn: Spawn | None = None,
        candidate_ids: CandidateIDs | None = None,
    ) -> ThresholdEngine:
        profiles = [
            ThresholdProfile.from_rows(tenant, tid, prow)
            for (tenant, tid), prow in group_rows(rows.get("Thresholds", []), "Id").items()
        ]
        kw: dict[str, Any] = {"candidate_ids": candidate_ids}
        if clock:
            kw["clock"] = clock
        if spawn:
            kw["spawn"] = spawn
        return cls(profiles, passes, execute_actions, store=store, **kw)

    # --- matching -------------------------------------------------------------------------------

    def _matching(
        self, event: CGREvent, threshold_ids: list[str] | None, now: datetime
    ) -> list[ThresholdProfile]:
        if threshold_ids:
            keys = [(event.tenant, i) for i in dict.fromkeys(threshold_ids)]
        else:
            ids = self.candidate_ids(event.tenant, event) if self.candidate_ids else None
            keys = [k for k in self.profiles
                    if k[0] == event.tenant and (ids is None or k[1] in ids)]
        # Thresholds without state (removed at MaxHits) are not candidates (see module doc).
        cands = [self.profiles[k] for k in keys if k in self.profiles and k in self.states]
        matched = select_profiles(cands, event, self.passes, now=now)
        if not matched:
            raise NotFoundError()
        return matched

    def thresholds_for_event(
        self, event: CGREvent, threshold_ids: list[str] | None = None, *,
        now: datetime | None = None,
    ) -> list[Threshold]:
        """``GetThresholdsForEvent``: matched thresholds, nothing processed."""
        validate_event(event)
        with self._lock:
            matched = self._matching(event, threshold_ids, now or self.clock())
            return [self.states[(p.tenant, p.id)] for p in matched]

    # --- processing -----------------------------------------------------------------------------

    def process_event(
        self, event: CGREvent, threshold_ids: list[str] | None = None, *,
        now: datetime | None = None, owned: Callable[[str, str], bool] | None = None,
        retried: bool = False,
    ) -> ThresholdProcessResult:
        """Count ``event`` on every matching threshold (firing, snoozing, removing at MaxHits).
        With ``owned``, a matched threshold it refuses is only listed in ``remote`` (its owner
        counts it). ``retried``: the event may be counted already (an at-least-once sender's
        batch, or its owner died mid-call): a threshold whose recent ids
        (:mod:`cgrpy.storage.applied`, saved with its hits) hold the event's is left as it is."""
        validate_event(event)
        now = now or self.clock()
        result = ThresholdProcessResult()
        with self._lock:
            for p in self._matching(event, threshold_ids, now):
                result.matched.append(p.id)
                if owned is not None and not owned(p.tenant, p.id):
                    result.remote.append(p.id)
                    continue
                result.threshold_ids.append(p.id)
                t = self.states[(p.tenant, p.id)]
                if retried and event.id and (event.id in t.applied or t.last_event == event.id):
                    result.repeats.append(p.id)
                    continue
                self._hit(p, t, event, now, result)
        return result

    def _hit(self, p: ThresholdProfile, t: Threshold, event: CGREvent, now: datetime,
             result: ThresholdProcessResult) -> None:
        key = (p.tenant, p.id)
        t.hits += 1
        t.last_event = event.id
        t.applied.add(event.id, to_unix_nano(now))
        if self._should_fire(p, t, now):
            result.fired.append(p.id)
            err = self._run_actions(p, event)
            if err:
                result.errors[p.id] = err
            t.snooze = now + timedelta(microseconds=p.min_sleep_ns // 1000)
        if p.max_hits != UNLIMITED_HITS and t.hits == p.max_hits:
            del self.states[key]
            if self.store is not None:
                self.store.mark_removed(*key, event.id)
        elif self.store is not None:
            self.store.save(t)

    def load_partition(self, keys: list[tuple[str, str]],
                       saved: dict[tuple[str, str], Threshold | None],
                       applied: dict[tuple[str, str], Any] | None = None) -> None:
        """This process became the owner of ``keys``' thresholds: their state and the event
        ids they counted as the last owner saved them (none saved: fresh; removed at MaxHits:
        no state)."""
        with self._lock:
            for key in keys:
                st = saved[key] if key in saved else Threshold(*key)
                if st is None:
                    self.states.pop(key, None)
                else:
                    st.applied.load((applied or {}).get(key, []))
                    self.states[key] = st

    @staticmethod
    def _should_fire(p: ThresholdProfile, t: Threshold, now: datetime) -> bool:
        if t.snooze is not None and t.snooze > now:
            return False
        if t.hits < p.min_hits:
            return False
        return p.max_hits == UNLIMITED_HITS or t.hits <= p.max_hits

    def _run_actions(self, p: ThresholdProfile, event: CGREvent) -> str | None:
        """Execute the profile's actions; the error text in synchronous mode, else None."""
        if not p.action_ids:
            return None
        raw_account = event.event.get("Account")
        account = iface_as_string(raw_account) if raw_account not in (None, "") else None
        ids = list(p.action_ids)

        def run() -> None:
            self.execute_actions(p.tenant, account, ids)

        if p.async_:
            def run_logged() -> None:
                try:
                    run()
                except Exception:  # noqa: BLE001 - async action errors are only logged
                    log.exception("threshold %s:%s: actions %s failed", p.tenant, p.id, ids)

            self.spawn(run_logged)
            return None
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - any action failure -> PARTIALLY_EXECUTED
            log.warning("threshold %s:%s: actions %s failed: %s", p.tenant, p.id, ids, exc)
            return str(exc) or type(exc).__name__
        return None

    # --- reading / admin ------------------------------------------------------------------------

    def get_threshold(self, tenant: str, threshold_id: str) -> Threshold:
        missing = [n for n, v in (("Tenant", tenant), ("ID", threshold_id)) if not v]
        if missing:
            raise MandatoryIEMissingError(*missing)
        t = self.states.get((tenant, threshold_id))
        if t is None:
            raise NotFoundError()
        return t

    def get_threshold_ids(self, tenant: str) -> list[str]:
        ids = sorted(tid for (t, tid) in self.states if t == tenant)
        if not ids:
            raise NotFoundError()
        return ids

    def get_profile(self, tenant: str, threshold_id: str) -> ThresholdProfile:
        p = self.profiles.get((tenant, threshold_id))
        if p is None:
            raise NotFoundError()
        return p

    def reset(self, tenant: str, threshold_id: str) -> Threshold:
        """``ResetThreshold``: fresh state (Hits 0, not snoozed), also after a removal."""
        key = (tenant, threshold_id)
        if key not in self.profiles:
            raise NotFoundError()
        with self._lock:
            t = Threshold(tenant, threshold_id)
            old = self.states.get(key)
            if old is not None:  # a reset does not make a repeat of an earlier event count
                t.applied.carry(old.applied)
            self.states[key] = t
            if self.store is not None:
                self.store.save(t)
            return t
