"""Hash-chained, append-only audit log (docs/rules.md §Accounts and access).

Each organisation has its own chain (chain 0 is the exchange itself). A row's hash covers
its content and the previous row's hash, so editing or deleting any row breaks every link
after it; `market audit verify` walks the chains and names the first broken link.

Concurrency: append() locks the chain's head row (SELECT … FOR UPDATE) in the caller's
transaction, so two transactions appending to one chain take turns and seq has no gaps.
The lock is held until the caller commits; chains of different organisations never wait
on each other.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from market.db import Conn, Queries

Q = Queries("audit")
GENESIS = bytes(32)
EXCHANGE_CHAIN = 0


def _digest(
    prev_hash: bytes,
    *,
    chain_org_id: int,
    seq: int,
    actor_user_id: int | None,
    actor_org_id: int | None,
    action: str,
    object_kind: str,
    object_id: str,
    before: Any,
    after: Any,
    at: datetime,
) -> bytes:
    # Sorted keys and integer microseconds: the same bytes whether computed on insert or
    # re-computed from what jsonb hands back on verify.
    body = msgspec.json.encode(
        {
            "chain": chain_org_id,
            "seq": seq,
            "actor_user": actor_user_id,
            "actor_org": actor_org_id,
            "action": action,
            "kind": object_kind,
            "id": object_id,
            "before": before,
            "after": after,
            "at_us": int(at.timestamp() * 1_000_000),
        },
        order="sorted",
    )
    return hashlib.sha256(prev_hash + body).digest()


async def append(
    conn: Conn,
    *,
    at: datetime,
    chain_org_id: int | None,
    actor_user_id: int | None,
    actor_org_id: int | None,
    action: str,
    object_kind: str,
    object_id: int | str,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append one row in the caller's transaction; returns its seq."""
    if not conn.is_in_transaction():
        raise RuntimeError("audit.append must run inside the transaction of the change")
    chain = EXCHANGE_CHAIN if chain_org_id is None else chain_org_id
    # The round trip through JSON makes before/after exactly what jsonb will return.
    before = msgspec.json.decode(msgspec.json.encode(before))
    after = msgspec.json.decode(msgspec.json.encode(after))
    await conn.execute(Q.ensure_head, chain, GENESIS)
    head = await conn.fetchrow(Q.lock_head, chain)
    assert head is not None
    seq: int = head["seq"] + 1
    digest = _digest(
        head["hash"],
        chain_org_id=chain,
        seq=seq,
        actor_user_id=actor_user_id,
        actor_org_id=actor_org_id,
        action=action,
        object_kind=object_kind,
        object_id=str(object_id),
        before=before,
        after=after,
        at=at,
    )
    await conn.execute(
        Q.insert_row,
        chain,
        seq,
        actor_user_id,
        actor_org_id,
        action,
        object_kind,
        str(object_id),
        before,
        after,
        at,
        head["hash"],
        digest,
    )
    await conn.execute(Q.move_head, chain, seq, digest)
    return seq


class Break(msgspec.Struct, frozen=True):
    chain_org_id: int
    seq: int
    row_id: int | None
    reason: str

    def __str__(self) -> str:
        row = f"row id {self.row_id}" if self.row_id is not None else "no row"
        return f"chain {self.chain_org_id}, seq {self.seq} ({row}): {self.reason}"


async def verify(conn: Conn) -> tuple[int, list[Break]]:
    """Check every chain; return (rows checked, first break of each broken chain)."""
    checked = 0
    breaks: list[Break] = []
    heads = {r["chain_org_id"]: r for r in await conn.fetch(Q.all_heads)}
    chains = sorted(set(heads) | {r["chain_org_id"] for r in await conn.fetch(Q.all_chains)})
    for chain in chains:
        prev, expected_seq, found = GENESIS, 1, None
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            async for row in conn.cursor(Q.chain_rows, chain):
                checked += 1
                if row["seq"] != expected_seq:
                    found = Break(
                        chain,
                        expected_seq,
                        None,
                        f"row missing (next row present is seq {row['seq']}): deleted",
                    )
                    break
                if row["prev_hash"] != prev:
                    found = Break(chain, row["seq"], row["id"], "previous-hash link broken")
                    break
                digest = _digest(
                    prev,
                    chain_org_id=chain,
                    seq=row["seq"],
                    actor_user_id=row["actor_user_id"],
                    actor_org_id=row["actor_org_id"],
                    action=row["action"],
                    object_kind=row["object_kind"],
                    object_id=row["object_id"],
                    before=row["before"],
                    after=row["after"],
                    at=row["at"],
                )
                if digest != row["hash"]:
                    found = Break(
                        chain, row["seq"], row["id"], "content does not match its hash: edited"
                    )
                    break
                prev, expected_seq = digest, expected_seq + 1
        if found is None:
            head = heads.get(chain)
            last = expected_seq - 1
            if head is None or head["seq"] != last or head["hash"] != prev:
                head_seq = None if head is None else head["seq"]
                found = Break(
                    chain,
                    last + 1,
                    None,
                    f"chain ends at seq {last} but its head says {head_seq}: last rows deleted",
                )
        if found is not None:
            breaks.append(found)
    return checked, breaks
