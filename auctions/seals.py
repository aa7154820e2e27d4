"""Bids sealed into the audit chain (docs/rules.md §Bidding): what was bid cannot be
rewritten unseen.

The `bids` table is append-only (a trigger refuses UPDATE and DELETE); a database superuser
can switch the trigger off. So every few seconds the worker seals each round's new bids:
their digest chains the round's previous seal with each bid in sequence order

    d₀ = 32 zero bytes;  dₖ = SHA-256(dₖ₋₁ ‖ canonical JSON of bid k)

and is appended to the exchange's own audit chain (action `bids.seal`), which is keyed
with a secret the database does not hold and anchored outside it (market/audit.py).
`verify` recomputes every round's digests from the bids and compares them with the sealed
ones: a bid edited, deleted or slipped into a sealed range breaks its round's seal. Bids
not yet sealed (the last few seconds') are counted, not judged.

Nothing here touches the bid path: the writer's batches are sealed after they commit.
Why per round and by `lots.auction_seq`: a round's sequence numbers are given under the
lot's row lock and committed in order with `auction_seq`, so a seal through `auction_seq`
never skips a bid committed later. A relist starts a new round; its predecessor's last
bids were sealed seconds after its close, days before any relist.

Concurrency: each round's seal is written under its `bid_seals` row lock (a first seal
under the primary key), so two sealers cannot seal one range twice; the audit chain takes
its own head lock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec

from market import audit
from market.db import Conn, Queries

Q = Queries("seals")
GENESIS: Final = bytes(32)
BATCH: Final = 500  # rounds sealed per run; the next run takes the rest


def _bid_bytes(row: Any) -> bytes:
    return msgspec.json.encode(
        {
            "lot": row["lot_id"],
            "round": row["round"],
            "seq": row["seq"],
            "registration": row["registration_id"],
            "amount_fen": row["amount_fen"],
            "kind": row["kind"],
            "at_us": int(row["at"].timestamp() * 1_000_000),
        },
        order="sorted",
    )


def chain(digest: bytes, rows: list[Any]) -> bytes:
    for row in rows:
        digest = hashlib.sha256(digest + _bid_bytes(row)).digest()
    return digest


async def seal_round(conn: Conn, at: datetime, lot_id: int, round: int, through: int) -> bool:
    """Seal one round's bids up to `through`, in the caller's transaction; False when
    another sealer got there first."""
    held = await conn.fetchrow(Q.seal_locked, lot_id, round)
    after_seq = 0 if held is None else held["through_seq"]
    if through <= after_seq:
        return False
    previous = GENESIS if held is None else bytes(held["digest"])
    digest = chain(previous, await conn.fetch(Q.bids_between, lot_id, round, after_seq, through))
    await conn.execute(Q.upsert_seal, lot_id, round, through, digest, at)
    await audit.append(
        conn,
        at=at,
        chain_org_id=None,
        actor_user_id=None,
        actor_org_id=None,
        action="bids.seal",
        object_kind="lot",
        object_id=lot_id,
        after={
            "round": round,
            "from_seq": after_seq,
            "through_seq": through,
            "digest": digest.hex(),
        },
    )
    return True


async def seal_due(pool: asyncpg.Pool, at: datetime) -> int:
    """Seal every round with bids past its seal; returns the rounds sealed."""
    sealed = 0
    async with pool.acquire() as conn:
        due = await conn.fetch(Q.rounds_to_seal, BATCH)
        for r in due:
            async with conn.transaction():
                sealed += await seal_round(conn, at, r["lot_id"], r["round"], r["auction_seq"])
    return sealed


class SealBreak(msgspec.Struct, frozen=True):
    lot_id: int
    round: int
    through_seq: int
    audit_seq: int

    def __str__(self) -> str:
        return (
            f"lot {self.lot_id} round {self.round}: the bids through seq {self.through_seq} "
            f"differ from their seal (exchange audit seq {self.audit_seq})"
        )


async def verify(conn: Conn) -> tuple[int, list[SealBreak]]:
    """Recompute every sealed round from its bids; returns (seals checked, breaks)."""
    rounds: dict[tuple[int, int], list[tuple[int, dict[str, Any]]]] = {}
    for row in await conn.fetch(Q.seal_audit_rows):
        after = row["after"]
        rounds.setdefault((int(row["object_id"]), after["round"]), []).append((row["seq"], after))
    checked, breaks = 0, []
    for (lot_id, round), seals in rounds.items():
        last = max(after["through_seq"] for _, after in seals)
        bids = await conn.fetch(Q.round_bids, lot_id, round, last)
        digest, next_bid = GENESIS, 0
        for audit_seq, after in sorted(seals, key=lambda s: s[1]["through_seq"]):
            checked += 1
            upto = after["through_seq"]
            start = next_bid  # the bids are in sequence order: each is chained once
            while next_bid < len(bids) and bids[next_bid]["seq"] <= upto:
                next_bid += 1
            digest = chain(digest, bids[start:next_bid])
            if digest.hex() != after["digest"]:
                breaks.append(SealBreak(lot_id, round, upto, audit_seq))
                break  # later seals of the round chain on this one
    return checked, breaks
