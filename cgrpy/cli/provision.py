"""`cgr profiles ...`: provision one filter/profile/action set at runtime through RALs's
TariffPlanService (validated like a CSV load, stored in the StorDB, owners reloaded).

    cgr profiles set Attribute --json '{"ID": "ATTR_X", "Attributes": [...]}'
    cgr profiles set Attribute --json profile.json          (or - for stdin)
    cgr profiles set Attribute --csv Attributes.csv         (rows of that kind's file; one or more IDs)
    cgr profiles get Attribute ATTR_X [--tenant T]          cgr profiles rm Filter FLTR_X
    cgr profiles ids Threshold [--tenant T|*all]

KIND: Filter, Attribute, Charger, Supplier, StatQueue, Threshold, Resource, Actions, ActionPlan,
ActionTriggers (file names such as Attributes work too). ``--tpid`` targets another tariff plan
(stored only; the services reload only for the configured one).
Exit codes: 0 done; 1 refused or service unreachable (the CGRateS word and problems on stderr);
2 usage errors (unknown kind, unreadable JSON/CSV, bad configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc

from cgrates.v1 import common_pb2, tariffplan_pb2, tariffplan_pb2_grpc
from cgrpy.config import ConfigError, Settings, load_settings
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime import auth
from cgrpy.tariffplan import profiles as tp
from cgrpy.tariffplan.csvread import CsvShapeError, iter_file


class UsageError(ValueError):
    pass


def _read_arg(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    if text.lstrip().startswith(("{", "[")):
        return text
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"{text!r} is neither JSON nor a readable file")
    return path.read_text()


def objects_from_json(text: str) -> list[Any]:
    try:
        value = loads_exact(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not JSON: {exc}") from None
    return value if isinstance(value, list) else [value]


def objects_from_csv(k: tp.Kind, text: str, default_tenant: str) -> list[Any]:
    """CSV rows of the kind's file (header line optional) -> one object per tenant+ID, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{k.file}.csv"
        path.write_text(text)
        rows: list[dict[str, str]] = []
        for item in iter_file(path, k.file):
            if isinstance(item, CsvShapeError):
                raise UsageError(f"{item.file}:{item.line}: {item.message}")
            rows.append(item.cells)
    plan = {k.file: rows}
    keys = dict.fromkeys((r[k.tenant_col] if k.tenant_col else "", r[k.id_col]) for r in rows)
    out = []
    for tenant, ident in keys:
        out.append(tp.from_rows(k, plan, tenant, ident))
    return out


def _stub(settings: Settings) -> tuple[grpc.Channel, tariffplan_pb2_grpc.TariffPlanServiceStub]:
    channel = auth.channel(settings, settings.addr("rals"))
    return channel, tariffplan_pb2_grpc.TariffPlanServiceStub(channel)


def _key(k: tp.Kind, ident: str, tenant: str | None) -> dict[str, str]:
    return {"ID": ident, **({"Tenant": tenant} if tenant and k.tenant_col else {})}


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        k = tp.kind(args.kind)
    except (ConfigError, tp.ProfileError) as exc:
        print(f"cgr profiles: {exc}", file=sys.stderr)
        return 2
    channel, stub = _stub(settings)
    timeout = max(settings.rpc_timeout / 1e9, 30.0)
    try:
        if args.action == "set":
            if bool(args.json) == bool(args.csv):
                raise UsageError("give exactly one of --json or --csv")
            objs = (objects_from_json(_read_arg(args.json)) if args.json
                    else objects_from_csv(k, _read_arg(args.csv), settings.default_tenant))
            for obj in objs:
                req = tariffplan_pb2.ProfileRequest(kind=k.name, tpid=args.tpid, no_overwrite=args.no_overwrite,
                                                    object=common_pb2.JsonObject(json=dumps_exact(obj)))
                res = stub.SetProfile(req, timeout=timeout)
                who = f"{res.tenant}:{res.id}" if res.tenant else res.id
                reloads = ", ".join(f"{s} {v}" for s, v in sorted(res.reloaded.items()))
                print(f"{k.name} {who}: stored {sum(res.rows.values())} row(s)" + (f"; {reloads}" if reloads else ""))
        elif args.action in ("get", "rm"):
            req = tariffplan_pb2.ProfileRequest(
                kind=k.name, tpid=args.tpid,
                object=common_pb2.JsonObject(json=dumps_exact(_key(k, args.id, args.tenant))))
            if args.action == "get":
                print(json.dumps(json.loads(stub.GetProfile(req, timeout=timeout).json), indent=2))
            else:
                stub.RemoveProfile(req, timeout=timeout)
                print(f"{k.name} {args.id}: removed")
        else:
            req_ids = tariffplan_pb2.ProfileIDsRequest(kind=k.name, tpid=args.tpid, tenant=args.tenant or "")
            for ident in stub.GetProfileIDs(req_ids, timeout=timeout).ids:
                print(ident)
        return 0
    except UsageError as exc:
        print(f"cgr profiles: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            print(f"cgr profiles: RALs unreachable at {settings.addr('rals')} ({code.name})", file=sys.stderr)
        else:
            print(f"cgr profiles: {exc.details() or code.name}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    finally:
        channel.close()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("profiles", help="provision filters, profiles and actions at runtime")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("set", help="store one or more objects of KIND (JSON or CSV rows)")
    s.add_argument("kind")
    s.add_argument("--json", help="JSON object/list, a file, or - for stdin")
    s.add_argument("--csv", help="CSV rows of the kind's file, a file, or - for stdin")
    s.add_argument("--no-overwrite", action="store_true", help="refuse (EXISTS) when the ID exists")
    for name, helptext in (("get", "print one object as CGRateS JSON"), ("rm", "remove one object")):
        g = sub.add_parser(name, help=helptext)
        g.add_argument("kind")
        g.add_argument("id")
        g.add_argument("--tenant")
    i = sub.add_parser("ids", help="list the IDs of KIND")
    i.add_argument("kind")
    i.add_argument("--tenant", help="tenant (default: the configured one; *all: every tenant)")
    for q in (s, i, *(sub.choices[n] for n in ("get", "rm"))):
        q.add_argument("--tpid", default="", help="tariff plan (default: the configured TPID)")
        q.set_defaults(func=run)
