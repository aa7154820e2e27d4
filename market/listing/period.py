"""The end of a listing's disclosure period, and the bank's extension of a period that
found no intent (docs/rules.md §Listing).

At the period's end (the lot's `bidding_starts_at`) the lots' timed sweep hands the listing
here (market/lots/services.py `open_if_due`), in its unit of work, under the lot row's lock
(FOR UPDATE). The intents counted are the round's registrations whose deposit is confirmed;
a deposit confirmation takes the lot row FOR SHARE first (auctions/deposits.py), so the set
read here is exactly what committed before the end, and a deposit confirmed after it is
released at once (a listing's round stops taking deposits when its period ends).

* none → the round failed (`AwaitDecision` then `Decide failed`): the bank may extend the
  period (`extend_listing`) or relist at most 20 % lower (market/lots/services.py
  `relist_lot`, the relist rules of §Lot lifecycle);
* one → 'deciding': the negotiated transfer (market/listing/transfer.py) awaits both sides'
  confirmation until its deadline;
* two or more → bidding opens at this instant on the auction engine, at the listing price,
  the qualified intents being the round's registered bidders with the deposits they paid
  (nobody registers or pays again; nobody else joins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from market.accounts.permissions import MANAGE_LOTS
from market.cases.paths import check_move
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, NotFound
from market.listing.policy import end_of_working_days
from market.lots import lifecycle
from market.lots import services as lots
from market.lots.models import LotOut
from market.lots.terms import Terms, TermsPolicy

Q = Queries("listing")


async def notify(
    uow: UnitOfWork,
    event: str,
    lot: Any,
    key: str,
    *,
    org_id: int,
    user_id: int | None = None,
    **extra: Any,
) -> None:
    """A listing's event owed to an organisation (its user when given), once by `key`."""
    payload = {
        "lot_id": lot["id"],
        "lot_reference": lot["reference"],
        "lot_title": lot["title"],
        "round": lot["round"],
        "path": f"/listings/{lot['reference']}",
        **extra,
    }
    await uow.emit(
        Q.insert_outbox, event, org_id, user_id, lot["id"], payload, f"{event}:{key}", uow.at
    )


async def end_period(
    uow: UnitOfWork, at: datetime, policy: TermsPolicy, lot: asyncpg.Record
) -> bool:
    """The listing `lot` (locked) reached its period's end `at`. True when two or more
    intents qualified and the caller opens bidding now; otherwise the round went on here."""
    from market.listing.transfer import open_transfer  # the transfer builds on this module

    intents = list(await uow.conn.fetch(Q.qualified_intents, lot["id"], lot["round"]))
    outcome = "auction" if len(intents) >= 2 else "negotiation" if intents else "no_intent"
    await uow.conn.execute(Q.insert_period, lot["id"], lot["round"], at, outcome, len(intents))
    key = f"{lot['id']}:{lot['round']}:{int(at.timestamp())}"
    await notify(
        uow,
        "listing_period_ended",
        lot,
        key,
        org_id=lot["bank_org_id"],
        outcome=outcome,
        qualified=len(intents),
        ends_at=at.isoformat(),
    )
    uow.audit(
        "listing.period_end",
        "lot",
        lot["id"],
        chain_org_id=lot["bank_org_id"],
        after={"round": lot["round"], "outcome": outcome, "qualified": [r["id"] for r in intents]},
    )
    if outcome == "auction":
        terms = msgspec.convert(lot["terms"], Terms)
        for intent in intents:
            await notify(
                uow,
                "listing_auction_created",
                lot,
                f"{key}:{intent['id']}",
                org_id=intent["buyer_org_id"],
                user_id=intent["user_id"],
                start_price_fen=lot["start_price_fen"],
                bidding_ends_at=(terms.bidding_ends_at or at).isoformat(),
            )
        return True
    await lots.await_decision(uow, at, policy, lot["id"], licences_only=True)
    if outcome == "negotiation":
        await open_transfer(uow, at, policy, lot, intents[0])
    else:
        await lots.decide_round(uow, at, policy, lot["id"], "failed")
    return False


class ExtendListingPeriod(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    policy: TermsPolicy


@command(MANAGE_LOTS)
async def extend_listing(uow: UnitOfWork, data: ExtendListingPeriod) -> LotOut:
    """List again for the policy's working days (5) a listing whose period just ended
    without a qualified intent (docs/rules.md §Listing), counted from the later of the
    period's end and today, so a period never ends in the past; within the window the
    failed round leaves open (docs/rules.md §Moving between paths).

    Concurrency: the lot row's lock (FOR UPDATE) first, then the period's row, which the
    extension marks: of two extensions one succeeds and the other finds the lot announced
    (409); the sweep ending the period holds the same lock."""
    row = await lot_row(uow, data.reference)
    if row["bank_org_id"] != uow.actor.org:
        raise NotFound("no_such_lot")
    stored = msgspec.convert(row["terms"], Terms)
    period = await uow.conn.fetchrow(Q.last_period, row["id"], row["round"])
    if (
        stored.listing is None
        or row["status"] != "failed"
        or period is None
        or period["outcome"] != "no_intent"
        or period["extended_to"] is not None
    ):
        raise lifecycle.IllegalTransition(
            "extend_needs_ended_listing",
            action="extend_listing",
            status=row["status"],
            round=row["round"],
        )
    # Within the window the failed round leaves open (docs/rules.md §Moving between paths).
    await check_move(uow.conn, row, "extend_listing", uow.at, data.policy.moves)
    since = max(period["ends_at"], uow.at)
    until = end_of_working_days(since, data.policy.listing.extension_working_days)
    auction_ends = until + (stored.bidding_ends_at - stored.bidding_starts_at)
    await uow.conn.execute(Q.mark_extended, row["id"], row["round"], period["ends_at"], until)
    new_terms = msgspec.structs.replace(
        stored, bidding_starts_at=until, bidding_ends_at=auction_ends
    )
    action = lifecycle.ExtendListing(at=uow.at, until=until, auction_ends_at=auction_ends)
    await lots.transition(uow, uow.at, data.policy, row, action, new_terms=new_terms)
    return await lots.load_lot(uow.conn, uow.actor.org, row["id"])


async def lot_row(uow: UnitOfWork, reference: str) -> asyncpg.Record:
    """The listing lot by reference, locked (FOR UPDATE): any bank's, for its buyer."""
    found = await uow.conn.fetchrow(Q.lot_by_reference, reference)
    if found is None:
        raise NotFound("no_such_lot")
    return returned(await uow.conn.fetchrow(lots.Q.lock_lot_any_bank, found["id"]))


def ended_listing(row: asyncpg.Record) -> Terms:
    stored = msgspec.convert(row["terms"], Terms)
    if stored.listing is None:
        raise Conflict("not_a_listing", reference=row["reference"])
    return stored
