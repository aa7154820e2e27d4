"""Licence offers on a lot (docs/rules.md §Licence offers and decision): an offeror
registers for the lot and pays its deposit as a bidder does, then offers a licence of the
lot's patents to itself, or a sale and licence back to the pledgor; each offer is a
structured record checked by market/licensing/value.py, never free text.

An offer is taken while the lot takes offers: announced or bidding and before the effective
end, or — a lot taking licence offers only, which never opens for bids — before its offers
close at the announced opening instant. It needs a confirmed deposit, a term within the
patents' life (专利法 art. 42) that starts no earlier than the day the offers close, and no
exclusive or sole licence while an open licence (开放许可, 专利法 arts. 50–52) stands on
one of the lot's patents. It may be withdrawn before the close.

Concurrency: submitting takes the lot row FOR UPDATE before it reads the lot's status and
end (so offers on one lot also take turns, and each is valued against those before it to
tell an offeror it was outvalued); the close (auctions/closing.py `close_lot`, and
`close_offers` here for a lot taking licence offers only) takes it FOR UPDATE too. So an
offer either commits before the close locks the lot, and the close finds it standing, or
waits and then finds the lot closed and is refused: never lost, never half in. A
withdrawal takes the lot FOR UPDATE, as the close and the decision do, so it takes turns
with both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final, Literal

import asyncpg
import msgspec

from auctions.registration import Registered, RegisterForLot, check_reference, enrol
from market.accounts.permissions import MAKE_OFFERS
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.licensing.open_licence import refuse_exclusive_while_open
from market.licensing.royalties import RoyaltyTerms
from market.licensing.value import (
    BuyBack,
    LicenceOffer,
    LicenceTerms,
    PositiveFen,
    SaleAndLicenceBack,
    check_offer,
    compare,
    patent_expiry,
)
from market.lots.terms import Terms

Q = Queries("licence_offers")

OfferType = Literal["licence", "sale_and_licence_back"]
OfferStatus = Literal["submitted", "withdrawn", "chosen", "not_chosen"]
_OPEN: Final = ("announced", "bidding")
_MAX_ID: Final = 2**63 - 1


class OfferIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An offer: a licence of the lot's patents to the offeror (`licence`), or a sale of
    them at `price_fen` with `licence` as the licence back to the pledgor, optionally with
    a buy-back schedule for the pledgor."""

    type: OfferType = "licence"
    licence: LicenceTerms
    price_fen: PositiveFen | None = None  # a sale and licence back's price for the title
    buy_back: tuple[BuyBack, ...] = ()


class SubmitOffer(msgspec.Struct, frozen=True, kw_only=True):
    reference: str  # the lot's public reference
    offer: OfferIn


