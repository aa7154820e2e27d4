"""The negotiated transfer (协议转让) of a listing with one qualified intent (docs/rules.md
§Listing).

The period's end opens it (market/listing/period.py): the price is at least the listing
price; the intending buyer confirms first, naming its price (the listing price unless it
offers more: 挂牌价与买方报价孰高), then the bank countersigns, both by `confirm_by`
(the period's end plus the policy's working days). The bank's countersignature writes the
sale through the auction close's own function (auctions/closing.py `_record_sale`): the
payment reference, deadline, ledger entry and the `won`/`payment_due` events of any sale,
the buyer's deposit counting towards the price when it pays; the round is then sold.

Not confirmed in time (`lapse_due_transfers`, the worker, on time): the round failed. A
buyer that did not confirm forfeits its deposit, as a winner who does not sign (the
exchanges' rule for an intending buyer that does not sign; the deposit goes into the lot's
forfeit account as for 悔拍); a buyer that confirmed when the bank did not gets it back.
The bank may then relist (§Lot lifecycle).

Concurrency: every step locks the lot row first (FOR UPDATE), then the transfer row
(FOR UPDATE): the buyer's and the bank's confirmations and the lapse take turns, each
re-reading the transfer's state — two confirmations by one side give one, the second
answers it unchanged; a countersignature and a lapse at the deadline give one outcome. The
sale's UNIQUE (lot_id, round) backs it: one round, one sale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from msgspec import Meta

from auctions.closing import _record_sale
from auctions.deposits import forfeit_deposit, release_deposit
from market.accounts.permissions import BID, MANAGE_LOTS
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.listing.period import ended_listing, lot_row, notify
from market.listing.policy import end_of_working_days
from market.lots import services as lots
from market.lots.terms import TermsPolicy
from market.money import MAX_FEN

Q = Queries("listing")


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    registration_id: int
    buyer_org_id: int
    listing_price_fen: int
    price_fen: int | None
    confirm_by: datetime
    buyer_confirmed_at: datetime | None
    bank_confirmed_at: datetime | None
    status: Literal["awaiting", "transferred", "lapsed"]
    sale_id: int | None


def _out(row: asyncpg.Record) -> Transfer:
    return msgspec.convert(
        {k: row[k] for k in Transfer.__struct_fields__}, Transfer, from_attributes=False
    )


async def open_transfer(
    uow: UnitOfWork, at: datetime, policy: TermsPolicy, lot: Any, intent: asyncpg.Record
) -> None:
    """The one qualified intent of the period that ended at `at`: a transfer awaiting both
    sides until the deadline. The caller holds the lot row's lock."""
    confirm_by = end_of_working_days(at, policy.listing.confirm_working_days)
    await uow.conn.fetchval(
        Q.insert_transfer,
        lot["id"],
        lot["round"],
        intent["id"],
        intent["buyer_org_id"],
        lot["start_price_fen"],
        confirm_by,
        at,
    )
    extra = {"price_fen": lot["start_price_fen"], "confirm_by": confirm_by.isoformat()}
    key = f"{lot['id']}:{lot['round']}"
    await notify(
        uow,
        "listing_transfer_to_confirm",
        lot,
        f"{key}:buyer",
        org_id=intent["buyer_org_id"],
        user_id=intent["user_id"],
        **extra,
    )
    await notify(
        uow, "listing_transfer_to_confirm", lot, f"{key}:bank", org_id=lot["bank_org_id"], **extra
    )


async def transfer_of(conn: Any, lot_id: int) -> Transfer | None:
    row = await conn.fetchrow(Q.transfer_of_lot, lot_id)
    return None if row is None else _out(row)


