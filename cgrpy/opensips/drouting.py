"""OpenSIPS DRouting data from SupplierS profiles.

SupplierS sorts suppliers per call and SM hands OpenSIPS the order as ``SuppliersDigest``; the
OpenSIPS script then routes to each supplier as a DRouting *carrier*. This module derives the
DRouting rows (OpenSIPS 3.x ``dr_gateways``, ``dr_carriers``, ``dr_rules``) from the raw
``Suppliers`` rows of a tariff plan and writes them idempotently.

Conventions (documented in docs/deploy.md):

* one carrier per supplier ID (``dr_carriers.carrierid`` = SupplierID, as the digest names it);
  carriers are global in OpenSIPS, so the same supplier ID in several profiles or tenants is one
  carrier whose gateways are the union, in order of first appearance;
* gateways come from ``SupplierParameters``: a ``;``-separated list of SIP addresses
  ``sip:host[:port]``, or from the operator's ``--gateway SUPPLIER=sip:host[:port]`` (added to
  those of the tariff plan). A supplier with no address at all is not a carrier: it is listed in
  ``DRoutingRows.skipped`` and the command warns, naming it. Gateway IDs are ``<SupplierID>-<n>``;
* one catch-all rule (group 0, empty prefix) lists every carrier, so ``do_routing()`` also works;
* rows cgrpy owns carry a description starting with ``cgrpy:``; rows an operator added by hand
  are never touched.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

OWNER = "cgrpy:"
_SIP = re.compile(r"^sips?:(?P<host>[A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?$")
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,60}$")


class DRoutingError(ValueError):
    """Supplier data that cannot become DRouting rows; names the supplier and the problem."""


@dataclass(frozen=True)
class DRoutingRows:
    gateways: dict[str, dict[str, object]] = field(default_factory=dict)  # gwid -> columns
    carriers: dict[str, dict[str, object]] = field(default_factory=dict)  # carrierid -> columns
    rules: dict[str, dict[str, object]] = field(default_factory=dict)  # description -> columns
    skipped: list[str] = field(default_factory=list)  # supplier IDs without any gateway address


@dataclass(frozen=True)
class SyncResult:
    inserted: int
    updated: int
    deleted: int

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


def gateway_addresses(supplier_id: str, parameters: str) -> list[str]:
    """``sip:host[:port]`` entries of SupplierParameters as DRouting addresses (``host[:port]``)."""
    out: list[str] = []
    for raw in (p.strip() for p in parameters.split(";")):
        if not raw:
            continue
        m = _SIP.match(raw)
        if not m or (m["port"] and not 0 < int(m["port"]) < 65536):
            raise DRoutingError(
                f"supplier {supplier_id}: SupplierParameters entry {raw!r} is not sip:host[:port]"
            )
        out.append(m["host"] + (f":{m['port']}" if m["port"] else ""))
    return out


def parse_gateway_option(value: str) -> tuple[str, list[str]]:
    """``SUPPLIER=sip:host[:port][;sip:...]`` (``--gateway``) as (supplier ID, addresses)."""
    sid, sep, params = value.partition("=")
    if not sep or not _ID.match(sid.strip()) or not params.strip():
        raise DRoutingError(f"--gateway {value!r}: expected SUPPLIER=sip:host[:port]")
    return sid.strip(), gateway_addresses(sid.strip(), params)


def build_rows(suppliers: Iterable[Mapping[str, str]],
               extra_gateways: Mapping[str, list[str]] | None = None) -> DRoutingRows:
    """DRouting rows for the raw ``Suppliers`` rows of a tariff plan (columns.FILE_COLUMNS), plus
    the operator's gateways for suppliers of that plan (``extra_gateways``)."""
    addresses: dict[str, list[str]] = {}
    for row in suppliers:
        sid = (row.get("SupplierID") or "").strip()
        if not sid:
            continue
        if not _ID.match(sid):
            raise DRoutingError(f"supplier {sid!r}: ID unusable as a DRouting carrier id")
        known = addresses.setdefault(sid, [])
        params = row.get("SupplierParameters") or ""
        if params.strip():
            known.extend(a for a in gateway_addresses(sid, params) if a not in known)
    for sid, extra in (extra_gateways or {}).items():
        if sid not in addresses:
            raise DRoutingError(f"--gateway {sid}: no such supplier in the tariff plan")
        addresses[sid].extend(a for a in extra if a not in addresses[sid])
    result = DRoutingRows(skipped=[sid for sid, addrs in addresses.items() if not addrs])
    addresses = {sid: addrs for sid, addrs in addresses.items() if addrs}
    for sid, addrs in addresses.items():
        gwids = [f"{sid}-{n}" for n in range(1, len(addrs) + 1)]
        for gwid, addr in zip(gwids, addrs, strict=True):
            result.gateways[gwid] = {
                "gwid": gwid, "type": 0, "address": addr, "strip": 0, "probe_mode": 0, "state": 0,
                "description": f"{OWNER}supplier {sid}",
            }
        result.carriers[sid] = {
            "carrierid": sid, "gwlist": ",".join(gwids), "flags": 0, "state": 0,
            "description": f"{OWNER}supplier {sid}",
        }
    if addresses:
        result.rules[f"{OWNER}all suppliers"] = {
            "groupid": "0", "prefix": "", "priority": 0,
            "gwlist": ",".join(f"#{sid}" for sid in addresses),
            "description": f"{OWNER}all suppliers",
        }
    return result


