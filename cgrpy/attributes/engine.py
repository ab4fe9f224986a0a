"""AttributeS: select the heaviest matching attribute profile and apply it, per process run (docs/profiles.md).

Pure logic; AttributeS's gRPC server wraps :class:`AttributeEngine`, and ChargerS applies
inline profiles with it. An engine is immutable once built:
reloading builds a new one and swaps the reference, so in-flight requests finish on the old one.

Deviations from v0.10 (documented choices):
* weight ties pick the lowest profile ID (v0.10: map order, nondeterministic);
* ``SERVER_ERROR`` text follows :class:`cgrpy.errors.CGRError` formatting.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cgrpy.attributes.substitute import substitute
from cgrpy.errors import CGRError
from cgrpy.event import CGREvent
from cgrpy.filters import ActivationInterval, FilterError, FilterS, split_list
from cgrpy.filters.paths import DataProvider
from cgrpy.filters.rsr import RSRParser, compile_rsr_list
from cgrpy.filters.selection import ProfileEntry, ProfileIndex, sort_key
from cgrpy.iface import iface_as_string
from cgrpy.tariffplan.columns import TariffPlanRows
from cgrpy.units import UnitError, parse_decimal

ANY_CONTEXT = "*any"
DEFAULT_CONTEXT = "*default"
TENANT_PATH = "*tenant"
REMOVE = "*remove"
ATTRIBUTES_MARKER = "*attributes"
REQ_PREFIX = "*req."


class ProfileDataError(ValueError):
    """A tariff-plan row could not be turned into a profile; the message names the row."""


@dataclass(frozen=True)
class Attribute:
    filter_ids: tuple[str, ...]
    path: str
    type: str
    value_text: str
    value: tuple[RSRParser, ...] = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"FilterIDs": list(self.filter_ids), "Path": self.path, "Type": self.type,
                # config.RSRParser as v0.10 marshals it: Rules and its AllFiltersMatch flag
                "Value": [{"Rules": p.rule, "AllFiltersMatch": False} for p in self.value]}


@dataclass(frozen=True)
class AttributeProfile:
    tenant: str
    id: str
    contexts: tuple[str, ...]
    filter_ids: tuple[str, ...]
    activation: ActivationInterval | None
    attributes: tuple[Attribute, ...]
    blocker: bool = False
    weight: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        """CGRateS ``AttributeProfile`` JSON shape (for the API)."""
        return {
            "Tenant": self.tenant,
            "ID": self.id,
            "Contexts": list(self.contexts),
            "FilterIDs": list(self.filter_ids),
            "ActivationInterval": self.activation.to_dict() if self.activation else None,
            "Attributes": [a.to_dict() for a in self.attributes],
            "Blocker": self.blocker,
            "Weight": self.weight,
        }


@dataclass
class AttrReply:
    matched_profiles: list[str]
    altered_fields: list[str]
    event: CGREvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "MatchedProfiles": list(self.matched_profiles),
            "AlteredFields": list(self.altered_fields),
            "CGREvent": {"Tenant": self.event.tenant, "ID": self.event.id,
                         "Time": self.event.time, "Event": self.event.event},
        }

    def digest(self) -> str:
        return attributes_digest(self.altered_fields, self.event)


def attributes_digest(altered_fields: Sequence[str], event: CGREvent) -> str:
    """SessionS/OpenSIPS digest ``Name:value,...``.

    v0.10 quirk kept: the comma depends on the position in AlteredFields, so a skipped first
    field makes the digest start with a comma.
    """
    out = []
    for i, path in enumerate(altered_fields):
        name = path[len(REQ_PREFIX):] if path.startswith(REQ_PREFIX) else path
        if name not in event.event:
            continue
        sep = "," if i != 0 else ""
        out.append(f"{sep}{name}:{iface_as_string(event.event[name])}")
    return "".join(out)


def inline_profile(text: str, tenant: str) -> AttributeProfile:
    """``<type>:<path>:<value>`` as in a charger's AttributeIDs (ID = the whole text)."""
    parts = text.split(":")
    if len(parts) < 3:
        raise FilterError(f"inline parse error for string: {text}")
    value = ":".join(parts[2:])
    attr = Attribute((), parts[1], parts[0], value, tuple(compile_rsr_list(value)))
    return AttributeProfile(tenant, text, (ANY_CONTEXT,), (), None, (attr,))


def _bool(cell: str, what: str) -> bool:
    c = (cell or "").strip().lower()
    if c in ("", "false"):
        return False
    if c == "true":
        return True
    raise ProfileDataError(f"{what}: Blocker must be true or false, got {cell!r}")


