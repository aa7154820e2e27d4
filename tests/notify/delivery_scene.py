"""A lot with registered buyers, outbox rows, a real SMTP server and a burst worker: the
setting of the delivery tests (relay, delivery, inbox)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import msgspec
from aiosmtpd.controller import Controller
from arq.connections import ArqRedis, create_pool
from arq.worker import Worker
from litestar import Litestar

from auctions import registration
from market.app import create_app
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.models import LotDraft, LotOut, PublishInput
from market.lots.terms import TermsInput
from market.notify.delivery import Channels, NotifyPolicy, close_channels, open_channels
from market.notify.jobs import JOBS
from market.notify.routes import ROUTES
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case
from workers.settings import WorkerSettings, worker_context, worker_redis

START = 1_200_000_00  # ¥1,200,000.00
_keys = itertools.count(1)


# --- SMTP ------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free loopback port (aiosmtpd, in its own thread)."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def with_smtp(settings: Settings, port: int) -> Settings:
    return msgspec.structs.replace(settings, smtp_host="127.0.0.1", smtp_port=port)


# --- the world --------------------------------------------------------------------------


@dataclass
class Person:
    org_id: int
    user_id: int
    email: str
    registration_id: int | None = None


@dataclass
class Scene:
    lot: LotOut
    bank: Person
    buyers: list[Person] = field(default_factory=list)


async def make_scene(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, *, buyers: int = 2
) -> Scene:
    """A published lot and `buyers` organisations registered for its round."""
    bank_org, bank_user, bank_email = await make_org(pool, clock.now(), kind="bank")
    case_id, _ = await make_case(pool, clock.now(), bank_org, bank_user, assets=1)
    policy_ = lots.policy_for(settings)
    me = await viewer(pool, bank_user)
    starts = clock.now() + timedelta(days=30, hours=1)
    lot = await draft_lot(
        pool,
        clock.now(),
        policy_,
        me,
        case_id,
        LotDraft(
            title="锂电池正极材料专利包",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            ),
        ),
    )
    lot = await lot_action(pool, clock.now(), policy_, me, lot.id, PublishInput())
    scene = Scene(lot=lot, bank=Person(bank_org, bank_user, bank_email))
    for n in range(buyers):
        org, user, email = await make_org(pool, clock.now(), kind="buyer", name=f"竞买人{n}公司")
        done = await (await act_as(pool, clock.now(), user))(
            registration.register_for_lot,
            registration.RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT),
        )
        scene.buyers.append(Person(org, user, email, done.registration.id))
    return scene


async def open_bidding(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, scene: Scene
) -> None:
    """Every buyer's deposit confirmed by an operator, and the lot's bidding opened; the
    clock 5 minutes into it."""
    from auctions.deposits import ConfirmDeposit, confirm_deposit
    from market.lots.jobs import advance_lots

    _, op_user, _ = await make_org(pool, clock.now(), kind="operator")
    for buyer in scene.buyers:
        assert buyer.registration_id is not None
        async with pool.acquire() as conn:
            reg = await registration.load(conn, buyer.registration_id, buyer.org_id)
        await (await act_as(pool, clock.now(), op_user))(
            confirm_deposit,
            ConfirmDeposit(transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen),
        )
    assert scene.lot.bidding_starts_at is not None
    clock.set(scene.lot.bidding_starts_at)
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    clock.advance(minutes=5)


async def bid_in_turn(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    scene: Scene,
    steps: list[tuple[Person, Any, int]],
) -> None:
    """Each (bidder, bid or proxy body, expected status) through the bid writer, 2 s apart:
    each its own batch."""
    from auctions.bidding import TokenBucket, place
    from auctions.writer import Writers

    writers = Writers(pool, clock, lots.policy_for(settings))
    limiter = TokenBucket(1000, 1000)
    for who, body, expected in steps:
        status, answer = await place(
            pool=pool,
            writers=writers,
            limiter=limiter,
            at=clock.now(),
            org_id=who.org_id,
            reference=scene.lot.reference,
            body=body,
            raw=msgspec.json.encode(body),
            idempotency_key=None,
        )
        assert status == expected, answer
        clock.advance(seconds=2)
    await writers.stop()


async def add_user(
    pool: asyncpg.Pool, at: datetime, org_id: int, email: str, *, language: str = "zh"
) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO users (org_id, email, display_name, password_hash, role, language,"
                " created_at) VALUES ($1, $2, $3, 'x', 'officer', $4, $5) RETURNING id",
                org_id,
                email,
                email.split("@", maxsplit=1)[0],
                language,
                at,
            )
        )


async def set_language(pool: asyncpg.Pool, user_id: int, language: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET language=$2 WHERE id=$1", user_id, language)


async def owe(
    pool: asyncpg.Pool,
    at: datetime,
    event: str,
    *,
    user_id: int | None = None,
    org_id: int | None = None,
    lot_id: int | None = None,
    payload: dict[str, Any] | None = None,
    key: str | None = None,
) -> int:
    """An outbox row as a producer writes it; returns its id."""
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO outbox (event, recipient_org_id, recipient_user_id, lot_id, payload,"
                " dedupe_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                event,
                org_id,
                user_id,
                lot_id,
                payload or {},
                key or f"test:{event}:{next(_keys)}",
                at,
            )
        )


async def rows(pool: asyncpg.Pool, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def value(pool: asyncpg.Pool, sql: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


# --- the worker --------------------------------------------------------------------------


async def arq_pool(settings: Settings) -> ArqRedis:
    return await create_pool(worker_redis(settings))


async def run_worker(
    settings: Settings, clock: FrozenClock, notify_policy: NotifyPolicy | None = None
) -> Worker:
    """Run the notification jobs queued now, in burst mode, as the real worker would."""
    ctx = worker_context(settings, clock)
    if notify_policy is not None:
        ctx["notify_policy"] = notify_policy

    async def startup(ctx: dict[str, Any]) -> None:
        await WorkerSettings.on_startup(ctx)
        if "notify_channels" not in ctx:  # until workers/settings.py opens them itself
            await open_channels(ctx)

    worker = Worker(
        functions=JOBS,
        redis_settings=worker_redis(settings),
        burst=True,
        on_startup=startup,
        on_shutdown=WorkerSettings.on_shutdown,
        ctx=ctx,
        poll_delay=0.05,
        handle_signals=False,
        max_jobs=20,
    )
    try:
        await asyncio.wait_for(worker.main(), timeout=60)
    finally:
        await close_channels(worker.ctx)
        await worker.close()
    return worker


def notify_app(settings: Settings, clock: FrozenClock) -> Litestar:
    """The app, with this area's routes even before market/app.py lists them."""
    app = create_app(settings, clock)
    if not any(route.path == "/inbox" for route in app.routes):
        for handler in ROUTES:
            app.register(handler)
    return app


def job_ctx(
    pool: asyncpg.Pool, settings: Settings, clock: FrozenClock, **extra: Any
) -> dict[str, Any]:
    """The context a job gets from the worker, for calling a job directly (close its
    channels with delivery.close_channels)."""
    return {
        "pool": pool,
        "settings": settings,
        "clock": clock,
        "notify_channels": Channels(settings),
        **extra,
    }
