"""The advisory locks that order writers: a bank's registry (here), and any other area's
(`xact_lock` with that area's namespace, e.g. the reconciliation imports of one
organisation)."""

from __future__ import annotations

from typing import Final

from market.db import Conn, Queries

Q = Queries("collateral")

# First key of the two-key advisory lock: this area's namespace (market/db.py uses
# 7_240_001 with the one-key form, which PostgreSQL keeps apart from the two-key form).
BANK_REGISTRY_LOCK: Final = 7_240_003


async def xact_lock(conn: Conn, namespace: int, org_id: int) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock (namespace,
    organisation id); the namespace is the caller's area's first key."""
    if not conn.is_in_transaction():
        raise RuntimeError("the lock is held by a transaction; open one first")
    if not 0 < org_id < 2**31:
        raise RuntimeError("organisation ids fit the lock's int4 key")
    await conn.execute(Q.lock_bank, namespace, org_id)  # pg_advisory_xact_lock($1, $2)


async def lock_bank_registry(conn: Conn, bank_org_id: int) -> None:
    """Wait for, then hold until the transaction ends, the bank's registry write lock.

    Taken first thing in every transaction that rewrites a bank's registry (a CSV import,
    the monitoring run), before any row lock: two such transactions of one bank run one
    after the other and cannot deadlock on each other's rows.
    """
    await xact_lock(conn, BANK_REGISTRY_LOCK, bank_org_id)
