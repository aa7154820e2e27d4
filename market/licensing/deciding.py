"""The bank's decision on a round that closed with licence offers standing (docs/rules.md
§Licence offers and decision).

The comparison is market/licensing/value.py `compare` over the top bid and every standing
offer, under the valuation policy the lot's terms announced, valued as of the day the
offers closed (or the earliest start offered, if earlier): the same numbers whenever it is
read. The bank then decides before the deadline, with its reason:

* the hammer stands (no offer chosen): the sale is written as the close would have, at the
  decision's instant, so the winner's payment period runs from then; the offerors'
  deposits go back;
* a set of licences whose present value beats the top bid by the announced margin: a
  contract for each (market/licensing/contracts.py), the lot 'licensed'; the top bidder
  is told (`hammer_superseded`), owes nothing and has its deposit back, as every offeror;
* a sale and licence back: a sale to the acquirer at its price (paid as any sale) and the
  licence back to the pledgor, awaiting the pledgor's acceptance;
* with no bid, nothing chosen: the round failed, every deposit goes back.
A deadline passed undecided applies the default: the hammer stands, or with no bid the
round failed (`decide_when_due`, run by the worker, market/licensing/jobs.py).

Concurrency: a decision locks the lot row (FOR UPDATE), then its decision row, and reads
the decision's status under those locks: of two decisions at once — two officers, or an
officer and the deadline — one decides and the other finds it made (409), writing nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from auctions.closing import _record_sale
from auctions.deposits import release_round_deposits
from market.accounts.permissions import MANAGE_LOTS
from market.cases.services import china_today
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.licensing.contracts import NewContract, create_contract
from market.licensing.offers import (
    OfferIn,
    patent_expiry_of_lot,
    royalty_terms,
    valued,
)
from market.licensing.value import (
    BP,
    Bid,
    Comparison,
    beats_margin,
    compare,
    compatible,
)
from market.lots import services as lots
from market.lots.lifecycle import percent
from market.lots.terms import Terms, TermsPolicy

Q = Queries("licence_offers")
_MAX_ID: Final = 2**63 - 1
_MAX_CHOSEN: Final = 100

DecisionStatus = Literal["open", "hammer_stands", "licensed", "nothing_chosen"]


class Decide(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bank's decision: the offers chosen (none: the hammer stands, or with no bid
    nothing is chosen), and why."""

    offer_ids: Annotated[list[int], Meta(max_length=_MAX_CHOSEN)] = []
    reason: Annotated[str, Meta(max_length=1000)] = ""


