"""`cgr account get|set|remove|verify` and `cgr balance add|set|debit`: accounts in RALs.

    cgr account get 1001 [--tenant T] [--json]
    cgr account set 1001 [--allow-negative|--deny-negative] [--disable|--enable]
    cgr account remove 1001                      # idempotent; the journal stays
    cgr account verify [1001 ...] [--tenant T]  # balances == Σ journal, read from the StorDB
    cgr balance add 1001 --value 10 [--type *monetary] [--id *default]
    cgr balance set 1001 --value 10 [--type] [--id] [--weight W] [--expiry T]
                        [--destination-ids DST_A;!DST_B] [--rating-subject S] [--blocker]
    cgr balance debit 1001 --destination 1002 --usage 85s [--answer-time T]
                      [--request-type *postpaid] [--request-id ID]

Every command asks the running RALs over gRPC (``--addr``, default the ``rals_addr`` setting).
``verify`` has RALs read the StorDB (never its cache) and checks every account when none is
named (of ``--tenant``, or of every tenant).
``balance debit`` rates the call and debits it (RALs ``Debit``) under a fresh request id, or
``--request-id`` to retry one idempotently (the retry answers ``Duplicate: true`` and changes
nothing). Exit codes: 0 done (verify: consistent); 1 RALs error/unreachable or verify found a
difference; 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import uuid
from decimal import Decimal
from typing import Any

from cgrates.v1 import rals_pb2
from cgrpy.cli.cost import (
    add_call_args,
    add_connection_args,
    call_descriptor,
    parse_arg,
    print_json,
    print_table,
    rals_call,
    run_cli,
    tenant_of,
)
from cgrpy.event import loads_exact
from cgrpy.gotime import go_time
from cgrpy.units import format_duration, parse_decimal, parse_time, to_unix_nano


def register(subparsers: argparse._SubParsersAction) -> None:
    acc = subparsers.add_parser("account", help="accounts in RALs: get, set, remove, verify")
    sub = acc.add_subparsers(dest="account_command", metavar="ACTION", required=True)

    get = sub.add_parser("get", help="an account with its balances")
    get.add_argument("account")
    add_connection_args(get)
    get.set_defaults(func=run_cli("cgr account get", run_get))

    st = sub.add_parser("set", help="create an account or change its flags")
    st.add_argument("account")
    add_connection_args(st)
    neg = st.add_mutually_exclusive_group()
    neg.add_argument("--allow-negative", dest="allow_negative", action="store_true", default=None)
    neg.add_argument("--deny-negative", dest="allow_negative", action="store_false")
    dis = st.add_mutually_exclusive_group()
    dis.add_argument("--disable", dest="disabled", action="store_true", default=None)
    dis.add_argument("--enable", dest="disabled", action="store_false")
    st.set_defaults(func=run_cli("cgr account set", run_set))

    rm = sub.add_parser("remove", help="remove an account and its balances (journal stays)")
    rm.add_argument("account")
    add_connection_args(rm)
    rm.set_defaults(func=run_cli("cgr account remove", run_remove))

    ver = sub.add_parser("verify", help="prove balances == their journal (RALs reads the StorDB)")
    ver.add_argument("accounts", nargs="*", metavar="ACCOUNT", help="default: every account")
    add_connection_args(ver)
    ver.set_defaults(func=run_cli("cgr account verify", run_verify))

    bal = subparsers.add_parser("balance", help="balances in RALs: add, set, debit")
    bsub = bal.add_subparsers(dest="balance_command", metavar="ACTION", required=True)
    for name, helptext, fn in (("add", "add to a balance (created if missing)", run_add),
                               ("set", "set a balance's value and fields", run_set_balance)):
        b = bsub.add_parser(name, help=helptext)
        b.add_argument("account")
        add_connection_args(b)
        b.add_argument("--value", required=True, help="decimal (for *voice: a duration or ns)")
        b.add_argument("--type", default="*monetary", dest="balance_type")
        b.add_argument("--id", default="*default", dest="balance_id")
        if name == "set":
            b.add_argument("--weight", default="")
            b.add_argument("--expiry", default="", help="time, or *unlimited")
            b.add_argument("--destination-ids", default="")
            b.add_argument("--rating-subject", default="")
            b.add_argument("--categories", default="")
            b.add_argument("--blocker", action="store_true")
            b.add_argument("--disabled", action="store_true")
        b.set_defaults(func=run_cli(f"cgr balance {name}", fn))
    deb = bsub.add_parser("debit", help="rate a call and debit it from the account")
    deb.add_argument("account")
    add_connection_args(deb)
    add_call_args(deb)
    deb.add_argument("--request-type", default="*postpaid",
                     help="*postpaid (may go negative), *prepaid, *pseudoprepaid")
    deb.add_argument("--request-id", default="", help="idempotency key (default: a fresh one)")
    deb.set_defaults(func=run_cli("cgr balance debit", run_debit))


# --- output --------------------------------------------------------------------------------------


def _value_text(btype: str, value: str) -> str:
    if btype == "*voice":
        try:
            return format_duration(int(Decimal(value)))
        except (ValueError, ArithmeticError):
            return value
    return value


def _show_account(args: argparse.Namespace, acc: rals_pb2.Account) -> int:
    if args.json:
        print_json(loads_exact(acc.json) if acc.json else {"Tenant": acc.tenant, "ID": acc.id})
        return 0
    flags = [f for f, on in (("allow_negative", acc.allow_negative), ("disabled", acc.disabled))
             if on]
    print(f"{acc.tenant}:{acc.id.split(':')[-1]}" + (f"  [{', '.join(flags)}]" if flags else ""))
    if not acc.balances:
        print("no balances")
        return 0
    print_table(
        ("TYPE", "ID", "VALUE", "WEIGHT", "DESTINATIONS", "EXPIRY", "UUID"),
        [(b.type, b.id, _value_text(b.type, b.value), b.weight, ";".join(b.destination_ids),
          "" if not b.expiry_unix_ns else _iso(b.expiry_unix_ns), b.uuid) for b in acc.balances],
    )
    return 0


def _iso(ns: int) -> str:
    from cgrpy.units import from_unix_nano

    d = from_unix_nano(ns)
    return "" if d is None else go_time(d)


# --- account -------------------------------------------------------------------------------------


def run_get(args: argparse.Namespace) -> int:
    acc = rals_call(args, "GetAccount",
                    rals_pb2.AccountRequest(tenant=tenant_of(args), account=args.account))
    return _show_account(args, acc)


def run_set(args: argparse.Namespace) -> int:
    req = rals_pb2.SetAccountRequest(tenant=tenant_of(args), account=args.account)
    if args.allow_negative is not None:
        req.allow_negative = args.allow_negative
    if args.disabled is not None:
        req.disabled = args.disabled
    return _show_account(args, rals_call(args, "SetAccount", req))


def run_remove(args: argparse.Namespace) -> int:
    tenant = tenant_of(args)
    rals_call(args, "RemoveAccount", rals_pb2.AccountRequest(tenant=tenant, account=args.account))
    if args.json:
        print_json({"Tenant": tenant, "Account": args.account, "Removed": True})
    else:
        print(f"removed {tenant}:{args.account}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    req = rals_pb2.VerifyAccountsRequest(tenant=args.tenant, accounts=args.accounts)
    if args.accounts and not args.tenant:
        req.tenant = tenant_of(args)
    res = rals_call(args, "VerifyAccounts", req)
    report: list[dict[str, Any]] = []
    for ch in res.accounts:
        if ch.error:
            report.append({"Tenant": ch.tenant, "Account": ch.account, "OK": False,
                           "Error": ch.error})
            continue
        report.append({
            "Tenant": ch.tenant, "Account": ch.account, "OK": ch.ok,
            "Differences": [{"BalanceUUID": d.balance_uuid, "Value": Decimal(d.value),
                             "JournalSum": Decimal(d.journal_sum)} for d in ch.differences],
        })
    ok = all(r["OK"] for r in report)
    if args.json:
        print_json({"OK": ok, "Accounts": report})
    else:
        for r in report:
            if r["OK"]:
                print(f"ok    {r['Tenant']}:{r['Account']}")
            elif "Error" in r:
                print(f"ERROR {r['Tenant']}:{r['Account']}: {r['Error']}")
            else:
                for d in r["Differences"]:
                    print(f"DIFF  {r['Tenant']}:{r['Account']} balance {d['BalanceUUID']}: "
                          f"value {d['Value']} != journal {d['JournalSum']}")
        print(f"{len(report)} accounts checked, "
              f"{sum(1 for r in report if not r['OK'])} inconsistent")
    return 0 if ok else 1


# --- balance -------------------------------------------------------------------------------------


def _balance_value(args: argparse.Namespace) -> str:
    if args.balance_type == "*voice" and not args.value.strip().lstrip("-").isdigit():
        from cgrpy.units import parse_duration

        return str(parse_arg("--value", parse_duration, args.value))
    return str(parse_arg("--value", parse_decimal, args.value))


def run_add(args: argparse.Namespace) -> int:
    req = rals_pb2.SetBalanceRequest(
        tenant=tenant_of(args), account=args.account, balance_type=args.balance_type,
        value=_balance_value(args), balance=rals_pb2.Balance(id=args.balance_id))
    return _show_account(args, rals_call(args, "AddBalance", req))


def run_set_balance(args: argparse.Namespace) -> int:
    b = rals_pb2.Balance(id=args.balance_id, rating_subject=args.rating_subject,
                         blocker=args.blocker, disabled=args.disabled)
    if args.weight:
        b.weight = str(parse_arg("--weight", parse_decimal, args.weight))
    if args.expiry:
        when = parse_arg("--expiry", parse_time, args.expiry)
        b.expiry_unix_ns = to_unix_nano(when)
    if args.destination_ids:
        b.destination_ids.extend(x for x in args.destination_ids.split(";") if x)
    if args.categories:
        b.categories.extend(x for x in args.categories.split(";") if x)
    req = rals_pb2.SetBalanceRequest(
        tenant=tenant_of(args), account=args.account, balance_type=args.balance_type,
        value=_balance_value(args), balance=b)
    return _show_account(args, rals_call(args, "SetBalance", req))


def run_debit(args: argparse.Namespace) -> int:
    tenant = tenant_of(args)
    args.subject = args.subject or args.account
    cd = call_descriptor(args, tenant)
    rid = args.request_id or f"cli:{uuid.uuid4()}"
    resp = rals_call(args, "Debit", rals_pb2.DebitRequest(
        call=cd, request_id=rid, request_type=args.request_type))
    out = {"RequestID": rid, "Cost": Decimal(resp.cost), "Usage": resp.usage_ns,
           "Duplicate": resp.duplicate}
    if args.json:
        print_json(out)
    else:
        print(f"debited {out['Cost']} for {format_duration(resp.usage_ns)} from "
              f"{tenant}:{args.account} (request {rid}{', duplicate: nothing changed' if resp.duplicate else ''})")
    return 0

