"""What a bidder organisation (a buyer or an acquirer) has going on, on one page and in
one API answer (docs/rules.md §The buyer's page): its registrations with their deposits'
state and its standing in each round, the lots it won with what is left to pay, where and
by when, the transfers of title still under way, the refunds the exchange owes it and the
sale documents issued to it.

Tenancy is in the SQL (sql/queries/buyer.sql): every query reads organisation $1's rows
only, so another organisation's objects are never read, let alone shown. Six queries on one
connection whatever the history (no query per row); each list is capped at `LIMIT` rows,
the most pressing first, with a link to the full list on its own page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import asyncpg
import msgspec

from auctions.registration import DepositStatus, PayTo, SaleStatus, deposit_account
from market.db import Conn, Queries
from market.documents.codes import grouped
from market.documents.content import Kind as DocumentKind
from market.payments import accounts
from market.payments.instructions import Status as RefundStatus
from market.settings import Settings
from market.transfer.escrow import step_due
from market.transfer.models import RECORDAL_OF_ASSET, RELEASE, NoticeKind, Step

Q = Queries("buyer")

# How many rows of each kind the page shows: the most pressing first; older ones are on
# their own pages (/my/auctions, /transfers, /payments/, /documents).
LIMIT: Final = 100

# A deposit as the buyer reads it: `owed` (to transfer now, the round takes deposits),
# `unpaid` (never received and the round is over: nothing to do), else the registration's
# own status (docs/rules.md §Registration and deposits).
DepositState = Literal["owed", "unpaid", "confirmed", "released", "applied", "forfeited"]
# The organisation's standing in the round it registered for (docs/rules.md §Bidding).
BidState = Literal[
    "not_started",  # the round has not opened
    "no_bid",  # open, and it has not bid
    "leading",  # open, its bid is the highest
    "outbid",  # open, someone bid more
    "sealed",  # a sealed round: its bid stands, the leader is a secret until the close
    "won",  # the round is over and it won
    "lost",  # the round is over, it bid and another won or nobody did
    "ended",  # the round is over without its bid
]
RefundPurpose = Literal["deposit_refund", "sale_refund"]
OPEN_ROUND: Final = frozenset({"bidding", "paused"})


class RegistrationItem(msgspec.Struct, frozen=True, kw_only=True):
    """One registration: the deposit and the organisation's standing in the round."""

    registration_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    bidder_code: str
    deposit_fen: int
    deposit_status: DepositStatus
    deposit_state: DepositState
    transfer_reference: str  # written on the deposit's transfer
    deposit_deadline: datetime | None  # an owed deposit: the round's end
    bid_state: BidState
    current_price_fen: int | None  # the round's price now (open rounds, not sealed)
    own_highest_fen: int | None
    own_bid_count: int
    proxy_max_fen: int | None  # its standing proxy ceiling (代理出价上限)
    bidding_starts_at: datetime | None
    ends_at: datetime | None  # the round's effective end (extensions included)
    sale_id: int | None
    registered_at: datetime


class WinItem(msgspec.Struct, frozen=True, kw_only=True):
    """A lot won: the price, what is left to pay, to which account under which reference
    and by when, and the transfer of title a paid sale opened."""

    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    price_fen: int
    fee_kind: str
    fee_fen: int
    deposit_fen: int  # counted towards the price
    balance_due_fen: int
    due_at: datetime
    overdue: bool  # unpaid past its deadline
    payment_reference: str  # written on the balance's transfer
    status: SaleStatus
    paid_at: datetime | None
    closed_at: datetime
    transfer_status: str | None


