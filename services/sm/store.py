"""SM's session store: every active session survives an SM restart.

One row per CGRID in a local SQLite file (next to the CDR spool) holding what is needed to keep
charging a running call: the session and run events, per run the charged usage, cost, debit
request ids, loop and duration index and the reserve, and the start event with OpenSIPS's integer
DialogID/DialogEntry (to disconnect the call later over any connection).

The events are written once, in a snapshot (``data``) at the session's first debit or at the end
of its initiate; what a call changes after that (the per-run counters at every debit, the closing
fields at terminate) goes into ``progress``, a small record that replaces the previous one and is
laid over the snapshot when loading. A change of the events themselves (an UpdateSession adding
fields) writes a new snapshot. Closed sessions stay (flag ``closed``) until they are garbage
collected, so a ProcessCDR that arrives after a restart still finds the session's costs instead of
having the prepaid CDR rated (and charged) a second time.

Nothing is charged twice after a restart because every RALs debit/refund carries a deterministic
request id (``CGRID:RunID:LoopIndex``, ``…:final``, ``…:refund``) that RALs applies once: a debit
that reached RALs just before the crash is answered from RALs's journal when the restored loop
repeats it.

Durability: WAL with ``synchronous=NORMAL`` survives a crash (SIGKILL) of SM, which is what this
protects against; a power loss may lose the last write, which the deterministic ids also cover.
Times are stored as wall-clock seconds (monotonic clocks do not survive a restart).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from cgrpy.event import CGREvent, dumps_exact, loads_exact
from cgrpy.units import SECOND, from_unix_nano, to_unix_nano
from services.sm.sessions.core import Session, SRun
from services.sm.sessions.types import InitiateResult

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sm_sessions (cgrid TEXT PRIMARY KEY, closed INTEGER NOT NULL, "
    "updated INTEGER NOT NULL, data TEXT NOT NULL, progress TEXT)"
)
# Run-event fields terminate sets (Usage/Cost/CostSource/CostDetails at settlement; the rest
# from the Terminate).
_CLOSE_FIELDS = ("Usage", "Cost", "CostSource", "CostDetails", "AnswerTime", "DisconnectCause")
_COUNTERS = ("extra_ns", "last_usage_ns", "total_usage_ns", "charged_ns", "duration_index",
             "loop_index", "cost", "debit_ids", "backlog_ns", "max_rate", "max_rate_unit_ns")


def default_path(spool_path: str | Path) -> Path:
    """The session store lives in the CDR spool's folder: one local state directory for SM."""
    return Path(spool_path).parent / "sm_sessions.sqlite"


# ----------------------------------------------------------------------------- (de)serialisation


def _event_rec(ev: CGREvent) -> dict[str, Any]:
    return {"tenant": ev.tenant, "id": ev.id,
            "time": to_unix_nano(ev.time) if ev.time is not None else None, "event": ev.event}


def _event_from(rec: dict[str, Any]) -> CGREvent:
    t = rec.get("time")
    return CGREvent(tenant=rec["tenant"], id=rec["id"],
                    time=from_unix_nano(t) if t is not None else None, event=dict(rec["event"]))


def session_record(s: Session, *, closed: bool = False) -> dict[str, Any]:
    now_mono = time.monotonic()
    return {
        "cgrid": s.cgrid,
        "event": _event_rec(s.event),
        "start_event": _event_rec(s.start_event) if s.start_event is not None else None,
        "started_wall_ns": time.time_ns() - int((now_mono - s.started) * SECOND),
        "closed": closed,
        "disconnect_reason": s.disconnect_reason,
        "channel": s.channel,
        "cdr_state": s.cdr_state,
        "unsettled": s.unsettled,
        "resource_usage_id": s.resource_usage_id,
        "runs": [
            {"run_id": r.run_id, "event": _event_rec(r.event), "request_type": r.request_type,
             "extra_ns": r.extra_ns, "last_usage_ns": r.last_usage_ns,
             "total_usage_ns": r.total_usage_ns, "charged_ns": r.charged_ns,
             "duration_index": r.duration_index, "loop_index": r.loop_index, "cost": r.cost,
             "debit_ids": list(r.debit_ids), "backlog_ns": r.backlog_ns,
             "max_rate": r.max_rate, "max_rate_unit_ns": r.max_rate_unit_ns}
            for r in s.runs
        ],
    }


def progress_record(s: Session, *, closed: bool = False) -> dict[str, Any]:
    """What changes after the snapshot: run counters, closing fields, the closed flag, and the
    CDR and settlement states (written only when set: absent means none, unsettled false)."""
    rec: dict[str, Any] = {
        "closed": closed,
        "disconnect_reason": s.disconnect_reason,
        "fields": {k: s.event.event[k] for k in _CLOSE_FIELDS if k in s.event.event},
        "runs": [
            {"run_id": r.run_id, "extra_ns": r.extra_ns, "last_usage_ns": r.last_usage_ns,
             "total_usage_ns": r.total_usage_ns, "charged_ns": r.charged_ns,
             "duration_index": r.duration_index, "loop_index": r.loop_index, "cost": r.cost,
             "debit_ids": list(r.debit_ids), "backlog_ns": r.backlog_ns,
             "max_rate": r.max_rate, "max_rate_unit_ns": r.max_rate_unit_ns,
             "fields": {k: r.event.event[k] for k in _CLOSE_FIELDS if k in r.event.event}}
            for r in s.runs
        ],
    }
    if s.cdr_state:
        rec["cdr_state"] = s.cdr_state
    if s.unsettled:
        rec["unsettled"] = True
    return rec


