"""Live updates of a lot: Server-Sent Events fed by Redis pub/sub.

After each committed batch the lot's writer, in whichever app process took the bids,
publishes one JSON message on channel `lot:{id}` (auctions/writer.py, docs/bidding.md "Live
updates"). Every app process runs one `LiveHub` that forwards those messages to the
browsers connected to it:

* ONE Redis subscription per lot per process, on one pub/sub connection: SUBSCRIBE when the
  lot's first client arrives, UNSUBSCRIBE when its last leaves, so a thousand people
  watching a hot lot cost Redis one subscriber per process, not a thousand.
* Each client has a bounded queue. The hub never waits for a client: a client whose queue
  is full is dropped (its stream ends, its browser reconnects and re-syncs), so a slow
  reader cannot hold up the others or grow memory without bound.
* A stream first subscribes, then reads the lot's state from PostgreSQL — the truth — and
  sends it as the first event, then the live messages newer than it (those older are
  skipped by the round's `bid_count`, which every accepted batch raises). Subscribing
  first, and waiting for Redis to confirm it, means no batch committed after the read
  can be missed.
* Losing Redis ends every stream of the process. EventSource reconnects after the
  `retry:` hint, and the first event of the new stream re-syncs from PostgreSQL; if Redis
  is still down, that first event is all the stream carries, and it ends again. Missing
  updates are thus only ever late, never silently lost.

Public data only: prices, bidder codes and times, never who bids. A sealed round shows
neither price nor bids, nor how many there are, before its close (the writer publishes
only `ends_at`, with a count of 0; the first event here does the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec
from litestar.datastructures import State
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from market.clock import Clock
from market.db import Conn, Queries
from market.errors import Conflict, NotFound

Q = Queries("live")
log = logging.getLogger("market.auctions.live")

RETRY_MS: Final = 3_000  # EventSource's reconnection delay after a stream ends
HEARTBEAT_S: Final = 15.0  # a comment line keeps proxies from closing an idle stream
CLIENT_QUEUE: Final = 64  # messages a client may lag behind before it is dropped
HISTORY: Final = 20  # bids in the first event's history
SUBSCRIBE_TIMEOUT_S: Final = 5.0
CHANNEL_PREFIX: Final = "lot:"  # the writer's channel, docs/bidding.md "Live updates"
OPEN_STATUSES: Final = ("announced", "bidding")


class LiveUnavailable(Exception):
    """Redis pub/sub cannot be used right now; the stream carries the first event only."""


# --- the state the first event carries -------------------------------------------------------


class LiveBid(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    code: str  # the bidder code, never the bidder
    amount_fen: int
    kind: str
    at: datetime


class LiveState(msgspec.Struct, frozen=True, kw_only=True):
    """A lot's public live values: the stream's first event and the page's first render.

    The fields of the writer's message (docs/bidding.md "Live updates") plus what the page
    needs to start from: the status, the schedule, the price grid and the next minimum.
    """

    lot_id: int
    reference: str
    round: int
    status: str
    kind: str
    price_fen: int | None
    leader_code: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    bid_count: int
    bids: list[LiveBid]  # newest last, as in the writer's messages
    start_price_fen: int
    increment_fen: int
    min_next_fen: int | None  # None: the lot takes no bids now
    server_time: datetime


def min_next_bid(kind: str, price_fen: int | None, start_fen: int, increment_fen: int) -> int:
    """The least bid the rules can accept next (auctions/rules.py): the start while nobody
    has bid (a fixed-price sale opens at exactly the start, a sealed tender at least at it),
    then the current price plus one increment."""
    if kind == "sealed" or price_fen is None:
        return start_fen
    return price_fen + increment_fen


def _state(row: asyncpg.Record, bids: list[asyncpg.Record], now: datetime) -> LiveState:
    sealed = row["auction_kind"] == "sealed"
    price = None if sealed else row["current_price_fen"]
    return LiveState(
        lot_id=row["id"],
        reference=row["reference"],
        round=row["round"],
        status=row["status"],
        kind=row["auction_kind"],
        price_fen=price,
        leader_code=None if sealed else row["leader_code"],
        starts_at=row["bidding_starts_at"],
        ends_at=row["bidding_ends_at"],
        # A sealed round's count is part of its secret until the close (docs/rules.md §Bidding).
        bid_count=0 if sealed and row["status"] in OPEN_STATUSES else row["bid_count"],
        bids=[] if sealed else [LiveBid(**dict(b)) for b in reversed(bids)],
        start_price_fen=row["start_price_fen"],
        increment_fen=row["increment_fen"],
        min_next_fen=(
            min_next_bid(row["auction_kind"], price, row["start_price_fen"], row["increment_fen"])
            if row["status"] in OPEN_STATUSES
            else None
        ),
        server_time=now,
    )


async def _read(conn: Conn, row: asyncpg.Record | None, now: datetime) -> LiveState:
    if row is None:
        raise NotFound("no_published_lot")
    bids = (
        []
        if row["auction_kind"] == "sealed"
        else await conn.fetch(Q.recent_bids, row["id"], row["round"], HISTORY)
    )
    return _state(row, bids, now)


async def sealed_reveal(pool: asyncpg.Pool, state: LiveState) -> list[LiveBid]:
    """A closed sealed round's standing bids, best first, by bidder code: what its
    participants are shown at the close (docs/rules.md §Bidding). Refused before then."""
    if state.kind != "sealed":
        raise Conflict("unsupported")
    if state.status in OPEN_STATUSES:
        raise Conflict("not_revealed")
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.sealed_reveal, state.lot_id, state.round)
    return [LiveBid(**dict(r)) for r in rows]


async def snapshot(pool: asyncpg.Pool, reference: str, now: datetime) -> LiveState:
    """The lot's live state from PostgreSQL; a draft or unknown lot is NotFound."""
    async with pool.acquire() as conn:
        return await _read(conn, await conn.fetchrow(Q.live_lot, reference), now)


