"""Every move of a deposit, in one module (docs/rules.md §Registration and deposits,
§Money; docs/bidding.md "Money").

    awaiting ──confirm──▶ confirmed ──▶ released | applied | forfeited

* confirm (the operator by hand, or the exchange's statement import when a line's
  reference and amount are the registration's — market/exchange_account/deposit_lines.py):
  `deposit_confirmed/{registration}` Dr exchange:clearing, Cr deposit:reg:{registration}.
* release (a losing or withdrawn bidder): `deposit_released/{registration}`
  Dr deposit:reg, Cr refund:org:{buyer org} — what the exchange owes back — and a payment
  instruction due within 24 hours (market/payments/instructions.py, docs/rules.md
  §Payments out), which the statement's outgoing line later marks paid.
* apply (the winner's deposit towards the price): `deposit_applied/{registration}`
  Dr deposit:reg, Cr sale:receivable:{sale}.
* forfeit (悔拍, the winner did not pay): `deposit_forfeited/{registration}`
  Dr deposit:reg, Cr forfeit:lot:{lot}.

Confirmation is a command of the operator (`confirm_deposit`), and a step of the statement
import (`confirm` with the line as proof): one code path. Release, application and
forfeit are steps of other changes — a close, a payment, a default, a withdrawal — and run
inside their unit of work, on its connection and at its instant; none happens alone.

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
release, application or forfeit is part of a close, a payment or a default, whose command
writes the audit row of that act on the bank's chain; the move itself is on record in
the append-only ledger (entry keyed by the registration) and in `settled_at`. A row per
deposit on each buyer's chain would lock those chains' heads one after another inside a
close, in registration order, and two closes with overlapping bidders could deadlock.

Lock order: lot row, then registration rows — the order the closer uses (it locks the lot
FOR UPDATE, then releases its round's deposits). Confirmation takes the lot FOR SHARE
first, so a confirmation and a close never interleave: a deposit confirmed after its
round closed is released in the same transaction (the closer has already passed it by),
so no money stays frozen for a round that is over.

Ledger accounts are named in Chinese, the language of the exchange's books (会计法
art. 22); a page shows an account by `account_label`, in the reader's language.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from auctions import registration
from auctions.registration import Registration
from market import ledger
from market.accounts.permissions import OPERATE
from market.commands import SYSTEM, UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.exchange_account.proof import StatementProof
from market.ledger import Account, credit, debit
from market.money import MAX_FEN
from market.payments.instructions import Payee, owe
from market.payments.policy import POLICY

Q = Queries("registration")

Settled = Literal["released", "applied", "forfeited"]
# A round may still be bid on (paused lots resume): its deposits stay frozen.
_LIVE: Final = ("announced", "bidding", "paused")
_REFERENCE: Final = re.compile(
    rf"^{registration.TRANSFER_PREFIX}[{registration.ALPHABET}]"
    rf"{{{registration.TRANSFER_BODY_LENGTH}}}$"
)
# What the exchange's books call each place a deposit moves through (Chinese, 会计法 art. 22).
_SETTLED_MEMO: Final[dict[Settled, str]] = {
    "released": "保证金退还",
    "applied": "保证金转作价款",
    "forfeited": "保证金没收",
}

# --- accounts (docs/bidding.md "Money") -----------------------------------------------------

CLEARING: Final = Account("exchange:clearing", "asset", "交易所结算账户")


def deposit_account(registration_id: int, buyer_org_id: int, lot_id: int) -> Account:
    return Account(
        f"deposit:reg:{registration_id}",
        "liability",
        f"冻结保证金（报名 {registration_id}）",
        owner_org_id=buyer_org_id,
        lot_id=lot_id,
    )


def refund_account(buyer_org_id: int) -> Account:
    return Account(
        f"refund:org:{buyer_org_id}",
        "liability",
        f"应退竞买人款项（单位 {buyer_org_id}）",
        owner_org_id=buyer_org_id,
    )


def sale_receivable_account(sale_id: int, lot_id: int, buyer_org_id: int | None = None) -> Account:
    return Account(
        f"sale:receivable:{sale_id}",
        "asset",
        f"成交应收款（成交 {sale_id}）",
        owner_org_id=buyer_org_id,
        lot_id=lot_id,
    )


def proceeds_account(lot_id: int) -> Account:
    """A sale's price, until the waterfall routes it (market/pools/services.py)."""
    return Account(
        f"proceeds:lot:{lot_id}", "liability", f"处置价款（拍品 {lot_id}）", lot_id=lot_id
    )


def forfeit_account(lot_id: int) -> Account:
    return Account(
        f"forfeit:lot:{lot_id}", "liability", f"没收保证金（拍品 {lot_id}）", lot_id=lot_id
    )


