"""Every move of a deposit (issue 4 item 1, docs/bidding.md "Money"), in one module.

    awaiting ──confirm──▶ confirmed ──▶ released | applied | forfeited

* confirm (the operator, on receiving the transfer; later the statement matcher):
  `deposit_confirmed/{registration}` Dr exchange:clearing, Cr deposit:reg:{registration}.
* release (a losing or withdrawn bidder): `deposit_released/{registration}`
  Dr deposit:reg, Cr refund:org:{buyer org} — what the exchange now owes back.
* apply (the winner's deposit towards the price): `deposit_applied/{registration}`
  Dr deposit:reg, Cr sale:receivable:{sale}.
* forfeit (悔拍, the winner did not pay): `deposit_forfeited/{registration}`
  Dr deposit:reg, Cr forfeit:lot:{lot}.

Each deposit moves at most once per step, by three locks that agree:
1. the registration row is locked (SELECT … FOR UPDATE) before its status is read, so two
   moves of one deposit take turns and the second sees what the first did;
2. the status change itself is conditional (`WHERE deposit_status = 'confirmed'` /
   `'awaiting'`), and a move is made only from its one source status: a second call with
   the same target finds it done and answers without change, any other status is a
   Conflict (a released deposit is never also applied);
3. the ledger entry is keyed by (source kind, registration id), unique in PostgreSQL, so
   even a bug that got past 1 and 2 could not post the money twice.
Status, ledger entry, outbox event (and for a confirmation its audit row) are written in
one transaction: all or nothing.

Audit. A confirmation is the operator's act: its audit row goes on the buyer's chain. A
release, application or forfeit is part of a close, a payment or a default, whose caller
writes the audit row of that act on the bank's chain; the move itself is on record in
the append-only ledger (entry keyed by the registration) and in `settled_at`. A row per
deposit on each buyer's chain would lock those chains' heads one after another inside a
close, in registration order, and two closes with overlapping bidders could deadlock.

Lock order: lot row, then registration rows — the order the closer uses (it locks the lot
FOR UPDATE, then releases its round's deposits). Confirmation takes the lot FOR SHARE
first, so a confirmation and a close never interleave: a deposit confirmed after its
round closed is released in the same transaction (the closer has already passed it by),
so no money stays frozen for a round that is over.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

import asyncpg
import msgspec

from auctions import registration
from auctions.registration import Registration
from market import audit, ledger
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.ledger import Account, credit, debit
from market.money import format_cny

Q = Queries("registration")

Settled = Literal["released", "applied", "forfeited"]
# A round may still be bid on (paused lots resume): its deposits stay frozen.
_LIVE: Final = ("announced", "bidding", "paused")
_REFERENCE: Final = re.compile(
    rf"^{registration.TRANSFER_PREFIX}[{registration.ALPHABET}]"
    rf"{{{registration.TRANSFER_BODY_LENGTH}}}$"
)

# --- accounts (docs/bidding.md) --------------------------------------------------------------

CLEARING: Final = Account("exchange:clearing", "asset", "交易所结算账户 Exchange clearing account")


def deposit_account(registration_id: int, buyer_org_id: int, lot_id: int) -> Account:
    return Account(
        f"deposit:reg:{registration_id}",
        "liability",
        f"冻结保证金 Deposit held, registration {registration_id}",
        owner_org_id=buyer_org_id,
        lot_id=lot_id,
    )


def refund_account(buyer_org_id: int) -> Account:
    return Account(
        f"refund:org:{buyer_org_id}",
        "liability",
        f"应退竞买人款项 Owed back to buyer {buyer_org_id}",
        owner_org_id=buyer_org_id,
    )


def sale_receivable_account(sale_id: int, lot_id: int, buyer_org_id: int | None = None) -> Account:
    return Account(
        f"sale:receivable:{sale_id}",
        "asset",
        f"成交应收款 Receivable for sale {sale_id}",
        owner_org_id=buyer_org_id,
        lot_id=lot_id,
    )


def proceeds_account(lot_id: int) -> Account:
    """A sale's price, until the waterfall routes it (market/pools/services.py)."""
    return Account(
        f"proceeds:lot:{lot_id}", "liability", f"处置价款 proceeds of lot {lot_id}", lot_id=lot_id
    )


def forfeit_account(lot_id: int) -> Account:
    return Account(
        f"forfeit:lot:{lot_id}",
        "liability",
        f"没收保证金 Forfeited deposits, lot {lot_id}",
        lot_id=lot_id,
    )


