"""The relay against real PostgreSQL: who hears an outbox row on which
channel, each row relayed once however many relays run at once, outbid e-mails deferred
so rapid ones can collapse."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from market.clock import FrozenClock
from market.notify import jobs, relay
from market.notify.delivery import DEFAULT_POLICY, NotifyPolicy
from market.notify.recipients import EMAIL_DEFAULT, EVENTS
from market.settings import Settings
from tests.notify.delivery_scene import (
    add_user,
    arq_pool,
    make_scene,
    owe,
    rows,
    value,
)


async def _deliveries(pool: asyncpg.Pool, outbox_id: int) -> set[tuple[str, str]]:
    found = await rows(pool, "SELECT channel, target FROM deliveries WHERE outbox_id=$1", outbox_id)
    return {(r["channel"], r["target"]) for r in found}


async def test_recipients_user_org_and_lot_wide(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    a2 = await add_user(pool, clock.now(), a.org_id, "second@a.test")
    gone = await add_user(pool, clock.now(), a.org_id, "gone@a.test")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET disabled_at=$2 WHERE id=$1", gone, clock.now())
    to_user = await owe(
        pool, clock.now(), "won", user_id=a.user_id, org_id=a.org_id, lot_id=scene.lot.id
    )
    to_org = await owe(pool, clock.now(), "deposit_released", org_id=a.org_id, lot_id=scene.lot.id)
    lot_wide = await owe(pool, clock.now(), "extended", lot_id=scene.lot.id)
    flag = await owe(pool, clock.now(), "monitoring_flag", org_id=scene.bank.org_id)

    assert await relay.relay_once(pool, None, clock.now()) == 4

    assert await _deliveries(pool, to_user) == {("inbox", str(a.user_id)), ("email", a.email)}
    assert await _deliveries(pool, to_org) == {
        ("inbox", str(a.user_id)),
        ("email", a.email),
        ("inbox", str(a2)),
        ("email", "second@a.test"),
    }
    # Lot-wide: every active user of every registered organisation; e-mail off by default.
    assert await _deliveries(pool, lot_wide) == {
        ("inbox", str(a.user_id)),
        ("inbox", str(a2)),
        ("inbox", str(b.user_id)),
    }
    assert await _deliveries(pool, flag) == {
        ("inbox", str(scene.bank.user_id)),
        ("email", scene.bank.email),
    }
    assert await value(pool, "SELECT count(*) FROM outbox WHERE relayed_at IS NULL") == 0
    assert await value(pool, "SELECT count(*) FROM deliveries WHERE status <> 'pending'") == 0
    # Nothing left: a second pass relays nothing and adds no delivery.
    before = await value(pool, "SELECT count(*) FROM deliveries")
    assert await relay.relay_once(pool, None, clock.now()) == 0
    assert await value(pool, "SELECT count(*) FROM deliveries") == before


def test_email_defaults_cover_every_event_but_extended() -> None:
    assert set(EVENTS) - EMAIL_DEFAULT == {"extended"}


async def test_preferences_choose_email_per_event(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO notification_preferences (user_id, event, channel, enabled) VALUES"
            " ($1, 'lost', 'email', false), ($1, 'extended', 'email', true)",
            a.user_id,
        )
    lost = await owe(pool, clock.now(), "lost", user_id=a.user_id, lot_id=scene.lot.id)
    extended = await owe(pool, clock.now(), "extended", lot_id=scene.lot.id)
    won = await owe(pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id)
    await relay.relay_once(pool, None, clock.now())
    assert await _deliveries(pool, lost) == {("inbox", str(a.user_id))}  # inbox always
    assert await _deliveries(pool, extended) == {("inbox", str(a.user_id)), ("email", a.email)}
    assert await _deliveries(pool, won) == {("inbox", str(a.user_id)), ("email", a.email)}


async def test_webhooks_for_subscribed_active_endpoints(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    async with pool.acquire() as conn:
        ids = [
            await conn.fetchval(
                "INSERT INTO webhook_endpoints (org_id, url, format, secret, events, active,"
                " created_at) VALUES ($1, 'https://hooks.example.cn/x', 'json', 's', $2, $3, $4)"
                " RETURNING id",
                org,
                events,
                active,
                clock.now(),
            )
            for org, events, active in (
                (a.org_id, [], True),  # every event
                (a.org_id, ["won"], True),  # not this one
                (a.org_id, [], False),  # deactivated
                (b.org_id, ["outbid", "extended"], True),
            )
        ]
    outbid = await owe(
        pool, clock.now(), "outbid", user_id=a.user_id, org_id=a.org_id, lot_id=scene.lot.id
    )
    extended = await owe(pool, clock.now(), "extended", lot_id=scene.lot.id)
    await relay.relay_once(pool, None, clock.now())
    hooks = {
        o: {t for c, t in await _deliveries(pool, o) if c == "webhook"} for o in (outbid, extended)
    }
    assert hooks[outbid] == {str(ids[0])}
    assert hooks[extended] == {str(ids[0]), str(ids[3])}


async def test_outbid_email_waits_for_the_collapse_window(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    at = clock.now()
    outbid = await owe(pool, at, "outbid", user_id=a.user_id, lot_id=scene.lot.id)
    won = await owe(pool, at, "won", user_id=a.user_id, lot_id=scene.lot.id)
    clock.advance(seconds=5)
    await relay.relay_once(pool, None, clock.now())
    due = {
        (r["outbox_id"], r["channel"]): r["next_attempt_at"]
        for r in await rows(pool, "SELECT outbox_id, channel, next_attempt_at FROM deliveries")
    }
    delay = timedelta(seconds=DEFAULT_POLICY.outbid_email_delay_s)
    assert due[(outbid, "email")] == at + delay  # from the bid, not from the relay
    assert due[(outbid, "inbox")] == clock.now()
    assert due[(won, "email")] == clock.now()


async def test_concurrent_relays_take_each_row_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    total = 1200
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload,"
            " dedupe_key, created_at) SELECT 'won', NULL, CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END,"
            " $3, '{}', 'bulk:' || g, $4 FROM generate_series(1, $5) g",
            a.user_id,
            b.user_id,
            scene.lot.id,
            clock.now(),
            total,
        )
    arq = await arq_pool(settings)
    counts: list[int] = []

    async def one_relay() -> None:
        while n := await relay.relay_once(pool, arq, clock.now(), batch=50):
            counts.append(n)

    await asyncio.gather(*(one_relay() for _ in range(4)))
    assert sum(counts) == total, "every outbox row is relayed by exactly one relay"
    assert len(counts) >= 24  # many batches, really interleaved between the relays
    assert await value(pool, "SELECT count(*) FROM deliveries") == 2 * total
    assert await value(pool, "SELECT count(*) FROM outbox WHERE relayed_at IS NULL") == 0
    # Every delivery was queued under its own job id.
    queued = await redis.zcard("arq:queue")
    assert queued == 2 * total
    await arq.aclose()


async def test_relay_job_drains_and_requeue_is_registered(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    for _ in range(7):
        await owe(pool, clock.now(), "won", user_id=scene.buyers[0].user_id, lot_id=scene.lot.id)
    ctx = {
        "pool": pool,
        "clock": clock,
        "settings": settings,
        "notify_policy": NotifyPolicy(),
    }
    assert await jobs.relay(ctx) == 7
    names = {c.name for c in jobs.CRON}
    assert names == {"cron:relay", "cron:requeue_pending"}
    requeue = next(c for c in jobs.CRON if c.name == "cron:requeue_pending")
    assert requeue.run_at_startup and requeue.second == {0, 30}
    assert all(f.keep_result_s == 0 for f in jobs.JOBS)


async def test_the_workers_relay_delivers_inbox_messages_itself(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:  # `redis`: the fixture empties the test's Redis database first
    """An inbox message is a row in our database: the worker's relay writes it in its own
    transaction and queues a job only for the other channels."""
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    won = await owe(pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id)
    arq = await arq_pool(settings)
    try:
        ctx = {"pool": pool, "clock": clock, "settings": settings, "redis": arq}
        assert await jobs.relay(ctx) == 1
        states = {
            r["channel"]: r["status"]
            for r in await rows(
                pool, "SELECT channel, status FROM deliveries WHERE outbox_id=$1", won
            )
        }
        assert states == {"inbox": "sent", "email": "pending"}
        assert await value(pool, "SELECT count(*) FROM inbox WHERE outbox_id=$1", won) == 1
        queued = await arq.queued_jobs()
        email_id = await value(pool, "SELECT id FROM deliveries WHERE channel='email'")
        assert [j.args for j in queued] == [(email_id,)]
    finally:
        await arq.aclose()


async def test_kicks_asked_for_in_a_burst_reach_the_relay_once_now_and_once_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thousand batches a second each owe a kick: the first goes at once, the rest of
    the interval's become one kick at its end, none is lost."""
    import asyncio

    from market.notify import relay as relay_module

    sent: list[float] = []

    async def counted(redis: object) -> None:
        sent.append(asyncio.get_running_loop().time())

    monkeypatch.setattr(relay_module, "kick", counted)
    kicker = relay_module.Kicker(redis=None, interval=0.05)  # type: ignore[arg-type]
    for _ in range(100):
        await kicker()
    assert len(sent) == 1
    await asyncio.sleep(0.08)
    assert len(sent) == 2 and 0.04 <= sent[1] - sent[0] <= 0.07
    await asyncio.sleep(0.06)
    await kicker()  # after a quiet interval, at once again
    assert len(sent) == 3


async def test_a_deferred_kick_goes_out_at_flush_not_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping the writers flushes the kick waiting for its interval: sent once, now,
    while the Redis client is open — not later, on a client closed meanwhile."""
    import asyncio

    from market.notify import relay as relay_module

    sent: list[str] = []

    async def counted(redis: object) -> None:
        sent.append("kick")

    monkeypatch.setattr(relay_module, "kick", counted)
    kicker = relay_module.Kicker(redis=None, interval=10)  # type: ignore[arg-type]
    await kicker()
    await kicker()  # deferred ten seconds
    assert sent == ["kick"]
    await kicker.flush()
    assert sent == ["kick", "kick"]
    await asyncio.sleep(0.01)
    await kicker.flush()  # nothing waits: nothing more is sent
    assert sent == ["kick", "kick"]
