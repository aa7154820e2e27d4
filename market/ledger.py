"""Double-entry postings, idempotent by source (the brief; DOMAIN.md "Money").

`post()` writes one entry whose legs sum to zero, in the caller's transaction, together
with the change that caused it. The database refuses an unbalanced entry at commit (a
deferred constraint trigger) and any edit (append-only); a reversal is a new entry.

Idempotency: an entry is keyed by (source_kind, source_id) — e.g. ("deposit_confirmed",
"registration:42"). A job that runs twice, or a retried request, posts nothing the second
time; `post()` then returns the first entry's id with created=False. Concurrent posts of the
same source serialise on that unique key: the loser waits for the winner's commit and sees
the conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from market.db import Conn, Queries, returned

Q = Queries("ledger")
AccountKind = Literal["asset", "liability", "income", "expense", "equity"]


@dataclass(frozen=True)
class Account:
    """An account by code; created on first use with this kind and name."""

    code: str
    kind: AccountKind
    name: str
    owner_org_id: int | None = None
    lot_id: int | None = None


@dataclass(frozen=True)
class Leg:
    account: Account
    amount_fen: int  # debit > 0, credit < 0


@dataclass(frozen=True)
class Posted:
    entry_id: int
    created: bool


class UnbalancedEntry(ValueError):
    pass


def debit(account: Account, fen: int) -> Leg:
    return Leg(account, fen)


def credit(account: Account, fen: int) -> Leg:
    return Leg(account, -fen)


async def post(
    conn: Conn,
    *,
    source_kind: str,
    source_id: str | int,
    at: datetime,
    legs: list[Leg],
    memo: str = "",
    reverses: int | None = None,
) -> Posted:
    """Post a balanced entry once per source, inside the caller's transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("ledger.post runs inside the transaction of the change it records")
    legs = [leg for leg in legs if leg.amount_fen != 0]
    if len(legs) < 2 or sum(leg.amount_fen for leg in legs) != 0:
        raise UnbalancedEntry(
            f"{source_kind}/{source_id}: legs must be two or more and sum to zero, got "
            + ", ".join(f"{leg.account.code} {leg.amount_fen}" for leg in legs)
        )
    entry_id = await conn.fetchval(Q.insert_entry, source_kind, str(source_id), memo, reverses, at)
    if entry_id is None:
        existing = await conn.fetchval(Q.existing_entry, source_kind, str(source_id))
        return Posted(entry_id=int(existing), created=False)
    accounts = list({leg.account.code: leg.account for leg in legs}.values())
    await conn.execute(
        Q.ensure_accounts,
        [a.code for a in accounts],
        [a.kind for a in accounts],
        [a.name for a in accounts],
        [a.owner_org_id for a in accounts],
        [a.lot_id for a in accounts],
        at,
    )
    # A statement of its own: its snapshot sees an account another entry created and
    # committed while this one's insert waited on it.
    ids = {r["code"]: r["id"] for r in await conn.fetch(Q.account_ids, [a.code for a in accounts])}
    await conn.execute(
        Q.insert_legs,
        entry_id,
        [ids[leg.account.code] for leg in legs],
        [leg.amount_fen for leg in legs],
    )
    return Posted(entry_id=int(entry_id), created=True)


async def reverse(
    conn: Conn,
    *,
    entry_id: int,
    source_kind: str,
    source_id: str | int,
    at: datetime,
    memo: str = "",
) -> Posted:
    """A new entry with every leg of `entry_id` negated."""
    rows = await conn.fetch(Q.entry_legs, entry_id)
    accounts = {r["code"]: r for r in await conn.fetch(Q.account_ids, [r["code"] for r in rows])}
    legs = [
        Leg(
            Account(code=r["code"], kind=accounts[r["code"]]["kind"], name=r["code"]),
            -r["amount_fen"],
        )
        for r in rows
    ]
    return await post(
        conn,
        source_kind=source_kind,
        source_id=source_id,
        at=at,
        legs=legs,
        memo=memo,
        reverses=entry_id,
    )


async def balance(conn: Conn, code: str) -> int:
    """Debit-positive balance of one account (a liability in credit shows negative)."""
    return int(returned(await conn.fetchrow(Q.balance, code))[0])
