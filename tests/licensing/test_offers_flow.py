"""Licence offers against the hammer, end to end on real PostgreSQL (docs/rules.md §Licence
offers and decision): a bid and two offers → deciding → the bank chooses a licence, or the
hammer stands, or the deadline decides; offers refused when they must be; concurrency of
an offer with the close and of two decisions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from auctions import closing
from market.cases.services import china_today
from market.clock import FrozenClock
from market.errors import Conflict, Invalid, NotFound
from market.licensing import deciding, offers
from market.licensing.deciding import Decide, DecideLot
from market.licensing.offers import OfferRef
from market.lots import services as lots
from market.settings import Settings
from tests.auctions.test_closing import check_books, place_bids, value
from tests.factories import act_as
from tests.licensing.offers_scene import (
    make_offer_scene,
    plain_licence,
    reverse_licence,
    submit,
    to_deciding,
)

BID = 1_100_000_00


async def _to_deciding(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings):  # type: ignore[no-untyped-def]
    found = await to_deciding(pool, clock, settings)
    return found.scene, found.reverse, found.plain, found.end


async def _decide(pool, at, scene, offer_ids, reason="许可价值更高", settings=None):  # type: ignore[no-untyped-def]
    act = await act_as(pool, at, scene.bank.user_id)
    data = DecideLot(
        lot_id=scene.lot.id,
        decision=Decide(offer_ids=offer_ids, reason=reason),
        policy=lots.policy_for(settings),
    )
    return await act(deciding.decide_lot, data)


async def test_a_licence_chosen_over_the_hammer(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, reverse, plain, end = await _to_deciding(pool, clock, settings)
    statuses = await check_books(pool)
    # The top bidder's and the offerors' deposits wait for the decision.
    for party in (scene.bidder, scene.pledgor, scene.offeror):
        assert statuses[party.registration_id] == "confirmed"
    assert await value(pool, "SELECT status FROM lots WHERE id=$1", scene.lot.id) == "deciding"
    assert await value(pool, "SELECT count(*) FROM sales") == 0
    assert await value(pool, "SELECT count(*) FROM outbox WHERE event='offer_received'") == 2

    found = await deciding.get_decision(pool, scene.bank.org_id, scene.lot.id)
    assert found.top_price_fen == BID and found.status == "open"
    assert found.comparison.winner is not None
    assert found.comparison.winner.members == (f"offer-{reverse.id}",)
    # Pinned by hand: docs/rules.md §Licensing's worked example, valued from the close day.
    exclusive = next(s for s in found.comparison.sets if s.kind == "exclusive")
    assert exclusive.pv_fen == 1_297_995_27

    # Below the margin: the plain licence alone is refused naming the rule.
    with pytest.raises(Invalid) as low:
        await _decide(pool, end + timedelta(days=1), scene, [plain.id], settings=settings)
    assert low.value.code == "licence_below_margin" and low.value.field == "offer_ids"
    # An exclusive licence cannot stand with another.
    with pytest.raises(Invalid) as clash:
        await _decide(
            pool, end + timedelta(days=1), scene, [reverse.id, plain.id], settings=settings
        )
    assert clash.value.code == "offers_not_compatible"
    with pytest.raises(Invalid) as why:
        await _decide(
            pool, end + timedelta(days=1), scene, [reverse.id], reason=" ", settings=settings
        )
    assert why.value.field == "reason"

    out = await _decide(pool, end + timedelta(days=1), scene, [reverse.id], settings=settings)
    assert out.status == "licensed" and out.lot_status == "licensed"
    contract = await pool.fetchrow("SELECT * FROM licence_contracts WHERE offer_id=$1", reverse.id)
    assert contract["licensee_org_id"] == scene.pledgor.org_id
    assert contract["status"] == "active" and contract["kind"] == "exclusive"
    statuses = await check_books(pool)
    for party in (scene.bidder, scene.pledgor, scene.offeror):
        assert statuses[party.registration_id] == "released"
    events = {
        r["dedupe_key"]: r["recipient_org_id"]
        for r in await pool.fetch("SELECT dedupe_key, recipient_org_id FROM outbox")
    }
    assert events[f"hammer_superseded:{scene.lot.id}:1"] == scene.bidder.org_id
    assert events[f"offer_chosen:{reverse.id}"] == scene.pledgor.org_id
    assert events[f"offer_not_chosen:{plain.id}"] == scene.offeror.org_id
    assert await value(pool, "SELECT count(*) FROM sales") == 0
    stored = await pool.fetchrow("SELECT * FROM licence_decisions WHERE lot_id=$1", scene.lot.id)
    assert stored["comparison"]["winner"]["members"] == [f"offer-{reverse.id}"]
    assert stored["decided_by"] == scene.bank.user_id
    # Decided once: a second decision is refused.
    with pytest.raises(Conflict):
        await _decide(pool, end + timedelta(days=1), scene, [], settings=settings)


async def test_the_hammer_stands_and_the_sale_runs_from_the_decision(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _, _, end = await _to_deciding(pool, clock, settings)
    at = end + timedelta(days=2)
    out = await _decide(pool, at, scene, [], reason="拍卖价款为现金", settings=settings)
    assert out.status == "hammer_stands" and out.lot_status == "sold"
    sale = await pool.fetchrow("SELECT * FROM sales WHERE lot_id=$1", scene.lot.id)
    assert sale["price_fen"] == BID and sale["closed_at"] == at
    assert sale["due_at"] == at + timedelta(days=10)
    statuses = await check_books(pool)
    assert statuses[scene.bidder.registration_id] == "confirmed"  # applied at payment
    assert statuses[scene.pledgor.registration_id] == "released"
    assert statuses[scene.offeror.registration_id] == "released"
    assert await value(pool, "SELECT count(*) FROM licence_contracts") == 0
    assert await value(pool, "SELECT count(*) FROM outbox WHERE event='offer_not_chosen'") == 2


async def test_the_deadline_lets_the_hammer_stand(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _, _, end = await _to_deciding(pool, clock, settings)
    policy = lots.policy_for(settings)
    assert await deciding.decide_due(pool, end + timedelta(days=9), policy) == []
    deadline = end + timedelta(days=10)
    assert await deciding.decide_due(pool, deadline, policy) == [scene.lot.id]
    assert await deciding.decide_due(pool, deadline, policy) == []
    stored = await pool.fetchrow("SELECT * FROM licence_decisions WHERE lot_id=$1", scene.lot.id)
    assert stored["status"] == "hammer_stands" and stored["decided_by"] is None
    assert await value(pool, "SELECT count(*) FROM sales WHERE lot_id=$1", scene.lot.id) == 1
    with pytest.raises(Conflict):
        await _decide(pool, deadline + timedelta(minutes=1), scene, [], settings=settings)
    await check_books(pool)


async def test_licences_only_never_opens_and_fails_with_no_offer(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_offer_scene(pool, clock, settings, mode="licences_only")
    starts = scene.lot.bidding_starts_at
    assert starts is not None
    clock.set(starts)
    await lots.open_due_lots(pool, starts, lots.policy_for(settings))
    assert await value(pool, "SELECT status FROM lots WHERE id=$1", scene.lot.id) == "failed"
    statuses = await check_books(pool)
    assert statuses[scene.pledgor.registration_id] == "released"


async def test_licences_only_goes_to_the_bank_and_nothing_chosen_fails(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_offer_scene(pool, clock, settings, mode="licences_only")
    starts = scene.lot.bidding_starts_at
    assert starts is not None
    offer = await submit(
        pool, clock.now(), scene.pledgor, scene.lot, reverse_licence(china_today(starts))
    )
    await lots.open_due_lots(pool, starts, lots.policy_for(settings))
    assert await value(pool, "SELECT status FROM lots WHERE id=$1", scene.lot.id) == "deciding"
    found = await deciding.get_decision(pool, scene.bank.org_id, scene.lot.id)
    assert found.top_price_fen is None and found.offers[0].offer_id == offer.id
    out = await _decide(pool, starts + timedelta(days=1), scene, [], settings=settings)
    assert out.status == "nothing_chosen" and out.lot_status == "failed"
    statuses = await check_books(pool)
    assert statuses[scene.pledgor.registration_id] == "released"


async def test_offers_are_refused_when_they_must_be(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_offer_scene(pool, clock, settings)
    end = scene.lot.bidding_ends_at
    assert end is not None
    start = china_today(end)
    before = await value(pool, "SELECT count(*) FROM licence_offers")
    cases = [
        (reverse_licence(start, term_end=start.replace(year=2040)), "licence.term_end"),
        (reverse_licence(start - timedelta(days=3)), "licence.term_start"),
        (
            reverse_licence(start, royalty_rate_bp=0, minimum_annual_fen=0),
            "licence.royalty_rate_bp",
        ),
    ]
    for offer, field in cases:
        with pytest.raises(Invalid) as bad:
            await submit(pool, clock.now(), scene.pledgor, scene.lot, offer)
        assert bad.value.field == field, (bad.value.code, bad.value.field)
    sale_without_price = offers.OfferIn(
        type="sale_and_licence_back", licence=reverse_licence(start).licence
    )
    with pytest.raises(Invalid) as bad:
        await submit(pool, clock.now(), scene.offeror, scene.lot, sale_without_price)
    assert bad.value.field == "price_fen"
    # An open licence standing on the patent refuses exclusive and sole licences.
    asset = await value(pool, "SELECT asset_id FROM lot_assets WHERE lot_id=$1", scene.lot.id)
    await pool.execute(
        "INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms,"
        " status, created_at) VALUES ($1, $2, $3, $4, '{}', 'declared', now())",
        scene.case_id,
        asset,
        scene.bank.org_id,
        scene.pledgor.org_id,
    )
    with pytest.raises(Conflict) as standing:
        await submit(pool, clock.now(), scene.pledgor, scene.lot, reverse_licence(start))
    assert standing.value.code == "open_licence_standing"
    assert await value(pool, "SELECT count(*) FROM licence_offers") == before
    # Tenancy: another organisation's offer is not found, and withdrawn only by its own.
    mine = await submit(pool, clock.now(), scene.offeror, scene.lot, plain_licence(start))
    with pytest.raises(NotFound):
        await offers.get_offer(pool, scene.pledgor.org_id, mine.id)
    other = await act_as(pool, clock.now(), scene.pledgor.user_id)
    with pytest.raises(NotFound):
        await other(offers.withdraw_offer, OfferRef(offer_id=mine.id))
    own = await act_as(pool, clock.now(), scene.offeror.user_id)
    assert (await own(offers.withdraw_offer, OfferRef(offer_id=mine.id))).status == "withdrawn"
    # After the close no offer is taken.
    await closing.close_when_due(pool, end, lots.policy_for(settings), scene.lot.id)
    with pytest.raises(Conflict) as late:
        await submit(pool, end, scene.offeror, scene.lot, plain_licence(start))
    assert late.value.code == "offers_closed"


async def test_publication_needs_the_pledgors_consent(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    with pytest.raises(Conflict) as refused:
        await make_offer_scene(pool, clock, settings, consent=False)
    assert refused.value.code == "licensing_consent_missing"
    assert refused.value.field == "offers.mode"
    assert await value(pool, "SELECT count(*) FROM lots WHERE status <> 'draft'") == 0


async def _race(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, *, offer_first: bool
) -> None:
    scene = await make_offer_scene(pool, clock, settings)
    end = scene.lot.bidding_ends_at
    assert end is not None
    await place_bids(pool, scene.lot.id, [(scene.bidder.registration_id, BID, clock.now())])
    start = china_today(end)
    policy = lots.policy_for(settings)

    async def offer() -> object:
        at = end - timedelta(milliseconds=1)
        try:
            return await submit(pool, at, scene.pledgor, scene.lot, reverse_licence(start))
        except Conflict as exc:
            return exc

    async def close() -> object:
        return await closing.close_when_due(pool, end, policy, scene.lot.id)

    first, second = (offer, close) if offer_first else (close, offer)
    results = await asyncio.gather(first(), second())
    made = [r for r in results if isinstance(r, offers.OfferOut)]
    refused = [r for r in results if isinstance(r, Conflict)]
    status = await value(pool, "SELECT status FROM lots WHERE id=$1", scene.lot.id)
    if made:
        assert status == "deciding"
        found = await deciding.get_decision(pool, scene.bank.org_id, scene.lot.id)
        assert [o.offer_id for o in found.offers] == [made[0].id]
    else:
        assert refused and refused[0].code == "offers_closed"
        assert status == "sold"
        count = "SELECT count(*) FROM licence_offers WHERE lot_id=$1"
        assert await value(pool, count, scene.lot.id) == 0
    await check_books(pool)


async def test_an_offer_and_the_close_are_decided_under_the_lots_lock(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """An offer arriving as the lot closes, on its own connection: in the decision, or
    refused — never lost, never half in (the offer holds the lot FOR SHARE, the close
    FOR UPDATE)."""
    for attempt in range(4):
        await _race(pool, clock, settings, offer_first=attempt % 2 == 1)
        clock.set(clock.now() - timedelta(days=31))


async def test_two_decisions_at_once_one_wins(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, reverse, _, end = await _to_deciding(pool, clock, settings)
    at = end + timedelta(days=1)
    policy = lots.policy_for(settings)

    async def bank() -> object:
        try:
            return await _decide(pool, at, scene, [reverse.id], settings=settings)
        except Conflict as exc:
            return exc

    async def deadline() -> object:
        try:
            return await deciding.decide_due(pool, end + timedelta(days=10), policy)
        except Conflict as exc:
            return exc

    results = await asyncio.gather(bank(), bank(), deadline())
    stored = await pool.fetchrow("SELECT * FROM licence_decisions WHERE lot_id=$1", scene.lot.id)
    assert stored["status"] in ("licensed", "hammer_stands")
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) >= 1
    assert await value(pool, "SELECT count(*) FROM licence_contracts") in (0, 1)
    await check_books(pool)


async def test_an_offeror_is_told_when_a_later_offer_is_worth_more(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_offer_scene(pool, clock, settings)
    assert scene.lot.bidding_ends_at is not None
    start = china_today(scene.lot.bidding_ends_at)
    plain = await submit(pool, clock.now(), scene.offeror, scene.lot, plain_licence(start))
    outvalued = "SELECT * FROM outbox WHERE event = 'offer_outbid_by_value'"
    assert await pool.fetch(outvalued) == []  # the first offer outvalues nobody
    reverse = await submit(pool, clock.now(), scene.pledgor, scene.lot, reverse_licence(start))
    told = await pool.fetch(outvalued)
    assert [(r["recipient_org_id"], r["dedupe_key"]) for r in told] == [
        (scene.offeror.org_id, f"offer_outbid_by_value:{plain.id}:{reverse.id}")
    ]
    payload = told[0]["payload"]
    assert payload["offer_id"] == plain.id and payload["by_offer_id"] == reverse.id
    assert payload["leading_pv_fen"] > payload["pv_fen"] > 0
    # An offer worth less than the leader tells nobody.
    again = await submit(pool, clock.now(), scene.offeror, scene.lot, plain_licence(start))
    assert again.id > reverse.id and len(await pool.fetch(outvalued)) == 1
