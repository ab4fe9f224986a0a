"""SM with the *resources flags: authorize asks ResourceS and refuses over the limit with the
CGRateS error, initiate allocates (ResourceAllocation in the reply), every way a session ends
gives the usage back (terminate, session TTL, a restored session the switch no longer has), and
without the flags ResourceS is never asked."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from cgrpy.event import CGREvent
from services.sm.opensips import messages as m
from services.sm.sessions.core import SessionManager, SMConfig
from services.sm.sessions.types import SessionFlags
from services.sm.store import SessionStore
from tests.sm.fakes import FakeBackends

MS = 1_000_000
AUTH = SessionFlags(get_max_usage=True, authorize_resources=True)
INIT = SessionFlags(allocate_resources=True)
TERM = SessionFlags(release_resources=True)


def _event(origin: str, account: str = "1001", **extra: object) -> CGREvent:
    fields = {"OriginID": origin, "OriginHost": "127.0.0.1", "RequestType": "*prepaid",
              "Account": account, "Destination": "1002", "AnswerTime": "1795677153"}
    fields.update(extra)
    return CGREvent(event=fields)


def _sm(fb: FakeBackends, store: SessionStore | None = None, **cfg: object) -> SessionManager:
    conf = {"debit_interval_ns": 50 * MS, "reply_deadline_s": 0.5} | cfg
    return SessionManager(fb, SMConfig(**conf), store=store)  # type: ignore[arg-type]


def _resource_calls(fb: FakeBackends) -> list[str]:
    return [c for c in fb.calls if c.startswith("resources")]


async def test_limit_refuses_with_the_cgrates_error_and_terminate_frees_the_slot() -> None:
    fb = FakeBackends(resource_limit=2)
    sm = _sm(fb)
    for origin in ("c1", "c2"):
        auth = await sm.authorize(_event(origin), AUTH)
        assert auth.error is None and auth.resource_allocation == "RES_ACC"
        assert m.authorize_digest_reply(auth)["ResourceAllocation"] == "RES_ACC"
        init = await sm.initiate(_event(origin), INIT)
        assert init.error is None and m.initiate_reply(init)["ResourceAllocation"] == "RES_ACC"
    assert fb.resource_usages == {"c1", "c2"}
    refused = await sm.authorize(_event("c3"), AUTH)
    assert refused.error == "RESOURCES_ERROR:RESOURCE_UNAUTHORIZED"
    late = await sm.initiate(_event("c3"), INIT)  # authorized earlier, the limit filled meanwhile
    assert late.error == "RESOURCES_ERROR:RESOURCE_UNAVAILABLE"
    assert await sm.terminate(_event("c1", Usage="1s"), TERM) is None
    assert fb.resource_usages == {"c2"}
    assert (await sm.authorize(_event("c3"), AUTH)).resource_allocation == "RES_ACC"
    await sm.shutdown()


async def test_unmatched_account_gets_no_allocation_and_no_refusal() -> None:
    fb = FakeBackends(balances={"1001": 100, "1002": 100}, resource_limit=0)  # type: ignore[dict-item]
    sm = _sm(fb)
    auth = await sm.authorize(_event("x1", account="1002"), AUTH)
    assert auth.error is None and auth.resource_allocation is None
    assert m.authorize_digest_reply(auth)["ResourceAllocation"] is None
    await sm.shutdown()


async def test_without_the_flags_resources_is_never_asked() -> None:
    fb = FakeBackends()
    sm = _sm(fb)
    await sm.authorize(_event("n1"), SessionFlags(get_max_usage=True))
    await sm.initiate(_event("n1"), SessionFlags())
    await sm.terminate(_event("n1", Usage="1s"))
    assert _resource_calls(fb) == []
    # an account no resource matches: allocate asked once, nothing to release at terminate
    await sm.initiate(_event("n2", account="1002"), INIT)
    await sm.terminate(_event("n2", account="1002", Usage="1s"), TERM)
    assert _resource_calls(fb) == ["resources_allocate"]
    await sm.shutdown()


async def test_refused_initiation_gives_the_unit_back() -> None:
    fb = FakeBackends(balances={"1001": 0})  # type: ignore[dict-item]
    sm = _sm(fb)
    init = await sm.initiate(_event("poor"), INIT)
    assert init.error == "RALS_ERROR:INSUFFICIENT_CREDIT"
    assert fb.resource_usages == set()
    await sm.shutdown()


async def test_terminate_without_the_flag_still_releases_what_sm_allocated() -> None:
    fb = FakeBackends()
    sm = _sm(fb)
    await sm.initiate(_event("t1"), INIT)
    await sm.terminate(_event("t1", Usage="1s"))
    assert fb.resource_usages == set()
    # ReleaseResources on a terminate of a session SM never allocated for (CGRateS does it too)
    fb.resource_usages.add("api-made")
    await sm.terminate(_event("api-made", Usage="1s"), TERM)
    assert fb.resource_usages == set()
    await sm.shutdown()


async def test_session_ttl_expiry_releases() -> None:
    fb = FakeBackends()
    sm = _sm(fb, session_ttl_ns=150 * MS)
    await sm.initiate(_event("ttl"), INIT)
    assert fb.resource_usages == {"ttl"}
    for _ in range(40):
        if not fb.resource_usages:
            break
        await asyncio.sleep(0.05)
    assert fb.resource_usages == set()
    await sm.shutdown()


async def test_release_failure_is_retried_in_the_background() -> None:
    fb = FakeBackends(lose_replies={"resources_release_usage": 1})
    sm = _sm(fb)
    await sm.initiate(_event("r1"), INIT)
    (session,) = sm.active_sessions()
    assert session.resource_usage_id == "r1"
    assert await sm.terminate(_event("r1", Usage="1s")) is None  # the close is not failed by it
    assert fb.resource_usages == {"r1"}  # the first release failed (ResourceS unreachable)
    await asyncio.sleep(1.2)
    assert fb.calls.count("resources_release_usage") == 2 and fb.resource_usages == set()
    await sm.shutdown()


async def test_restored_session_the_switch_no_longer_has_releases(tmp_path: Path) -> None:
    fb = FakeBackends()
    path = tmp_path / "s.sqlite"
    store = SessionStore(path)
    sm = _sm(fb, store)
    await sm.initiate(_event("gone@h"), INIT)
    await asyncio.sleep(0.02)
    await sm.shutdown()  # SM dies; ResourceS still holds the usage
    store.close()
    assert fb.resource_usages == {"gone@h"}

    store2 = SessionStore(path)
    sm2 = _sm(fb, store2)
    (s,) = sm2.restore(store2.load())
    assert s.resource_usage_id == "gone@h"
    assert await sm2.close_unconfirmed() == [s.cgrid]
    assert fb.resource_usages == set()
    await sm2.shutdown()
    store2.close()


async def test_lookups_asked_together_keep_the_order_of_their_errors() -> None:
    """MaxUsage, resources and suppliers are asked at once; the answer is still the one the
    sequential order gives: no credit wins over a resource refusal, and a refused resource hides
    the suppliers (as if they had not been asked)."""
    flags = SessionFlags(get_max_usage=True, authorize_resources=True, get_suppliers=True)
    poor = FakeBackends(balances={"1001": Decimal(0)}, resource_limit=0)
    sm = _sm(poor, zero_max_usage_as_error=True)
    auth = await sm.authorize(_event("p1"), flags)
    assert auth.error == "RALS_ERROR:INSUFFICIENT_CREDIT"
    assert auth.resource_allocation is None and auth.suppliers is None
    await sm.shutdown()

    full = FakeBackends(resource_limit=0)
    sm = _sm(full)
    auth = await sm.authorize(_event("f1"), flags)
    assert auth.error == "RESOURCES_ERROR:RESOURCE_UNAUTHORIZED"
    assert auth.suppliers is None and auth.max_usage_ns is not None
    await sm.shutdown()

    ok = FakeBackends()
    sm = _sm(ok)
    auth = await sm.authorize(_event("o1"), flags)
    assert auth.error is None and auth.resource_allocation == "RES_ACC"
    assert auth.suppliers is not None and auth.suppliers.profile_id == "SPP_1"
    assert {"max_usage", "resources_authorize", "suppliers"} <= set(ok.calls)
    await sm.shutdown()
