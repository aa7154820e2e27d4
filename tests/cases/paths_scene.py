"""A case that went every step of the brief's history: a listing whose period found no
intent, extended, whose second period found two intents and became an auction that went
unsold, relisted as an auction 20 % lower and sold (docs/rules.md §Listing, §Lot
lifecycle, §Moving between paths). Each step goes through the command or the job a person
or the exchange would run, on the injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from auctions.closing import close_when_due
from market.cases.policy import CHINA
from market.clock import FrozenClock
from market.listing import period
from market.lots.models import LotOut, RelistInput
from market.lots.terms import TermsInput
from market.settings import Settings
from tests.auctions.test_closing import place_bids
from tests.factories import act_as, viewer
from tests.listing.scene import DEPOSIT, PERIOD_END, PRICE, ListingScene, make_listing
from tests.lots.factories import lot_action

EXTENDED_AT = PERIOD_END + timedelta(hours=9)  # Sunday 11 Oct 2026, 09:00 Beijing
SECOND_END = datetime(2026, 10, 17, 0, 0, tzinfo=CHINA)  # 24:00 on Friday 16 Oct
AUCTION_END = SECOND_END + timedelta(hours=24)  # the listing's auction: 24 hours
RELIST_PRICE = PRICE * 80 // 100  # the relist's start: 20 % lower, the most allowed
RELISTED_AT = AUCTION_END + timedelta(hours=2)
RELIST_STARTS = RELISTED_AT + timedelta(days=16)
RELIST_ENDS = RELIST_STARTS + timedelta(hours=24)
SOLD_PRICE = RELIST_PRICE + 50_000_00


@dataclass
class History:
    scene: ListingScene
    case_id: int
    lot: LotOut


async def listing_failed(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> History:
    """The listing's first period ended with no intent: the round failed."""
    scene = await make_listing(pool, clock, settings)
    lot = await scene.advance(PERIOD_END)
    assert (lot.status, lot.round) == ("failed", 1)
    return History(scene=scene, case_id=lot.case_id, lot=lot)


async def auction_unsold(h: History) -> History:
    """Extended; two intents qualified in the second period: an auction nobody bid in."""
    s = h.scene
    s.clock.set(EXTENDED_AT)
    bank = await act_as(s.pool, s.clock, s.bank.user_id)
    await bank(
        period.extend_listing,
        period.ExtendListingPeriod(reference=h.lot.reference, policy=s.policy),
    )
    await s.buyer()
    await s.buyer()
    lot = await s.advance(SECOND_END)
    assert (lot.status, lot.round) == ("bidding", 1)
    closed = await close_when_due(s.pool, AUCTION_END, s.policy, lot.id)
    assert closed is not None and closed.sale is None
    h.lot = await s.reload()
    assert (h.lot.status, h.lot.round) == ("failed", 1)
    return h


async def relisted_and_sold(h: History) -> History:
    """Relisted as an auction 20 % lower; one bidder buys it."""
    s = h.scene
    s.clock.set(RELISTED_AT)
    me = await viewer(s.pool, s.bank.user_id)
    terms = TermsInput(
        start_price_fen=RELIST_PRICE,
        deposit_fen=DEPOSIT // 2,
        bidding_starts_at=RELIST_STARTS,
        bidding_ends_at=RELIST_ENDS,
    )
    lot = await lot_action(s.pool, RELISTED_AT, s.policy, me, h.lot.id, RelistInput(terms=terms))
    assert (lot.status, lot.round) == ("announced", 2)
    _, reg = await s.buyer()
    lot = await s.advance(RELIST_STARTS)
    assert lot.status == "bidding"
    await place_bids(s.pool, lot.id, [(reg.id, SOLD_PRICE, RELIST_STARTS + timedelta(hours=1))])
    closed = await close_when_due(s.pool, RELIST_ENDS, s.policy, lot.id)
    assert closed is not None and closed.sale is not None
    h.lot = await s.reload()
    assert (h.lot.status, h.lot.round) == ("sold", 2)
    return h


async def whole_history(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> History:
    return await relisted_and_sold(
        await auction_unsold(await listing_failed(pool, clock, settings))
    )


# What the case shows, in order: (path kind, round, outcome, amount).
EXPECTED = [
    ("listing", 1, "extended", None),
    ("listing", 1, "became_auction", None),
    ("auction", 1, "unsold", None),
    ("auction", 2, "sold", SOLD_PRICE),
]
