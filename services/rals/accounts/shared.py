"""Shared groups (SharedGroups.csv): a balance shared by every account holding one in the group.

A balance whose ``SharedGroups`` names group ``G`` is not only its account's: a debit of any
account that holds a balance in ``G`` may consume it. When the calling account's usable balances
are ranked (``selection.usable_balances``), each of its balances in a group is replaced by the
usable balances of that group of every member (the caller's own included), ordered by the
group's strategy for the caller:

* ``*lowest`` / ``*highest``: by value, smallest / largest first (ties: member key order);
* ``*random``: shuffled;
* ``*mine_lowest`` / ``*mine_highest`` / ``*mine_random``: the same, then the caller's own
  balance moved to the front (the default strategy, and the one used for an unknown word).

The strategy comes from the group's row for the caller's account id (``tenant:account``, or the
bare account) and else from its ``*any`` row, as v0.10's ``AccountParameters``. Members are the
accounts holding a balance in the group (v0.10 adds an account to ``MemberIds`` when an action
gives it such a balance); disabled members are skipped. The SharedGroups.csv ``RatingSubject``
is stored and shown (``GetSharedGroup``) but, as in v0.10, rating uses each balance's own.

This module is pure; where the members come from and how they are locked is the store's
business (``AccountStore.apply_group``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.rals.accounts.model import Account, Balance

ANY = "*any"
MINE = "*mine_"
DEFAULT_STRATEGY = "*mine_random"
Key = tuple[str, str]


@dataclass(frozen=True)
class SharingParameters:
    strategy: str = ""
    rating_subject: str = ""


@dataclass
class SharedGroup:
    """One SharedGroups.csv Id: sharing parameters per account id (``*any`` for the rest)."""

    id: str
    params: dict[str, SharingParameters] = field(default_factory=dict)

    def strategy_for(self, acc: Account) -> str:
        sp = self.params.get(acc.id) or self.params.get(acc.account) or self.params.get(ANY)
        return sp.strategy if sp is not None and sp.strategy else DEFAULT_STRATEGY

    def to_json(self, members: Iterable[Key]) -> dict[str, Any]:
        """v0.10 engine.SharedGroup: Id, AccountParameters, MemberIds (``tenant:account``)."""
        return {
            "Id": self.id,
            "AccountParameters": {
                k: {"Strategy": p.strategy, "RatingSubject": p.rating_subject}
                for k, p in self.params.items()
            },
            "MemberIds": {f"{t}:{a}": True for t, a in sorted(members)},
        }


def parse_shared_groups(rows: Sequence[Mapping[str, str]]) -> dict[str, SharedGroup]:
    """SharedGroups.csv rows (already validated by the loader) -> groups by Id."""
    out: dict[str, SharedGroup] = {}
    for r in rows:
        gid = r["Id"].strip()
        sg = out.setdefault(gid, SharedGroup(gid))
        sg.params[r.get("Account", "").strip() or ANY] = SharingParameters(
            r.get("Strategy", "").strip(), r.get("RatingSubject", "").strip())
    return out


def groups_of(acc: Account) -> frozenset[str]:
    """Every shared group some balance of ``acc`` belongs to."""
    return frozenset(g for b in acc.balances for g in b.shared_groups)


def order_by_strategy(strategy: str, mine: Balance, pool: list[Balance],
                      rng: random.Random | None = None) -> list[Balance]:
    """``pool`` (the group's usable balances, member key order) ordered for the caller whose
    balance in the group is ``mine``."""
    base = "*" + strategy[len(MINE):] if strategy.startswith(MINE) else strategy
    if base not in ("*lowest", "*highest", "*random"):
        strategy, base = DEFAULT_STRATEGY, "*random"  # v0.10: *mine_random for anything else
    if base == "*lowest":
        out = sorted(pool, key=lambda b: b.value)
    elif base == "*highest":
        out = sorted(pool, key=lambda b: -b.value)
    else:
        out = list(pool)
        (rng or random).shuffle(out)
    if strategy.startswith(MINE):
        out.sort(key=lambda b: b.uuid != mine.uuid)  # stable: only the caller's moves first
    return out


@dataclass
class SharedView:
    """The accounts a shared-group debit may touch (caller excluded) and the groups' rules.

    ``members`` are the member accounts as loaded under lock (the debit changes them in place);
    ``usable(member, group)`` ranks one member's balances of one group."""

    groups: Mapping[str, SharedGroup]
    members: dict[Key, Account] = field(default_factory=dict)
    rng: random.Random | None = None

    def find(self, balance_uuid: str) -> Balance | None:
        for acc in self.members.values():
            b = acc.by_uuid(balance_uuid)
            if b is not None:
                return b
        return None

    def expand(self, caller: Account, ranked: list[Balance],
               usable: Any) -> list[Balance]:
        """``ranked`` (the caller's usable balances) with each shared balance replaced by its
        groups' balances of every member, in strategy order; each balance appears once."""
        out: list[Balance] = []
        seen: set[str] = set()
        everyone = [caller, *(self.members[k] for k in sorted(self.members))]
        for b in ranked:
            if not b.shared_groups:
                if b.uuid not in seen:
                    seen.add(b.uuid)
                    out.append(b)
                continue
            for gid in sorted(b.shared_groups):
                sg = self.groups.get(gid)
                if sg is None:
                    continue  # v0.10 logs "Could not get shared group" and skips it
                pool = [m for acc in everyone if acc is caller or not acc.disabled
                        for m in usable(acc, gid)]
                for m in order_by_strategy(sg.strategy_for(caller), b, pool, self.rng):
                    if m.uuid not in seen:
                        seen.add(m.uuid)
                        out.append(m)
        return out