class DecideLot(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    decision: Decide
    policy: TermsPolicy


class DecideWhenDue(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    policy: TermsPolicy


class OfferLine(msgspec.Struct, frozen=True, kw_only=True):
    """One offer beside its value: who, what, its status, and its present value."""

    offer_id: int
    key: str  # the id the comparison names it by: offer-<id>
    offeror_org_id: int
    offeror_name: str
    type: str
    licence_kind: str
    offer: OfferIn
    status: str


class DecisionContract(msgspec.Struct, frozen=True, kw_only=True):
    """A contract the decision made (market/licensing/contracts.py), by its reference."""

    id: int
    reference: str
    offer_id: int | None
    licensee_org_id: int
    licensee_name: str
    kind: str
    status: str


class DecisionOut(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: int
    lot_reference: str
    lot_title: str
    lot_status: str
    round: int
    status: DecisionStatus
    top_registration_id: int | None
    top_price_fen: int | None
    closed_at: datetime
    deadline_at: datetime
    margin_bp: int
    valued_on: date
    offers: list[OfferLine]
    comparison: Comparison
    chosen_offer_ids: list[int]
    reason: str
    decided_at: datetime | None
    decided_by_deadline: bool
    contracts: list[DecisionContract] = []


def _valued_on(closed_at: datetime, offers: list[Any]) -> date:
    """The day the comparison counts from: the close's, or the earliest start offered."""
    day = china_today(closed_at)
    for row in offers:
        start = msgspec.convert(row["terms"], OfferIn).licence.term_start
        day = min(day, start)
    return day


async def _comparison(
    conn: Conn, lot: Any, decision: Any, offers: list[Any]
) -> tuple[Comparison, date]:
    terms = msgspec.convert(lot["terms"], Terms)
    expiry, _ = await patent_expiry_of_lot(conn, lot["id"])
    bid = (
        Bid(
            bidder=f"registration-{decision['top_registration_id']}",
            amount_fen=decision["top_price_fen"],
        )
        if decision["top_price_fen"] is not None
        else None
    )
    on = _valued_on(decision["closed_at"], offers)
    found = compare(bid, [valued(r) for r in offers], terms.offers.valuation, on, expiry)
    return found, on


async def _read(conn: Conn, lot: Any) -> DecisionOut:
    decision = await conn.fetchrow(Q.decision, lot["id"])
    if decision is None:
        raise NotFound("no_such_decision")
    offers = list(await conn.fetch(Q.round_offers_all, lot["id"], decision["round"]))
    comparison, on = await _comparison(conn, lot, decision, offers)
    terms = msgspec.convert(lot["terms"], Terms)
    contracts = [
        DecisionContract(
            id=r["id"],
            reference=r["reference"],
            offer_id=r["offer_id"],
            licensee_org_id=r["licensee_org_id"],
            licensee_name=r["licensee_name"],
            kind=r["kind"],
            status=r["status"],
        )
        for r in await conn.fetch(Q.lot_contracts, list(decision["chosen_offer_ids"]))
    ]
    return DecisionOut(
        lot_id=lot["id"],
        lot_reference=lot["reference"],
        lot_title=lot["title"],
        lot_status=lot["status"],
        round=decision["round"],
        status=decision["status"],
        top_registration_id=decision["top_registration_id"],
        top_price_fen=decision["top_price_fen"],
        closed_at=decision["closed_at"],
        deadline_at=decision["deadline_at"],
        margin_bp=terms.offers.valuation.margin_bp,
        valued_on=on,
        offers=[
            OfferLine(
                offer_id=r["id"],
                key=f"offer-{r['id']}",
                offeror_org_id=r["offeror_org_id"],
                offeror_name=r["offeror_name"],
                type=r["kind"],
                licence_kind=r["licence_kind"],
                offer=msgspec.convert(r["terms"], OfferIn),
                status=r["status"],
            )
            for r in offers
        ],
        comparison=comparison,
        chosen_offer_ids=list(decision["chosen_offer_ids"]),
        reason=decision["reason"],
        decided_at=decision["decided_at"],
        decided_by_deadline=decision["decided_at"] is not None and decision["decided_by"] is None,
        contracts=contracts,
    )


async def get_decision(pool: asyncpg.Pool, reader_org_id: int | None, lot_id: int) -> DecisionOut:
    """The comparison and decision of the lot, for its bank, a pool that bore loss on the
    case's loan, or the operator (None); anyone else's answers 404."""
    if not 0 < lot_id <= _MAX_ID:
        raise NotFound("no_such_lot")
    async with pool.acquire() as conn:
        lot = await conn.fetchrow(Q.lot_for_reader, lot_id, reader_org_id)
        if lot is None:
            raise NotFound("no_such_lot")
        return await _read(conn, lot)


# --- deciding ---------------------------------------------------------------------------------


async def _outbox(
    uow: UnitOfWork, event: str, key: str, org_id: int, user_id: int | None, lot_id: int, p: Any
) -> None:
    await uow.emit(Q.bank_users_outbox, event, org_id, user_id, lot_id, p, key, uow.at)


async def _decide(
    uow: UnitOfWork, lot: Any, policy: TermsPolicy, data: Decide, *, by_bank: bool
) -> None:
    conn, at = uow.conn, uow.at
    if lot["status"] != "deciding":
        raise Conflict("lot_not_deciding", status=lot["status"])
    decision = returned(await conn.fetchrow(Q.decision_locked, lot["id"], lot["round"]))
    if decision["status"] != "open":
        raise Conflict("decision_already_made", status=decision["status"])
    if by_bank and at > decision["deadline_at"]:
        raise Conflict("decision_deadline_passed", deadline_at=decision["deadline_at"])
    reason = data.reason.strip()
    if by_bank and not reason:
        raise Invalid("reason_required", field="reason")
    offers = list(await conn.fetch(Q.round_offers, lot["id"], lot["round"]))
    comparison, _ = await _comparison(conn, lot, decision, offers)
    by_id = {r["id"]: r for r in offers}
    chosen_ids = list(dict.fromkeys(data.offer_ids))
    strangers = [i for i in chosen_ids if i not in by_id]
    if strangers:
        raise Invalid("offer_not_in_round", field="offer_ids", offer_ids=strangers)
    chosen = [by_id[i] for i in chosen_ids]
    top_price = decision["top_price_fen"]
    terms = msgspec.convert(lot["terms"], Terms)
    margin = terms.offers.valuation.margin_bp
    if chosen:
        values = [valued(r) for r in chosen]
        if not compatible(values):
            raise Invalid("offers_not_compatible", field="offer_ids")
        pv = {v.offer_id: v.total_fen for s in comparison.sets for v in s.values}
        total = sum(pv.get(v.id, 0) for v in values)
        if top_price is not None and not beats_margin(total, top_price, margin):
            raise Invalid(
                "licence_below_margin",
                field="offer_ids",
                pv_fen=total,
                bid_fen=top_price,
                threshold_fen=-(-top_price * (BP + margin) // BP),
                margin_pct=percent(margin),
            )
    sale_offer = next((r for r in chosen if r["kind"] == "sale_and_licence_back"), None)
    sale_registration: int | None = None
    if chosen:
        status: DecisionStatus = "licensed"
        outcome = "sold" if sale_offer is not None else "licensed"
    elif top_price is not None:
        status, outcome = "hammer_stands", "sold"
    else:
        status, outcome = "nothing_chosen", "failed"
    await lots.decide_round(uow, at, policy, lot["id"], outcome)
    if status == "hammer_stands":
        sale_registration = decision["top_registration_id"]
        winner = returned(await conn.fetchrow(Q.registration_row, sale_registration))
        await _record_sale(uow, at, lot, winner, top_price)
    elif sale_offer is not None:
        sale_registration = sale_offer["registration_id"]
        winner = returned(await conn.fetchrow(Q.registration_row, sale_registration))
        price = msgspec.convert(sale_offer["terms"], OfferIn).price_fen
        assert price is not None
        await _record_sale(uow, at, lot, winner, price)
    if chosen:
        await _contracts(uow, lot, chosen)
        if decision["top_registration_id"] is not None:
            top = returned(await conn.fetchrow(Q.registration_row, decision["top_registration_id"]))
            await _outbox(
                uow,
                "hammer_superseded",
                f"hammer_superseded:{lot['id']}:{lot['round']}",
                top["buyer_org_id"],
                top["user_id"],
                lot["id"],
                {
                    "lot_id": lot["id"],
                    "lot_reference": lot["reference"],
                    "lot_title": lot["title"],
                    "round": lot["round"],
                    "registration_id": top["id"],
                    "price_fen": top_price,
                    "deposit_fen": top["deposit_fen"],
                },
            )
    for r in offers:
        picked = r["id"] in chosen_ids
        await conn.execute(Q.settle_offer, r["id"], "chosen" if picked else "not_chosen", at)
        event = "offer_chosen" if picked else "offer_not_chosen"
        await _outbox(
            uow,
            event,
            f"{event}:{r['id']}",
            r["offeror_org_id"],
            r["user_id"],
            lot["id"],
            {
                "offer_id": r["id"],
                "lot_id": lot["id"],
                "lot_reference": lot["reference"],
                "lot_title": lot["title"],
                "round": lot["round"],
                "type": r["kind"],
                "licence_kind": r["licence_kind"],
            },
        )
    # Every deposit of the round goes back but the one a sale will count towards its price
    # (docs/rules.md §Licence offers and decision).
    await release_round_deposits(uow, at, lot["id"], lot["round"], keep=sale_registration)
    stored = returned(
        await conn.fetchrow(
            Q.record_decision,
            lot["id"],
            lot["round"],
            status,
            chosen_ids,
            reason,
            msgspec.to_builtins(comparison),
            uow.actor.user_id,
            at,
        )
    )
    uow.audit(
        "licence_decision.decide",
        "lot",
        lot["id"],
        chain_org_id=lot["bank_org_id"],
        before={"status": "open"},
        after={
            "status": stored["status"],
            "chosen_offer_ids": chosen_ids,
            "reason": reason,
            "by_deadline": not by_bank,
            "comparison": msgspec.to_builtins(comparison),
        },
    )


async def _contracts(uow: UnitOfWork, lot: Any, chosen: list[Any]) -> None:
    """A contract for each licence chosen; a sale and licence back's licence goes to the
    pledgor and waits for its acceptance (market/licensing/contracts.py)."""
    consent = await uow.conn.fetchrow(Q.case_consent, lot["case_id"])
    pledgor = consent["pledgor_org_id"] if consent is not None else None
    for r in chosen:
        offer = msgspec.convert(r["terms"], OfferIn)
        back = offer.type == "sale_and_licence_back"
        if back and pledgor is None:
            raise Conflict("licence_back_without_pledgor", field="offer_ids")
        licensee = pledgor if back else r["offeror_org_id"]
        assert licensee is not None
        await create_contract(
            uow,
            NewContract(
                case_id=lot["case_id"],
                bank_org_id=lot["bank_org_id"],
                licensee_org_id=licensee,
                pledgor_org_id=pledgor,
                kind=offer.licence.kind,
                terms=royalty_terms(offer.licence),
                field_of_use=offer.licence.field_of_use,
                territory=offer.licence.territory,
                upfront_fen=offer.licence.upfront_fen,
                lot_id=lot["id"],
                offer_id=r["id"],
                needs_acceptance=back,
            ),
        )


@command(MANAGE_LOTS)
async def decide_lot(uow: UnitOfWork, data: DecideLot) -> DecisionOut:
    """The bank decides its lot's round (module docstring); another bank's lot is 404."""
    if not 0 < data.lot_id <= _MAX_ID:
        raise NotFound("no_such_lot")
    lot = await uow.conn.fetchrow(Q.lot_locked, data.lot_id)
    if lot is None or lot["bank_org_id"] != uow.actor.org:
        raise NotFound("no_such_lot")
    await _decide(uow, lot, data.policy, data.decision, by_bank=True)
    return await _read(uow.conn, returned(await uow.conn.fetchrow(Q.lot_locked, data.lot_id)))


@command(None)
async def decide_when_due(uow: UnitOfWork, data: DecideWhenDue) -> bool:
    """The deadline passed undecided: the default applies (the hammer stands, or with no
    bid nothing is chosen). False when there is nothing to do (decided meanwhile)."""
    lot = await uow.conn.fetchrow(Q.lot_locked, data.lot_id)
    if lot is None or lot["status"] != "deciding":
        return False
    decision = returned(await uow.conn.fetchrow(Q.decision_locked, lot["id"], lot["round"]))
    if decision["status"] != "open" or decision["deadline_at"] > uow.at:
        return False
    await _decide(uow, lot, data.policy, Decide(), by_bank=False)
    return True


async def decide_due(
    pool: asyncpg.Pool, at: datetime, policy: TermsPolicy, batch: int = 100
) -> list[int]:
    """Apply the default to every decision whose deadline passed by `at`, each at `at` in
    a unit of work of its own; returns the lot ids decided."""
    ctx = Context(pool=pool, clock=FrozenClock(at))
    done: list[int] = []
    broken: list[int] = []
    while True:
        async with pool.acquire() as conn:
            ids = [r["id"] for r in await conn.fetch(Q.due_decisions, at, broken, batch)]
        for lot_id in ids:
            try:
                data = DecideWhenDue(lot_id=lot_id, policy=policy)
                if await run(decide_when_due, data, ctx=ctx, actor=SYSTEM):
                    done.append(lot_id)
                else:
                    broken.append(lot_id)
            except Exception:
                import logging

                logging.getLogger("market.licensing").exception(
                    "the decision of lot %s could not be applied; the next sweep retries", lot_id
                )
                broken.append(lot_id)
        if len(ids) < batch:
            return done