def profiles_from_rows(rows: Iterable[Mapping[str, str]]) -> list[AttributeProfile]:
    """Attributes.csv rows -> profiles; rows with the same Tenant+ID form one profile.

    Profile columns (Contexts, FilterIDs, ActivationInterval, Blocker, Weight) may be on any row;
    lists are merged in order without duplicates, scalars come from the first non-empty cell.
    """
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for n, r in enumerate(rows, 1):
        tenant, pid = (r.get("Tenant") or "").strip(), (r.get("ID") or "").strip()
        what = f"Attributes row {n} ({tenant}:{pid})"
        if not tenant or not pid:
            raise ProfileDataError(f"Attributes row {n}: Tenant and ID are mandatory")
        p = acc.setdefault((tenant, pid), {"contexts": [], "filters": [], "ai": None,
                                           "blocker": None, "weight": None, "attrs": []})
        for c in split_list(r.get("Contexts", "")):
            if c not in p["contexts"]:
                p["contexts"].append(c)
        for f in split_list(r.get("FilterIDs", "")):
            if f not in p["filters"]:
                p["filters"].append(f)
        try:
            ai = ActivationInterval.parse(r.get("ActivationInterval", ""))
        except FilterError as exc:
            raise ProfileDataError(f"{what}: {exc}") from None
        if ai is not None and p["ai"] is None:
            p["ai"] = ai
        if (r.get("Blocker") or "").strip() and p["blocker"] is None:
            p["blocker"] = _bool(r["Blocker"], what)
        if (r.get("Weight") or "").strip() and p["weight"] is None:
            try:
                p["weight"] = parse_decimal(r["Weight"])
            except UnitError as exc:
                raise ProfileDataError(f"{what}: Weight: {exc}") from None
        path = (r.get("Path") or "").strip()
        if path:
            value = r.get("Value") or ""
            try:
                parsers = tuple(compile_rsr_list(value))
            except FilterError as exc:
                raise ProfileDataError(f"{what}: Value {value!r}: {exc}") from None
            p["attrs"].append(Attribute(tuple(split_list(r.get("AttributeFilterIDs", ""))),
                                        path, (r.get("Type") or "").strip(), value, parsers))
    out = []
    for (tenant, pid), p in acc.items():
        if not p["attrs"]:
            raise ProfileDataError(f"attribute profile {tenant}:{pid}: MANDATORY_IE_MISSING: "
                                   "[Attributes]")
        out.append(AttributeProfile(tenant, pid, tuple(p["contexts"] or [ANY_CONTEXT]),
                                    tuple(p["filters"]), p["ai"], tuple(p["attrs"]),
                                    bool(p["blocker"]), p["weight"] or Decimal(0)))
    return out


def _entry(p: AttributeProfile) -> ProfileEntry[AttributeProfile]:
    return ProfileEntry(p.tenant, p.id, p.filter_ids, p.activation, p.weight, p,
                        contexts=p.contexts, blocker=p.blocker)


class _NotFound(Exception):
    """Internal: a run found nothing (or a dynamic value read a missing field)."""


