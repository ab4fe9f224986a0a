"""`python -m bench failover` (issue 21's Done-when run), tested: its strict checks on made-up
outcomes, then the mode once, short, killing the ResourceS owner of a suite with two replicas of
everything, asserting the report carries what the mode claims to measure."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.failover import refused, strict
from bench.faults import Call, Outcome


def _outcome(**measured: object) -> Outcome:
    base = {"replies_after_deadline": 0, "deadline_s": 2.0, "unanswered_requests": 0,
            "takeover_s": 0.1}
    return Outcome("kill_x", 3, 2, 1, 1.0, 0.5, Decimal(1), [], {**base, **measured})


def test_strict_checks_flag_what_the_done_when_forbids() -> None:
    ok = [Call("a", "1001", 1, answered=True),
          Call("b", "1002", 1, errors=["SessionSv1.InitiateSession:RESOURCE_UNAUTHORIZED"])]
    assert strict("resources", _outcome(), ok) == []
    assert refused(ok[1]) and not refused(ok[0])
    late = strict("chargers", _outcome(replies_after_deadline=2), ok)
    assert late == ["2 replies after SM's deadline (2.0 s)"]
    backend = [*ok, Call("c", "1001", 1, errors=["SessionSv1.AuthorizeEventWithDigest:SERVER_ERROR"])]
    assert strict("attributes", _outcome(), backend)[0].startswith("calls failed for a backend")
    # a request lost on the dying SM's connection is OpenSIPS's lot too; on any other kill not
    assert strict("sm", _outcome(unanswered_requests=1), ok) == []
    assert strict("rals", _outcome(unanswered_requests=1), ok) == ["1 requests unanswered"]
    assert strict("stats", _outcome(takeover_s=None), ok) == [
        "no takeover observed after killing the stats owner"]
    assert strict("cdre", _outcome(takeover_s=None), ok) == []  # stateless: nothing to take over


@pytest.mark.e2e
@pytest.mark.postgres
def test_failover_mode_kills_the_resources_owner_and_checks_everything(tmp_path: Path) -> None:
    out = tmp_path / "failover.json"
    rc = main(["failover", "--replicas", "2", "--duration", "6", "--cps", "3", "--kill",
               "resources", "--out", str(out), "--logs", str(tmp_path)])
    (r,) = json.loads(out.read_text())
    assert rc == 0, r["problems"]
    assert r["service"] == "resources" and r["placed"] == 18
    assert r["answered"] + r["refused"] <= r["placed"] and r["answered"] >= 10
    assert r["cdrs"] >= 2 * r["answered"]  # *raw and *default at least, each once
    assert r["charged_once"] and r["verify"] and r["sessions_left"] == 0
    assert r["measured"]["victim_owned"] and r["takeover_s"] is not None
    assert r["authorize_p50_ms"] is not None and r["replies_after_deadline"] == 0
