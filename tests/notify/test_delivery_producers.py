"""Real producers through the relay and the worker: deposit confirmations and the bid
writer's outbid notices. Never an outbid for one's own bid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from auctions.bidding import BidBody, ProxyBody
from market.clock import FrozenClock
from market.money import format_cny
from market.notify import relay
from market.notify.delivery import NotifyPolicy
from market.settings import Settings
from tests.notify.delivery_scene import (
    arq_pool,
    bid_in_turn,
    make_scene,
    open_bidding,
    rows,
    run_worker,
    smtp_server,
    value,
    with_smtp,
)


async def test_outbid_goes_to_the_displaced_bidder_only_never_for_ones_own_bid(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    await open_bidding(pool, clock, settings, scene)
    inc = scene.lot.increment_fen
    price = scene.lot.start_price_fen
    # a bids; b outbids a; a answers with a proxy that outbids b; b bids again and a's
    # proxy answers in the same batch (a was passed, then led again: a hears nothing);
    # a bidding over its own lead is refused and tells nobody anything.
    steps: list[tuple[Any, Any, int]] = [
        (a, BidBody(amount_fen=price), 201),
        (b, BidBody(amount_fen=price + inc), 201),
        (a, ProxyBody(max_fen=price + 10 * inc), 201),
        (b, BidBody(amount_fen=price + 4 * inc), 201),
        (a, BidBody(amount_fen=price + 8 * inc), 409),
    ]
    await bid_in_turn(pool, clock, settings, scene, steps)

    outbid = await rows(
        pool, "SELECT recipient_user_id, payload FROM outbox WHERE event='outbid' ORDER BY id"
    )
    assert [r["recipient_user_id"] for r in outbid] == [a.user_id, b.user_id, b.user_id]
    assert [r["payload"]["price_fen"] for r in outbid] == [
        price + inc,
        price + 2 * inc,
        price + 5 * inc,
    ]
    bids = await rows(pool, "SELECT registration_id FROM bids ORDER BY seq")
    assert [r["registration_id"] for r in bids].count(a.registration_id) == 3  # a did bid

    # Through the relay and the worker (no deferral here, so the burst worker finishes).
    with smtp_server() as (smtp, port):
        s = with_smtp(settings, port)
        arq = await arq_pool(s)
        relayed = await relay.relay_all(
            pool, arq, clock.now(), policy=NotifyPolicy(outbid_email_delay_s=0)
        )
        worker = await run_worker(s, clock, NotifyPolicy(outbid_email_delay_s=0))
        await arq.aclose()
    assert relayed == await value(pool, "SELECT count(*) FROM outbox")
    assert worker.jobs_failed == 0
    # b's two outbids came 4 s apart: the older collapsed into the newer (docs/rules.md §Notifications).
    skipped = await rows(
        pool,
        "SELECT d.channel, d.last_error, o.payload FROM deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE d.status <> 'sent'",
    )
    assert sorted(r["channel"] for r in skipped) == ["email", "inbox"]
    assert {r["payload"]["price_fen"] for r in skipped} == {price + 2 * inc}
    assert {r["last_error"][:15] for r in skipped} == {"superseded by #"}
    inbox = await rows(pool, "SELECT user_id, event, title FROM inbox ORDER BY id")
    assert {r["event"] for r in inbox} >= {"deposit_confirmed", "outbid"}
    latest = format_cny(price + 5 * inc)
    for person, outbid_price in ((a, format_cny(price + inc)), (b, latest)):
        titles = [
            r["title"] for r in inbox if r["user_id"] == person.user_id and r["event"] == "outbid"
        ]
        assert len(titles) == 1 and titles[0].endswith(outbid_price)
    # Each deposit confirmation and each outbid reached its bidder by e-mail exactly once.
    opened = await value(pool, "SELECT count(*) FROM outbox WHERE event='bidding_opened'") // 2
    for person, outbid_price in ((a, format_cny(price + inc)), (b, latest)):
        subjects = [str(m["Subject"]) for m in smtp.to(person.email)]
        assert len(subjects) == 2 + opened
        assert sum(s.startswith("保证金已到账") for s in subjects) == 1
        assert [s for s in subjects if s.startswith("出价被超越")] == [
            f"出价被超越：{scene.lot.reference} 当前价 {outbid_price}"
        ]
    assert len(set(smtp.message_ids())) == len(smtp.messages)
    assert clock.now() - scene.lot.bidding_starts_at < timedelta(hours=1)
