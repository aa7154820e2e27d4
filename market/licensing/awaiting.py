"""The close of a round that took licence offers: instead of writing the sale, the round
waits for the bank's decision (docs/rules.md §Licence offers and decision).

`hand_over_at_close` is the auction close's step (auctions/closing.py `close_lot`) when
offers stand: the lot goes to 'deciding', a decision is opened with the top bid and its
deadline, and the deposits of the top bidder and of every offeror stay frozen until the
decision; the others go back as at any close. `close_offers` is the same step for a lot
taking licence offers only, at the instant its offers close (it never opens for bids):
with no offer standing, the round failed and every deposit goes back.

Both run inside the close's unit of work, under the lot row's lock (FOR UPDATE) that the
close took first; an offer takes that row FOR SHARE (market/licensing/offers.py), so the
offers read here are exactly those committed before the close.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from auctions.deposits import release_deposit
from market.commands import UnitOfWork
from market.db import Conn, Queries
from market.lots import services as lots
from market.lots.terms import Terms, TermsPolicy

Q = Queries("licence_offers")


async def standing_offers(conn: Conn, lot_id: int, round: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.round_offers, lot_id, round))


async def _open_decision(
    uow: UnitOfWork,
    at: datetime,
    lot: Any,
    terms: Terms,
    top_registration_id: int | None,
    top_price_fen: int | None,
) -> None:
    # The bank decides within the days its terms announced (§Licence offers and decision).
    deadline = at + timedelta(days=terms.offers.decision_days)
    await uow.conn.execute(
        Q.insert_decision,
        lot["id"],
        lot["round"],
        top_registration_id,
        top_price_fen,
        at,
        deadline,
    )
    uow.audit(
        "licence_decision.open",
        "lot",
        lot["id"],
        chain_org_id=lot["bank_org_id"],
        after={
            "round": lot["round"],
            "top_registration_id": top_registration_id,
            "top_price_fen": top_price_fen,
            "deadline_at": deadline.isoformat(),
        },
    )


async def hand_over_at_close(
    uow: UnitOfWork,
    at: datetime,
    policy: TermsPolicy,
    lot: Any,
    terms: Terms,
    top_registration_id: int | None,
    top_price_fen: int | None,
    offers: list[asyncpg.Record],
) -> set[int]:
    """The round waits for the decision; returns the registrations whose deposits stay
    frozen until then (the top bidder's, the offerors'). The caller releases the others."""
    await lots.await_decision(uow, at, policy, lot["id"], licences_only=False)
    await _open_decision(uow, at, lot, terms, top_registration_id, top_price_fen)
    keep = {r["registration_id"] for r in offers}
    if top_registration_id is not None:
        keep.add(top_registration_id)
    return keep


async def close_offers(uow: UnitOfWork, at: datetime, policy: TermsPolicy, lot: Any) -> None:
    """A lot taking licence offers only, at the instant its offers close: 'deciding' with
    its offers, or failed with none; the deposits of registrations without an offer go
    back. The caller holds the lot row's lock."""
    terms = msgspec.convert(lot["terms"], Terms)
    offers = await standing_offers(uow.conn, lot["id"], lot["round"])
    await lots.await_decision(uow, at, policy, lot["id"], licences_only=True)
    keep = {r["registration_id"] for r in offers}
    if offers:
        await _open_decision(uow, at, lot, terms, None, None)
    else:
        await lots.decide_round(uow, at, policy, lot["id"], "failed")
    for row in await uow.conn.fetch(Q.round_confirmed_ids, lot["id"], lot["round"]):
        if row["id"] not in keep:
            await release_deposit(uow, at, row["id"])
