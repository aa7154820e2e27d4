"""Live updates through real Redis pub/sub and a real HTTP server.

The app runs in this process under uvicorn (Litestar's test client buffers whole responses,
which an endless event stream never finishes), so the tests can read the stream with httpx
as a browser would AND look inside the process's hub: one Redis subscription per lot
however many clients, gone when the last client leaves, a slow client dropped, and a lost
Redis connection ending the streams so that browsers reconnect and re-sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from litestar import Litestar
from redis.asyncio import Redis

from auctions import live
from auctions.bidding import BidBody, ProxyBody, place
from auctions.deposits import ConfirmDeposit, confirm_deposit
from auctions.registration import RegisterForLot, Registration, register_for_lot
from auctions.writer import BidAnswer
from market.app import create_app
from market.clock import Clock, FrozenClock
from market.lots import services as lots
from market.lots.models import LotDraft, LotOut, PublishInput
from market.lots.terms import PreemptiveHolder, TermsInput
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case

START, DEPOSIT = 700_000_00, 70_000_00


# --- a lot in bidding with registered buyers ---------------------------------------------------


@dataclass
class Buyer:
    org_id: int
    user_id: int
    email: str
    registration: Registration


@dataclass
class Scene:
    lot: LotOut
    buyers: list[Buyer]
    increment_fen: int
    starts: datetime
    ends: datetime
    extra: dict[str, Any] = field(default_factory=dict)


async def _far_lot_ids(pool: asyncpg.Pool) -> None:
    # Redis pub/sub channels ignore the database number, and other test runs share the
    # Redis server: lot ids far from 1 keep their `lot:{id}` messages out of these tests.
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('lots', 'id'), $1)",
            random.randrange(10_000_000, 900_000_000),
        )


async def bidding_scene(
    pool: asyncpg.Pool,
    settings: Settings,
    at: datetime,
    *,
    buyers: int = 2,
    holders: int = 0,
    confirmed: int | None = None,
) -> Scene:
    """A lot whose bidding opened an hour before `at` and ends a day after it opened,
    with `buyers` registered buyers (the first `holders` of them pre-emptive holders),
    the first `confirmed` (default: all) with their deposits confirmed."""
    await _far_lot_ids(pool)
    created = at - timedelta(days=30, hours=2)
    policy = lots.policy_for(settings)
    bank_org, bank_user, _ = await make_org(pool, created, kind="bank")
    _, op_user, _ = await make_org(pool, created, kind="operator")
    people = [await make_org(pool, created, kind="buyer") for _ in range(buyers)]
    async with pool.acquire() as conn:
        codes = [
            await conn.fetchval("SELECT credit_code FROM organisations WHERE id = $1", org)
            for org, _, _ in people[:holders]
        ]
    case_id, _ = await make_case(pool, created, bank_org, bank_user)
    starts = created + timedelta(days=30, hours=1)
    bank = await viewer(pool, bank_user)
    lot = await draft_lot(
        pool,
        created,
        policy,
        bank,
        case_id,
        LotDraft(
            title="锂电池正极材料专利包",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=DEPOSIT,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
                preemptive_holders=tuple(
                    PreemptiveHolder(rank=i + 1, name=f"优先购买权人{i + 1}", credit_code=code)
                    for i, code in enumerate(codes)
                ),
            ),
        ),
    )
    lot = await lot_action(pool, created, policy, bank, lot.id, PublishInput())
    assert await lots.open_due_lots(pool, at, policy) == [lot.id]
    out = []
    for n, (org, user, email) in enumerate(people):
        buyer_act = await act_as(pool, at, user)
        reg = (
            await buyer_act(
                register_for_lot,
                RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT),
            )
        ).registration
        if confirmed is None or n < confirmed:
            await (await act_as(pool, at, op_user))(
                confirm_deposit,
                ConfirmDeposit(
                    transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen
                ),
            )
        out.append(Buyer(org, user, email, reg))
    lot = await lots.get_lot(pool, bank_org, lot.id)
    assert lot.status == "bidding" and lot.terms is not None
    return Scene(
        lot=lot,
        buyers=out,
        increment_fen=lot.terms.increment_fen,
        starts=starts,
        ends=starts + timedelta(days=1),
    )


async def bid(app: Litestar, clock: Clock, scene: Scene, who: int, amount_fen: int) -> BidAnswer:
    """A bid through the app's own writers, as the API and the page place it."""
    status, answer = await place(
        pool=app.state.pool,
        writers=app.state.writers,
        limiter=app.state.bid_limiter,
        at=clock.now(),
        org_id=scene.buyers[who].org_id,
        reference=scene.lot.reference,
        body=BidBody(amount_fen=amount_fen),
        raw=f"bid {amount_fen}".encode(),
        idempotency_key=None,
    )
    assert status == 201, answer
    return answer


