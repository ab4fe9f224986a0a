"""TariffPlanService (served by the RALs process): runtime provisioning of one object at a time.

A Set writes the object as the CSV rows it would have in its tariff-plan file into the tp_*
tables of the TPID, after validating the whole resulting plan with the loader's own validation
(cross-references included), in one transaction; then the services compiling that kind reload.
So a provisioned profile behaves exactly like the same profile loaded from CSV and survives a
restart. Only a change to the configured TPID triggers reloads (another TPID is just stored).

LoadTariffPlan writes a stored TPid (or one object of it and what that needs) into the
configured TPID, merged by object key as CGRateS writes a TPid into its DataDB, validated as a
whole like `cgr load` (nothing written on a problem), then reloads.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from cgrates.v1 import common_pb2, tariffplan_pb2, tariffplan_pb2_grpc
from cgrpy.config import Settings
from cgrpy.errors import CGRError
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.netaddr import join_host_port
from cgrpy.runtime.client import ServiceClient
from cgrpy.runtime.reload import RELOADABLE, combine
from cgrpy.storage.tariffplans import list_tpids, read_tariffplan, replace_rows, replace_tariffplan
from cgrpy.tariffplan import merge
from cgrpy.tariffplan import profiles as tp
from cgrpy.tariffplan.columns import FILE_COLUMNS, TariffPlanRows
from cgrpy.tariffplan.validate import validate_rows

SERVICE_NAME = tariffplan_pb2.DESCRIPTOR.services_by_name["TariffPlanService"].full_name

# How GetTPRows's ``id`` selects the rows of a file (the ID a CGRateS GetTP* call names).
_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "Timings": ("Tag",), "Destinations": ("Id",), "Rates": ("Id",), "DestinationRates": ("Id",),
    "RatingPlans": ("Id",), "RatingProfiles": ("Tenant", "Category", "Subject"),
    "SharedGroups": ("Id",), "Actions": ("ActionsId",), "ActionPlans": ("Id",),
    "ActionTriggers": ("Tag",), "AccountActions": ("Tenant", "Account"),
    "Resources": ("Id",), "Stats": ("Id",), "Thresholds": ("Id",), "Filters": ("ID",),
    "Suppliers": ("ID",), "Attributes": ("ID",), "Chargers": ("ID",),
    "DispatcherProfiles": ("ID",), "DispatcherHosts": ("ID",),
}


def row_id(file: str, row: dict[str, str]) -> str:
    return ":".join(row[c] for c in _ID_COLUMNS[file])


class Owner(Protocol):
    settings: Settings

    @property
    def engine(self) -> Any: ...

    async def compile(self, tpid: str | None) -> Any: ...


def _kind(name: str) -> tp.Kind:
    try:
        return tp.kind(name)
    except tp.ProfileError as exc:
        raise CGRError("INVALID_ARGUMENT", str(exc)) from None


def _object(pb: common_pb2.JsonObject, what: str) -> Any:
    if not pb.json:
        raise CGRError("MANDATORY_IE_MISSING", f"[{what}]")
    try:
        return loads_exact(pb.json)
    except ValueError as exc:
        raise CGRError("INVALID_ARGUMENT", f"{what}: not JSON ({exc})") from None


class TariffPlanServicer(tariffplan_pb2_grpc.TariffPlanServiceServicer):
    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self._lock = asyncio.Lock()  # one writer at a time: validation sees the plan it changes

    @property
    def settings(self) -> Settings:
        return self.owner.settings

    def _tpid(self, tpid: str) -> str:
        if len(tpid) > 64:  # the StorDB's tpid column; refused before it becomes a database error
            raise CGRError("INVALID_ARGUMENT", f"TPid: at most 64 characters (got {len(tpid)})")
        return tpid or self.settings.tpid

    async def _plan(self, tpid: str) -> TariffPlanRows:
        """The TPid's rows with their extra cells (a rating profile's LoadId): the TP API shows
        them and a load into the live plan keeps them."""
        return await asyncio.to_thread(read_tariffplan, self.owner.engine, tpid, extras=True)

    async def _key(self, k: tp.Kind, obj: Any) -> tuple[str, str]:
        try:
            return k.key(obj, self.settings.default_tenant)
        except tp.ProfileError as exc:
            raise CGRError("MANDATORY_IE_MISSING", f"[{exc.field}]") from None

    async def _write(self, k: tp.Kind, tpid: str, label: str, changes: list[tp.RowChange]) -> dict[str, str]:
        def check(before: TariffPlanRows, after: TariffPlanRows) -> None:
            tp.check_change(label, changes, before, after)

        try:
            await asyncio.to_thread(
                replace_rows, self.owner.engine, tpid, [(c.file, c.match, c.rows) for c in changes], check,
            )
        except tp.ProvisioningRefused as exc:
            raise CGRError("INVALID_ARGUMENT", "; ".join(exc.problems[:10])) from None
        if tpid != self.settings.tpid:
            return {}
        return await self._reload(k.services, tpid)

    async def _reload(self, services: tuple[str, ...], tpid: str) -> dict[str, str]:
        """ReloadCache on every replica of the services compiling this kind (each holds its own
        compiled copy); RALs: this process directly, then the other RALs replicas."""
        out: dict[str, str] = {}
        for name in services:
            targets = list(self.settings.addrs(name))
            results: dict[str, str] = {}
            if name == "rals":
                own = join_host_port(self.settings.listen_host, self.settings.grpc_port("rals"))
                try:
                    await self.owner.compile(tpid)
                    results[own] = "reloaded"
                except CGRError as exc:
                    results[own] = exc.message
                targets = [t for t in targets if t != own]
            for target in targets:
                results[target] = await self._reload_target(name, target, tpid)
            out[name] = combine(results)
        return out

    async def _reload_target(self, name: str, target: str, tpid: str) -> str:
        client = ServiceClient(self.settings, name, RELOADABLE[name], addr=target)
        try:
            await client.call("ReloadCache", common_pb2.ReloadCacheRequest(tpid=tpid), timeout=30.0)
            return "reloaded"
        except CGRError as exc:
            return "not running" if "UNAVAILABLE" in exc.detail else exc.message
        finally:
            await client.close()

    async def SetProfile(self, request: tariffplan_pb2.ProfileRequest, context: Any) -> tariffplan_pb2.SetProfileResponse:
        k = _kind(request.kind)
        obj = _object(request.object, "object")
        tpid = self._tpid(request.tpid)
        await self._key(k, obj)
        try:
            tenant, ident, changes = tp.to_changes(k, obj, self.settings.default_tenant)
        except tp.ProfileError as exc:
            raise CGRError("INVALID_ARGUMENT", str(exc)) from None
        async with self._lock:
            if request.no_overwrite and tp.rows_of(k, await self._plan(tpid), tenant, ident):
                raise CGRError("EXISTS")
            if request.append:  # read and written under the lock: concurrent adds are all kept
                try:
                    changes = tp.appended(k, await self._plan(tpid), tenant, ident, changes)
                except tp.ProfileError as exc:
                    raise CGRError("INVALID_ARGUMENT", str(exc)) from None
            if k.name == "ActionPlan":  # timings of the previous version of the plan go too
                old = tp.removal_changes(k, await self._plan(tpid), tenant, ident)
                keep = {c.match["Tag"] for c in changes if c.file == "Timings"}
                changes += [c for c in old if c.file == "Timings" and c.match["Tag"] not in keep]
            label = f"{k.name} {tenant + ':' if tenant else ''}{ident}"
            reloaded = await self._write(k, tpid, label, changes)
        rows: dict[str, int] = {}
        for c in changes:
            rows[c.file] = rows.get(c.file, 0) + len(c.rows)
        return tariffplan_pb2.SetProfileResponse(tenant=tenant, id=ident, rows=rows, reloaded=reloaded)

    async def GetProfile(self, request: tariffplan_pb2.ProfileRequest, context: Any) -> common_pb2.JsonObject:
        k = _kind(request.kind)
        tenant, ident = await self._key(k, _object(request.object, "object"))
        found = tp.from_rows(k, await self._plan(self._tpid(request.tpid)), tenant, ident)
        if found is None:
            raise CGRError("NOT_FOUND")
        return common_pb2.JsonObject(json=dumps_exact(found))

    async def RemoveProfile(self, request: tariffplan_pb2.ProfileRequest, context: Any) -> tariffplan_pb2.SetProfileResponse:
        k = _kind(request.kind)
        tenant, ident = await self._key(k, _object(request.object, "object"))
        tpid = self._tpid(request.tpid)
        async with self._lock:
            plan = await self._plan(tpid)
            if not tp.rows_of(k, plan, tenant, ident):
                raise CGRError("NOT_FOUND")
            changes = tp.removal_changes(k, plan, tenant, ident)
            label = f"removing {k.name} {tenant + ':' if tenant else ''}{ident}"
            reloaded = await self._write(k, tpid, label, changes)
        return tariffplan_pb2.SetProfileResponse(tenant=tenant, id=ident, reloaded=reloaded)

    async def GetProfileIDs(self, request: tariffplan_pb2.ProfileIDsRequest, context: Any) -> common_pb2.IDsResponse:
        k = _kind(request.kind)
        tenant = None if request.tenant == "*all" else (request.tenant or self.settings.default_tenant)
        ids = tp.ids_of(k, await self._plan(self._tpid(request.tpid)), tenant)
        if not ids:
            raise CGRError("NOT_FOUND")
        return common_pb2.IDsResponse(ids=ids)

    async def GetTPIds(self, request: common_pb2.Empty, context: Any) -> tariffplan_pb2.TPIdsResponse:
        tpids = await asyncio.to_thread(list_tpids, self.owner.engine)
        if not tpids:
            raise CGRError("NOT_FOUND")
        return tariffplan_pb2.TPIdsResponse(tpids=tpids)

    async def GetTPRows(self, request: tariffplan_pb2.TPRowsRequest, context: Any) -> tariffplan_pb2.TPRowsResponse:
        if request.file not in FILE_COLUMNS:
            raise CGRError("INVALID_ARGUMENT", f"file: unknown tariff-plan file {request.file!r}")
        if not request.tpid:
            raise CGRError("MANDATORY_IE_MISSING", "[TPid]")
        plan = await self._plan(request.tpid)
        rows = [r for r in plan[request.file] if not request.id or row_id(request.file, r) == request.id]
        if not rows:
            raise CGRError("NOT_FOUND")
        return tariffplan_pb2.TPRowsResponse(rows=[common_pb2.JsonObject(json=dumps_exact(r)) for r in rows])

    async def LoadTariffPlan(
        self, request: tariffplan_pb2.LoadTariffPlanRequest, context: Any,
    ) -> tariffplan_pb2.LoadTariffPlanResponse:
        if not request.tpid:
            raise CGRError("MANDATORY_IE_MISSING", "[TPid]")
        live_id = self.settings.tpid
        async with self._lock:
            src = await self._plan(request.tpid)
            if not any(src.values()):
                raise CGRError("NOT_FOUND")
            part = self._selected(src, request.kind, request.id)
            if request.tpid == live_id:
                result = src  # the live plan itself: validate and reload
            elif request.flush and not request.kind:
                result = part
            else:
                result = merge.merge(await self._plan(live_id), part)
            problems = (await asyncio.to_thread(validate_rows, result)).problems
            if problems:
                shown = "; ".join(merge.describe(p, result) for p in problems[:5])
                raise CGRError("SERVER_ERROR", f"{len(problems)} problem(s), nothing loaded: {shown}")
            rows = {f: len(r) for f, r in result.items() if r}
            if request.dry_run:
                return tariffplan_pb2.LoadTariffPlanResponse(rows=rows)
            if request.tpid != live_id:
                await asyncio.to_thread(replace_tariffplan, self.owner.engine, live_id, result,
                                        source=f"stordb:{request.tpid}")
            # one rating object: RALs, and every FilterS when destinations came with it
            services = ("rals",) if request.kind and not part["Destinations"] else tp.ALL_RELOADABLE
            reloaded = await self._reload(services, live_id)
        failed = {k: v for k, v in reloaded.items() if v not in ("reloaded", "not running")}
        if failed:
            raise CGRError("SERVER_ERROR", "reload failed: " + ", ".join(f"{k}: {v}" for k, v in failed.items()))
        return tariffplan_pb2.LoadTariffPlanResponse(rows=rows, reloaded=reloaded)

    @staticmethod
    def _selected(src: TariffPlanRows, kind: str, ident: str) -> TariffPlanRows:
        if not kind:
            return src
        if not ident:
            raise CGRError("MANDATORY_IE_MISSING", "[ID]")
        try:
            return merge.select(src, kind, ident)
        except ValueError as exc:
            raise CGRError("INVALID_ARGUMENT", str(exc)) from None
        except LookupError:
            raise CGRError("NOT_FOUND") from None