def apply_progress(rec: dict[str, Any], progress: dict[str, Any]) -> dict[str, Any]:
    """The snapshot ``rec`` brought up to date with ``progress`` (runs matched by RunID)."""
    rec["closed"] = bool(progress.get("closed")) or bool(rec.get("closed"))
    rec["disconnect_reason"] = progress.get("disconnect_reason", rec.get("disconnect_reason"))
    rec["cdr_state"] = progress.get("cdr_state", "")
    rec["unsettled"] = bool(progress.get("unsettled"))
    rec["event"]["event"].update(progress.get("fields") or {})
    runs = {r["run_id"]: r for r in rec["runs"]}
    for p in progress.get("runs") or []:
        run = runs.get(p["run_id"])
        if run is None:
            continue  # a run the snapshot does not know: its snapshot was never written
        run.update({k: p[k] for k in _COUNTERS if k in p})
        run["event"]["event"].update(p.get("fields") or {})
    return rec


def session_from_record(rec: dict[str, Any]) -> Session:
    """A Session ready to be adopted by ``SessionManager.restore`` (ready set, no client)."""
    runs = [
        SRun(run_id=r["run_id"], event=_event_from(r["event"]), request_type=r["request_type"],
             extra_ns=int(r["extra_ns"]), last_usage_ns=int(r["last_usage_ns"]),
             total_usage_ns=int(r["total_usage_ns"]), charged_ns=int(r["charged_ns"]),
             duration_index=int(r["duration_index"]), loop_index=int(r["loop_index"]),
             cost=Decimal(r["cost"]), debit_ids=list(r["debit_ids"]), backlog_ns=int(r["backlog_ns"]),
             max_rate=Decimal(r.get("max_rate", 0)), max_rate_unit_ns=int(r.get("max_rate_unit_ns", 0)))
        for r in rec["runs"]
    ]
    started = time.monotonic() - max(0, time.time_ns() - int(rec["started_wall_ns"])) / SECOND
    s = Session(
        cgrid=rec["cgrid"], event=_event_from(rec["event"]), runs=runs, started=started,
        start_event=_event_from(rec["start_event"]) if rec.get("start_event") else None,
        disconnect_reason=str(rec.get("disconnect_reason") or ""),
        channel=str(rec.get("channel") or ""),
        cdr_state=str(rec.get("cdr_state") or ""), unsettled=bool(rec.get("unsettled")),
        resource_usage_id=str(rec.get("resource_usage_id") or ""),
    )
    s.init_result = InitiateResult(max_usage_ns=None)
    s.persisted = True  # it came from the store: later writes are progress records
    s.ready.set()
    if rec.get("closed"):
        s.terminating = True
        s.stop.set()
        s.closed_at = time.monotonic()
        s.done.set()
    return s


# ----------------------------------------------------------------------------- the store


class SessionStore:
    """``save(session)`` / ``save_closed(session)`` / ``delete(cgrid)`` / ``load()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(sm_sessions)")}
        if "progress" not in columns:  # a store written before progress records existed
            self._db.execute("ALTER TABLE sm_sessions ADD COLUMN progress TEXT")

    def _put(self, s: Session, closed: bool) -> None:
        data = dumps_exact(session_record(s, closed=closed))
        with self._lock:
            self._db.execute(
                "INSERT INTO sm_sessions (cgrid, closed, updated, data, progress) "
                "VALUES (?, ?, ?, ?, NULL) "
                "ON CONFLICT(cgrid) DO UPDATE SET closed=excluded.closed, updated=excluded.updated, "
                "data=excluded.data, progress=NULL",
                (s.cgrid, int(closed), time.time_ns(), data),
            )

    def save(self, s: Session) -> None:
        """A full snapshot of the session (events and counters)."""
        self._put(s, False)

    def save_closed(self, s: Session) -> None:
        self._put(s, True)

    def save_progress(self, s: Session, *, closed: bool = False) -> bool:
        """Lay the counters (and closing fields) over the snapshot already stored; False (nothing
        written) when there is no snapshot for this CGRID yet, so the caller writes one."""
        progress = dumps_exact(progress_record(s, closed=closed))
        with self._lock:
            cur = self._db.execute(
                "UPDATE sm_sessions SET closed = ?, updated = ?, progress = ? WHERE cgrid = ?",
                (int(closed), time.time_ns(), progress, s.cgrid),
            )
        return cur.rowcount == 1

    def delete(self, cgrid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sm_sessions WHERE cgrid = ?", (cgrid,))

    def load(self) -> list[Session]:
        with self._lock:
            rows = self._db.execute("SELECT data, progress FROM sm_sessions ORDER BY updated").fetchall()
        out = []
        for data, progress in rows:
            rec = loads_exact(data)
            if progress is not None:
                rec = apply_progress(rec, loads_exact(progress))
            out.append(session_from_record(rec))
        return out

    def count(self, *, closed: bool | None = None) -> int:
        q, args = "SELECT COUNT(*) FROM sm_sessions", ()
        if closed is not None:
            q, args = q + " WHERE closed = ?", (int(closed),)
        with self._lock:
            return int(self._db.execute(q, args).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
