"""Delivery against a REAL SMTP server (aiosmtpd, started here), real PostgreSQL and Redis
and the arq worker in burst mode (docs/rules.md §Notifications): one effect per notification and
channel however often a job runs, Redis losing its queue, SMTP down (retries on the
schedule, terminal failure, the operator's page, replay), outbid collapse, reminders
never after the close, never an outbid for one's own bid."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from market.clock import FrozenClock
from market.notify import delivery, relay
from market.notify.delivery import DEFAULT_POLICY, NotifyPolicy, Replay, deliver, deliver_one
from market.notify.email import message_id
from market.settings import Settings
from tests.factories import act_as, make_org, sign_in
from tests.notify.delivery_scene import (
    arq_pool,
    free_port,
    job_ctx,
    make_scene,
    notify_app,
    owe,
    rows,
    run_worker,
    set_language,
    smtp_server,
    value,
    with_smtp,
)

SALE = {
    "sale_id": 7,
    "price_fen": 120_000_000,
    "deposit_fen": 12_000_000,
    "balance_due_fen": 108_000_000,
    "due_at": "2026-01-15T02:00:00+00:00",
    "payment_reference": "JK7A2B",
    "fee_kind": "commission",
    "fee_fen": 0,
}


async def _status(pool: asyncpg.Pool) -> dict[tuple[int, str], str]:
    found = await rows(pool, "SELECT outbox_id, channel, status FROM deliveries")
    return {(r["outbox_id"], r["channel"]): r["status"] for r in found}


async def test_relay_and_worker_deliver_inbox_and_email_in_each_language(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    zh, en = scene.buyers
    await set_language(pool, en.user_id, "en")
    won = await owe(
        pool,
        clock.now(),
        "won",
        user_id=zh.user_id,
        org_id=zh.org_id,
        lot_id=scene.lot.id,
        payload=SALE,
    )
    lost = await owe(
        pool,
        clock.now(),
        "lost",
        user_id=en.user_id,
        org_id=en.org_id,
        lot_id=scene.lot.id,
        payload={"price_fen": 120_000_000},
    )
    with smtp_server() as (smtp, port):
        s = with_smtp(settings, port)
        arq = await arq_pool(s)
        assert await relay.relay_once(pool, arq, clock.now()) == 2
        worker = await run_worker(s, clock)
        await arq.aclose()
    assert worker.jobs_failed == 0 and worker.jobs_complete == 4
    assert set((await _status(pool)).values()) == {"sent"}

    assert len(smtp.messages) == 2
    (to_zh,) = smtp.to(zh.email)
    (to_en,) = smtp.to(en.email)
    assert to_zh["Subject"] == "恭喜竞得：" + scene.lot.reference + " 成交价 ¥1,200,000.00"
    assert to_en["Subject"] == f"Bidding closed: you did not win {scene.lot.reference}"
    assert to_zh["From"] == settings.mail_from
    assert to_zh["Message-ID"] == message_id(won, zh.email, settings.mail_from)
    assert re.fullmatch(rf"<outbox-{lost}\.[0-9a-f]{{16}}@ipx\.example\.cn>", to_en["Message-ID"])
    # multipart: text and HTML, both in the reader's language, times in Beijing time.
    text = to_zh.get_body(preferencelist=("plain",))
    html = to_zh.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "2026-01-15 10:00（北京时间）" in text.get_content()
    assert "¥1,080,000.00" in html.get_content() and "JK7A2B" in html.get_content()

    inbox = await rows(
        pool, "SELECT user_id, outbox_id, title, body, read_at FROM inbox ORDER BY outbox_id"
    )
    assert [(r["user_id"], r["outbox_id"]) for r in inbox] == [
        (zh.user_id, won),
        (en.user_id, lost),
    ]
    assert inbox[0]["title"] == to_zh["Subject"] and inbox[0]["read_at"] is None
    assert "您好" not in inbox[0]["body"]  # the inbox starts with the news
    assert "another bidder won" in inbox[1]["body"]


async def test_a_job_run_twice_or_concurrently_delivers_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    await owe(
        pool,
        clock.now(),
        "deposit_confirmed",
        user_id=a.user_id,
        lot_id=scene.lot.id,
        payload={"amount_fen": 12_000_000},
    )
    await relay.relay_once(pool, None, clock.now())
    ids = {r["channel"]: r["id"] for r in await rows(pool, "SELECT id, channel FROM deliveries")}
    with smtp_server() as (smtp, port):
        ctx = job_ctx(pool, with_smtp(settings, port), clock)
        # Concurrently: one holds the row; the others find it locked (busy) or, if they
        # come after its commit, already sent (done).
        first = await asyncio.gather(*(deliver(ctx, ids["email"]) for _ in range(4)))
        assert first.count("sent") == 1 and set(first) <= {"sent", "busy", "done"}
        # A copy that runs while another holds the row (held here by hand, so the test
        # does not depend on timing) is busy.
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE", ids["inbox"])
            assert await deliver(ctx, ids["inbox"]) == "busy"
        # Again, later: already sent, nothing happens.
        assert await deliver(ctx, ids["email"]) == "done"
        assert [await deliver(ctx, ids["inbox"]) for _ in range(3)] == ["sent", "done", "done"]
        await delivery.close_channels(ctx)
    assert len(smtp.messages) == 1
    assert await value(pool, "SELECT count(*) FROM inbox") == 1
    assert await value(pool, "SELECT attempts FROM deliveries WHERE id=$1", ids["email"]) == 1


async def test_redis_losing_its_queue_is_refilled_from_postgresql(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    owed = [
        await owe(
            pool, clock.now(), "payment_due", user_id=b.user_id, lot_id=scene.lot.id, payload=SALE
        )
        for b in scene.buyers
        for _ in range(15)
    ]
    with smtp_server() as (smtp, port):
        s = with_smtp(settings, port)
        arq = await arq_pool(s)
        await relay.relay_once(pool, arq, clock.now())
        assert await redis.zcard("arq:queue") == 60
        await redis.flushdb()  # Redis restarted without its data
        assert await relay.requeue_due(pool, arq, clock.now()) == 60
        # The cron again (and jobs already queued): same ids, nothing queued twice.
        assert await relay.requeue_due(pool, arq, clock.now()) == 0
        worker = await run_worker(s, clock)
        # After the work is done the cron finds nothing due.
        assert await relay.requeue_due(pool, arq, clock.now()) == 0
        await arq.aclose()
    assert worker.jobs_complete == 60
    assert len(smtp.messages) == 30 and len(set(smtp.message_ids())) == 30
    assert await value(pool, "SELECT count(*) FROM inbox") == 30
    assert await value(pool, "SELECT count(DISTINCT outbox_id) FROM inbox") == len(owed)
    assert await value(pool, "SELECT count(*) FROM deliveries WHERE status='sent'") == 60


async def test_smtp_down_retries_on_schedule_then_fails_then_replays(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    ob = await owe(
        pool, clock.now(), "payment_overdue", user_id=a.user_id, lot_id=scene.lot.id, payload=SALE
    )
    await relay.relay_once(pool, None, clock.now())
    (d,) = await rows(pool, "SELECT id FROM deliveries WHERE channel='email'")
    nobody = with_smtp(settings, free_port())  # nothing listens there
    arq = await arq_pool(nobody)
    ctx = job_ctx(pool, nobody, clock, redis=arq)
    schedule = DEFAULT_POLICY.retry_schedule_s
    assert schedule == (10, 60, 300, 1800, 7200)
    for n, wait in enumerate(schedule, start=1):
        outcome = await deliver_one(
            pool, nobody, clock, d["id"], channels=ctx["notify_channels"], redis=ctx.get("redis")
        )
        assert outcome.status == "retry" and "smtp" in (outcome.error or "")
        assert outcome.retry_at == clock.now() + timedelta(seconds=wait)
        # The next try is queued under its own id, deferred by the schedule's wait.
        score = await redis.zscore("arq:queue", f"deliver:{d['id']}:{n}")
        assert score is not None
        # Too early: nothing happens.
        clock.advance(seconds=wait - 1)
        assert await deliver(ctx, d["id"]) == "not_due"
        clock.advance(seconds=1)
    last = await deliver_one(
        pool, nobody, clock, d["id"], channels=ctx["notify_channels"], redis=ctx.get("redis")
    )
    assert last.status == "failed"
    row = (await rows(pool, "SELECT * FROM deliveries WHERE id=$1", d["id"]))[0]
    assert row["status"] == "failed" and row["attempts"] == len(schedule) + 1
    assert row["last_error"].startswith(f"after {len(schedule) + 1} attempts: smtp")
    assert await deliver(ctx, d["id"]) == "done"  # a stray queued try does nothing
    await delivery.close_channels(ctx)
    await arq.aclose()
    # Those queued tries are deferred by hours of wall time: a burst worker would wait.
    await redis.flushdb()

    # The operator sees it, and replays it once SMTP is back.
    _, _, op_email = await make_org(pool, clock.now(), kind="operator")
    with smtp_server() as (smtp, port):
        s = with_smtp(settings, port)
        app = notify_app(s, clock)
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
            await sign_in(client, op_email)
            page = await client.get("/operator/notifications")
            assert page.status_code == 200
            assert f'data-delivery="{d["id"]}"' in page.text and a.email in page.text
            # Statuses, channels and events in words; the recorded error as it was.
            assert "<td>投递失败</td>" in page.text and "<td>电子邮件</td>" in page.text
            assert "付款逾期" in page.text and "after 6 attempts: smtp" in page.text
            token = client.cookies["ipx_csrf"]
            replayed = await client.post(
                f"/operator/notifications/{d['id']}/replay",
                data={"_csrf_token": token},
                follow_redirects=False,
            )
            assert replayed.status_code in (302, 303)
            assert replayed.headers["location"].endswith("replayed=1")
            after = await client.get("/operator/notifications")
            assert f'data-delivery="{d["id"]}"' not in after.text
        row = (await rows(pool, "SELECT * FROM deliveries WHERE id=$1", d["id"]))[0]
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == (
            "pending",
            0,
            clock.now(),
        )
        worker = await run_worker(s, clock)
    assert worker.jobs_complete >= 1
    assert len(smtp.messages) == 1 and smtp.messages[0]["Message-ID"] == message_id(
        ob, a.email, settings.mail_from
    )
    assert await value(pool, "SELECT status FROM deliveries WHERE id=$1", d["id"]) == "sent"
    assert (
        await value(pool, "SELECT count(*) FROM audit_log WHERE action='notification.replay'") == 1
    )


async def test_terminal_smtp_refusal_fails_at_once_and_replay_all(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    await owe(pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id, payload=SALE)
    await relay.relay_once(pool, None, clock.now())
    (d,) = await rows(pool, "SELECT id FROM deliveries WHERE channel='email'")

    class Refuse:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return "550 5.1.1 no such mailbox"

    from aiosmtpd.controller import Controller

    port = free_port()
    refusing = Controller(Refuse(), hostname="127.0.0.1", port=port)
    refusing.start()
    try:
        ctx = job_ctx(pool, with_smtp(settings, port), clock)
        outcome = await deliver_one(
            pool,
            ctx["settings"],
            clock,
            d["id"],
            channels=ctx["notify_channels"],
            redis=ctx.get("redis"),
        )
        await delivery.close_channels(ctx)
    finally:
        refusing.stop()
    assert outcome.status == "failed" and "550" in (outcome.error or "")
    assert await value(pool, "SELECT attempts FROM deliveries WHERE id=$1", d["id"]) == 1
    _, operator, _ = await make_org(pool, clock.now(), kind="operator")
    act = await act_as(pool, clock, operator)
    assert (await act(delivery.replay_deliveries, Replay(all_failed=True))).count == 1
    again = await act(delivery.replay_deliveries, Replay(all_failed=True))
    assert again.count == 0  # only failed ones
    assert await value(pool, "SELECT status FROM deliveries WHERE id=$1", d["id"]) == "pending"


async def test_rapid_outbids_collapse_into_the_latest(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    lot = scene.lot.id
    t0 = clock.now()
    first = await owe(
        pool, t0, "outbid", user_id=a.user_id, lot_id=lot, payload={"price_fen": 120_500_000}
    )
    clock.advance(seconds=20)
    second = await owe(
        pool,
        clock.now(),
        "outbid",
        user_id=a.user_id,
        lot_id=lot,
        payload={"price_fen": 121_500_000},
    )
    other_lot_user = await owe(
        pool,
        clock.now(),
        "outbid",
        user_id=b.user_id,
        lot_id=lot,
        payload={"price_fen": 121_000_000},
    )
    await relay.relay_once(pool, None, clock.now())
    ids = {
        (r["outbox_id"], r["channel"]): r["id"]
        for r in await rows(pool, "SELECT id, outbox_id, channel FROM deliveries")
    }
    with smtp_server() as (smtp, port):
        ctx = job_ctx(pool, with_smtp(settings, port), clock)
        # E-mails wait for the window; the inbox does not.
        assert await deliver(ctx, ids[(first, "email")]) == "not_due"
        clock.set(t0 + timedelta(seconds=DEFAULT_POLICY.outbid_email_delay_s))
        assert await deliver(ctx, ids[(first, "email")]) == "skipped"
        clock.set(t0 + timedelta(seconds=20 + DEFAULT_POLICY.outbid_email_delay_s))
        assert await deliver(ctx, ids[(second, "email")]) == "sent"
        assert await deliver(ctx, ids[(other_lot_user, "email")]) == "sent"
        await delivery.close_channels(ctx)
    assert (
        await value(pool, "SELECT last_error FROM deliveries WHERE id=$1", ids[(first, "email")])
        == f"superseded by #{second}"
    )
    (mine,) = smtp.to(a.email)
    assert "¥1,215,000.00" in mine["Subject"]  # the latest price
    assert len(smtp.messages) == 2

    # Outside the window both are told: a newer outbid 61 s later does not supersede.
    clock.advance(seconds=600)
    late1 = await owe(
        pool,
        clock.now(),
        "outbid",
        user_id=a.user_id,
        lot_id=lot,
        payload={"price_fen": 130_000_000},
    )
    clock.advance(seconds=DEFAULT_POLICY.outbid_collapse_s + 1)
    await owe(
        pool,
        clock.now(),
        "outbid",
        user_id=a.user_id,
        lot_id=lot,
        payload={"price_fen": 131_000_000},
    )
    await relay.relay_once(pool, None, clock.now())
    (d,) = await rows(
        pool, "SELECT id FROM deliveries WHERE outbox_id=$1 AND channel='inbox'", late1
    )
    assert await deliver(job_ctx(pool, settings, clock), d["id"]) == "sent"


async def test_ending_soon_is_never_delivered_after_the_close(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    lot = scene.lot
    assert lot.bidding_starts_at is not None and lot.bidding_ends_at is not None
    async with pool.acquire() as conn:
        await conn.execute("UPDATE lots SET status='bidding' WHERE id=$1", lot.id)
    clock.set(lot.bidding_ends_at - timedelta(minutes=10))
    early = await owe(
        pool,
        clock.now(),
        "ending_soon",
        user_id=a.user_id,
        lot_id=lot.id,
        payload={"ends_at": lot.bidding_ends_at.isoformat(), "price_fen": 120_000_000},
    )
    await relay.relay_once(pool, None, clock.now())
    ids = {
        r["channel"]: r["id"]
        for r in await rows(pool, "SELECT id, channel FROM deliveries WHERE outbox_id=$1", early)
    }
    ctx = job_ctx(pool, settings, clock)
    assert await deliver(ctx, ids["inbox"]) == "sent"
    (title,) = [r["title"] for r in await rows(pool, "SELECT title FROM inbox")]
    assert title.startswith(f"即将结束：{lot.reference}")
    # The e-mail was held up (SMTP slow, worker down…) until the end has passed.
    clock.set(lot.bidding_ends_at + timedelta(seconds=1))
    assert await deliver(ctx, ids["email"]) == "skipped"
    # …and once the lot is closed, too.
    clock.set(lot.bidding_ends_at - timedelta(minutes=1))
    late = await owe(
        pool,
        clock.now(),
        "ending_soon",
        user_id=a.user_id,
        lot_id=lot.id,
        payload={"ends_at": lot.bidding_ends_at.isoformat()},
    )
    async with pool.acquire() as conn:
        await conn.execute("UPDATE lots SET status='failed' WHERE id=$1", lot.id)
    await relay.relay_once(pool, None, clock.now())
    for r in await rows(pool, "SELECT id FROM deliveries WHERE outbox_id=$1", late):
        assert await deliver(ctx, r["id"]) == "skipped"
    reasons = {
        r["last_error"]
        for r in await rows(pool, "SELECT last_error FROM deliveries WHERE status='skipped'")
    }
    assert reasons == {"lot no longer bidding"}
    assert await value(pool, "SELECT count(*) FROM inbox") == 1


async def test_webhook_channel_posts_to_the_endpoint(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from tests.notify.test_webhooks import running_receiver

    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    with running_receiver() as receiver:
        async with pool.acquire() as conn:
            endpoint = await conn.fetchval(
                "INSERT INTO webhook_endpoints (org_id, url, format, secret, events, active,"
                " created_at) VALUES ($1, $2, 'json', 'k3y', '{}', true, $3) RETURNING id",
                a.org_id,
                receiver.url + "/hook",
                clock.now(),
            )
        won = await owe(
            pool,
            clock.now(),
            "won",
            user_id=a.user_id,
            org_id=a.org_id,
            lot_id=scene.lot.id,
            payload=SALE,
        )
        await relay.relay_once(pool, None, clock.now())
        (d,) = await rows(pool, "SELECT id, target FROM deliveries WHERE channel='webhook'")
        assert d["target"] == str(endpoint)
        ctx = job_ctx(pool, settings, clock)
        receiver.reply(503)
        first = await deliver_one(
            pool, settings, clock, d["id"], channels=ctx["notify_channels"], redis=ctx.get("redis")
        )
        assert first.status == "retry"
        clock.advance(seconds=10)
        assert await deliver(ctx, d["id"]) == "sent"
        await delivery.close_channels(ctx)
    assert len(receiver.requests) == 2
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {f"ipx-delivery-{d['id']}"}  # the same on the retry
    body = msgspec.json.decode(receiver.requests[-1].body)
    assert body["event"] == "won" and body["notification_id"] == won
    assert body["title"].startswith("恭喜竞得")


async def test_policy_numbers_are_validated() -> None:
    for bad in (
        {"retry_schedule_s": ()},
        {"retry_schedule_s": (10, 0)},
        {"outbid_collapse_s": -1},
        {"outbid_email_delay_s": 90, "outbid_collapse_s": 60},
    ):
        try:
            NotifyPolicy(**bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} should be refused")


async def test_a_job_held_by_a_killed_worker_is_queued_again_under_a_late_id(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    await owe(pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id, payload=SALE)
    arq = await arq_pool(settings)
    await relay.relay_once(pool, arq, clock.now())
    (d,) = await rows(pool, "SELECT id FROM deliveries WHERE channel='inbox'")
    # A worker took the job and was killed: arq keeps it "in progress" until its timeout.
    await redis.set(f"arq:in-progress:deliver:{d['id']}:0", b"1", ex=600)
    assert await relay.requeue_due(pool, arq, clock.now()) == 0  # same ids: already queued
    clock.advance(seconds=relay.STUCK_AFTER.total_seconds() + 1)
    assert await relay.requeue_due(pool, arq, clock.now()) == 2  # inbox and e-mail, late ids
    queued = {k.decode() for k in await redis.zrange("arq:queue", 0, -1)}
    late = [j for j in queued if j.startswith(f"deliver:{d['id']}:0:late")]
    assert len(late) == 1
    assert await relay.requeue_due(pool, arq, clock.now()) == 0  # once per interval
    ctx = job_ctx(pool, settings, clock, redis=arq)
    assert await deliver(ctx, d["id"]) == "sent"  # the late copy
    assert await deliver(ctx, d["id"]) == "done"  # the original, once its worker's lock lapses
    assert await value(pool, "SELECT count(*) FROM inbox") == 1
    await delivery.close_channels(ctx)
    await arq.aclose()


async def test_a_payment_reminder_for_a_sale_settled_meanwhile_is_not_sent(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A 'please pay' held up until the buyer had paid (worker down, SMTP slow) is
    skipped on every channel, as is one for a sale that defaulted meanwhile; one for a
    sale still awaiting payment goes."""
    scene = await make_scene(pool, clock, settings, buyers=3)
    owed: dict[str, int] = {}
    async with pool.acquire() as conn:
        for round_, (person, status) in enumerate(
            zip(scene.buyers, ("paid", "defaulted", "awaiting_payment"), strict=True), start=1
        ):
            sale_id = await conn.fetchval(
                """INSERT INTO sales (lot_id, round, registration_id, buyer_org_id, price_fen,
                       fee_kind, fee_fen, deposit_fen, balance_due_fen, due_at,
                       payment_reference, status, closed_at)
                   VALUES ($1, $2, $3, $4, 120000000, 'commission', 0, 12000000, 108000000,
                       $5, $6, $7, $8) RETURNING id""",
                scene.lot.id,
                round_,
                person.registration_id,
                person.org_id,
                clock.now() + timedelta(days=10),
                f"JKTEST{round_}",
                status,
                clock.now(),
            )
            owed[status] = await owe(
                pool,
                clock.now(),
                "payment_due",
                user_id=person.user_id,
                lot_id=scene.lot.id,
                payload={**SALE, "sale_id": sale_id},
            )
    await relay.relay_once(pool, None, clock.now())
    ctx = job_ctx(pool, settings, clock)
    outcomes: dict[str, set[str]] = {}
    for status, outbox_id in owed.items():
        for r in await rows(
            pool, "SELECT id FROM deliveries WHERE outbox_id=$1 AND channel='inbox'", outbox_id
        ):
            outcomes.setdefault(status, set()).add(await deliver(ctx, r["id"]))
    assert outcomes == {"paid": {"skipped"}, "defaulted": {"skipped"}, "awaiting_payment": {"sent"}}
    reasons = {
        r["last_error"]
        for r in await rows(pool, "SELECT last_error FROM deliveries WHERE status='skipped'")
    }
    assert reasons == {"sale paid already", "sale defaulted already"}
    assert await value(pool, "SELECT count(*) FROM inbox") == 1
