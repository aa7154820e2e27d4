"""What a listing's page and API show (docs/rules.md §Listing): its state, period, the
ends of its periods and its negotiated transfer. Public, as the catalogue is: nobody's
identity; the page adds the forms of the two parties of a transfer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from market.db import Queries
from market.errors import NotFound
from market.lots.terms import Terms

Q = Queries("listing")

# listed: in its period; no_intent: the period ended without a qualified intent (the bank
# extends or relists); negotiation: one qualified intent, the transfer awaits confirmation;
# auction: two or more, bidding; transferred: sold by the negotiated transfer; lapsed: the
# transfer was not confirmed in time; ended: any other end (an auction's close, a
# withdrawal…), as the lot's status says.
ListingState = Literal[
    "listed", "no_intent", "negotiation", "auction", "transferred", "lapsed", "ended"
]


class PeriodEnd(msgspec.Struct, frozen=True, kw_only=True):
    ends_at: datetime
    outcome: Literal["no_intent", "negotiation", "auction"]
    qualified: int
    extended_to: datetime | None


class TransferView(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["awaiting", "transferred", "lapsed"]
    confirm_by: datetime
    price_fen: int | None  # the buyer's, once it confirmed
    buyer_confirmed: bool
    bank_confirmed: bool


class ListingOut(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    title: str
    lot_status: str
    round: int
    state: ListingState
    listing_price_fen: int
    deposit_fen: int
    period_working_days: int
    announced_at: datetime | None
    period_ends_at: datetime | None
    auction_ends_at: datetime | None
    periods: list[PeriodEnd]
    transfer: TransferView | None


class Parties(msgspec.Struct, frozen=True, kw_only=True):
    """The organisations a page offers forms to (never in the API's answer)."""

    bank_org_id: int
    buyer_org_id: int | None


def _state(status: str, last_outcome: str | None, transfer_status: str | None) -> ListingState:
    if status == "announced":
        return "listed"
    if status == "deciding":
        return "negotiation"
    if status == "bidding":
        return "auction"
    if transfer_status == "transferred":
        return "transferred"
    if transfer_status == "lapsed":
        return "lapsed"
    if status == "failed" and last_outcome == "no_intent":
        return "no_intent"
    return "ended"


async def listing(pool: asyncpg.Pool, reference: str) -> tuple[ListingOut, Parties]:
    """A published listing by reference; a lot that is not a listing is not found."""
    if not reference or len(reference) > 60 or not reference.isprintable():
        raise NotFound("no_such_listing")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.listing_view, reference)
        if row is None:
            raise NotFound("no_such_listing")
        periods = [
            msgspec.convert(dict(r), PeriodEnd)
            for r in await conn.fetch(Q.round_periods, row["id"], row["round"])
        ]
    terms = msgspec.convert(row["terms"], Terms)
    assert terms.listing is not None
    transfer = None
    if row["transfer_status"] is not None:
        transfer = TransferView(
            status=row["transfer_status"],
            confirm_by=row["confirm_by"],
            price_fen=row["transfer_price_fen"],
            buyer_confirmed=row["buyer_confirmed_at"] is not None,
            bank_confirmed=row["bank_confirmed_at"] is not None,
        )
    out = ListingOut(
        reference=row["reference"],
        title=row["title"],
        lot_status=row["status"],
        round=row["round"],
        state=_state(
            row["status"], periods[-1].outcome if periods else None, row["transfer_status"]
        ),
        listing_price_fen=row["start_price_fen"],
        deposit_fen=row["deposit_fen"],
        period_working_days=terms.listing.period_working_days,
        announced_at=row["announced_at"],
        period_ends_at=row["bidding_starts_at"],
        auction_ends_at=row["bidding_ends_at"],
        periods=periods,
        transfer=transfer,
    )
    return out, Parties(bank_org_id=row["bank_org_id"], buyer_org_id=row["transfer_buyer_org_id"])


class OperatorListing(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    case_id: int  # its case's paths: GET /api/v1/operator/cases/{case_id}/paths
    title: str
    bank_name: str
    state: ListingState
    round: int
    listing_price_fen: int
    period_ends_at: datetime | None
    last_outcome: Literal["no_intent", "negotiation", "auction"] | None
    transfer_status: Literal["awaiting", "transferred", "lapsed"] | None
    confirm_by: datetime | None


async def operator_listings(pool: asyncpg.Pool, limit: int = 200) -> list[OperatorListing]:
    """The operator's view: every published listing, newest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.operator_listings, limit)
    return [
        OperatorListing(
            reference=r["reference"],
            case_id=r["case_id"],
            title=r["title"],
            bank_name=r["bank_name"],
            state=_state(r["status"], r["last_outcome"], r["transfer_status"]),
            round=r["round"],
            listing_price_fen=r["start_price_fen"],
            period_ends_at=r["bidding_starts_at"],
            last_outcome=r["last_outcome"],
            transfer_status=r["transfer_status"],
            confirm_by=r["confirm_by"],
        )
        for r in rows
    ]