# The auction's accounts as a person reads them: code pattern → catalog key, parameter.
_LABELS: Final = (
    (re.compile(r"exchange:clearing"), "ledger.account.exchange_clearing", None),
    (re.compile(r"deposit:reg:(\d+)"), "ledger.account.deposit_held", "registration_id"),
    (re.compile(r"refund:org:(\d+)"), "ledger.account.refund_owed", "org_id"),
    (re.compile(r"sale:receivable:(\d+)"), "ledger.account.sale_receivable", "sale_id"),
    (re.compile(r"proceeds:lot:(\d+)"), "ledger.account.lot_proceeds", "lot_id"),
    (re.compile(r"forfeit:lot:(\d+)"), "ledger.account.lot_forfeits", "lot_id"),
    (re.compile(r"income:buyer_premium"), "ledger.account.buyer_premium", None),
)


def account_label(code: str) -> tuple[str, dict[str, Any]] | None:
    """The catalog key and parameters naming one of the auction's ledger accounts
    (`deposit:reg:42` → `ledger.account.deposit_held`, registration_id=42); None for an
    account of another area."""
    for pattern, key, param in _LABELS:
        if found := pattern.fullmatch(code):
            return key, ({param: int(found.group(1))} if param else {})
    return None


# --- confirmation ---------------------------------------------------------------------------


class ConfirmDeposit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A transfer seen on the exchange's bank statement: its reference and amount."""

    transfer_reference: Annotated[str, Meta(min_length=1, max_length=40)]
    amount_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)]


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


def transfer_reference(text: str) -> str | None:
    """`text` as a registration's transfer reference (spaces dropped, upper case), or None
    if it cannot be one: the one check of both the operator's confirmation and the
    statement import (market/exchange_account/deposit_lines.py)."""
    ref = registration.normalise_transfer_reference(text)
    return ref if _REFERENCE.match(ref) else None


def checked_reference(text: str) -> str:
    """A transfer reference a person typed, normalised; 422 if it cannot be one."""
    ref = transfer_reference(text)
    if ref is None:
        raise Invalid(
            "not_a_transfer_reference",
            field="transfer_reference",
            prefix=registration.TRANSFER_PREFIX,
            length=registration.TRANSFER_BODY_LENGTH,
        )
    return ref


@command(OPERATE)
async def confirm_deposit(uow: UnitOfWork, data: ConfirmDeposit) -> Confirmation:
    """The operator received `amount_fen` with `transfer_reference` on the bank statement.

    The amount must be the registration's deposit exactly (422 naming both amounts,
    nothing written). Confirming twice is harmless: the second answers changed=False —
    the registration row is locked and its status re-read first, so of two concurrent
    confirmations one changes it and the other finds it done (module docstring).
    """
    return await confirm(uow, data)


async def confirm(
    uow: UnitOfWork, data: ConfirmDeposit, proof: StatementProof | None = None
) -> Confirmation:
    """`confirm_deposit`'s work, also for a line of the exchange's statement (`proof`):
    matched by the import, it is the exchange's act (confirmed_by NULL, audited as the
    exchange's); matched by hand, the operator's. Either way the audit row names the line.
    Locks: the lot FOR SHARE, then the registration FOR UPDATE (module docstring)."""
    ref = checked_reference(data.transfer_reference)
    conn = uow.conn
    found = await conn.fetchrow(Q.registration_by_reference, ref)
    if found is None:
        raise NotFound("no_such_transfer_reference", field="transfer_reference", reference=ref)
    lot = returned(await conn.fetchrow(Q.share_lot, found["lot_id"]))
    row = returned(await conn.fetchrow(Q.lock_registration, found["id"]))
    if data.amount_fen != row["deposit_fen"]:
        raise Invalid(
            "deposit_amount_mismatch",
            field="amount_fen",
            reference=ref,
            deposit_fen=row["deposit_fen"],
            received_fen=data.amount_fen,
        )
    changed = row["deposit_status"] == "awaiting"
    released = changed and round_over(lot, row, uow.at)
    by_exchange = proof is not None and not proof.by_hand
    if changed:
        await conn.execute(
            Q.confirm_registration, row["id"], uow.at, None if by_exchange else uow.actor.user
        )
        await uow.post(
            source_kind="deposit_confirmed",
            source_id=row["id"],
            legs=[
                debit(CLEARING, row["deposit_fen"]),
                credit(
                    deposit_account(row["id"], row["buyer_org_id"], row["lot_id"]),
                    row["deposit_fen"],
                ),
            ],
            memo=f"保证金到账 {ref}",
        )
        await _outbox(uow, uow.at, "deposit_confirmed", row)
        if lot["mode"] == "listing" and not released:
            # The intent qualifies (docs/rules.md §Listing).
            await _outbox(uow, uow.at, "listing_intent_approved", row)
        if released:
            await _settle(uow, uow.at, row["id"], "released")
        uow.audit(
            "deposit.confirm",
            "registration",
            row["id"],
            chain_org_id=row["buyer_org_id"],
            before={"deposit_status": "awaiting"},
            after={
                "deposit_status": "confirmed",
                "amount_fen": data.amount_fen,
                "transfer_reference": ref,
                "released_at_once": released,
                **(proof.audited() if proof is not None else {}),
            },
            by=SYSTEM if by_exchange else None,
        )
    out = await registration.load(conn, row["id"], row["buyer_org_id"])
    return Confirmation(registration=out, changed=changed, released=released)


