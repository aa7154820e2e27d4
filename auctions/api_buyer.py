"""What a buyer's systems read of their own taking part: registrations (with the deposit
and where to pay it), bids, sales, what must be paid where and by when, and the balance —
as structured fields, never as message prose. BID: the caller's organisation's own rows
only; every list is a page at a time (market/paging.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from auctions import live
from auctions.closing import SaleOut
from auctions.live import LiveBid
from auctions.registration import (
    DepositStatus,
    PayTo,
    Registration,
    RegistrationOut,
    SaleStatus,
    check_reference,
    deposit_account,
    with_pay_to,
)
from market.accounts.permissions import BID, allow
from market.db import Queries, returned
from market.deps import CallerDep, ClockDep, PoolDep, SettingsDep
from market.errors import NotFound
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page, rows_as
from market.settings import Settings

Q = Queries("api")
RQ = Queries("registration")
REGISTRATIONS: Keyset[tuple[datetime, int]] = Keyset(
    "registrations", tuple[datetime, int], "created_at", "id"
)
BIDS: Keyset[tuple[datetime, int]] = Keyset("bids", tuple[datetime, int], "at", "id")
SALES: Keyset[tuple[datetime, int]] = Keyset("sales", tuple[datetime, int], "closed_at", "id")
INSTRUCTIONS: Keyset[tuple[datetime, str, int]] = Keyset(
    "payment_instructions", tuple[datetime, str, int], "since", "kind", "id"
)
BidKind = Literal["manual", "proxy", "match", "sealed"]
InstructionKind = Literal["deposit", "balance"]


class OwnBid(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted bid of the caller's organisation."""

    id: int
    lot_id: int
    lot_reference: str
    round: int
    seq: int  # its place in the round's sequence of bids
    registration_id: int
    bidder_code: str
    amount_fen: int
    kind: BidKind
    at: datetime


class OwnSale(SaleOut, frozen=True, kw_only=True):
    """A lot the caller's organisation won: price, fee, the deposit counted towards it,
    the balance still to pay, by when and under which reference."""

    lot_reference: str
    lot_title: str


class PaymentInstruction(msgspec.Struct, frozen=True, kw_only=True):
    """One transfer the buyer must make: how much, to which account, with which reference
    written on it (the exchange matches the transfer by it), and by when."""

    kind: InstructionKind  # deposit: to take part; balance: of a lot won
    amount_fen: int
    pay_to: PayTo
    reference: str
    deadline: datetime | None  # a deposit: the round's end; a balance: the sale's due date
    lot_id: int
    lot_reference: str
    lot_title: str
    registration_id: int
    sale_id: int | None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """The buyer organisation's money with the exchange, in fen, by state."""

    deposits_to_pay_fen: int  # deposits of open rounds not yet received
    deposits_held_fen: int  # received and held for a round
    deposits_applied_fen: int  # counted towards the price of a lot won
    deposits_released_fen: int  # returned after a round it did not win
    deposits_forfeited_fen: int  # kept after a sale it did not pay (悔拍)
    balances_due_fen: int  # balances of lots won still to pay
    balances_overdue_fen: int  # of which past their deadline now
    paid_fen: int  # paid for lots won (price, and the buyer's premium where charged)
    to_pay_now_fen: int  # deposits to pay and balances due


def _instruction(settings: Settings) -> Any:
    pay_to = deposit_account(settings)

    def item(row: Any) -> PaymentInstruction:
        return msgspec.convert(
            {**dict(row), "pay_to": msgspec.to_builtins(pay_to)}, PaymentInstruction
        )

    return item


