"""A small in-test implementation of our own ``Backends`` Protocol with fixed, checkable answers.

RALs here is a toy: one balance per account, a fixed price per increment, an idempotency journal
keyed by request_id (the contract SM relies on). Knobs simulate slow or failing backends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from cgrpy.event import CGREvent, dumps_exact
from services.sm.sessions.backends import BackendError
from services.sm.sessions.types import (
    AttributesReply,
    CdrResult,
    ChargerRun,
    DebitResult,
    ProfileSet,
    RefundResult,
    SortedSupplier,
    SuppliersReply,
)


@dataclass
class FakeBackends:
    balances: dict[str, Decimal] = field(default_factory=lambda: {"1001": Decimal(100)})
    increment_ns: int = 10_000_000  # 10 ms
    price: Decimal = Decimal("0.01")  # per increment
    run_ids: tuple[str, ...] = ("*default",)
    delay: dict[str, float] = field(default_factory=dict)  # method -> seconds
    lose_replies: dict[str, int] = field(default_factory=dict)  # method -> times to raise after acting
    errors: dict[str, str] = field(default_factory=dict)  # method -> BackendError word
    max_usage_fixed: dict[str, int] = field(default_factory=dict)  # account -> ns RALs claims
    debit_errors: dict[str, str] = field(default_factory=dict)  # account -> BackendError word
    journal: dict[str, DebitResult | RefundResult] = field(default_factory=dict)
    debit_calls: list[tuple[str, int]] = field(default_factory=list)
    cdrs: list[tuple[CGREvent, dict[str, bool]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    attributes_version: str = "attributes:1"  # bump to play a reload
    chargers_version: str = "chargers:1"
    reusable: bool = True
    # what StatS/ThresholdS hold per tenant (SM skips them for a tenant with none)
    stat_queues: dict[str, list[str]] = field(default_factory=lambda: {"cgrates.org": ["Stats2"]})
    thresholds: dict[str, list[str]] = field(default_factory=lambda: {"cgrates.org": ["THD_1"]})
    # ResourceS: one resource "RES_ACC" over the accounts in ``resource_accounts``, this limit
    resource_limit: int = 2
    resource_accounts: tuple[str, ...] = ("1001",)
    resource_usages: set[str] = field(default_factory=set)
    # Refund's EventCost of what a run keeps, as RALs answers it: a stand-in document whose
    # Cost is the kept cost plus ``event_cost_skew`` (a document that disagrees); None = no
    # document (a debit kept none)
    event_cost_skew: Decimal | None = None

    async def _enter(self, method: str) -> None:
        self.calls.append(method)
        if method in self.delay:
            await asyncio.sleep(self.delay[method])
        if method in self.errors:
            raise BackendError(self.errors[method])

    def _lose(self, method: str) -> None:
        if self.lose_replies.get(method, 0) > 0:
            self.lose_replies[method] -= 1
            raise ConnectionError(f"{method}: reply lost")

    def _account(self, event: CGREvent) -> str:
        acc = str(event.get("Account") or "")
        if acc not in self.balances:
            raise BackendError("ACCOUNT_NOT_FOUND")
        return acc

    async def attributes_process_event(self, event: CGREvent, context: str) -> AttributesReply:
        await self._enter("attributes")
        ev = event.copy()
        ev.event["OfficeGroup"] = "Marketing"
        # as a profile filtering on Account would say: only Account decides the answer
        ps = ProfileSet(self.attributes_version, frozenset({"Account"}), self.reusable)
        return AttributesReply(ev, ["ATTR_1001_SESSIONAUTH"], ["OfficeGroup"], ps)

    async def chargers_process_event(self, event: CGREvent) -> list[ChargerRun]:
        await self._enter("chargers")
        runs = []
        ps = ProfileSet(self.chargers_version, frozenset({"Context"}), self.reusable)
        for rid in self.run_ids:
            ev = event.copy()
            ev.event["RunID"] = rid
            runs.append(ChargerRun(rid, ev, ("*req.RunID",), ps))
        return runs

    async def rals_get_max_usage(self, run_event: CGREvent, usage_ns: int) -> int:
        await self._enter("max_usage")
        acc = self._account(run_event)
        if acc in self.max_usage_fixed:
            return min(usage_ns, self.max_usage_fixed[acc])
        n = int(self.balances[acc] / self.price)
        return min(usage_ns, n * self.increment_ns)

    async def rals_debit(
        self,
        run_event: CGREvent,
        usage_ns: int,
        request_id: str,
        *,
        offset_ns: int = 0,
        loop_index: int = 0,
        go_negative: bool = False,
        max_cost_so_far: Decimal = Decimal(0),
    ) -> DebitResult:
        await self._enter("debit")
        if request_id in self.journal:
            res = self.journal[request_id]
            assert isinstance(res, DebitResult)
            return res
        acc = self._account(run_event)
        if acc in self.debit_errors:
            raise BackendError(self.debit_errors[acc])
        want = -(-usage_ns // self.increment_ns)
        can = want if go_negative else min(want, int(self.balances[acc] / self.price))
        cost = self.price * can
        self.balances[acc] -= cost
        res = DebitResult(can * self.increment_ns, cost)
        self.journal[request_id] = res
        self.debit_calls.append((request_id, usage_ns))
        self._lose("debit")
        return res

    async def rals_refund(
        self, run_event: CGREvent, debit_ids: list[str], keep_usage_ns: int, request_id: str
    ) -> RefundResult:
        await self._enter("refund")
        if request_id in self.journal:
            res = self.journal[request_id]
            assert isinstance(res, RefundResult)
            return res
        acc = self._account(run_event)
        charged = sum(self.journal[i].usage_ns for i in debit_ids)  # type: ignore[union-attr]
        keep = -(-keep_usage_ns // self.increment_ns) * self.increment_ns
        back = max(0, charged - keep)
        cost = self.price * (back // self.increment_ns)
        self.balances[acc] += cost
        res = RefundResult(back, cost, self._event_cost(debit_ids, cost, keep_usage_ns))
        self.journal[request_id] = res
        return res

    def _event_cost(self, debit_ids: list[str], refunded: Decimal, keep_ns: int) -> str:
        if self.event_cost_skew is None:
            return ""
        debits = [self.journal[i] for i in debit_ids]
        kept = sum((d.cost for d in debits if isinstance(d, DebitResult)), Decimal(0)) - refunded
        return dumps_exact({"Cost": kept + self.event_cost_skew, "Usage": keep_ns, "Charges": []})

    async def cdrs_process_cdr(
        self, event: CGREvent, *, chargers: bool, attributes: bool, rals: bool
    ) -> CdrResult:
        await self._enter("cdrs")
        self.cdrs.append((event, {"chargers": chargers, "attributes": attributes, "rals": rals}))
        return CdrResult(stored=1)

    async def suppliers_get_suppliers(self, event: CGREvent) -> SuppliersReply:
        await self._enter("suppliers")
        return SuppliersReply("SPP_1", [SortedSupplier("supplier1"), SortedSupplier("supplier2")])

    async def stats_process_event(self, event: CGREvent) -> list[str]:
        await self._enter("stats")
        queues = self.stat_queues.get(event.tenant, [])
        if not queues:
            raise BackendError("NOT_FOUND")
        return list(queues)

    async def stats_queue_ids(self, tenant: str) -> list[str]:
        await self._enter("stats_ids")
        return list(self.stat_queues.get(tenant, []))

    async def thresholds_ids(self, tenant: str) -> list[str]:
        await self._enter("thresholds_ids")
        return list(self.thresholds.get(tenant, []))

    async def thresholds_process_event(self, event: CGREvent) -> list[str]:
        await self._enter("thresholds")
        return []

    def _resource_matches(self, event: CGREvent) -> bool:
        return str(event.get("Account") or "") in self.resource_accounts

    async def resources_authorize(self, event: CGREvent, usage_id: str) -> str | None:
        await self._enter("resources_authorize")
        if not self._resource_matches(event):
            return None
        if len(self.resource_usages) + 1 > self.resource_limit:
            raise BackendError("RESOURCE_UNAUTHORIZED")
        return "RES_ACC"

    async def resources_allocate(self, event: CGREvent, usage_id: str) -> str | None:
        await self._enter("resources_allocate")
        if not self._resource_matches(event):
            return None
        if len(self.resource_usages - {usage_id}) + 1 > self.resource_limit:
            raise BackendError("RESOURCE_UNAVAILABLE")
        self.resource_usages.add(usage_id)
        self._lose("resources_allocate")
        return "RES_ACC"

    async def resources_release(self, event: CGREvent, usage_id: str) -> None:
        await self._enter("resources_release")
        self.resource_usages.discard(usage_id)

    async def resources_release_usage(self, tenant: str, usage_id: str) -> list[str]:
        await self._enter("resources_release_usage")
        self._lose("resources_release_usage")
        held = usage_id in self.resource_usages
        self.resource_usages.discard(usage_id)
        return ["RES_ACC"] if held else []