# --- a real server in this process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    app: Litestar

    @property
    def hub(self) -> live.LiveHub:
        return live.hub_of(self.app.state)


@pytest.fixture
async def served(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[Served]:
    app = create_app(settings, clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        hub = app.state.get("live_hub")
        if hub is not None:
            await hub.close()  # ends the streams, so the server stops at once
        server.should_exit = True
        await asyncio.wait_for(task, 15)


# --- reading an event stream -----------------------------------------------------------------


class Stream:
    """One EventSource-like connection: events parsed from the raw lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    async def next(self, wait: float = 5.0) -> dict[str, Any] | None:
        """The next event (comments are collected on the way); None when the stream ends."""

        async def read() -> dict[str, Any] | None:
            event: dict[str, Any] = {}
            async for line in self.lines:
                if line == "":
                    if "data" in event:
                        event["json"] = json.loads(event["data"])
                        return event
                    event = {}
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    self.comments.append(value)
                elif name == "retry":
                    self.retry = int(value)
                elif name == "data":
                    event["data"] = event["data"] + "\n" + value if "data" in event else value
                else:
                    event[name] = value
            return None

        return await asyncio.wait_for(read(), wait)

    async def next_update(self, wait: float = 5.0) -> dict[str, Any]:
        event = await self.next(wait)
        assert event is not None, "the stream ended"
        assert event.get("event") == "update", event
        return dict(event["json"])


@contextlib.asynccontextmanager
async def stream(served: Served, reference: str) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as http,
        http.stream("GET", f"{served.url}/lots/{reference}/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def until(check: Any, wait: float = 5.0) -> None:
    """Wait until the async `check()` holds (what another task does takes a moment)."""
    for _ in range(int(wait / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


async def numsub(redis: Redis, lot_id: int) -> int:
    counts = dict(await redis.pubsub_numsub(live.channel(lot_id)))
    return int(counts[live.channel(lot_id).encode()])


# --- tests -----------------------------------------------------------------------------------


async def test_first_event_from_postgres_then_each_committed_batch(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    clock.advance(minutes=5)
    inc = scene.increment_fen
    await bid(served.app, clock, scene, 0, START)
    clock.advance(seconds=30)
    await bid(served.app, clock, scene, 1, START + inc)
    a, b = (x.registration.bidder_code for x in scene.buyers)

    async with stream(served, scene.lot.reference) as events:
        first = await events.next()
        assert first is not None and first["event"] == "state"
        assert events.retry == live.RETRY_MS
        state = first["json"]
        assert state["lot_id"] == scene.lot.id and state["status"] == "bidding"
        assert state["price_fen"] == START + inc and state["leader_code"] == b
        assert state["bid_count"] == 2 and state["min_next_fen"] == START + 2 * inc
        assert [(x["code"], x["amount_fen"]) for x in state["bids"]] == [
            (a, START),
            (b, START + inc),
        ]
        assert datetime.fromisoformat(state["ends_at"]) == scene.ends
        assert datetime.fromisoformat(state["server_time"]) == clock.now()
        # Public: codes, amounts, times; no organisation, user or registration.
        assert all(set(x) == {"seq", "code", "amount_fen", "kind", "at"} for x in state["bids"])
        assert not {"registration_id", "buyer_org_id", "leader_registration_id"} & set(state)

        clock.advance(seconds=10)
        answer = await bid(served.app, clock, scene, 0, START + 3 * inc)
        update = await events.next_update()
        assert update["price_fen"] == START + 3 * inc and update["leader_code"] == a
        assert update["bid_count"] == 3
        assert update["bids"] == [
            {
                "seq": answer.bids[0].seq,
                "code": a,
                "amount_fen": START + 3 * inc,
                "kind": "manual",
                "at": clock.now().isoformat(),
            }
        ]
        assert datetime.fromisoformat(update["server_time"]) == clock.now()

        # A proxy answers within the same batch: both auto-bids arrive in one message.
        status, _ = await place(
            pool=served.app.state.pool,
            writers=served.app.state.writers,
            limiter=served.app.state.bid_limiter,
            at=clock.now(),
            org_id=scene.buyers[1].org_id,
            reference=scene.lot.reference,
            body=ProxyBody(max_fen=START + 10 * inc),
            raw=b"proxy",
            idempotency_key=None,
        )
        assert status == 201
        update = await events.next_update()
        assert update["leader_code"] == b and update["price_fen"] == START + 4 * inc
        assert [x["kind"] for x in update["bids"]] == ["proxy"]


async def test_an_extension_is_pushed_with_the_new_end(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    async with stream(served, scene.lot.reference) as events:
        assert (await events.next()) is not None
        clock.set(scene.ends - timedelta(minutes=2))  # inside the 5-minute window
        await bid(served.app, clock, scene, 0, START)
        update = await events.next_update()
        assert datetime.fromisoformat(update["ends_at"]) == clock.now() + timedelta(minutes=5)


async def test_clients_of_one_lot_share_one_subscription_gone_with_the_last(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    other = await bidding_scene(pool, settings, clock.now())
    lot_id = scene.lot.id
    hub = served.hub
    async with stream(served, scene.lot.reference) as one:
        assert (await one.next()) is not None
        async with stream(served, scene.lot.reference) as two:
            assert (await two.next()) is not None
            async with stream(served, other.lot.reference) as three:
                assert (await three.next()) is not None
                assert len(hub.clients[lot_id]) == 2 and len(hub.clients[other.lot.id]) == 1
                assert hub.subscriptions == {live.channel(lot_id), live.channel(other.lot.id)}
                assert await numsub(redis, lot_id) == 1  # one subscriber for two clients

                await bid(served.app, clock, scene, 0, START)
                got = [await one.next_update(), await two.next_update()]
                assert [u["price_fen"] for u in got] == [START, START]
                with pytest.raises(TimeoutError):
                    await three.next(wait=0.3)  # the other lot's client heard nothing
            await until(lambda: _async(other.lot.id not in hub.clients))
            await until(lambda: _zero(redis, other.lot.id))
        await until(lambda: _async(len(hub.clients.get(lot_id, ())) == 1))
        assert await numsub(redis, lot_id) == 1  # still one client: still subscribed
    await until(lambda: _async(lot_id not in hub.clients))
    await until(lambda: _zero(redis, lot_id))
    assert hub.subscriptions == set()


async def _async(value: bool) -> bool:
    return value


async def _zero(redis: Redis, lot_id: int) -> bool:
    return await numsub(redis, lot_id) == 0


async def test_stream_after_the_last_client_left_subscribes_again(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    for n in range(3):
        async with stream(served, scene.lot.reference) as events:
            assert (await events.next()) is not None
            await bid(served.app, clock, scene, n % 2, START + n * scene.increment_fen)
            assert (await events.next_update())["bid_count"] == n + 1
        await until(lambda: _zero(redis, scene.lot.id))


async def test_messages_older_than_the_first_event_are_skipped(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    await bid(served.app, clock, scene, 0, START)
    async with stream(served, scene.lot.reference) as events:
        first = await events.next()
        assert first is not None and first["json"]["bid_count"] == 1
        base = {
            "lot_id": scene.lot.id,
            "round": 1,
            "leader_code": "X",
            "ends_at": None,
            "bids": [],
            "server_time": clock.now().isoformat(),
        }
        # Published before the first event was read (already in it): skipped.
        await redis.publish(
            live.channel(scene.lot.id), json.dumps({**base, "bid_count": 1, "price_fen": 1})
        )
        await redis.publish(
            live.channel(scene.lot.id), json.dumps({**base, "bid_count": 2, "price_fen": 2})
        )
        update = await events.next_update()
        assert update["price_fen"] == 2


async def test_heartbeat_comments_keep_an_idle_stream_open(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    served.hub.heartbeat_s = 0.1
    async with stream(served, scene.lot.reference) as events:
        assert (await events.next()) is not None
        with pytest.raises(TimeoutError):
            await events.next(wait=0.5)  # no event, only comments
        assert events.comments.count("heartbeat") >= 2


async def test_a_slow_client_is_dropped_and_the_others_keep_their_messages(
    redis: Redis, pool: asyncpg.Pool
) -> None:
    hub = live.LiveHub(redis, queue_size=3)
    lot_id = random.randrange(10_000_000, 900_000_000)
    try:
        slow, fast = await hub.join(lot_id), await hub.join(lot_id)
        assert await numsub(redis, lot_id) == 1
        for n in range(5):
            await redis.publish(live.channel(lot_id), f'{{"n": {n}}}')
            assert json.loads(await asyncio.wait_for(fast.queue.get(), 5))["n"] == n
        # The slow one never read: after 3 queued, the 4th dropped it, and it is told to end.
        assert slow not in hub.clients[lot_id] and fast in hub.clients[lot_id]
        assert slow.queue.get_nowait() is None
        hub.leave(fast)
        await until(lambda: _zero(redis, lot_id))
    finally:
        await hub.close()


async def test_losing_redis_ends_every_stream_and_the_next_one_resyncs(
    served: Served, pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    hub = served.hub
    async with (
        stream(served, scene.lot.reference) as one,
        stream(served, scene.lot.reference) as two,
    ):
        assert (await one.next()) is not None and (await two.next()) is not None
        pubsub = hub._pubsub
        assert pubsub is not None and pubsub.connection is not None
        host, port = pubsub.connection._writer.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
        # Redis drops this process's pub/sub connection (as on a restart or failover).
        assert await redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        assert await one.next() is None and await two.next() is None  # both streams end
        assert hub.clients == {}
        # A bid while nobody listens...
        await bid(served.app, clock, scene, 0, START)
    # ...is in the first event of the reconnected stream, which is live again.
    async with stream(served, scene.lot.reference) as again:
        first = await again.next()
        assert first is not None and first["json"]["price_fen"] == START
        await bid(served.app, clock, scene, 1, START + scene.increment_fen)
        assert (await again.next_update())["bid_count"] == 2


async def test_without_redis_the_stream_sends_the_first_event_and_ends(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    hub = live.LiveHub(dead)
    try:
        got = [m async for m in live.events(hub, pool, clock, scene.lot.id)]
    finally:
        await hub.close()
        await dead.aclose()
    assert [m.event for m in got] == ["state"]
    assert got[0].retry == live.RETRY_MS
    assert json.loads(str(got[0].data))["lot_id"] == scene.lot.id
    assert hub.clients == {}


async def test_a_sealed_round_shows_no_price_bids_or_count(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await bidding_scene(pool, settings, clock.now())
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE lots SET auction_kind = 'sealed', current_price_fen = $2, bid_count = 1,"
            " leader_registration_id = $3 WHERE id = $1",
            scene.lot.id,
            START + 5_000_00,
            scene.buyers[0].registration.id,
        )
        await conn.execute(
            "INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)"
            " VALUES ($1, 1, 1, $2, $3, 'sealed', $4)",
            scene.lot.id,
            scene.buyers[0].registration.id,
            START + 5_000_00,
            clock.now(),
        )
    state = await live.snapshot(pool, scene.lot.reference, clock.now())
    assert state.kind == "sealed" and state.bid_count == 0  # one bid, not told
    assert state.price_fen is None and state.leader_code is None and state.bids == []
    assert state.min_next_fen == START


async def test_unknown_or_draft_lot_has_no_stream(served: Served) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{served.url}/lots/LOT-NOPE/events")
    assert response.status_code == 404