class BuyerApi(Controller):
    path = "/api/v1"
    tags = ["auctions"]
    guards = [allow(BID)]

    @get("/bids", operation_id="list_own_bids", summary="List the organisation's own bids")
    async def bids(
        self,
        caller: CallerDep,
        pool: PoolDep,
        lot: FromQuery[str | None] = None,
        kind: FromQuery[BidKind | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[OwnBid]:
        """The accepted bids of the caller's organisation, newest first, each with its
        lot, round, bidder code, amount and kind (manual, proxy, match, sealed). Filters:
        `lot` (a lot's reference), `kind`."""
        return await BIDS.read(
            pool,
            Q.page_bids,
            caller.org_id,
            lot,
            kind,
            cursor=cursor,
            limit=limit,
            item=rows_as(OwnBid),
        )

    @get("/sales", operation_id="list_own_sales", summary="List the lots the organisation won")
    async def sales(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[SaleStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[OwnSale]:
        """The caller's organisation's sales, newest first: price, fee, deposit counted,
        balance due, deadline, payment reference and status. Filter: `status`
        (awaiting_payment, paid, defaulted)."""
        return await SALES.read(
            pool,
            Q.page_sales,
            caller.org_id,
            status,
            cursor=cursor,
            limit=limit,
            item=rows_as(OwnSale),
        )

    @get(
        "/payment-instructions",
        operation_id="list_payment_instructions",
        summary="List what the organisation must pay, where and by when",
    )
    async def instructions(
        self,
        caller: CallerDep,
        pool: PoolDep,
        settings: SettingsDep,
        kind: FromQuery[InstructionKind | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[PaymentInstruction]:
        """The transfers the caller's organisation owes now, oldest first: the deposit of
        each registration for a round still open that has not arrived, and the balance of
        each lot won not yet paid. Each names the amount, the exchange's account, the
        reference to write on the transfer and the deadline. Filter: `kind` (deposit,
        balance)."""
        return await INSTRUCTIONS.read(
            pool,
            Q.page_payment_instructions,
            caller.org_id,
            kind,
            cursor=cursor,
            limit=limit,
            item=_instruction(settings),
        )

    @get(
        "/lots/{reference:str}/sealed-bids",
        operation_id="list_sealed_bids",
        summary="List a closed sealed round's bids, for its participants",
    )
    async def sealed_bids(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, reference: FromPath[str]
    ) -> list[LiveBid]:
        """Every standing bid of the lot's sealed round, best first, by bidder code, once
        the round is closed (409 `not_revealed` before; docs/rules.md §Bidding). Only the
        round's participants see them: another organisation gets 404."""
        check_reference(reference)
        async with pool.acquire() as conn:
            found = await conn.fetchval(RQ.current_registration, reference, caller.org_id)
        if found is None:
            raise NotFound("not_registered")
        return await live.sealed_reveal(pool, await live.snapshot(pool, reference, clock.now()))

    @get("/balance", operation_id="get_own_balance", summary="Read the organisation's balance")
    async def balance(self, caller: CallerDep, pool: PoolDep, clock: ClockDep) -> Balance:
        """The caller's organisation's money with the exchange in fen: deposits to pay,
        held, applied, released and forfeited; balances of lots won due and overdue;
        what it paid; and what it must pay now."""
        async with pool.acquire() as conn:
            row = returned(await conn.fetchrow(Q.buyer_balance, caller.org_id, clock.now()))
        return Balance(
            **dict(row), to_pay_now_fen=row["deposits_to_pay_fen"] + row["balances_due_fen"]
        )


async def page_registrations(
    pool: Any,
    settings: Settings,
    org_id: int,
    *,
    deposit_status: DepositStatus | None,
    lot: str | None,
    cursor: str | None,
    limit: int,
) -> Page[RegistrationOut]:
    """The organisation's registrations, newest first, each with the account its deposit
    goes to."""
    as_registration = rows_as(Registration)

    def item(row: Any) -> RegistrationOut:
        return with_pay_to(as_registration(row), settings)

    return await REGISTRATIONS.read(
        pool,
        Q.page_registrations,
        org_id,
        deposit_status,
        lot,
        cursor=cursor,
        limit=limit,
        item=item,
    )