# --- confirmation ---------------------------------------------------------------------------


class Confirmation(msgspec.Struct, frozen=True, kw_only=True):
    registration: Registration
    changed: bool  # False: it was confirmed before; nothing was written this time
    released: bool  # confirmed after its round closed, so released at once


class AwaitingDeposit(msgspec.Struct, frozen=True, kw_only=True):
    registration_id: int
    lot_reference: str
    lot_title: str
    lot_status: str
    round: int
    buyer_name: str
    buyer_credit_code: str | None
    bidder_code: str
    deposit_fen: int
    transfer_reference: str
    registered_at: datetime


async def awaiting(pool: asyncpg.Pool, limit: int = 500) -> list[AwaitingDeposit]:
    """The operator's queue of deposits not yet received, oldest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.awaiting_deposits, limit)
    return [
        AwaitingDeposit(
            registration_id=r["id"],
            lot_reference=r["lot_reference"],
            lot_title=r["lot_title"],
            lot_status=r["lot_status"],
            round=r["round"],
            buyer_name=r["buyer_name"],
            buyer_credit_code=r["buyer_credit_code"],
            bidder_code=r["bidder_code"],
            deposit_fen=r["deposit_fen"],
            transfer_reference=r["transfer_reference"],
            registered_at=r["created_at"],
        )
        for r in rows
    ]


async def confirm_deposit(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    operator_user_id: int,
    operator_org_id: int,
    transfer_reference: str,
    amount_fen: int,
) -> Confirmation:
    """The operator received `amount_fen` with `transfer_reference` on the bank statement.

    The amount must be the registration's deposit exactly (422 naming both amounts,
    nothing written). Confirming twice is harmless: the second answers changed=False.
    """
    ref = registration.normalise_transfer_reference(transfer_reference)
    if not _REFERENCE.match(ref):
        raise Invalid(
            f"转账附言为 {registration.TRANSFER_PREFIX} 加 "
            f"{registration.TRANSFER_BODY_LENGTH} 位字母和数字 / "
            f"a transfer reference is {registration.TRANSFER_PREFIX} followed by "
            f"{registration.TRANSFER_BODY_LENGTH} letters and digits",
            field="transfer_reference",
        )
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(Q.registration_by_reference, ref)
        if found is None:
            raise NotFound(
                f"没有报名使用转账附言 {ref} / no registration has the transfer reference {ref}",
                field="transfer_reference",
            )
        lot = returned(await conn.fetchrow(Q.share_lot, found["lot_id"]))
        row = returned(await conn.fetchrow(Q.lock_registration, found["id"]))
        if amount_fen != row["deposit_fen"]:
            raise Invalid(
                f"{ref} 的保证金为 {format_cny(row['deposit_fen'])}，到账金额 "
                f"{format_cny(amount_fen)} 不符，未确认 / "
                f"the deposit for {ref} is {format_cny(row['deposit_fen'])}; the amount "
                f"received, {format_cny(amount_fen)}, does not match: nothing was confirmed",
                field="amount_fen",
                code="amount_mismatch",
            )
        changed = row["deposit_status"] == "awaiting"
        released = changed and (lot["round"] != row["round"] or lot["status"] not in _LIVE)
        if changed:
            await conn.execute(Q.confirm_registration, row["id"], at, operator_user_id)
            await ledger.post(
                conn,
                source_kind="deposit_confirmed",
                source_id=row["id"],
                at=at,
                legs=[
                    debit(CLEARING, row["deposit_fen"]),
                    credit(
                        deposit_account(row["id"], row["buyer_org_id"], row["lot_id"]),
                        row["deposit_fen"],
                    ),
                ],
                memo=f"保证金到账 {ref}",
            )
            await _outbox(conn, at, "deposit_confirmed", row)
            if released:
                await _settle(conn, at, row["id"], "released")
            await audit.append(
                conn,
                at=at,
                chain_org_id=row["buyer_org_id"],
                actor_user_id=operator_user_id,
                actor_org_id=operator_org_id,
                action="deposit.confirm",
                object_kind="registration",
                object_id=row["id"],
                before={"deposit_status": "awaiting"},
                after={
                    "deposit_status": "confirmed",
                    "amount_fen": amount_fen,
                    "transfer_reference": ref,
                    "released_at_once": released,
                },
            )
        out = await registration.load(conn, row["id"], row["buyer_org_id"])
    return Confirmation(registration=out, changed=changed, released=released)


# --- settling: release, apply, forfeit ----------------------------------------------------


class Moved(msgspec.Struct, frozen=True, kw_only=True):
    registration_id: int
    deposit_status: Settled
    changed: bool  # False: it had been moved to this status before


async def release_deposit(conn: Conn, at: datetime, registration_id: int) -> Moved:
    """Give a confirmed deposit back (a loser's at the close, issue 4 item 5)."""
    return await _settle(conn, at, registration_id, "released")


async def apply_deposit(conn: Conn, at: datetime, registration_id: int, sale_id: int) -> Moved:
    """Count the winner's deposit towards the price of `sale_id`."""
    return await _settle(conn, at, registration_id, "applied", sale_id=sale_id)


async def forfeit_deposit(conn: Conn, at: datetime, registration_id: int, lot_id: int) -> Moved:
    """Forfeit a defaulting winner's deposit into the lot's forfeit account (悔拍)."""
    return await _settle(conn, at, registration_id, "forfeited", lot_id=lot_id)


async def release_round_deposits(
    conn: Conn, at: datetime, lot_id: int, round: int, *, keep: int | None = None
) -> list[int]:
    """Release every confirmed deposit of the round except `keep` (the winner's); the
    caller holds the lot row locked. Returns the registrations released now."""
    ids = [r["id"] for r in await conn.fetch(Q.round_confirmed, lot_id, round)]
    released = []
    for registration_id in ids:
        if registration_id != keep:
            moved = await _settle(conn, at, registration_id, "released")
            if moved.changed:
                released.append(registration_id)
    return released


async def _settle(
    conn: Conn,
    at: datetime,
    registration_id: int,
    target: Settled,
    *,
    sale_id: int | None = None,
    lot_id: int | None = None,
) -> Moved:
    if not conn.is_in_transaction():
        raise RuntimeError("a deposit moves inside the transaction of the change that moves it")
    row = await conn.fetchrow(Q.lock_registration, registration_id)
    if row is None:
        raise NotFound(f"no registration {registration_id}")
    status = row["deposit_status"]
    if status == target:
        return Moved(registration_id=registration_id, deposit_status=target, changed=False)
    if status != "confirmed":
        raise Conflict(
            f"the deposit of registration {registration_id} is {status}; only a confirmed "
            f"deposit can be {target}",
            code="deposit_not_confirmed" if status == "awaiting" else "deposit_settled",
        )
    held = deposit_account(row["id"], row["buyer_org_id"], row["lot_id"])
    amount = row["deposit_fen"]
    to: Account
    if target == "released":
        to = refund_account(row["buyer_org_id"])
    elif target == "applied":
        assert sale_id is not None
        sale = await conn.fetchrow(Q.sale_registration, sale_id)
        if sale is None or sale["registration_id"] != registration_id:
            raise Conflict(
                f"sale {sale_id} is not the sale of registration {registration_id}",
                code="wrong_sale",
            )
        to = sale_receivable_account(sale_id, row["lot_id"], row["buyer_org_id"])
    else:
        if lot_id != row["lot_id"]:
            raise Conflict(
                f"registration {registration_id} is for lot {row['lot_id']}, not {lot_id}",
                code="wrong_lot",
            )
        to = forfeit_account(row["lot_id"])
    await conn.execute(Q.settle_registration, registration_id, target, at)
    await ledger.post(
        conn,
        source_kind=f"deposit_{target}",
        source_id=registration_id,
        at=at,
        legs=[debit(held, amount), credit(to, amount)],
        memo=f"{row['transfer_reference']} {target}",
    )
    if target == "released":
        await _outbox(conn, at, "deposit_released", row)
    return Moved(registration_id=registration_id, deposit_status=target, changed=True)


async def _outbox(conn: Conn, at: datetime, event: str, row: asyncpg.Record) -> None:
    """The event owed to the registering user and organisation (docs/bidding.md)."""
    await conn.execute(
        Q.insert_outbox,
        event,
        row["buyer_org_id"],
        row["user_id"],
        row["lot_id"],
        {
            "registration_id": row["id"],
            "lot_reference": row["lot_reference"],
            "round": row["round"],
            "bidder_code": row["bidder_code"],
            "amount_fen": row["deposit_fen"],
            "transfer_reference": row["transfer_reference"],
        },
        f"{event}:{row['id']}",
        at,
    )
