"""A listing's life with the exchange's clock injected, across the 2026 National Day
holiday week: zero, one and two qualified intents, each ending where docs/rules.md
§Listing says."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from market.cases.policy import CHINA
from market.clock import FrozenClock
from market.errors import Conflict
from market.listing import period, transfer
from market.listing.jobs import lapse_listing_transfers
from market.listing.transfer import BankConfirms, BuyerConfirms
from market.lots.lifecycle import IllegalTransition
from market.lots.models import RelistInput
from market.lots.terms import ListingInput, TermsInput
from market.settings import Settings
from tests.factories import act_as, viewer
from tests.listing.scene import DEPOSIT, PERIOD_END, PRICE, PUBLISHED, make_listing
from tests.lots.factories import lot_action

# 5 working days after the period's end (Sunday 11 Oct): Mon 12 – Fri 16 Oct.
CONFIRM_BY = datetime(2026, 10, 17, 0, 0, tzinfo=CHINA)
TICK = timedelta(seconds=1)


async def _events(pool: asyncpg.Pool, event: str) -> dict[str, Any]:
    rows = await pool.fetch("SELECT dedupe_key, payload FROM outbox WHERE event = $1", event)
    return {r["dedupe_key"]: r["payload"] for r in rows}


async def test_the_period_counts_working_days_across_the_national_day_holiday(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    assert scene.lot.status == "announced" and scene.lot.announced_at == PUBLISHED
    assert scene.lot.bidding_starts_at == PERIOD_END
    assert scene.lot.terms.listing is not None
    assert scene.lot.terms.listing.period_working_days == 20
    # 24 hours of auction after the period should two or more intents qualify.
    assert scene.lot.bidding_ends_at == PERIOD_END + timedelta(hours=24)
    # The last second of the period (Saturday 10 Oct, a make-up working day): still listed.
    lot = await scene.advance(PERIOD_END - TICK)
    assert lot.status == "announced"


async def test_no_intent_fails_the_round_and_the_bank_extends_by_five_working_days(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    _, unpaid = await scene.buyer(pay=False)  # an intent without its deposit does not count
    lot = await scene.advance(PERIOD_END)
    assert lot.status == "failed" and lot.round == 1
    ended = await pool.fetchrow("SELECT outcome, qualified FROM listing_periods")
    assert dict(ended) == {"outcome": "no_intent", "qualified": 0}
    told = await _events(pool, "listing_period_ended")
    assert [p["outcome"] for p in told.values()] == ["no_intent"]
    # The deposit that arrives after the period went back at once.
    late = await scene.confirm(unpaid)
    assert late.released

    bank = await act_as(pool, clock, scene.bank.user_id)
    clock.set(PERIOD_END + timedelta(hours=9))  # Sunday 11 Oct, 09:00
    data = period.ExtendListingPeriod(reference=lot.reference, policy=scene.policy)
    lot = await bank(period.extend_listing, data)
    # Mon 12 – Fri 16 Oct: the period now ends at 24:00 on Friday 16 October.
    assert lot.status == "announced"
    assert lot.bidding_starts_at == datetime(2026, 10, 17, 0, 0, tzinfo=CHINA)
    with pytest.raises(IllegalTransition) as twice:
        await bank(period.extend_listing, data)
    assert twice.value.code == "extend_needs_ended_listing"
    lot = await scene.advance(datetime(2026, 10, 17, 0, 0, tzinfo=CHINA))
    assert lot.status == "failed"
    # Relisting: at most 20 % lower (the relist rules), again as a listing.
    me = await viewer(pool, scene.bank.user_id)
    relist = TermsInput(start_price_fen=PRICE * 79 // 100, deposit_fen=DEPOSIT // 2, mode="listing")
    with pytest.raises(Exception) as too_low:
        await lot_action(pool, clock.now(), scene.policy, me, lot.id, RelistInput(terms=relist))
    assert getattr(too_low.value, "code", None) == "relist_reduction_too_large"
    relist = TermsInput(
        start_price_fen=PRICE * 80 // 100,
        deposit_fen=DEPOSIT // 2,
        mode="listing",
        listing=ListingInput(period_working_days=20),
    )
    lot = await lot_action(pool, clock.now(), scene.policy, me, lot.id, RelistInput(terms=relist))
    assert (lot.status, lot.round, lot.start_price_fen) == ("announced", 2, PRICE * 80 // 100)
    assert lot.terms.mode == "listing"


async def test_one_intent_makes_a_negotiated_transfer_confirmed_by_both_sides(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    buyer, reg = await scene.buyer()
    await scene.buyer(pay=False)
    approved = await _events(pool, "listing_intent_approved")
    assert list(approved) == [f"listing_intent_approved:{reg.id}"]
    lot = await scene.advance(PERIOD_END)
    assert lot.status == "deciding"
    pending = await transfer.transfer_of(pool, lot.id)
    assert pending is not None
    assert (pending.status, pending.registration_id, pending.listing_price_fen) == (
        "awaiting",
        reg.id,
        PRICE,
    )
    assert pending.confirm_by == CONFIRM_BY
    to_confirm = await _events(pool, "listing_transfer_to_confirm")
    assert {p["confirm_by"] for p in to_confirm.values()} == {CONFIRM_BY.isoformat()}
    assert len(to_confirm) == 2  # the buyer and the bank

    bank = await act_as(pool, clock, scene.bank.user_id)
    buyer_act = await act_as(pool, clock, buyer.user_id)
    clock.set(PERIOD_END + timedelta(days=1, hours=2))
    with pytest.raises(Conflict) as early:
        await bank(
            transfer.bank_confirms, BankConfirms(reference=lot.reference, policy=scene.policy)
        )
    assert early.value.code == "listing_transfer_awaits_buyer"
    with pytest.raises(Exception) as under:
        await buyer_act(
            transfer.buyer_confirms, BuyerConfirms(reference=lot.reference, price_fen=PRICE - 1)
        )
    assert getattr(under.value, "field", None) == "price_fen"
    signed = await buyer_act(
        transfer.buyer_confirms, BuyerConfirms(reference=lot.reference, price_fen=PRICE + 1_000_00)
    )
    assert signed.price_fen == PRICE + 1_000_00
    done = await bank(
        transfer.bank_confirms, BankConfirms(reference=lot.reference, policy=scene.policy)
    )
    assert done.status == "transferred" and done.sale_id is not None
    sale = await pool.fetchrow("SELECT * FROM sales WHERE id = $1", done.sale_id)
    assert (sale["price_fen"], sale["registration_id"], sale["status"]) == (
        PRICE + 1_000_00,
        reg.id,
        "awaiting_payment",
    )
    assert sale["balance_due_fen"] == PRICE + 1_000_00 - DEPOSIT
    lot = await scene.reload()
    assert lot.status == "sold"
    # Nothing lapses after the transfer.
    assert await transfer.lapse_due(pool, CONFIRM_BY + TICK, scene.policy) == []


async def test_one_intent_not_confirmed_in_time_forfeits_the_deposit_and_fails(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    _, reg = await scene.buyer()
    await scene.advance(PERIOD_END)
    assert await transfer.lapse_due(pool, CONFIRM_BY - TICK, scene.policy) == []
    # The worker's job, on the clock at the deadline.
    job = await lapse_listing_transfers({**scene.ctx, "clock": FrozenClock(CONFIRM_BY)})
    assert job == {"lapsed": [scene.lot.id]}
    lot = await scene.reload()
    assert (lot.status, lot.round) == ("failed", 1)
    status = await pool.fetchval("SELECT deposit_status FROM registrations WHERE id = $1", reg.id)
    assert status == "forfeited"
    assert await pool.fetchval("SELECT count(*) FROM sales") == 0


async def test_two_intents_make_an_auction_at_the_listing_price(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    await scene.buyer()
    await scene.buyer()
    _, unpaid = await scene.buyer(pay=False)
    lot = await scene.advance(PERIOD_END)
    assert lot.status == "bidding" and lot.round == 1
    assert lot.start_price_fen == PRICE
    assert lot.bidding_ends_at == PERIOD_END + timedelta(hours=24)
    created = await _events(pool, "listing_auction_created")
    assert sorted(p["lot_id"] for p in created.values()) == [lot.id, lot.id]
    assert len(created) == 2
    # The unpaid intent's late deposit goes back at once: it is no bidder.
    assert (await scene.confirm(unpaid)).released
    ended = await pool.fetchrow("SELECT outcome, qualified FROM listing_periods")
    assert dict(ended) == {"outcome": "auction", "qualified": 2}