class BuyerConfirms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The intending buyer signs: at the listing price, or more."""

    reference: Annotated[str, Meta(min_length=1, max_length=60)]
    price_fen: Annotated[int, Meta(gt=0, le=MAX_FEN)] | None = None


class BankConfirms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reference: Annotated[str, Meta(min_length=1, max_length=60)]
    policy: TermsPolicy


async def _locked(uow: UnitOfWork, reference: str) -> tuple[asyncpg.Record, asyncpg.Record]:
    """(lot, transfer) locked in that order; the transfer must be awaiting and in time."""
    lot = await lot_row(uow, reference)
    ended_listing(lot)
    transfer = await uow.conn.fetchrow(Q.lock_transfer, lot["id"])
    if transfer is None:
        raise NotFound("no_listing_transfer", reference=reference)
    return lot, transfer


def _check_open(transfer: asyncpg.Record, at: datetime) -> None:
    if transfer["status"] != "awaiting":
        raise Conflict("listing_transfer_closed", status=transfer["status"])
    if at >= transfer["confirm_by"]:
        raise Conflict("listing_transfer_too_late", confirm_by=transfer["confirm_by"])


@command(BID)
async def buyer_confirms(uow: UnitOfWork, data: BuyerConfirms) -> Transfer:
    """The intending buyer confirms the transfer (module docstring). A second confirmation
    at the same price answers the first; at another price it is refused (409)."""
    lot, transfer = await _locked(uow, data.reference)
    if transfer["buyer_org_id"] != uow.actor.org:
        raise Forbidden("not_the_intending_buyer")
    price = data.price_fen or transfer["listing_price_fen"]
    if transfer["buyer_confirmed_at"] is not None:
        if price != transfer["price_fen"]:
            raise Conflict(
                "listing_transfer_confirmed", field="price_fen", price_fen=transfer["price_fen"]
            )
        return _out(transfer)
    _check_open(transfer, uow.at)
    if price < transfer["listing_price_fen"]:
        raise Invalid(
            "listing_price_floor",
            field="price_fen",
            price_fen=price,
            listing_price_fen=transfer["listing_price_fen"],
        )
    await uow.conn.execute(Q.buyer_confirms, transfer["id"], price, uow.at, uow.actor.user)
    uow.audit(
        "listing.buyer_confirm",
        "listing_transfer",
        transfer["id"],
        chain_org_id=lot["bank_org_id"],
        after={"price_fen": price},
    )
    return _out(returned(await uow.conn.fetchrow(Q.lock_transfer, lot["id"])))


@command(MANAGE_LOTS)
async def bank_confirms(uow: UnitOfWork, data: BankConfirms) -> Transfer:
    """The bank countersigns after the buyer: the sale is written and the round is sold
    (module docstring). A second countersignature answers the first."""
    lot, transfer = await _locked(uow, data.reference)
    if lot["bank_org_id"] != uow.actor.org:
        raise NotFound("no_such_lot")
    if transfer["status"] == "transferred":
        return _out(transfer)
    _check_open(transfer, uow.at)
    if transfer["buyer_confirmed_at"] is None:
        raise Conflict("listing_transfer_awaits_buyer")
    winner = returned(await uow.conn.fetchrow(Q.registration_row, transfer["registration_id"]))
    sale = await _record_sale(uow, uow.at, lot, winner, transfer["price_fen"])
    await uow.conn.execute(Q.bank_confirms, transfer["id"], uow.at, uow.actor.user, sale.id)
    await lots.decide_round(uow, uow.at, data.policy, lot["id"], "sold")
    uow.audit(
        "listing.bank_confirm",
        "listing_transfer",
        transfer["id"],
        chain_org_id=lot["bank_org_id"],
        after={"sale_id": sale.id, "price_fen": transfer["price_fen"]},
    )
    return _out(returned(await uow.conn.fetchrow(Q.lock_transfer, lot["id"])))


class DueTransfers(msgspec.Struct, frozen=True, kw_only=True):
    policy: TermsPolicy
    batch: int = 200


@command(None)
async def lapse_transfers(uow: UnitOfWork, data: DueTransfers) -> list[int]:
    """Lapse one batch of transfers past their deadline (module docstring): each lot row
    locked first, the transfer re-read, so a countersignature that committed first wins."""
    lapsed: list[int] = []
    for r in await uow.conn.fetch(Q.due_transfers, uow.at, data.batch):
        lot = returned(await uow.conn.fetchrow(lots.Q.lock_lot_any_bank, r["lot_id"]))
        transfer = await uow.conn.fetchrow(Q.lock_transfer, lot["id"])
        if transfer is None or transfer["status"] != "awaiting" or transfer["confirm_by"] > uow.at:
            continue
        at = transfer["confirm_by"]
        await uow.conn.execute(Q.lapse_transfer, transfer["id"])
        if transfer["buyer_confirmed_at"] is None:
            await forfeit_deposit(uow, at, transfer["registration_id"], lot["id"])
        else:
            await release_deposit(uow, at, transfer["registration_id"])
        await lots.decide_round(uow, at, data.policy, lot["id"], "failed")
        uow.audit(
            "listing.lapse",
            "listing_transfer",
            transfer["id"],
            chain_org_id=lot["bank_org_id"],
            after={"buyer_confirmed": transfer["buyer_confirmed_at"] is not None},
        )
        lapsed.append(lot["id"])
    return lapsed


async def lapse_due(pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, **kw: Any) -> list[int]:
    """The worker's sweep at `at` (the injected clock): lapse every transfer past due."""
    ctx = Context(pool=pool, clock=FrozenClock(at), redis=kw.get("redis"))
    return await run(lapse_transfers, DueTransfers(policy=policy), ctx=ctx, actor=SYSTEM)
