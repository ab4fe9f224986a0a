"""ChargerS: one derived event per matching charger profile, RunID set, attributes per run (docs/profiles.md).

AttributeS is reached only through an injected callable so the gRPC server can route it to the
AttributeS service; tests pass :meth:`AttributeEngine.process_event` directly. The callable is
called as ``attributes(event, context=..., attribute_ids=...)`` and returns an object with
``matched_profiles``, ``altered_fields`` and ``event`` (an ``AttrReply``), or raises CGRError.

A run whose AttributeIDs are all inline ``*constant`` profiles (``*constant:*req.RequestType:
*none``, as the tutorial's ``*raw`` charger) is given its attributes here, by AttributeS's own
engine (``cgrpy.attributes``) with no profiles of its own: such a profile carries everything in its
ID, matches any context and reads nothing of the event, so AttributeS would answer exactly the
same, whatever its profiles and process runs, and the hop to it is saved.

Deviations from v0.10 (documented choices):
* ``NOT_FOUND`` from AttributeS means "no attributes" for that run instead of failing the whole
  call (later CGRateS versions do the same);
* weight ties are ordered by profile ID (v0.10: unstable sort).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from cgrpy.attributes.engine import AttributeEngine
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.filters import ActivationInterval, FilterError, FilterS, split_list
from cgrpy.filters.selection import ProfileEntry, ProfileIndex
from cgrpy.iface import iface_as_string
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import UnitError, parse_decimal

NONE_ATTRIBUTES = "*none"
INLINE_CONSTANT = "*constant:"
CHARGERS_CONTEXT = "*chargers"
RUN_ID_FIELD = "RunID"


class ProfileDataError(ValueError):
    """A Chargers.csv row could not be turned into a profile; the message names the row."""


class AttributesReplyLike(Protocol):
    matched_profiles: list[str]
    altered_fields: list[str]
    event: CGREvent


AttributesCall = Callable[..., AttributesReplyLike]
AsyncAttributesCall = Callable[..., Awaitable[AttributesReplyLike]]


@dataclass(frozen=True)
class ChargerProfile:
    tenant: str
    id: str
    filter_ids: tuple[str, ...]
    activation: ActivationInterval | None
    run_id: str
    attribute_ids: tuple[str, ...]
    weight: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        """CGRateS ``ChargerProfile`` JSON shape."""
        return {
            "Tenant": self.tenant,
            "ID": self.id,
            "FilterIDs": list(self.filter_ids),
            "ActivationInterval": self.activation.to_dict() if self.activation else None,
            "RunID": self.run_id,
            "AttributeIDs": list(self.attribute_ids),
            "Weight": self.weight,
        }


@dataclass
class ChargerRun:
    """One ``ChrgSProcessEventReply``."""

    charger_profile: str
    run_id: str
    attribute_profiles: list[str] | None
    altered_fields: list[str]
    event: CGREvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "ChargerSProfile": self.charger_profile,
            "AttributeSProfiles": self.attribute_profiles,
            "AlteredFields": list(self.altered_fields),
            "CGREvent": {"Tenant": self.event.tenant, "ID": self.event.id,
                         "Time": self.event.time, "Event": self.event.event},
        }


def profiles_from_rows(rows: Iterable[Mapping[str, str]]) -> list[ChargerProfile]:
    """Chargers.csv rows -> profiles; rows with the same Tenant+ID merge (lists appended)."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for n, r in enumerate(rows, 1):
        tenant, pid = (r.get("Tenant") or "").strip(), (r.get("ID") or "").strip()
        what = f"Chargers row {n} ({tenant}:{pid})"
        if not tenant or not pid:
            raise ProfileDataError(f"Chargers row {n}: Tenant and ID are mandatory")
        p = acc.setdefault((tenant, pid), {"filters": [], "ai": None, "run_id": "",
                                           "attrs": [], "weight": None})
        p["filters"] += [f for f in split_list(r.get("FilterIDs", "")) if f not in p["filters"]]
        p["attrs"] += [a for a in split_list(r.get("AttributeIDs", "")) if a not in p["attrs"]]
        try:
            ai = ActivationInterval.parse(r.get("ActivationInterval", ""))
        except FilterError as exc:
            raise ProfileDataError(f"{what}: {exc}") from None
        if ai is not None and p["ai"] is None:
            p["ai"] = ai
        if (r.get("RunID") or "").strip() and not p["run_id"]:
            p["run_id"] = r["RunID"].strip()
        if (r.get("Weight") or "").strip() and p["weight"] is None:
            try:
                p["weight"] = parse_decimal(r["Weight"])
            except UnitError as exc:
                raise ProfileDataError(f"{what}: Weight: {exc}") from None
    out = []
    for (tenant, pid), p in acc.items():
        if not p["run_id"]:
            raise ProfileDataError(f"charger profile {tenant}:{pid}: RunID is mandatory")
        out.append(ChargerProfile(tenant, pid, tuple(p["filters"]), p["ai"], p["run_id"],
                                  tuple(p["attrs"]), p["weight"] or Decimal(0)))
    return out


def _entry(p: ChargerProfile) -> ProfileEntry[ChargerProfile]:
    return ProfileEntry(p.tenant, p.id, p.filter_ids, p.activation, p.weight, p)