_TABLES = (  # table, key column, columns written
    ("dr_gateways", "gwid", ("gwid", "type", "address", "strip", "probe_mode", "state", "description")),
    ("dr_carriers", "carrierid", ("carrierid", "gwlist", "flags", "state", "description")),
    ("dr_rules", "description", ("groupid", "prefix", "priority", "gwlist", "description")),
)


def sync(conn: Connection, rows: DRoutingRows) -> SyncResult:
    """Make the cgrpy-owned dr_* rows equal ``rows``; the caller owns the transaction."""
    inserted = updated = deleted = 0
    wanted_by_table = {"dr_gateways": rows.gateways, "dr_carriers": rows.carriers, "dr_rules": rows.rules}
    for table, key, cols in _TABLES:
        wanted = wanted_by_table[table]
        have = {
            r[key]: r
            for r in conn.execute(
                text(f"SELECT {', '.join(cols)} FROM {table} WHERE description LIKE :own"),
                {"own": OWNER + "%"},
            ).mappings()
        }
        clash = conn.execute(
            text(f"SELECT {key} FROM {table} WHERE description IS NULL OR description NOT LIKE :own"),
            {"own": OWNER + "%"},
        ).scalars().all()
        for k in set(clash) & set(wanted):
            raise DRoutingError(f"{table}: {key} {k!r} exists and was not created by cgrpy; not overwriting")
        for k in set(have) - set(wanted):
            conn.execute(text(f"DELETE FROM {table} WHERE {key} = :k AND description LIKE :own"),
                         {"k": k, "own": OWNER + "%"})
            deleted += 1
        for k, values in wanted.items():
            if k not in have:
                conn.execute(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"),
                             values)
                inserted += 1
            elif any(str(have[k][c]) != str(values[c]) for c in cols):
                sets = ", ".join(f"{c} = :{c}" for c in cols if c != key)
                conn.execute(text(f"UPDATE {table} SET {sets} WHERE {key} = :{key}"), values)
                updated += 1
    return SyncResult(inserted, updated, deleted)


def mi_dr_reload(mi_url: str, timeout: float = 5.0) -> object:
    """Ask OpenSIPS to reload DRouting (``dr_reload``) over mi_http's JSON-RPC; returns the result."""
    body = json.dumps({"jsonrpc": "2.0", "method": "dr_reload", "id": 1}).encode()
    req = urllib.request.Request(mi_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read() or b"{}")
    if reply.get("error"):
        raise DRoutingError(f"OpenSIPS MI dr_reload failed: {reply['error']}")
    return reply.get("result")
