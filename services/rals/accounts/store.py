"""Accounts in the StorDB: every change is one transaction with the account row locked, a
journal row per changed balance, and idempotency by request id.

The one way to change an account is :meth:`AccountStore.apply`: it locks the account row
(``UPDATE accounts SET version = version + 1`` first — this takes SQLite's write lock before
anything is read — then ``SELECT ... FOR UPDATE`` on Postgres), returns the stored result if the
request id was already applied, otherwise runs a pure ``change(account) -> result`` on a copy,
writes the differences, one journal row per changed balance, and the result under the request
id. An exception from ``change`` rolls everything back: nothing changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from cgrpy.event import dumps_exact, loads_exact
from cgrpy.storage.models.accounts import (
    account_requests,
    accounts,
    applied_action_plans,
    balance_journal,
    balances,
)
from services.rals.accounts.model import Account, AccountError, ActionTrigger, Balance

# change(account) mutates the account in place and returns a JSON-able result (Decimal allowed).
Change = Callable[[Account], dict[str, Any]]
Key = tuple[str, str]
# group_change(caller, members) mutates the caller and the other accounts (by key) in place.
GroupChange = Callable[[Account, dict[Key, Account]], dict[str, Any]]
# members(conn, caller) -> the other accounts the change needs (read inside the transaction)
Members = Callable[[Connection, Account], set[Key]]


@dataclass(frozen=True)
class Applied:
    result: dict[str, Any]
    replayed: bool  # True: the request id was applied before; this call changed nothing
    account: Account | None  # the account after the change (None when replayed)
    # the text of result["EventCost"] when the store encoded it already ("" when not)
    event_cost_json: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


def _dec(v: object) -> Decimal:
    # SQLite keeps exact decimals as text, Postgres returns Decimal.
    return v if isinstance(v, Decimal) else Decimal(str(v))


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        return v.replace(tzinfo=UTC)  # SQLite drops the offset; we only ever store UTC
    return v


def _split(text: str) -> frozenset[str]:
    return frozenset(x for x in text.split(";") if x)


def _join(items: frozenset[str]) -> str:
    return ";".join(sorted(items))


def _dest_text(dests: dict[str, bool]) -> str:
    return ";".join(("" if inc else "!") + d for d, inc in sorted(dests.items()))


def parse_destination_ids(text: str) -> dict[str, bool]:
    """``DST_A;!DST_B`` -> {DST_A: True, DST_B: False}; ``*any``/empty -> {} (every destination)."""
    out: dict[str, bool] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item or item == "*any":
            continue
        if item.startswith("!"):
            out[item[1:]] = False
        else:
            out[item] = True
    return out


def _num(v: Decimal) -> str:
    # EXACT_NUMERIC is TEXT on SQLite (exact digits) and NUMERIC on Postgres; the decimal's
    # text is exact for both (Postgres casts it), and sqlite3 cannot bind a Decimal.
    return format(v, "f")


def balance_row(acc: Account, b: Balance, position: int) -> dict[str, Any]:
    return {
        "uuid": b.uuid, "tenant": acc.tenant, "account": acc.account, "balance_id": b.id,
        "type": b.type, "value": _num(b.value), "expiry": b.expiry, "weight": _num(b.weight),
        "destination_ids": _dest_text(b.destination_ids), "rating_subject": b.rating_subject,
        "categories": _join(b.categories), "shared_groups": _join(b.shared_groups),
        "timing_ids": _join(b.timing_ids), "disabled": b.disabled, "blocker": b.blocker,
        "factor": dumps_exact(b.factor), "position": position,
    }


def _balance_from_row(r: Any) -> Balance:
    return Balance(
        type=r.type, value=_dec(r.value), id=r.balance_id, uuid=r.uuid, expiry=_aware(r.expiry),
        weight=_dec(r.weight), destination_ids=parse_destination_ids(r.destination_ids),
        rating_subject=r.rating_subject, categories=_split(r.categories),
        shared_groups=_split(r.shared_groups), timing_ids=_split(r.timing_ids),
        disabled=bool(r.disabled), blocker=bool(r.blocker),
        factor={k: _dec(v) for k, v in loads_exact(r.factor or "{}").items()},
    )


def triggers_to_json(triggers: list[ActionTrigger]) -> str:
    return dumps_exact([
        {
            "id": t.id, "unique_id": t.unique_id, "threshold_type": t.threshold_type,
            "threshold_value": t.threshold_value, "actions_id": t.actions_id,
            "recurrent": t.recurrent, "min_sleep_ns": t.min_sleep_ns, "expiry": t.expiry,
            "activation": t.activation, "weight": t.weight, "balance_filter": t.balance_filter,
            "executed": t.executed, "last_execution": t.last_execution,
        }
        for t in triggers
    ])


def _time_or_none(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None


def triggers_from_json(text: str) -> list[ActionTrigger]:
    out = []
    for d in loads_exact(text or "[]"):
        out.append(ActionTrigger(
            id=d["id"], unique_id=d["unique_id"], threshold_type=d["threshold_type"],
            threshold_value=_dec(d["threshold_value"]), actions_id=d["actions_id"],
            recurrent=d["recurrent"], min_sleep_ns=d["min_sleep_ns"],
            expiry=_time_or_none(d["expiry"]), activation=_time_or_none(d["activation"]),
            weight=_dec(d["weight"]), balance_filter=d["balance_filter"],
            executed=d["executed"], last_execution=_time_or_none(d["last_execution"]),
        ))
    return out


class _Replay(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("replay")
        self.result = result


class _MoreMembers(Exception):  # noqa: N818 - control flow: lock a larger set and start again
    def __init__(self, keys: set[Key]) -> None:
        super().__init__("more members")
        self.keys = keys


def in_groups(groups: frozenset[str]) -> Any:
    """WHERE clause: the balance belongs to one of ``groups`` (``shared_groups`` is the sorted
    ``;``-joined list, so ``;SG;`` inside ``;<list>;`` is an exact item match)."""
    cell = literal(";") + balances.c.shared_groups + literal(";")
    return or_(*(cell.contains(f";{g};", autoescape=True) for g in sorted(groups)))


class AccountStore:
    """Repository of accounts over one SQLAlchemy Engine (Postgres or SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"

    # --- reads ---------------------------------------------------------------------------

    def get_account(self, tenant: str, account: str) -> Account:
        """The account with its balances; ``AccountError('NOT_FOUND')`` if it does not exist."""
        with self.engine.connect() as conn:
            acc = self._load(conn, tenant, account, lock=False)
        if acc is None:
            raise AccountError("NOT_FOUND", f"account {tenant}:{account}")
        return acc

    def peek(self, tenant: str, account: str) -> Account:
        """The account for reading only (a cache may hand out its own instance)."""
        return self.get_account(tenant, account)

    def list_accounts(self, tenant: str | None = None) -> list[tuple[str, str]]:
        q = select(accounts.c.tenant, accounts.c.account).order_by(
            accounts.c.tenant, accounts.c.account
        )
        if tenant is not None:
            q = q.where(accounts.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [(r.tenant, r.account) for r in conn.execute(q)]

    def journal(self, tenant: str, account: str) -> list[dict[str, Any]]:
        q = (
            select(balance_journal)
            .where(balance_journal.c.tenant == tenant, balance_journal.c.account == account)
            .order_by(balance_journal.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {**r, "delta": _dec(r["delta"]), "value_after": _dec(r["value_after"])} for r in rows
        ]

    def verify(self, tenant: str, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        """Balances whose value differs from the sum of their journal: uuid -> (value, sum).

        Empty means the account is consistent (the ``cgr account verify`` invariant).
        """
        acc = AccountStore.get_account(self, tenant, account)  # the StorDB, never a cache
        sums: dict[str, Decimal] = {}
        for j in self.journal(tenant, account):
            sums[j["balance_uuid"]] = sums.get(j["balance_uuid"], Decimal(0)) + j["delta"]
        bad = {}
        for b in acc.balances:
            s = sums.get(b.uuid, Decimal(0))
            if s != b.value:
                bad[b.uuid] = (b.value, s)
        return bad

    def request_result(self, request_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(account_requests.c.result).where(account_requests.c.request_id == request_id)
            ).first()
        return None if r is None else loads_exact(r.result)

    # --- the one write path --------------------------------------------------------------

    def apply(
        self,
        tenant: str,
        account: str,
        change: Change,
        *,
        request_id: str,
        reason: str,
        create: bool = False,
        also: Callable[[Connection], None] | None = None,
    ) -> Applied:
        """Run ``change`` on the locked account and persist it atomically (see module doc).

        ``create``: a missing account is created empty first (in the same transaction);
        otherwise a missing account is ``NOT_FOUND``. A request id already applied returns its
        stored result with ``replayed=True`` and changes nothing. ``also(conn)`` runs inside
        the same transaction after the change (bookkeeping that must commit with it).
        """
        if not request_id:
            raise AccountError("MANDATORY_IE_MISSING", "[request_id]")
        for _attempt in range(3):
            try:
                return self._apply_once(tenant, account, change, request_id, reason, create, also)
            except _Replay as replay:
                return Applied(replay.result, True, None)
            except IntegrityError:
                # Two creators of a new account (or of the same request id) raced: the loser
                # retries and then sees the winner's row.
                continue
        raise AccountError("SERVER_ERROR", f"could not apply request {request_id!r}")

    def _apply_once(
        self, tenant: str, account: str, change: Change, request_id: str, reason: str,
        create: bool, also: Callable[[Connection], None] | None,
    ) -> Applied:
        with self.engine.begin() as conn:
            now = _now()
            locked = conn.execute(
                update(accounts)
                .where(accounts.c.tenant == tenant, accounts.c.account == account)
                .values(version=accounts.c.version + 1, updated_at=now)
            ).rowcount
            if not locked:
                if not create:
                    prior = self._stored(conn, request_id)
                    if prior is not None:
                        raise _Replay(prior)
                    raise AccountError("NOT_FOUND", f"account {tenant}:{account}")
                conn.execute(insert(accounts).values(
                    tenant=tenant, account=account, allow_negative=False, disabled=False,
                    triggers="[]", counters="{}", version=1, updated_at=now,
                ))
            prior = self._stored(conn, request_id)
            if prior is not None:
                # Raising rolls the version bump back: a replay leaves no trace at all.
                raise _Replay(prior)
            before = self._load(conn, tenant, account, lock=True)
            assert before is not None
            after = before.copy()
            result = change(after)
            self._write(conn, before, after, request_id, reason, now)
            conn.execute(insert(account_requests).values(
                request_id=request_id, tenant=tenant, account=account, kind=reason,
                result=dumps_exact(result), created_at=now,
            ))
            if also is not None:
                also(conn)
            return Applied(result, False, after)

    def _stored(self, conn: Connection, request_id: str) -> dict[str, Any] | None:
        r = conn.execute(
            select(account_requests.c.result).where(account_requests.c.request_id == request_id)
        ).first()
        return None if r is None else loads_exact(r.result)

    # --- changes of several accounts at once (shared groups) ------------------------------

    def shared_members(self, groups: frozenset[str], conn: Connection | None = None) -> set[Key]:
        """Accounts holding a balance in one of ``groups`` (the groups' members)."""
        if not groups:
            return set()
        q = select(balances.c.tenant, balances.c.account).where(in_groups(groups)).distinct()
        if conn is not None:
            return {(r.tenant, r.account) for r in conn.execute(q)}
        with self.engine.connect() as c:
            return {(r.tenant, r.account) for r in c.execute(q)}

    @staticmethod
    def balance_owners(conn: Connection, uuids: set[str]) -> set[Key]:
        """Accounts holding the balances ``uuids`` (those still existing)."""
        if not uuids:
            return set()
        q = select(balances.c.tenant, balances.c.account).where(
            balances.c.uuid.in_(sorted(uuids))).distinct()
        return {(r.tenant, r.account) for r in conn.execute(q)}

    def apply_group(
        self, tenant: str, account: str, change: GroupChange, *, members: Members,
        request_id: str, reason: str,
    ) -> Applied:
        """:meth:`apply` for a change that also touches other accounts (a shared-group debit
        or its refund): one transaction locks the caller's row and every member's, in key
        order (the order every writer takes account rows in, so no deadlock), re-reads
        ``members(conn, caller)`` under those locks (a member that appeared meanwhile: roll
        back, lock the larger set, start again), runs ``change`` on copies and writes each
        account's differences with its own journal rows, all under ``request_id``; the result
        is stored under the caller. A replayed request id changes nothing."""
        if not request_id:
            raise AccountError("MANDATORY_IE_MISSING", "[request_id]")
        want = self._guess_members(tenant, account, members)
        for _attempt in range(5):
            try:
                out, touched = self._apply_group_once(tenant, account, change, members, want,
                                                      request_id, reason)
            except _Replay as replay:
                return Applied(replay.result, True, None)
            except _MoreMembers as more:
                want = more.keys
                continue
            except IntegrityError:
                continue  # the same request id raced with itself: the next try replays it
            self._forget(touched)
            return out
        raise AccountError("SERVER_ERROR", f"could not apply request {request_id!r}")

    def _guess_members(self, tenant: str, account: str, members: Members) -> set[Key]:
        """The members as committed now, read without locks: what the transaction locks first
        (so it rarely has to start again for a member it did not know)."""
        with self.engine.connect() as conn:
            acc = self._load(conn, tenant, account, lock=False)
            return set() if acc is None else members(conn, acc) - {(tenant, account)}

    def known_member(self, tenant: str, account: str) -> bool:
        """Hook: True when the account is known to hold a shared-group balance (a cache that
        keeps members out remembers them)."""
        return False

    def _forget(self, keys: set[Key]) -> None:
        """Hook: accounts a group change wrote (a cache drops them)."""

    def _lock_rows(self, conn: Connection, keys: list[Key], now: datetime) -> set[Key]:
        found = set()
        for t, a in keys:
            if conn.execute(update(accounts).where(accounts.c.tenant == t, accounts.c.account == a)
                            .values(version=accounts.c.version + 1, updated_at=now)).rowcount:
                found.add((t, a))
        return found

    def _apply_group_once(
        self, tenant: str, account: str, change: GroupChange, members: Members, want: set[Key],
        request_id: str, reason: str,
    ) -> tuple[Applied, set[Key]]:
        me = (tenant, account)
        with self.engine.begin() as conn:
            now = _now()
            locked = self._lock_rows(conn, sorted(want | {me}), now)
            prior = self._stored(conn, request_id)
            if prior is not None:
                raise _Replay(prior)
            before = self._load(conn, tenant, account, lock=True) if me in locked else None
            if before is None:
                raise AccountError("NOT_FOUND", f"account {tenant}:{account}")
            need = members(conn, before) - {me}
            if not need <= want:
                raise _MoreMembers(want | need)  # rolls back: nothing was written
            others = {k: self._load(conn, *k, lock=True) for k in sorted(need & locked)}
            befores = {k: a for k, a in others.items() if a is not None}
            after, afters = before.copy(), {k: a.copy() for k, a in befores.items()}
            result = change(after, afters)
            self._write(conn, before, after, request_id, reason, now)
            for k in sorted(afters):
                self._write(conn, befores[k], afters[k], request_id, reason, now)
            conn.execute(insert(account_requests).values(
                request_id=request_id, tenant=tenant, account=account, kind=reason,
                result=dumps_exact(result), created_at=now,
            ))
            return Applied(result, False, after), {me, *afters}

    def load_versioned(self, tenant: str, account: str) -> tuple[Account, int] | None:
        """The account and its row version (what a later write must still find), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(accounts).where(accounts.c.tenant == tenant, accounts.c.account == account)
            ).first()
            if row is None:
                return None
            return self._from_row(conn, row), int(row.version)

    def _load(self, conn: Connection, tenant: str, account: str, *, lock: bool) -> Account | None:
        q = select(accounts).where(accounts.c.tenant == tenant, accounts.c.account == account)
        if lock and self._pg:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            return None
        return self._from_row(conn, row)

    @staticmethod
    def _from_row(conn: Connection, row: Any) -> Account:
        tenant, account = row.tenant, row.account
        bq = (
            select(balances)
            .where(balances.c.tenant == tenant, balances.c.account == account)
            .order_by(balances.c.position)
        )
        return Account(
            tenant=tenant, account=account,
            balances=[_balance_from_row(r) for r in conn.execute(bq)],
            allow_negative=bool(row.allow_negative), disabled=bool(row.disabled),
            triggers=triggers_from_json(row.triggers),
            counters={k: _dec(v) for k, v in loads_exact(row.counters or "{}").items()},
        )

    def _write(
        self, conn: Connection, before: Account, after: Account, request_id: str, reason: str,
        now: datetime,
    ) -> None:
        old = {b.uuid: (i, b) for i, b in enumerate(before.balances)}
        new_uuids = set()
        for pos, b in enumerate(after.balances):
            new_uuids.add(b.uuid)
            prev = old.get(b.uuid)
            if prev is None:
                conn.execute(insert(balances).values(**balance_row(after, b, pos)))
                delta = b.value
            else:
                if prev[1] != b or prev[0] != pos:
                    conn.execute(
                        update(balances)
                        .where(balances.c.uuid == b.uuid)
                        .values(**balance_row(after, b, pos))
                    )
                delta = b.value - prev[1].value
            if delta != 0:
                self._journal(conn, after, b.uuid, delta, b.value, reason, request_id, now)
        for b_uuid, (_pos, b) in old.items():
            if b_uuid not in new_uuids:
                conn.execute(delete(balances).where(balances.c.uuid == b_uuid))
                if b.value != 0:
                    # The removed value leaves through the journal, so sums stay provable.
                    self._journal(conn, after, b_uuid, -b.value, Decimal(0), reason,
                                  request_id, now)
        if (
            before.allow_negative != after.allow_negative
            or before.disabled != after.disabled
            or before.triggers != after.triggers
            or before.counters != after.counters
        ):
            conn.execute(
                update(accounts)
                .where(accounts.c.tenant == after.tenant, accounts.c.account == after.account)
                .values(
                    allow_negative=after.allow_negative, disabled=after.disabled,
                    triggers=triggers_to_json(after.triggers),
                    counters=dumps_exact(after.counters),
                )
            )

    @staticmethod
    def _journal(
        conn: Connection, acc: Account, balance_uuid: str, delta: Decimal, value_after: Decimal,
        reason: str, request_id: str, now: datetime,
    ) -> None:
        conn.execute(insert(balance_journal).values(
            tenant=acc.tenant, account=acc.account, balance_uuid=balance_uuid, delta=_num(delta),
            value_after=_num(value_after), reason=reason, request_id=request_id, created_at=now,
        ))

    # --- removal ---------------------------------------------------------------------------

    def remove_account(self, tenant: str, account: str, *, request_id: str | None = None) -> bool:
        """Remove the account and its balances; True if it existed.

        The journal stays (it is the audit trail): each non-zero balance leaves through one
        closing row (``-value``, reason ``remove_account``), so every balance's journal still sums
        to its value (now 0). Idempotent: an absent account is left alone (False); a request id
        already applied returns its first answer and changes nothing.
        """
        rid = request_id or f"remove:{uuid.uuid4()}"
        for _attempt in range(3):
            try:
                return self._remove_once(tenant, account, rid)
            except IntegrityError:
                continue  # the same request id raced with itself: the winner's answer is stored
        raise AccountError("SERVER_ERROR", f"could not remove {tenant}:{account}")

    def _remove_once(self, tenant: str, account: str, rid: str) -> bool:
        with self.engine.begin() as conn:
            now = _now()
            prior = self._stored(conn, rid)
            if prior is not None:
                return bool(prior.get("Removed"))
            # Lock first (SQLite: takes the write lock before reading), like apply().
            locked = conn.execute(
                update(accounts)
                .where(accounts.c.tenant == tenant, accounts.c.account == account)
                .values(version=accounts.c.version + 1, updated_at=now)
            ).rowcount
            acc = self._load(conn, tenant, account, lock=True) if locked else None
            if acc is not None:
                for b in acc.balances:
                    if b.value != 0:
                        self._journal(conn, acc, b.uuid, -b.value, Decimal(0), "remove_account",
                                      rid, now)
                conn.execute(delete(balances).where(balances.c.tenant == tenant,
                                                    balances.c.account == account))
                conn.execute(delete(accounts).where(accounts.c.tenant == tenant,
                                                    accounts.c.account == account))
            conn.execute(insert(account_requests).values(
                request_id=rid, tenant=tenant, account=account, kind="remove_account",
                result=dumps_exact({"Removed": acc is not None}), created_at=now,
            ))
            return acc is not None

    # --- action-plan bookkeeping -----------------------------------------------------------

    def plan_applied(self, tpid: str, tenant: str, account: str, action_plan_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(applied_action_plans.c.tpid).where(
                    applied_action_plans.c.tpid == tpid,
                    applied_action_plans.c.tenant == tenant,
                    applied_action_plans.c.account == account,
                    applied_action_plans.c.action_plan_id == action_plan_id,
                )
            ).first() is not None

    def mark_plan_applied(
        self, conn: Connection, tpid: str, tenant: str, account: str, action_plan_id: str
    ) -> None:
        conn.execute(insert(applied_action_plans).values(
            tpid=tpid, tenant=tenant, account=account, action_plan_id=action_plan_id,
            applied_at=_now(),
        ))
