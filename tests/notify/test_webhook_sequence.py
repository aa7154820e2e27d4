"""Webhooks get every event, numbered per endpoint and subject and sent in that order
(docs/webhooks.md), while the people's channels collapse rapid outbids; each delivered body
is what the OpenAPI document's `webhooks` say it is."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import asyncpg
import jsonschema_rs
import msgspec
from redis.asyncio import Redis

from auctions.bidding import BidBody
from market.app import create_app
from market.clock import FrozenClock
from market.notify import delivery, relay
from market.notify.delivery import NotifyPolicy, deliver, deliver_one
from market.notify.payloads import EVENT_TYPES
from market.notify.webhooks import VERSION, verify
from market.settings import Settings
from tests.factories import act_as, make_org
from tests.notify.delivery_scene import (
    arq_pool,
    bid_in_turn,
    job_ctx,
    make_scene,
    open_bidding,
    owe,
    rows,
    run_worker,
    smtp_server,
    value,
    with_smtp,
)
from tests.notify.test_webhooks import running_receiver

SECRET = "k3y"


async def add_endpoint(pool: asyncpg.Pool, org_id: int, url: str, at: Any) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO webhook_endpoints (org_id, url, format, secret, events, active,"
                " created_at) VALUES ($1, $2, 'json', $3, '{}', true, $4) RETURNING id",
                org_id,
                url,
                SECRET,
                at,
            )
        )


def document_validators(settings: Settings) -> dict[str, Any]:
    """The JSON Schema validator of each event's body, from the app's OpenAPI document."""
    doc = create_app(settings).openapi_schema.to_schema()
    return {
        event: jsonschema_rs.Draft202012Validator(
            item["post"]["requestBody"]["content"]["application/json"]["schema"]
        )
        for event, item in doc["webhooks"].items()
    }


def check_documented(body: bytes, validators: dict[str, Any]) -> dict[str, Any]:
    """The body validates against its event's schema in the document, decodes into its
    Struct, and names no payload field the Struct does not document."""
    data = msgspec.json.decode(body)
    validators[data["event"]].validate(data)
    typed = msgspec.json.decode(body, type=EVENT_TYPES[data["event"]])
    assert set(data["payload"]) <= set(type(typed.payload).__struct_fields__), data
    assert set(data) <= set(type(typed).__struct_fields__), data
    return dict(data)


async def test_rapid_outbids_reach_the_webhook_each_in_order_while_the_inbox_collapses(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    with running_receiver() as receiver:
        await add_endpoint(pool, a.org_id, receiver.url + "/hook", clock.now())
        await open_bidding(pool, clock, settings, scene)
        inc, price = scene.lot.increment_fen, scene.lot.start_price_fen
        # a bids, b passes it: four times, 2 s apart — four outbids of a within a minute.
        steps = [
            (a if n % 2 == 0 else b, BidBody(amount_fen=price + n * inc), 201) for n in range(8)
        ]
        await bid_in_turn(pool, clock, settings, scene, steps)
        outbids = await rows(
            pool,
            "SELECT id, payload FROM outbox WHERE event='outbid' AND recipient_user_id=$1"
            " ORDER BY id",
            a.user_id,
        )
        assert [r["payload"]["price_fen"] for r in outbids] == [
            price + n * inc for n in (1, 3, 5, 7)
        ]

        policy = NotifyPolicy(outbid_email_delay_s=0)
        with smtp_server() as (_, port):
            s = with_smtp(settings, port)
            arq = await arq_pool(s)
            # The worker's relay: the inbox is delivered in the relay's transaction.
            await relay.relay_all(pool, arq, clock.now(), policy=policy, settings=s)
            worker = await run_worker(s, clock, policy)
            await arq.aclose()
        assert worker.jobs_failed == 0

    # The people's channels collapsed them: a's inbox has the latest outbid only.
    inbox = await rows(
        pool, "SELECT outbox_id FROM inbox WHERE user_id=$1 AND event='outbid'", a.user_id
    )
    assert [r["outbox_id"] for r in inbox] == [outbids[-1]["id"]]
    # The webhook got every event of a's organisation, each once, in sequence order.
    validators = document_validators(settings)
    bodies = [check_documented(r.body, validators) for r in receiver.requests]
    assert [body["sequence"] for body in bodies] == list(range(1, len(bodies) + 1))
    assert {body["subject"] for body in bodies} == {f"lot:{scene.lot.id}"}
    assert {body["version"] for body in bodies} == {VERSION}
    hooked = [body for body in bodies if body["event"] == "outbid"]
    assert [body["notification_id"] for body in hooked] == [r["id"] for r in outbids]
    n = hooked[0]["sequence"]
    assert [body["sequence"] for body in hooked] == [n, n + 1, n + 2, n + 3]
    assert [body["payload"]["price_fen"] for body in hooked] == [
        price + k * inc for k in (1, 3, 5, 7)
    ]
    events = [body["event"] for body in bodies]
    assert events[:2] == ["deposit_confirmed", "bidding_opened"] and events[2:] == ["outbid"] * 4
    for req, body in zip(receiver.requests, bodies, strict=True):
        assert req.headers["idempotency-key"] == body["id"]
        assert req.headers["x-ipx-event"] == body["event"]
        assert verify(
            SECRET,
            req.headers["x-ipx-timestamp"],
            req.body,
            req.headers["x-ipx-signature"],
            clock.now(),
        )
    assert len({body["id"] for body in bodies}) == len(bodies)


async def test_a_later_event_waits_for_an_earlier_ones_retry(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    lot = scene.lot.id
    with running_receiver() as receiver:
        await add_endpoint(pool, a.org_id, receiver.url + "/hook", clock.now())
        for price in (1, 2, 3, 4):
            await owe(
                pool,
                clock.now(),
                "outbid",
                user_id=a.user_id,
                lot_id=lot,
                payload={"registration_id": a.registration_id, "price_fen": price},
            )
        await relay.relay_once(pool, None, clock.now())
        first, second, third, fourth = [
            r["id"]
            for r in await rows(
                pool, "SELECT id FROM deliveries WHERE channel='webhook' ORDER BY sequence"
            )
        ]
        ctx = job_ctx(pool, settings, clock)
        arq = await arq_pool(settings)
        receiver.reply(503)
        assert await deliver(ctx, first) == "retry"
        # The second waits: not due, no attempt counted, nothing sent.
        assert await deliver(ctx, second) == "waiting"
        waiting = (await rows(pool, "SELECT * FROM deliveries WHERE id=$1", second))[0]
        assert waiting["next_attempt_at"] is None and waiting["attempts"] == 0
        assert waiting["last_error"] == f"waiting for #{first} (sequence 1)"
        assert len(receiver.requests) == 1
        # Redis lost, the requeue cron does not send it either: it is not due.
        clock.advance(seconds=10)
        due = await rows(
            pool,
            "SELECT id FROM deliveries WHERE status='pending' AND next_attempt_at <= $1",
            clock.now(),
        )
        assert second not in {r["id"] for r in due}
        # The retry succeeds; its transaction makes the second due and queues it.
        sent = await deliver_one(
            pool, settings, clock, first, channels=ctx["notify_channels"], redis=arq
        )
        assert sent.status == "sent"
        woken = (await rows(pool, "SELECT * FROM deliveries WHERE id=$1", second))[0]
        assert woken["next_attempt_at"] == clock.now() and woken["last_error"] is None
        assert await redis.exists(f"arq:job:deliver:{second}:0:after{first}")
        assert await deliver(ctx, second) == "sent"
        # A terminal failure does not hold the stream: the next goes, the gap shows, and a
        # replay sends the failed one later with its own number.
        receiver.reply(410)
        assert await deliver(ctx, third) == "failed"
        assert await deliver(ctx, fourth) == "sent"
        await arq.aclose()
        await delivery.close_channels(ctx)
    sequences = [r.json()["sequence"] for r in receiver.requests]
    assert sequences == [1, 1, 2, 3, 4]
    assert [r.json()["payload"]["price_fen"] for r in receiver.requests] == [1, 1, 2, 3, 4]


async def test_webhooks_get_the_events_the_people_channels_skip(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    with running_receiver() as receiver:
        await add_endpoint(pool, a.org_id, receiver.url + "/hook", clock.now())
        t0 = clock.now()
        for price in (1, 2):  # the first is superseded for people (within the window)
            await owe(
                pool,
                t0,
                "outbid",
                user_id=a.user_id,
                lot_id=scene.lot.id,
                payload={"price_fen": price},
            )
        # A reminder the lot's close overtook (it is not bidding): people never get it.
        await owe(
            pool,
            t0,
            "ending_soon",
            user_id=a.user_id,
            lot_id=scene.lot.id,
            payload={"ends_at": t0.isoformat(), "price_fen": 2},
        )
        await relay.relay_once(pool, None, clock.now())
        clock.advance(seconds=60)
        ctx = job_ctx(pool, settings, clock)
        with smtp_server() as (_, port):
            ctx["settings"] = with_smtp(settings, port)
            ctx["notify_channels"] = delivery.Channels(ctx["settings"])
            # Each job in turn, and the ones the jobs made due (their jobs' queue).
            while due := await rows(
                pool,
                "SELECT id FROM deliveries WHERE status='pending' AND next_attempt_at <= $1"
                " ORDER BY id",
                clock.now(),
            ):
                for r in due:
                    await deliver(ctx, r["id"])
            await delivery.close_channels(ctx)
    outcome = {
        (r["channel"], r["event"], r["status"])
        for r in await rows(
            pool,
            "SELECT d.channel, o.event, d.status FROM deliveries d"
            " JOIN outbox o ON o.id = d.outbox_id",
        )
    }
    assert ("webhook", "outbid", "skipped") not in outcome
    assert ("inbox", "outbid", "skipped") in outcome and ("email", "outbid", "skipped") in outcome
    assert ("inbox", "ending_soon", "skipped") in outcome
    assert ("webhook", "ending_soon", "sent") in outcome, await rows(
        pool, "SELECT status, last_error FROM deliveries WHERE channel='webhook'"
    )
    assert [r.json()["event"] for r in receiver.requests] == ["outbid", "outbid", "ending_soon"]
    assert [r.json()["sequence"] for r in receiver.requests] == [1, 2, 3]


async def test_concurrent_relays_number_each_stream_in_event_order(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    other = await make_scene(pool, clock, settings, buyers=0)
    endpoints = [
        await add_endpoint(pool, a.org_id, f"http://127.0.0.1:9/{n}", clock.now()) for n in range(2)
    ]
    endpoints.append(await add_endpoint(pool, b.org_id, "http://127.0.0.1:9/b", clock.now()))
    total = 600
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload,"
            " dedupe_key, created_at) SELECT 'outbid', NULL,"
            " CASE WHEN g % 3 = 0 THEN $1::bigint ELSE $2::bigint END,"
            " CASE WHEN g % 2 = 0 THEN $3::bigint ELSE $4::bigint END, '{}', 'bulk:' || g, $5"
            " FROM generate_series(1, $6) g",
            b.user_id,
            a.user_id,
            scene.lot.id,
            other.lot.id,
            clock.now(),
            total,
        )
    arq = await arq_pool(settings)
    counts: list[int] = []

    async def one_relay() -> None:
        while n := await relay.relay_once(pool, arq, clock.now(), batch=25):
            counts.append(n)

    await asyncio.gather(*(one_relay() for _ in range(4)))
    await arq.aclose()
    assert sum(counts) == total
    streams: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for r in await rows(
        pool,
        "SELECT target, subject, sequence, outbox_id FROM deliveries WHERE channel='webhook'",
    ):
        streams[(r["target"], r["subject"])].append((r["outbox_id"], r["sequence"]))
    assert len(streams) == 6  # three endpoints × two lots
    assert {int(t) for t, _ in streams} == set(endpoints)
    for numbered in streams.values():
        numbered.sort()  # by event
        assert [seq for _, seq in numbered] == list(range(1, len(numbered) + 1))
    last = {
        (str(r["endpoint_id"]), r["subject"]): r["last_sequence"]
        for r in await rows(pool, "SELECT * FROM webhook_streams")
    }
    assert last == {key: len(numbered) for key, numbered in streams.items()}


async def test_concurrent_jobs_send_each_stream_in_sequence_order(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    other = await make_scene(pool, clock, settings, buyers=0)
    with running_receiver() as receiver:
        await add_endpoint(pool, a.org_id, receiver.url + "/hook", clock.now())
        for n in range(12):
            await owe(
                pool,
                clock.now(),
                "outbid",
                user_id=a.user_id,
                lot_id=(scene.lot.id, other.lot.id)[n % 2],
                payload={"price_fen": n},
            )
        for n in range(4):  # the receiver is slow now and then: jobs overlap
            receiver.reply(200, delay=0.05 * (n % 2))
        arq = await arq_pool(settings)
        await relay.relay_all(pool, arq, clock.now())
        worker = await run_worker(settings, clock)
        await arq.aclose()
        receiver_got = [r.json() for r in receiver.requests]
    assert worker.jobs_failed == 0
    assert (
        await value(
            pool, "SELECT count(*) FROM deliveries WHERE channel='webhook' AND status<>'sent'"
        )
        == 0
    )
    by_subject: dict[str, list[int]] = defaultdict(list)
    for body in receiver_got:
        by_subject[body["subject"]].append(body["sequence"])
    assert by_subject == {
        f"lot:{scene.lot.id}": [1, 2, 3, 4, 5, 6],
        f"lot:{other.lot.id}": [1, 2, 3, 4, 5, 6],
    }


async def test_the_webhook_test_is_documented_too(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from market.notify.endpoints import WebhookTestRequest, send_webhook_test

    _, admin, _ = await make_org(pool, clock.now(), kind="bank")
    org = await value(pool, "SELECT org_id FROM users WHERE id=$1", admin)
    with running_receiver() as receiver:
        endpoint = await add_endpoint(pool, org, receiver.url + "/hook", clock.now())
        act = await act_as(pool, clock.now(), admin)
        result = await act(
            send_webhook_test, WebhookTestRequest(endpoint_id=endpoint, private_hosts=True)
        )
        assert result.ok
    (req,) = receiver.requests
    body = check_documented(req.body, document_validators(settings))
    assert body["event"] == "test" and body["sequence"] == 0 and body["subject"] == "test"
    assert body["id"] == req.headers["idempotency-key"]


async def test_a_sandbox_signs_with_the_system_time_not_its_moved_clock(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """A receiver checks X-IPX-Timestamp against its own clock (docs/webhooks.md); a
    sandbox's clock moved a month ahead must not make every delivery look a month late."""
    from market.clock import SandboxClock
    from market.notify.endpoints import WebhookTestRequest, send_webhook_test

    month = 30 * 86400 * 1000
    sandbox = SandboxClock(base=clock, offset_ms=month)
    system_seconds = str(int(clock.now().timestamp()))
    _, admin, _ = await make_org(pool, sandbox.now(), kind="bank")
    org = await value(pool, "SELECT org_id FROM users WHERE id=$1", admin)
    with running_receiver() as receiver:
        endpoint = await add_endpoint(pool, org, receiver.url + "/hook", sandbox.now())
        await owe(pool, sandbox.now(), "organisation_decided", org_id=org, payload={})
        await relay.relay_once(pool, None, sandbox.now())
        (hooked,) = await rows(pool, "SELECT id FROM deliveries WHERE channel='webhook'")
        ctx = job_ctx(pool, settings, sandbox)  # type: ignore[arg-type]
        assert await deliver(ctx, hooked["id"]) == "sent"
        await delivery.close_channels(ctx)
        act = await act_as(pool, sandbox.now(), admin)
        tested = await act(
            send_webhook_test,
            WebhookTestRequest(endpoint_id=endpoint, private_hosts=True, clock_offset_ms=month),
        )
        assert tested.ok
    for req in receiver.requests:
        assert req.headers["x-ipx-timestamp"] == system_seconds
        assert verify(SECRET, system_seconds, req.body, req.headers["x-ipx-signature"], clock.now())
    assert len(receiver.requests) == 2