class OfferRef(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: int


class OfferOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    registration_id: int
    offeror_org_id: int
    offeror_name: str
    type: OfferType
    licence_kind: Literal["exclusive", "sole", "non_exclusive"]
    offer: OfferIn
    status: OfferStatus
    submitted_at: datetime
    settled_at: datetime | None


def offer_out(row: Any) -> OfferOut:
    return OfferOut(
        id=row["id"],
        lot_id=row["lot_id"],
        lot_reference=row["lot_reference"],
        lot_title=row["lot_title"],
        round=row["round"],
        registration_id=row["registration_id"],
        offeror_org_id=row["offeror_org_id"],
        offeror_name=row["offeror_name"],
        type=row["kind"],
        licence_kind=row["licence_kind"],
        offer=msgspec.convert(row["terms"], OfferIn),
        status=row["status"],
        submitted_at=row["submitted_at"],
        settled_at=row["settled_at"],
    )


def valued(row: Any) -> LicenceOffer | SaleAndLicenceBack:
    """A stored offer as market/licensing/value.py values it: its id `offer-<id>`, its
    licensee the offeror (two offers of one offeror are alternatives)."""
    offer = msgspec.convert(row["terms"], OfferIn)
    return _as_value(offer, row["id"], row["offeror_org_id"])


def _as_value(offer: OfferIn, offer_id: int, org_id: int) -> LicenceOffer | SaleAndLicenceBack:
    if offer.type == "sale_and_licence_back":
        assert offer.price_fen is not None
        return SaleAndLicenceBack(
            id=f"offer-{offer_id}",
            buyer=f"org-{org_id}",
            price_fen=offer.price_fen,
            licence_back=offer.licence,
            buy_back=offer.buy_back,
        )
    fields = msgspec.structs.asdict(offer.licence)
    return LicenceOffer(id=f"offer-{offer_id}", licensee=f"org-{org_id}", **fields)


def royalty_terms(licence: LicenceTerms) -> RoyaltyTerms:
    """The contract's royalty numbers of a licence offered (market/licensing/royalties.py)."""
    return RoyaltyTerms(
        start=licence.term_start,
        end=licence.term_end,
        period=licence.period,
        royalty_rate_bp=licence.royalty_rate_bp,
        per_unit_fen=licence.per_unit_fen,
        minimum_annual_fen=licence.minimum_annual_fen,
    )


def offers_close_at(status_row: Any, terms: Terms) -> datetime:
    """When the lot stops taking offers: the effective end, or for a lot taking licence
    offers only the announced opening instant (docs/rules.md §Licence offers and decision)."""
    key = "bidding_starts_at" if terms.offers.mode == "licences_only" else "bidding_ends_at"
    found: datetime = status_row[key]
    return found


async def patent_expiry_of_lot(conn: Conn, lot_id: int) -> tuple[date, list[int]]:
    """(the earliest last day of protection of the lot's rights, the rights' asset ids)."""
    rows = await conn.fetch(Q.lot_assets_for_offer, lot_id)
    ends: list[date] = []
    for r in rows:
        if r["kind"] == "patent" and r["patent_type"] and r["filing_date"]:
            ends.append(patent_expiry(r["patent_type"], r["filing_date"]))
        elif r["term_ends_on"] is not None:
            ends.append(r["term_ends_on"])
    if not ends:
        raise Conflict("lot_rights_without_term")
    return min(ends), [r["id"] for r in rows]


def _field(field: str | None) -> str:
    """A field of the valued offer as the input names it (`licence_back.x` → `licence.x`)."""
    if not field:
        return "licence"
    if field.startswith("licence_back"):
        return "licence" + field[len("licence_back") :]
    if field in ("price_fen",) or field.startswith("buy_back"):
        return field
    return f"licence.{field}"


def check_input(offer: OfferIn, close_day: date, expiry: date) -> None:
    """Every check of an offer that needs no database: its shape by type, the value
    module's checks with the close day as the first day a licence may start, and the
    numbers a contract's schedule needs. Invalid names the input's field."""
    if offer.type == "sale_and_licence_back" and offer.price_fen is None:
        raise Invalid("sale_and_licence_back_needs_price", field="price_fen")
    if offer.type == "licence" and (offer.price_fen is not None or offer.buy_back):
        raise Invalid(
            "licence_offer_has_no_price", field="price_fen" if offer.price_fen else "buy_back"
        )
    value = _as_value(offer, 0, 0)
    try:
        check_offer(value, close_day, expiry)
    except Invalid as exc:
        if exc.code == "licence_starts_before_today":
            raise Invalid(
                "licence_starts_before_offers_close",
                field=_field(exc.field),
                close_day=close_day.isoformat(),
            ) from exc
        raise Invalid(exc.code, field=_field(exc.field), **exc.params) from exc
    try:
        royalty_terms(offer.licence)
    except Invalid as exc:
        names = {"end": "term_end", "start": "term_start"}
        raise Invalid(
            exc.code, field=f"licence.{names.get(exc.field or '', exc.field)}", **exc.params
        ) from exc


# --- registration -----------------------------------------------------------------------------


@command(MAKE_OFFERS)
async def register_to_offer(uow: UnitOfWork, data: RegisterForLot) -> Registered:
    """Register for a lot that takes licence offers, as a bidder registers (the bidding
    agreement, the deposit): a pledgor may register so, and never bids (the bid routes'
    permission is BID). Refused on a lot that takes bids only."""
    check_reference(data.reference)
    lot = await uow.conn.fetchrow(Q.lot_reference, data.reference)
    if lot is None:
        raise NotFound("no_such_lot")
    if not msgspec.convert(lot["terms"], Terms).offers.takes_licences:
        raise Conflict("lot_takes_no_offers", field="reference", reference=data.reference)
    return await enrol(uow, data)


# --- submit and withdraw ----------------------------------------------------------------------


@command(MAKE_OFFERS)
async def submit_offer(uow: UnitOfWork, data: SubmitOffer) -> OfferOut:
    """Make an offer on the lot (module docstring: when, and how it stays clear of the
    close). Its bank is told (event `offer_received`)."""
    check_reference(data.reference)
    conn, org = uow.conn, uow.actor.org
    lot = await conn.fetchrow(Q.lot_for_offer, data.reference)
    if lot is None:
        raise NotFound("no_such_lot")
    terms = msgspec.convert(lot["terms"], Terms)
    if not terms.offers.takes_licences:
        raise Conflict("lot_takes_no_offers", field="reference", reference=data.reference)
    close_at = offers_close_at(lot, terms)
    if lot["status"] not in _OPEN or uow.at >= close_at:
        raise Conflict("offers_closed", field="reference", status=lot["status"], close_at=close_at)
    registration = await conn.fetchrow(Q.own_registration, lot["id"], lot["round"], org)
    if registration is None:
        raise Conflict("offer_needs_registration", field="reference")
    if registration["deposit_status"] != "confirmed":
        raise Conflict("offer_deposit_not_confirmed", field="reference")
    expiry, asset_ids = await patent_expiry_of_lot(conn, lot["id"])
    close_day = max(china_today(close_at), china_today(uow.at))
    check_input(data.offer, close_day, expiry)
    await refuse_exclusive_while_open(
        conn, asset_ids, data.offer.licence.kind, field="licence.kind"
    )
    offer_id = await conn.fetchval(
        Q.insert_offer,
        lot["id"],
        lot["round"],
        registration["id"],
        org,
        uow.actor.user,
        data.offer.type,
        data.offer.licence.kind,
        msgspec.to_builtins(data.offer),
        uow.at,
    )
    out = offer_out(returned(await conn.fetchrow(Q.offer_of_org, offer_id, org)))
    await uow.emit(
        Q.bank_users_outbox,
        "offer_received",
        lot["bank_org_id"],
        None,
        lot["id"],
        _event_payload(out),
        f"offer_received:{offer_id}",
        uow.at,
    )
    uow.audit("licence_offer.submit", "licence_offer", offer_id, after=msgspec.to_builtins(out))
    await _tell_the_outvalued(uow, lot, terms, close_day, expiry, offer_id)
    return out


async def _tell_the_outvalued(
    uow: UnitOfWork, lot: Any, terms: Terms, on: date, expiry: date, new_id: int
) -> None:
    """`offer_outbid_by_value` to each offeror whose offer led the lot's offers before the
    new one and no longer does (docs/rules.md §Licence offers and decision). The offers are
    valued as the bank will value them, without the bid: the hammer's price moves until the
    close, and whether a licence beats it is the bank's decision. The lot row is held
    FOR UPDATE by the submission (`lot_for_offer`), so submissions on one lot take turns
    and each compares against every offer before it."""
    rows = await uow.conn.fetch(Q.round_offers, lot["id"], lot["round"])
    before = [r for r in rows if r["id"] != new_id]
    if not before:
        return
    policy = terms.offers.valuation
    was = compare(None, [valued(r) for r in before], policy, on, expiry).winner
    now = compare(None, [valued(r) for r in rows], policy, on, expiry).winner
    if was is None or now is None:
        return
    values = {v.offer_id: v.total_fen for v in was.values}
    for r in before:
        key = f"offer-{r['id']}"
        if key not in was.members or key in now.members:
            continue
        await uow.emit(
            Q.bank_users_outbox,
            "offer_outbid_by_value",
            r["offeror_org_id"],
            r["user_id"],
            lot["id"],
            {
                "offer_id": r["id"],
                "by_offer_id": new_id,
                "lot_id": lot["id"],
                "lot_reference": lot["reference"],
                "lot_title": lot["title"],
                "round": lot["round"],
                "pv_fen": values[key],
                "leading_pv_fen": now.pv_fen,
            },
            f"offer_outbid_by_value:{r['id']}:{new_id}",
            uow.at,
        )


def _event_payload(offer: OfferOut) -> dict[str, Any]:
    licence = offer.offer.licence
    return {
        "offer_id": offer.id,
        "lot_id": offer.lot_id,
        "lot_reference": offer.lot_reference,
        "lot_title": offer.lot_title,
        "round": offer.round,
        "offeror_name": offer.offeror_name,
        "type": offer.type,
        "licence_kind": offer.licence_kind,
        "upfront_fen": licence.upfront_fen,
        "minimum_annual_fen": licence.minimum_annual_fen,
        "price_fen": offer.offer.price_fen,
    }


@command(MAKE_OFFERS)
async def withdraw_offer(uow: UnitOfWork, data: OfferRef) -> OfferOut:
    """Withdraw one's offer before the lot stops taking offers. Concurrency: the lot row
    FOR UPDATE, as the close and the decision take it."""
    conn, org = uow.conn, uow.actor.org
    if not 0 < data.offer_id <= _MAX_ID:
        raise NotFound("no_such_offer")
    lot = await conn.fetchrow(Q.lock_lot_of_offer, data.offer_id, org)
    if lot is None:
        raise NotFound("no_such_offer")
    close_at = offers_close_at(lot, msgspec.convert(lot["terms"], Terms))
    if lot["status"] not in _OPEN or uow.at >= close_at:
        raise Conflict("offers_closed", status=lot["status"], close_at=close_at)
    if await conn.fetchval(Q.withdraw_offer, data.offer_id, uow.at) is None:
        raise Conflict("offer_not_standing")
    out = offer_out(returned(await conn.fetchrow(Q.offer_of_org, data.offer_id, org)))
    uow.audit(
        "licence_offer.withdraw", "licence_offer", data.offer_id, after={"status": out.status}
    )
    return out


# --- reading ------------------------------------------------------------------------------------


async def get_offer(pool: asyncpg.Pool, org_id: int | None, offer_id: int) -> OfferOut:
    """One offer of `org_id` (None: the operator); another organisation's is not found."""
    if not 0 < offer_id <= _MAX_ID:
        raise NotFound("no_such_offer")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.offer_of_org, offer_id, org_id)
    if row is None:
        raise NotFound("no_such_offer")
    return offer_out(row)


async def list_offers(
    pool: asyncpg.Pool, org_id: int, *, before: int | None = None, limit: int = 50
) -> list[OfferOut]:
    """The organisation's offers, newest first, `limit` after the id `before`."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.offers_of_org, org_id, before, limit)
    return [offer_out(r) for r in rows]