class AttributeEngine:
    """All attribute profiles with their indexes, plus FilterS; immutable once built."""

    def __init__(
        self,
        filters: FilterS,
        profiles: Iterable[AttributeProfile],
        *,
        string_fields: Sequence[str] | None = None,
        prefix_fields: Sequence[str] | None = (),
        indexed_selects: bool = True,
        process_runs: int = 1,
    ) -> None:
        self.filters = filters
        self.process_runs = max(1, process_runs)
        self.index: ProfileIndex[AttributeProfile] = ProfileIndex(
            filters, (_entry(p) for p in profiles), string_fields=string_fields,
            prefix_fields=prefix_fields, indexed_selects=indexed_selects)
        self._inline: dict[str, ProfileEntry[AttributeProfile]] = {}

    @classmethod
    def from_rows(cls, rows: TariffPlanRows, *, filters: FilterS | None = None,
                  **options: Any) -> AttributeEngine:
        """Build from a tariff plan (Filters, Destinations, Timings, Attributes rows)."""
        fs = filters or FilterS.from_tariffplan(rows)
        return cls(fs, profiles_from_rows(rows.get("Attributes", [])), **options)

    def profiles(self) -> list[AttributeProfile]:
        return [e.payload for e in self.index.entries()]

    def get_profile(self, tenant: str, profile_id: str) -> AttributeProfile:
        e = self.index.get(tenant, profile_id)
        if e is None:
            raise CGRError("NOT_FOUND")
        return e.payload

    # --- selection ---------------------------------------------------------------------------

    def _explicit(self, tenant: str, ids: Sequence[str]) -> list[ProfileEntry[AttributeProfile]]:
        out = []
        for pid in dict.fromkeys(ids):
            if pid.startswith("*"):
                e = self._inline.get(pid)
                if e is None:
                    e = _entry(inline_profile(pid, tenant))
                    self._inline[pid] = e
                out.append(e)
            elif (e := self.index.get(tenant, pid)) is not None:
                out.append(e)
        return out

    def _best(self, event: CGREvent, context: str,
              attribute_ids: Sequence[str] | None) -> AttributeProfile:
        tenant = event.tenant
        if attribute_ids:
            found = []
            for e in self._explicit(tenant, attribute_ids):
                if e.active_at(event.time) and self.filters.passes(tenant, e.filter_ids, event):
                    found.append(e)
            found.sort(key=sort_key)
        else:
            found = self.index.matching(tenant, event, context)
        if not found:
            raise _NotFound()
        return found[0].payload

    def get_attribute_for_event(self, event: CGREvent | None, *, context: str = "",
                                attribute_ids: Sequence[str] | None = None) -> AttributeProfile:
        """The profile ProcessEvent would apply in its first run (not applied)."""
        if event is None:
            raise CGRError("MANDATORY_IE_MISSING", "[CGREvent]")
        try:
            return self._best(event, context or DEFAULT_CONTEXT, attribute_ids)
        except _NotFound:
            raise CGRError("NOT_FOUND") from None
        except FilterError as exc:
            raise CGRError("SERVER_ERROR", str(exc)) from None

    # --- processing --------------------------------------------------------------------------

    def _apply(self, profile: AttributeProfile, ev: CGREvent) -> list[str]:
        altered: list[str] = []
        for attr in profile.attributes:
            if attr.filter_ids and not self.filters.passes(ev.tenant, attr.filter_ids, ev):
                continue
            dp = DataProvider({"*req": ev.event}, ev.tenant)
            try:
                sub = substitute(attr.type, attr.value, attr.value_text, dp)
            except FilterError as exc:
                if str(exc) == "NOT_FOUND":
                    raise _NotFound() from None
                raise
            if attr.path not in altered:
                altered.append(attr.path)
            if attr.path == TENANT_PATH:
                ev.tenant = ev.tenant + sub if attr.type == "*composed" else sub
                continue
            _set_path(ev, attr.path, sub, composed=attr.type == "*composed")
        return altered

    def process_event(
        self,
        event: CGREvent | None,
        *,
        context: str = "",
        attribute_ids: Sequence[str] | None = None,
        process_runs: int | None = None,
    ) -> AttrReply:
        """AttributeSv1.ProcessEvent with v0.10's process-run stop rules.

        Raises CGRError: ``NOT_FOUND`` (nothing matched in run 1), ``SERVER_ERROR`` (filter or
        substitution error), ``MANDATORY_IE_MISSING: [<field>]`` (``*attributes`` marker left).
        """
        if event is None:
            raise CGRError("MANDATORY_IE_MISSING", "[CGREvent]")
        runs = process_runs if process_runs and process_runs > 0 else self.process_runs
        context = context or DEFAULT_CONTEXT
        # New maps, same values (deepcopy keeps datetimes/Decimals typed, unlike a JSON trip).
        ev = CGREvent(event.tenant, event.id, event.time, copy.deepcopy(event.event))
        reply: AttrReply | None = None
        error: CGRError | None = None
        for i in range(runs):
            try:
                profile = self._best(ev, context, attribute_ids)
                altered = self._apply(profile, ev)
            except _NotFound:
                # Later runs may legitimately find nothing: keep what earlier runs did.
                error = CGRError("NOT_FOUND") if i == 0 else None
                break
            except FilterError as exc:
                error = CGRError("SERVER_ERROR", str(exc))
                break
            if reply is None:
                reply = AttrReply([profile.id], altered, ev)
                if profile.blocker:
                    break
                continue
            # v0.10 quirk kept: a profile matched again was already re-applied above.
            if profile.id in reply.matched_profiles:
                break
            reply.matched_profiles.append(profile.id)
            reply.altered_fields.extend(f for f in altered if f not in reply.altered_fields)
            if profile.blocker:
                break
        if error is not None:
            if error.word == "NOT_FOUND":
                missing = _marker_field(event)
                if missing is not None:
                    raise CGRError("MANDATORY_IE_MISSING", f"[{missing}]")
            raise error
        assert reply is not None
        missing = _marker_field(reply.event)
        if missing is not None:
            raise CGRError("MANDATORY_IE_MISSING", f"[{missing}]")
        return reply


def _marker_field(event: CGREvent) -> str | None:
    for k, v in event.event.items():
        if v == ATTRIBUTES_MARKER:
            return k
    return None


def _set_path(ev: CGREvent, path: str, sub: str, *, composed: bool) -> None:
    """Write ``sub`` at ``*req.A[.B]``; other roots go to a scratch map in v0.10 (no effect)."""
    if not path.startswith(REQ_PREFIX):
        return  # v0.10 quirk kept: listed in AlteredFields, no visible effect
    keys = path[len(REQ_PREFIX):].split(".")
    node: dict[str, Any] = ev.event
    for k in keys[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            if sub == REMOVE:
                return
            nxt = {}
            node[k] = nxt
        node = nxt
    last = keys[-1]
    if sub == REMOVE:
        node.pop(last, None)
        return
    if composed:
        sub = iface_as_string(node.get(last)) + sub
    node[last] = sub
