"""Keyed hash-chained, append-only audit log (docs/rules.md §Accounts and access,
§Security).

Each organisation has its own chain (chain 0 is the exchange itself). A row's hash is an
HMAC-SHA256, under the audit key, of its content and the previous row's hash: editing or
deleting a row breaks every link after it, and the chain cannot be recomputed after an
edit without the key, which the database does not hold (`key_of`: MARKET_AUDIT_KEY, or
derived from the exchange's secret key). What the key cannot show — rows cut off the
tail, or the chain rolled back to an older state — the anchors outside PostgreSQL show
(market/audit_anchors.py). `market audit verify` walks the chains and names the first
broken link of each.

Rows written before the chain was keyed keep their plain SHA-256 hashes: they are accepted
only as the prefix of a chain, before its first keyed row (whose HMAC covers their last
hash, so they cannot change either), and once the anchors exist only as far as the first
anchoring counted them — a chain rewritten as plain SHA-256 later is refused.

Concurrency: append() locks the chain's head row (SELECT … FOR UPDATE) in the caller's
transaction, so two transactions appending to one chain take turns and seq has no gaps.
The lock is held until the caller commits; chains of different organisations never wait
on each other. The HMAC costs what the plain hash did: one more pass of SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from market.db import Conn, Queries

if TYPE_CHECKING:
    from market.audit_anchors import Anchors
    from market.settings import Settings

Q = Queries("audit")
GENESIS = bytes(32)
EXCHANGE_CHAIN = 0
_KEY_PURPOSE = b"market audit chain v1"
_process: dict[str, bytes] = {}  # "key": this process's audit key (use_key)


def key_of(settings: Settings) -> bytes:
    """The audit key: MARKET_AUDIT_KEY when set (so the secret key can be rotated without
    the audit chain), else derived from the exchange's secret key for this one purpose."""
    secret = settings.audit_key or settings.secret_key
    if not secret:
        raise RuntimeError("the audit chain needs MARKET_AUDIT_KEY or MARKET_SECRET_KEY")
    return hmac.new(secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def use_key(key: bytes) -> None:
    """The key this process appends and verifies with; set where the process starts (the
    app, the worker, the command line) from its settings."""
    _process["key"] = key


def current_key() -> bytes:
    """The key set by `use_key`, or else the one the environment's settings give."""
    if "key" not in _process:
        from market.settings import load

        use_key(key_of(load()))
    return _process["key"]


def _body(
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
    return msgspec.json.encode(
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


def row_body(row: Any, chain: int, seq: int) -> bytes:
    """The bytes a stored row's hash covers, were it row `seq` of `chain`."""
    return _body(
        chain_org_id=chain,
        seq=seq,
        actor_user_id=row["actor_user_id"],
        actor_org_id=row["actor_org_id"],
        action=row["action"],
        object_kind=row["object_kind"],
        object_id=row["object_id"],
        before=row["before"],
        after=row["after"],
        at=row["at"],
    )


def _keyed(key: bytes, prev_hash: bytes, body: bytes) -> bytes:
    return hmac.new(key, prev_hash + body, hashlib.sha256).digest()


def _plain(prev_hash: bytes, body: bytes) -> bytes:
    """The hash of a row written before the chain was keyed."""
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
    body = _body(
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
    digest = _keyed(current_key(), head["hash"], body)
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


@dataclass
class Walk:
    """One chain walked row by row from a known link (genesis, or an anchor): each row
    must follow the last in seq, link to its hash and carry its own keyed hash — or, as
    long as `legacy_until` allows and no keyed row came yet, its plain one."""

    chain: int
    key: bytes
    prev: bytes = GENESIS
    seq: int = 0
    legacy: int = 0  # rows of the unkeyed prefix seen
    legacy_until: int | None = None  # the last seq that may be unkeyed; None: any prefix
    keyed_seen: bool = False

    def step(self, row: Any) -> Break | None:
        chain, expected = self.chain, self.seq + 1
        if row["seq"] != expected:
            reason = f"row missing (next row present is seq {row['seq']}): deleted"
            return Break(chain, expected, None, reason)
        if row["prev_hash"] != self.prev:
            return Break(chain, row["seq"], row["id"], "previous-hash link broken")
        body = row_body(row, chain, row["seq"])
        stored = row["hash"]
        if hmac.compare_digest(_keyed(self.key, self.prev, body), stored):
            self.keyed_seen = True
        elif (
            not self.keyed_seen
            and (self.legacy_until is None or row["seq"] <= self.legacy_until)
            and _plain(self.prev, body) == stored
        ):
            self.legacy += 1
        else:
            reason = "content does not match its keyed hash: edited or rewritten without the key"
            return Break(chain, row["seq"], row["id"], reason)
        self.prev, self.seq = bytes(stored), row["seq"]
        return None


async def verify(
    conn: Conn, *, key: bytes | None = None, anchors: Anchors | None = None
) -> tuple[int, list[Break]]:
    """Check every chain with the key, and against the anchors when given (an
    `audit_anchors.Anchors`); return (rows checked, first break of each broken chain)."""
    key = current_key() if key is None else key
    checked = 0
    breaks: list[Break] = list(anchors.problems) if anchors is not None else []
    latest = anchors.latest if anchors is not None else {}
    heads = {r["chain_org_id"]: r for r in await conn.fetch(Q.all_heads)}
    in_log = {r["chain_org_id"] for r in await conn.fetch(Q.all_chains)}
    for chain in sorted(set(heads) | in_log | set(latest)):
        anchor = latest.get(chain)
        walk = Walk(chain, key, legacy_until=anchors.legacy_until(chain) if anchors else None)
        found = None
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            async for row in conn.cursor(Q.chain_rows, chain):
                checked += 1
                found = walk.step(row)
                if (
                    found is None
                    and anchor is not None
                    and row["seq"] == anchor.seq
                    and walk.prev != anchor.hash
                ):
                    reason = "differs from its anchor outside the database: rewritten"
                    found = Break(chain, row["seq"], row["id"], reason)
                if found is not None:
                    break
        last = walk.seq
        if found is None and anchor is not None and last < anchor.seq:
            reason = f"chain ends at seq {last} but was anchored at seq {anchor.seq}: rows deleted"
            found = Break(chain, last + 1, None, reason)
        if found is None:
            found = _head_break(chain, heads.get(chain), last, walk.prev)
        if found is not None:
            breaks.append(found)
    return checked, breaks


def _head_break(chain: int, head: Any, last: int, last_hash: bytes) -> Break | None:
    """The chain's head must name its last row: rows cut off the end, or a head moved."""
    if head is not None and head["seq"] == last and head["hash"] == last_hash:
        return None
    if head is not None and head["seq"] == last:
        return Break(chain, last, None, "the head's hash is not the last row's: head changed")
    head_seq = None if head is None else head["seq"]
    reason = f"chain ends at seq {last} but its head says {head_seq}: last rows deleted"
    return Break(chain, last + 1, None, reason)