class TransferItem(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer of title in escrow: the step due, who must act, and the notices missing."""

    sale_id: int
    lot_reference: str
    lot_title: str
    step: Step | None  # release (the bank's), recordal (the buyer's), check (the exchange's)
    missing: list[NoticeKind]
    yours: list[NoticeKind]  # the recordals the buyer must upload
    release_due_at: datetime
    recordal_due_at: datetime
    check_due_at: datetime | None


class RefundItem(msgspec.Struct, frozen=True, kw_only=True):
    """A refund the exchange owes the organisation (a payment instruction) and its state."""

    id: int
    purpose: RefundPurpose
    amount_fen: int
    reference: str  # the 附言 on the exchange's transfer
    due_at: datetime
    status: RefundStatus
    paid_at: datetime | None
    lot_reference: str | None
    lot_title: str | None
    created_at: datetime


class DocumentItem(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    sale_id: int
    kind: DocumentKind
    code: str  # grouped as printed
    lot_reference: str
    lot_title: str
    issued_at: datetime
    ready: bool  # its PDF is rendered and may be downloaded


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The figures at the top of the page."""

    to_pay_fen: int  # deposits owed and balances due
    leading: int
    outbid: int
    transfer_steps_yours: int  # recordals the buyer must upload
    refunds_pending_fen: int  # refunds not yet paid


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """Everything at once, as the page and `GET /api/v1/activity` show it."""

    at: datetime
    pay_to: PayTo  # the exchange's account every deposit and balance is paid into
    settlement_account_set: bool  # where refunds are paid: the organisation's own account
    summary: Summary
    registrations: list[RegistrationItem]
    wins: list[WinItem]
    transfers: list[TransferItem]
    refunds: list[RefundItem]
    documents: list[DocumentItem]


def deposit_state(row: asyncpg.Record) -> DepositState:
    status: str = row["deposit_status"]
    if status != "awaiting":
        return status  # type: ignore[return-value]  # the other statuses are the states
    takes = row["lot_round"] == row["round"] and row["lot_status"] in ("announced", "bidding")
    return "owed" if takes else "unpaid"


def bid_state(row: asyncpg.Record) -> BidState:
    if row["lot_round"] == row["round"] and row["lot_status"] == "announced":
        return "not_started"
    if row["lot_round"] == row["round"] and row["lot_status"] in OPEN_ROUND:
        if not row["bid_count"]:
            return "no_bid"
        if row["auction_kind"] == "sealed":
            return "sealed"
        return "leading" if row["leads"] else "outbid"
    if row["sale_id"] is not None:
        return "won"
    return "lost" if row["bid_count"] else "ended"


def _registration(row: asyncpg.Record) -> RegistrationItem:
    state = deposit_state(row)
    current = row["lot_round"] == row["round"] and row["lot_status"] in OPEN_ROUND
    return RegistrationItem(
        registration_id=row["id"],
        lot_id=row["lot_id"],
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        round=row["round"],
        bidder_code=row["bidder_code"],
        deposit_fen=row["deposit_fen"],
        deposit_status=row["deposit_status"],
        deposit_state=state,
        transfer_reference=row["transfer_reference"],
        deposit_deadline=row["bidding_ends_at"] if state == "owed" else None,
        bid_state=bid_state(row),
        current_price_fen=(
            row["current_price_fen"] if current and row["auction_kind"] != "sealed" else None
        ),
        own_highest_fen=row["highest_fen"],
        own_bid_count=row["bid_count"],
        proxy_max_fen=row["proxy_max_fen"] if current else None,
        bidding_starts_at=row["bidding_starts_at"] if row["lot_round"] == row["round"] else None,
        ends_at=row["bidding_ends_at"] if row["lot_round"] == row["round"] else None,
        sale_id=row["sale_id"],
        registered_at=row["created_at"],
    )


def _win(row: asyncpg.Record, now: datetime) -> WinItem:
    unpaid = row["status"] == "awaiting_payment"
    return WinItem(
        sale_id=row["id"],
        lot_id=row["lot_id"],
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        price_fen=row["price_fen"],
        fee_kind=row["fee_kind"],
        fee_fen=row["fee_fen"],
        deposit_fen=row["deposit_fen"],
        balance_due_fen=row["balance_due_fen"],
        due_at=row["due_at"],
        overdue=unpaid and row["due_at"] < now,
        payment_reference=row["payment_reference"],
        status=row["status"],
        paid_at=row["paid_at"],
        closed_at=row["closed_at"],
        transfer_status=row["transfer_status"],
    )


def _transfer(row: asyncpg.Record) -> TransferItem:
    needed: list[NoticeKind] = [RELEASE, *(RECORDAL_OF_ASSET[k] for k in row["asset_kinds"])]
    standing = set(row["standing"])  # as market/transfer/escrow.missing_kinds counts them
    missing = [k for k in needed if k not in standing]
    return TransferItem(
        sale_id=row["sale_id"],
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        step=step_due(row["status"], missing),
        missing=missing,
        yours=[k for k in missing if k != RELEASE],
        release_due_at=row["release_due_at"],
        recordal_due_at=row["recordal_due_at"],
        check_due_at=row["check_due_at"],
    )


def _refund(row: asyncpg.Record) -> RefundItem:
    return msgspec.convert(dict(row), RefundItem)


def _document(row: asyncpg.Record) -> DocumentItem:
    return DocumentItem(
        id=row["id"],
        sale_id=row["sale_id"],
        kind=row["kind"],
        code=grouped(row["code"]),
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        issued_at=row["issued_at"],
        ready=row["sha256"] is not None,
    )


async def read(conn: Conn, settings: Settings, org_id: int, now: datetime) -> Activity:
    """The organisation's activity at `now`, read in one snapshot (a repeatable-read
    transaction: a sale closing meanwhile shows in its registration and its win, or in
    neither)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        registrations = [_registration(r) for r in await conn.fetch(Q.registrations, org_id, LIMIT)]
        wins = [_win(r, now) for r in await conn.fetch(Q.wins, org_id, LIMIT)]
        transfers = [_transfer(r) for r in await conn.fetch(Q.transfers, org_id, LIMIT)]
        refunds = [_refund(r) for r in await conn.fetch(Q.refunds, org_id, LIMIT)]
        documents = [_document(r) for r in await conn.fetch(Q.documents, org_id, LIMIT)]
        account = await accounts.account_of(conn, "org", org_id)
    summary = Summary(
        to_pay_fen=sum(r.deposit_fen for r in registrations if r.deposit_state == "owed")
        + sum(w.balance_due_fen for w in wins if w.status == "awaiting_payment"),
        leading=sum(1 for r in registrations if r.bid_state == "leading"),
        outbid=sum(1 for r in registrations if r.bid_state == "outbid"),
        transfer_steps_yours=sum(len(t.yours) for t in transfers),
        refunds_pending_fen=sum(
            r.amount_fen for r in refunds if r.status in ("pending", "in_file")
        ),
    )
    return Activity(
        at=now,
        pay_to=deposit_account(settings),
        settlement_account_set=account is not None,
        summary=summary,
        registrations=registrations,
        wins=wins,
        transfers=transfers,
        refunds=refunds,
        documents=documents,
    )


async def activity(pool: asyncpg.Pool, settings: Settings, org_id: int, now: datetime) -> Activity:
    async with pool.acquire() as conn:
        return await read(conn, settings, org_id, now)