async def snapshot_by_id(pool: asyncpg.Pool, lot_id: int, now: datetime) -> LiveState:
    async with pool.acquire() as conn:
        return await _read(conn, await conn.fetchrow(Q.live_lot_by_id, lot_id), now)


async def standing_proxy(pool: asyncpg.Pool, registration_id: int) -> int | None:
    """The registration's own proxy maximum, if it set one."""
    async with pool.acquire() as conn:
        value: int | None = await conn.fetchval(Q.standing_proxy, registration_id)
        return value


# --- the hub: one pub/sub connection, one subscription per watched lot ---------------------


class Client:
    """One connected stream: the hub puts raw messages in, None says "the stream ends"."""

    __slots__ = ("lot_id", "queue")

    def __init__(self, lot_id: int, size: int) -> None:
        self.lot_id = lot_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=size)

    def end(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def channel(lot_id: int) -> str:
    return f"{CHANNEL_PREFIX}{lot_id}"


class LiveHub:
    """This process's live clients by lot, and its Redis subscriptions."""

    def __init__(
        self, redis: Redis, *, queue_size: int = CLIENT_QUEUE, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.redis = redis
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.clients: dict[int, set[Client]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one (un)subscribe command at a time, in call order
        # SUBSCRIBE commands sent and not yet confirmed, per channel, oldest first: Redis
        # answers them in order. A lot's current confirmation, shared by its joiners.
        self._awaiting: dict[bytes, deque[asyncio.Future[bool]]] = {}
        self._confirmed: dict[int, asyncio.Future[bool]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def subscriptions(self) -> set[str]:
        """The channels this process's pub/sub connection is subscribed to (redis-py's view)."""
        if self._pubsub is None:
            return set()
        return {c.decode() if isinstance(c, bytes) else str(c) for c in self._pubsub.channels}

    async def join(self, lot_id: int) -> Client:
        """A new client of `lot_id`, once Redis confirmed the lot's subscription.
        Raises LiveUnavailable when Redis cannot be used."""
        client = Client(lot_id, self.queue_size)
        members = self.clients.setdefault(lot_id, set())
        first = not members
        members.add(client)
        if first:
            confirmed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._confirmed[lot_id] = confirmed
            self._awaiting.setdefault(channel(lot_id).encode(), deque()).append(confirmed)
            try:
                await self._command("subscribe", lot_id)
            except Exception as exc:
                self.leave(client)
                raise LiveUnavailable(str(exc)) from exc
        else:
            confirmed = self._confirmed[lot_id]
        try:
            ok = await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            self.leave(client)
            raise LiveUnavailable("Redis did not confirm the subscription") from None
        except asyncio.CancelledError:
            self.leave(client)
            raise
        if not ok:
            self.leave(client)
            raise LiveUnavailable("the Redis connection was lost")
        return client

    def leave(self, client: Client) -> None:
        """Forget `client`; the lot's last client unsubscribes. Safe to call twice."""
        members = self.clients.get(client.lot_id)
        if members is None or client not in members:
            return
        members.discard(client)
        if not members:
            del self.clients[client.lot_id]
            self._confirmed.pop(client.lot_id, None)
            if self._pubsub is not None:
                self._spawn(self._command("unsubscribe", client.lot_id))

    async def close(self) -> None:
        """End every stream and drop the Redis connection (application shutdown)."""
        reader, pubsub = self._reader, self._pubsub
        self._lost(pubsub)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for task in list(self._tasks):
            task.cancel()
        if pubsub is not None:
            await _close(pubsub)

    async def _command(self, command: str, lot_id: int) -> None:
        async with self._lock:
            if command == "unsubscribe":
                if self._pubsub is None or lot_id in self.clients:
                    return  # the connection is gone, or a new client came back meanwhile
                await self._pubsub.unsubscribe(channel(lot_id))
                return
            if lot_id not in self.clients:
                return  # its clients left (or Redis was lost) while this waited its turn
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub()
            pubsub = self._pubsub
            try:
                await pubsub.subscribe(channel(lot_id))
            except Exception:
                self._lost(pubsub)
                await _close(pubsub)
                raise
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(pubsub), name="live-hub-reader")

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind, name = message["type"], _bytes(message["channel"])
                if kind == "message":
                    self._deliver(name, _bytes(message["data"]))
                elif kind == "subscribe":
                    waiting = self._awaiting.get(name)
                    if waiting:
                        confirmed = waiting.popleft()
                        if not confirmed.done():
                            confirmed.set_result(True)
                        if not waiting:
                            del self._awaiting[name]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection is gone: everyone re-syncs
            log.warning("live updates lost their Redis connection: %s", exc)
        self._lost(pubsub)
        await _close(pubsub)

    def _deliver(self, name: bytes, data: bytes) -> None:
        try:
            lot_id = int(name.decode().removeprefix(CHANNEL_PREFIX))
        except ValueError:
            return
        for client in list(self.clients.get(lot_id, ())):
            try:
                client.queue.put_nowait(data)
            except asyncio.QueueFull:
                # Too slow: stop feeding it. Its stream ends once it drains what it has
                # been sent; the browser reconnects and starts from PostgreSQL again.
                log.info(
                    "live client of lot %s dropped: %d messages behind", lot_id, self.queue_size
                )
                self.leave(client)
                client.end()

    def _lost(self, pubsub: PubSub | None) -> None:
        """The pub/sub connection is unusable: end every stream, fail every waiting join."""
        if pubsub is None or pubsub is not self._pubsub:
            return
        self._pubsub, self._reader = None, None
        for waiting in self._awaiting.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_result(False)
        self._awaiting.clear()
        self._confirmed.clear()
        for members in self.clients.values():
            for client in members:
                client.end()
        self.clients.clear()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        async def quietly() -> None:
            try:
                await work
            except Exception as exc:  # the reader notices a dead connection too
                log.warning("live hub: Redis command failed: %s", exc)

        task = asyncio.get_running_loop().create_task(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value or b"")


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(Exception):
        await pubsub.aclose()  # type: ignore[no-untyped-call]


def hub_of(state: State) -> LiveHub:
    """The process's hub, kept in the application state (made on first use if the
    lifespan did not make it)."""
    hub: LiveHub | None = state.get("live_hub")
    if hub is None:
        hub = LiveHub(state.redis)
        state.live_hub = hub
    return hub


# --- the stream ---------------------------------------------------------------------------


class _Head(msgspec.Struct):
    round: int
    bid_count: int
    status: str | None = None  # a message about the lot itself (e.g. its close), if any


_head = msgspec.json.Decoder(_Head)
_encode = msgspec.json.Encoder().encode


def _newer(data: bytes, first: LiveState) -> bool:
    """Whether a published message says more than the first event did."""
    try:
        head = _head.decode(data)
    except msgspec.DecodeError:
        return False
    return (
        head.round != first.round
        or head.bid_count > first.bid_count
        or (head.status is not None and head.status != first.status)
    )


async def events(
    hub: LiveHub, pool: asyncpg.Pool, clock: Clock, lot_id: int
) -> AsyncIterator[ServerSentEventMessage]:
    """`state` first (from PostgreSQL), then `update` per published batch, a heartbeat
    comment when idle; ends when Redis is lost or the client is dropped."""
    client: Client | None = None
    try:
        try:
            client = await hub.join(lot_id)
        except LiveUnavailable as exc:
            log.warning("lot %s streams without live updates: %s", lot_id, exc)
        try:
            first = await snapshot_by_id(pool, lot_id, clock.now())
        except Exception as exc:  # the browser retries; nothing to tell it mid-stream
            log.warning("lot %s: no first event: %s", lot_id, exc)
            return
        yield ServerSentEventMessage(event="state", data=_encode(first).decode(), retry=RETRY_MS)
        if client is None:
            return
        while True:
            try:
                data = await asyncio.wait_for(client.queue.get(), hub.heartbeat_s)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            if data is None:
                return
            if _newer(data, first):
                yield ServerSentEventMessage(event="update", data=data.decode())
    finally:
        if client is not None:
            hub.leave(client)