class ChargerEngine:
    """All charger profiles with their indexes; immutable once built (reload = new engine)."""

    def __init__(
        self,
        filters: FilterS,
        profiles: Iterable[ChargerProfile],
        *,
        string_fields: Sequence[str] | None = None,
        prefix_fields: Sequence[str] | None = (),
        indexed_selects: bool = True,
    ) -> None:
        self.filters = filters
        # AttributeS's engine without profiles: it only ever applies inline *constant profiles
        self._inline = AttributeEngine(filters, ())
        self.index: ProfileIndex[ChargerProfile] = ProfileIndex(
            filters, (_entry(p) for p in profiles), string_fields=string_fields,
            prefix_fields=prefix_fields, indexed_selects=indexed_selects)

    @classmethod
    def from_rows(cls, rows: TariffPlanRows, *, filters: FilterS | None = None,
                  **options: Any) -> ChargerEngine:
        """Build from a tariff plan (Filters, Destinations, Timings, Chargers rows)."""
        fs = filters or FilterS.from_tariffplan(rows)
        return cls(fs, profiles_from_rows(rows.get("Chargers", [])), **options)

    def profiles(self) -> list[ChargerProfile]:
        return [e.payload for e in self.index.entries()]

    def get_chargers_for_event(self, event: CGREvent | None) -> list[ChargerProfile]:
        """Matching profiles, Weight desc then ID; none -> ``NOT_FOUND``."""
        if event is None or event.event is None:
            raise CGRError("MANDATORY_IE_MISSING", "[Event]")
        try:
            found = self.index.select(event.tenant, event)
        except FilterError as exc:
            raise CGRError("SERVER_ERROR", str(exc)) from None
        if not found:
            raise CGRError("NOT_FOUND")
        return found

    @staticmethod
    def _start_run(profile: ChargerProfile, event: CGREvent) -> ChargerRun:
        clone = CGREvent(event.tenant, event.id, event.time, copy.deepcopy(event.event))
        clone.event[RUN_ID_FIELD] = profile.run_id
        return ChargerRun(profile.id, profile.run_id, None, ["*req.RunID"], clone)

    @staticmethod
    def _attribute_args(profile: ChargerProfile, run: ChargerRun) -> dict[str, Any] | None:
        if list(profile.attribute_ids) == [NONE_ATTRIBUTES]:
            return None
        ctx = run.event.event.get("Context")
        return {
            "context": iface_as_string(ctx) if ctx not in (None, "") else CHARGERS_CONTEXT,
            "attribute_ids": list(profile.attribute_ids) or None,
        }

    def _local(self, run: ChargerRun, args: dict[str, Any]) -> AttributesReplyLike | None:
        """The run's attributes applied here when every AttributeID is an inline ``*constant``
        profile (see the module doc); None: ask AttributeS."""
        ids = args["attribute_ids"]
        if not ids or not all(i.startswith(INLINE_CONSTANT) for i in ids):
            return None
        return self._inline.process_event(run.event, **args)

    @staticmethod
    def _merge(run: ChargerRun, reply: AttributesReplyLike) -> None:
        run.attribute_profiles = list(reply.matched_profiles)
        if reply.altered_fields:
            run.altered_fields.extend(reply.altered_fields)
            run.event = reply.event

    @staticmethod
    def _attribute_error(exc: Exception) -> CGRError | None:
        """None when the error means "no attributes" (NOT_FOUND); else the error to raise."""
        if isinstance(exc, CGRError):
            if exc.word == "NOT_FOUND":
                return None
            if exc.word == "SERVER_ERROR":
                return exc
            return CGRError("SERVER_ERROR", exc.message)
        return CGRError("SERVER_ERROR", str(exc))

    def process_event(self, event: CGREvent | None, attributes: AttributesCall) -> list[ChargerRun]:
        """ChargerSv1.ProcessEvent with a synchronous AttributeS callable."""
        runs = []
        for profile in self.get_chargers_for_event(event):
            assert event is not None
            run = self._start_run(profile, event)
            args = self._attribute_args(profile, run)
            if args is not None:
                try:
                    reply = self._local(run, args) or attributes(run.event, **args)
                except Exception as exc:  # noqa: BLE001 - mapped to CGRateS words below
                    err = self._attribute_error(exc)
                    if err is not None:
                        raise err from exc
                else:
                    self._merge(run, reply)
            runs.append(run)
        return runs

    async def process_event_async(
        self, event: CGREvent | None, attributes: AsyncAttributesCall
    ) -> list[ChargerRun]:
        """Same as :meth:`process_event` with an awaitable AttributeS callable (gRPC client)."""
        runs = []
        for profile in self.get_chargers_for_event(event):
            assert event is not None
            run = self._start_run(profile, event)
            args = self._attribute_args(profile, run)
            if args is not None:
                try:
                    reply = self._local(run, args) or await attributes(run.event, **args)
                except Exception as exc:  # noqa: BLE001 - mapped to CGRateS words below
                    err = self._attribute_error(exc)
                    if err is not None:
                        raise err from exc
                else:
                    self._merge(run, reply)
            runs.append(run)
        return runs