def round_over(lot: asyncpg.Record, row: asyncpg.Record, at: datetime) -> bool:
    """The registration's round can no longer be bid on (closed, withdrawn, or the lot
    moved on to another round), or is a listing whose period has ended (docs/rules.md
    §Listing): a deposit confirmed now is released at once. `lot` is `share_lot`'s row."""
    if lot["round"] != row["round"] or lot["status"] not in _LIVE:
        return True
    return lot["mode"] == "listing" and not registration.takes_newcomers(lot, at)


# --- settling: release, apply, forfeit ----------------------------------------------------


class Moved(msgspec.Struct, frozen=True, kw_only=True):
    registration_id: int
    deposit_status: Settled
    changed: bool  # False: it had been moved to this status before


async def release_deposit(uow: UnitOfWork, at: datetime, registration_id: int) -> Moved:
    """Give a confirmed deposit back: a loser's at the close, every one of a withdrawn
    round (docs/rules.md §After the close, §Lot lifecycle)."""
    return await _settle(uow, at, registration_id, "released")


async def apply_deposit(uow: UnitOfWork, at: datetime, registration_id: int, sale_id: int) -> Moved:
    """Count the winner's deposit towards the price of `sale_id`."""
    return await _settle(uow, at, registration_id, "applied", sale_id=sale_id)


async def forfeit_deposit(
    uow: UnitOfWork, at: datetime, registration_id: int, lot_id: int
) -> Moved:
    """Forfeit a defaulting winner's deposit into the lot's forfeit account (悔拍)."""
    return await _settle(uow, at, registration_id, "forfeited", lot_id=lot_id)


async def release_round_deposits(
    uow: UnitOfWork, at: datetime, lot_id: int, round: int, *, keep: int | None = None
) -> list[int]:
    """Release every confirmed deposit of the round except `keep` (the winner's); the
    caller holds the lot row locked. Returns the registrations released now."""
    ids = [r["id"] for r in await uow.conn.fetch(Q.round_confirmed, lot_id, round)]
    released = []
    for registration_id in ids:
        if registration_id != keep:
            moved = await _settle(uow, at, registration_id, "released")
            if moved.changed:
                released.append(registration_id)
    return released


async def _settle(
    uow: UnitOfWork,
    at: datetime,
    registration_id: int,
    target: Settled,
    *,
    sale_id: int | None = None,
    lot_id: int | None = None,
) -> Moved:
    conn = uow.conn
    row = await conn.fetchrow(Q.lock_registration, registration_id)
    if row is None:
        raise NotFound("no_such_registration")
    status = row["deposit_status"]
    if status == target:
        return Moved(registration_id=registration_id, deposit_status=target, changed=False)
    if status == "awaiting":
        raise Conflict("deposit_not_confirmed", registration_id=registration_id)
    if status != "confirmed":
        raise Conflict(
            "deposit_already_settled",
            registration_id=registration_id,
            status=status,
            target=target,
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
                "sale_not_of_registration", sale_id=sale_id, registration_id=registration_id
            )
        to = sale_receivable_account(sale_id, row["lot_id"], row["buyer_org_id"])
    else:
        if lot_id != row["lot_id"]:
            raise Conflict(
                "registration_not_of_lot", registration_id=registration_id, lot_id=lot_id
            )
        to = forfeit_account(row["lot_id"])
    await conn.execute(Q.settle_registration, registration_id, target, at)
    await ledger.post(
        conn,
        source_kind=f"deposit_{target}",
        source_id=registration_id,
        at=at,
        legs=[debit(held, amount), credit(to, amount)],
        memo=f"{_SETTLED_MEMO[target]} {row['transfer_reference']}",
    )
    if target == "released":
        await _outbox(uow, at, "deposit_released", row)
        await owe(
            uow,
            source=f"deposit_released:{registration_id}",
            purpose="deposit_refund",
            payee=Payee(kind="org", org_id=row["buyer_org_id"]),
            amount_fen=amount,
            due_at=at + POLICY.deposit_refund_within,
        )
    return Moved(registration_id=registration_id, deposit_status=target, changed=True)


async def _outbox(uow: UnitOfWork, at: datetime, event: str, row: asyncpg.Record) -> None:
    """The event owed to the registering user and organisation (docs/rules.md
    §Notifications)."""
    await uow.emit(
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
