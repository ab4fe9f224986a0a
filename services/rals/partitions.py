"""Which RALs process owns which account: one owner per account partition at any time.

The account space is split into :data:`PARTITIONS` partitions (crc32 of ``tenant:account``),
leased as Postgres advisory locks ``(LOCK_CLASS, partition)`` by the shared machinery of
:mod:`cgrpy.runtime.partitions` (the lease connection's ``application_name`` is
``cgrpy-rals <host:port>``, so any process finds an owner's gRPC address).

Partitions are taken lazily: the first process asked about an account of a free partition
becomes its owner. Ownership is a speed device, not the safety net: every group commit is
fenced by the account's row version (see ``services.rals.accounts.live``), so a process that
lost its lease without noticing can only fail a commit and retry it on the locked path.

On SQLite there is one process and it owns everything (:class:`OwnsAll`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine

from cgrpy.runtime.partitions import PARTITIONS, PartitionLeases
from cgrpy.runtime.partitions import partition_of as _partition_of

__all__ = ["APP_PREFIX", "LOCK_CLASS", "PARTITIONS", "AdvisoryPartitions", "Ownership", "OwnsAll",
           "partition_of"]

LOCK_CLASS = 0x43475241  # first key of pg_advisory_lock(int, int): "CGRA"
APP_PREFIX = "cgrpy-rals "


def partition_of(tenant: str, account: str) -> int:
    return _partition_of(f"{tenant}:{account}")


class Ownership(Protocol):
    def owns(self, tenant: str, account: str) -> bool:
        """True when this process owns the account now (memory only, no I/O)."""
        ...

    def claim(self, tenant: str, account: str) -> str | None:
        """None: this process owns the account (taking its partition if free); otherwise the
        owner's gRPC address ("" when unknown). May block on the StorDB."""
        ...

    def known_owner(self, tenant: str, account: str) -> str | None:
        """The other owner's address if already known (no I/O), else None."""
        ...

    def forget(self, tenant: str, account: str) -> None:
        """The owner did not answer: look it up again next time."""
        ...

    def close(self) -> None: ...


class OwnsAll:
    """One process (SQLite, or a single RALs): every account is ours."""

    def owns(self, tenant: str, account: str) -> bool:
        return True

    def claim(self, tenant: str, account: str) -> str | None:
        return None

    def known_owner(self, tenant: str, account: str) -> str | None:
        return None

    def forget(self, tenant: str, account: str) -> None:
        pass

    def close(self) -> None:
        pass


class AdvisoryPartitions:
    """Account partitions as advisory-lock leases (:class:`cgrpy.runtime.partitions.PartitionLeases`)."""

    def __init__(
        self, engine: Engine, address: str, *, on_gained: Callable[[int], None],
        on_lost: Callable[[], None], heartbeat_s: float = 1.0,
    ) -> None:
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.address = address
        self.leases = PartitionLeases(conninfo, address, lock_class=LOCK_CLASS, app_prefix=APP_PREFIX,
                                      on_gained=on_gained, on_lost=on_lost, heartbeat_s=heartbeat_s)

    def owns(self, tenant: str, account: str) -> bool:
        return self.leases.held_now(partition_of(tenant, account))

    def known_owner(self, tenant: str, account: str) -> str | None:
        return self.leases.known(partition_of(tenant, account))

    def forget(self, tenant: str, account: str) -> None:
        self.leases.forget(partition_of(tenant, account))

    def claim(self, tenant: str, account: str) -> str | None:
        return self.leases.claim(partition_of(tenant, account))

    def held(self) -> set[int]:
        return self.leases.held()

    def close(self) -> None:
        """Release every partition (closing the lease connection drops its locks)."""
        self.leases.close()
