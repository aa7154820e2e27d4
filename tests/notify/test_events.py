"""The notification producers against real PostgreSQL: bidding_opened when the
lifecycle opens a lot, lot_matched when a lot is published, monitoring_flag when the
collateral monitor raises a flag. Each is written in the transaction of its cause, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from auctions import deposits, registration
from market.clock import FrozenClock
from market.collateral.jobs import monitor_collateral
from market.commands import SYSTEM, Context, unit_of_work
from market.lots import services as lots
from market.lots.models import LotDraft, LotOut, PublishInput
from market.lots.terms import TermsInput
from market.notify import events, relay
from market.notify.interests import InterestInput, create_interest
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case
from tests.notify.delivery_scene import arq_pool

START = 700_000_00
DEPOSIT = 70_000_00


@dataclass
class Bidder:
    org_id: int
    user_id: int
    registration_id: int
    confirmed: bool


@dataclass
class Scene:
    lot: LotOut
    bank_org: int
    bank_user: int
    bidders: list[Bidder] = field(default_factory=list)

    @property
    def starts_at(self) -> datetime:
        assert self.lot.bidding_starts_at is not None
        return self.lot.bidding_starts_at

    @property
    def ends_at(self) -> datetime:
        assert self.lot.bidding_ends_at is not None
        return self.lot.bidding_ends_at


async def make_lot(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    title: str = "锂电池正极材料专利包",
    window: timedelta = timedelta(days=2),
    publish: bool = True,
    **terms: Any,
) -> Scene:
    """A lot on a valued, disclosed case (its patent is IPC H01M 4/525, "一种锂电池正极材料
    的制备方法"), starting 30 days and an hour from now, published unless told not to."""
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    me = await viewer(pool, bank_user)
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, clock.now(), bank_org, bank_user)
    starts = clock.now() + timedelta(days=30, hours=1)
    draft = LotDraft(
        title=title,
        terms=TermsInput(
            start_price_fen=START,
            deposit_fen=DEPOSIT,
            bidding_starts_at=starts,
            bidding_ends_at=starts + window,
            **terms,
        ),
    )
    lot = await draft_lot(pool, clock.now(), policy, me, case_id, draft)
    if publish:
        lot = await lot_action(pool, clock.now(), policy, me, lot.id, PublishInput())
    return Scene(lot=lot, bank_org=bank_org, bank_user=bank_user)


async def register_bidders(
    pool: asyncpg.Pool, clock: FrozenClock, scene: Scene, *, confirmed: int, awaiting: int = 0
) -> list[Bidder]:
    """Buyers registered for the lot's round; the first `confirmed` paid their deposit."""
    _, op_user, _ = await make_org(pool, clock.now(), kind="operator")
    made = []
    for n in range(confirmed + awaiting):
        org, user, _ = await make_org(pool, clock.now(), kind="buyer")
        reg = (
            await (await act_as(pool, clock.now(), user))(
                registration.register_for_lot,
                registration.RegisterForLot(
                    reference=scene.lot.reference, agreement_version=AGREEMENT
                ),
            )
        ).registration
        if n < confirmed:
            await (await act_as(pool, clock.now(), op_user))(
                deposits.confirm_deposit,
                deposits.ConfirmDeposit(
                    transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen
                ),
            )
        made.append(Bidder(org, user, reg.id, n < confirmed))
    scene.bidders += made
    return made


async def open_bidding(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, scene: Scene
) -> None:
    """The lots worker opens the lot at its announced instant."""
    clock.set(scene.starts_at)
    opened = await lots.open_due_lots(pool, clock.now(), lots.policy_for(settings))
    assert scene.lot.id in opened
    scene.lot = await lots.get_lot(pool, scene.bank_org, scene.lot.id)
    assert scene.lot.status == "bidding"


async def outbox(pool: asyncpg.Pool, event: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT id, event, recipient_org_id, recipient_user_id, lot_id, payload, dedupe_key,"
            " created_at FROM outbox WHERE event = $1 ORDER BY id",
            event,
        )


# --- bidding_opened ------------------------------------------------------------------------


async def test_opening_tells_every_registered_bidder_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_lot(pool, clock, settings)
    bidders = await register_bidders(pool, clock, scene, confirmed=2, awaiting=1)
    # Registered, published, not yet open: nobody is told bidding opened.
    assert await outbox(pool, "bidding_opened") == []

    await open_bidding(pool, clock, settings, scene)
    rows = await outbox(pool, "bidding_opened")
    assert [(r["recipient_org_id"], r["recipient_user_id"]) for r in rows] == [
        (b.org_id, b.user_id) for b in bidders
    ]
    lot = scene.lot
    assert [r["dedupe_key"] for r in rows] == [
        f"bidding_opened:{lot.id}:1:{b.registration_id}" for b in bidders
    ]
    assert all(r["lot_id"] == lot.id and r["created_at"] == scene.starts_at for r in rows)
    payload = rows[0]["payload"]
    assert payload["lot_reference"] == lot.reference
    assert payload["start_price_fen"] == START
    assert datetime.fromisoformat(payload["ends_at"]) == scene.ends_at
    assert [r["payload"]["deposit_status"] for r in rows] == ["confirmed", "confirmed", "awaiting"]

    # The worker again, and the producer called again: nothing twice.
    clock.advance(minutes=1)
    assert await lots.open_due_lots(pool, clock.now(), lots.policy_for(settings)) == []
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        assert await events.bidding_opened(uow, lot.id, 1) == 0
        assert uow.events == 0
    assert len(await outbox(pool, "bidding_opened")) == 3


async def test_opening_and_its_events_commit_together(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_lot(pool, clock, settings)
    await register_bidders(pool, clock, scene, confirmed=1)
    policy = lots.policy_for(settings)
    clock.set(scene.starts_at)

    async def open_then_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            assert await lots.open_if_due(conn, clock.now(), policy, scene.lot.id)
            written = await conn.fetch("SELECT 1 FROM outbox WHERE event='bidding_opened'")
            assert len(written) == 1
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await open_then_fail()
    assert await outbox(pool, "bidding_opened") == []
    assert (await lots.get_lot(pool, scene.bank_org, scene.lot.id)).status == "announced"


async def test_a_lot_nobody_registered_for_opens_silently(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_lot(pool, clock, settings)
    await open_bidding(pool, clock, settings, scene)
    assert await outbox(pool, "bidding_opened") == []


# --- lot_matched ---------------------------------------------------------------------------


async def _buyer_with(
    pool: asyncpg.Pool, clock: FrozenClock, *interests: InterestInput
) -> tuple[int, int, list[int]]:
    org, user, _ = await make_org(pool, clock.now(), kind="buyer")
    act = await act_as(pool, clock.now(), user)
    ids = [(await act(create_interest, i)).id for i in interests]
    return org, user, ids


async def test_publication_matches_saved_interests(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    yuan = 100  # fen
    wanted = {
        "ipc_class": InterestInput(ipc_prefixes=["H01M"]),
        "ipc_group": InterestInput(ipc_prefixes=["G06F", "H01M 4/"]),
        "keyword": InterestInput(keywords=["锂电池"]),
        "any_keyword": InterestInput(keywords=["图像识别", "正极材料"]),
        "price": InterestInput(price_min_fen=600_000 * yuan, price_max_fen=800_000 * yuan),
        "all_kinds": InterestInput(
            ipc_prefixes=["H01"], keywords=["制备方法"], price_max_fen=START
        ),
        "one_char": InterestInput(keywords=["锂"]),
    }
    unwanted = {
        "other_class": InterestInput(ipc_prefixes=["G06F"]),
        "other_group": InterestInput(ipc_prefixes=["H01M 10/"]),
        "other_keyword": InterestInput(keywords=["图像识别"]),
        "near_keyword": InterestInput(keywords=["池锂"]),
        "too_cheap": InterestInput(price_min_fen=START + 1),
        "too_dear": InterestInput(price_max_fen=START - 1),
        # every kind given must hold: the class matches, the keyword does not
        "kinds_and": InterestInput(ipc_prefixes=["H01M"], keywords=["图像识别"]),
    }
    users: dict[str, tuple[int, int, list[int]]] = {}
    for name, interest in (wanted | unwanted).items():
        users[name] = await _buyer_with(pool, clock, interest)
    # Two matching interests of one buyer make one message (its first interest).
    users["twice"] = await _buyer_with(
        pool, clock, InterestInput(keywords=["锂电池"]), InterestInput(ipc_prefixes=["H"])
    )
    # A disabled user hears nothing.
    disabled = await _buyer_with(pool, clock, InterestInput(ipc_prefixes=["H01M"]))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET disabled_at=$2 WHERE id=$1", disabled[1], clock.now())

    scene = await make_lot(pool, clock, settings, publish=False)
    assert await outbox(pool, "lot_matched") == []  # a draft is nobody's business
    policy = lots.policy_for(settings)
    me = await viewer(pool, scene.bank_user)
    clock.advance(minutes=5)
    scene.lot = await lot_action(pool, clock.now(), policy, me, scene.lot.id, PublishInput())

    rows = await outbox(pool, "lot_matched")
    by_user = {r["recipient_user_id"]: r for r in rows}
    expected = {users[n][1] for n in [*wanted, "twice"]}
    assert set(by_user) == expected
    assert len(rows) == len(expected)
    for name in [*wanted, "twice"]:
        org, user, ids = users[name]
        row = by_user[user]
        assert row["recipient_org_id"] == org
        assert row["dedupe_key"] == f"lot_matched:{scene.lot.id}:{ids[0]}"
        assert row["payload"]["interest_id"] == ids[0]
        assert row["created_at"] == clock.now()
    payload = rows[0]["payload"]
    assert payload["lot_reference"] == scene.lot.reference
    assert scene.lot.reference.startswith("LOT-")  # numbered before the event was written
    assert payload["start_price_fen"] == START
    assert payload["deposit_fen"] == DEPOSIT
    assert datetime.fromisoformat(payload["starts_at"]) == scene.starts_at

    # Matching again (a retried publication) adds nothing.
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        assert await events.lot_published(uow, scene.lot.id) == 0
    assert len(await outbox(pool, "lot_matched")) == len(expected)


async def test_a_producer_kicks_the_relay_once_its_events_are_committed(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_lot(pool, clock, settings, publish=False)
    await _buyer_with(pool, clock, InterestInput(ipc_prefixes=["H01M"]))
    arq = await arq_pool(settings)
    ctx = Context(pool=pool, clock=clock, redis=arq)
    try:
        # Rolled back: nothing was committed, nobody is kicked.
        async def publish_then_fail() -> None:
            async with unit_of_work(ctx, SYSTEM) as uow:
                assert await events.lot_published(uow, scene.lot.id) == 1
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError, match="rolled back"):
            await publish_then_fail()
        assert await redis.zscore("arq:queue", relay.RELAY_JOB_ID) is None
        # Nothing owed: no kick either.
        async with unit_of_work(ctx, SYSTEM) as uow:
            await events.monitoring_flags_raised(uow, scene.bank_org, [])
        assert await redis.zscore("arq:queue", relay.RELAY_JOB_ID) is None
        # Committed: the relay is asked to run now rather than at its next tick.
        async with unit_of_work(ctx, SYSTEM) as uow:
            assert await events.lot_published(uow, scene.lot.id) == 1
            assert uow.events == 1
        assert await redis.zscore("arq:queue", relay.RELAY_JOB_ID) is not None
    finally:
        await arq.aclose()
    assert len(await outbox(pool, "lot_matched")) == 1


async def test_kicking_the_relay_is_best_effort(redis: Redis) -> None:
    """A Redis that is no job queue, or one that fails, never fails the change that
    owed the notifications: the relay's cron runs every second anyway."""
    await relay.kick(redis)
    assert await redis.zscore("arq:queue", relay.RELAY_JOB_ID) is None

    class Broken(ArqRedis):
        async def enqueue_job(self, *args: Any, **kwargs: Any) -> None:
            raise RedisConnectionError("down")

    await relay.kick(Broken())


async def test_interests_saved_after_publication_hear_nothing_of_it(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_lot(pool, clock, settings)
    await _buyer_with(pool, clock, InterestInput(ipc_prefixes=["H01M"]))
    await register_bidders(pool, clock, scene, confirmed=1)
    await open_bidding(pool, clock, settings, scene)
    assert await outbox(pool, "lot_matched") == []


# --- monitoring_flag -----------------------------------------------------------------------


async def test_a_raised_flag_is_told_to_the_bank_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    _, asset_ids = await make_case(pool, clock.now(), bank_org, bank_user, assets=2)
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    assert (await monitor_collateral(ctx))["raised"] == 0
    assert await outbox(pool, "monitoring_flag") == []

    # The annuities are paid through 2026-12-31: due within 30 days from December 2.
    clock.set(datetime.fromisoformat("2026-12-02T02:00:00+00:00"))
    assert (await monitor_collateral(ctx))["raised"] == 2
    rows = await outbox(pool, "monitoring_flag")
    async with pool.acquire() as conn:
        flags = await conn.fetch(
            "SELECT id, asset_id, kind FROM monitoring_flags WHERE resolved_at IS NULL ORDER BY id"
        )
    assert [r["dedupe_key"] for r in rows] == [f"monitoring_flag:{f['id']}" for f in flags]
    assert all(r["recipient_org_id"] == bank_org for r in rows)
    assert all(r["recipient_user_id"] is None and r["lot_id"] is None for r in rows)
    assert sorted(r["payload"]["asset_id"] for r in rows) == sorted(asset_ids)
    payload = rows[0]["payload"]
    assert payload["kind"] == "annuity_due"
    assert payload["flag_id"] == flags[0]["id"]
    assert payload["detail"]["annuity_paid_through"] == "2026-12-31"
    assert payload["asset_number"]

    # The daily job again: the flags stay open, nothing is raised or told twice.
    clock.advance(days=1)
    assert (await monitor_collateral(ctx))["raised"] == 0
    assert len(await outbox(pool, "monitoring_flag")) == 2

    # Paid: the flag resolves. Unpaid again later: a new flag, a new message.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE ip_assets SET annuity_paid_through='2027-12-31' WHERE id=$1", asset_ids[0]
        )
    assert (await monitor_collateral(ctx))["resolved"] == 1
    assert len(await outbox(pool, "monitoring_flag")) == 2
    # A year on: the paid annuity is due again, the unpaid one's patent has lapsed.
    clock.set(datetime.fromisoformat("2027-12-10T02:00:00+00:00"))
    assert (await monitor_collateral(ctx))["raised"] == 2
    rows = await outbox(pool, "monitoring_flag")
    assert {(r["payload"]["asset_id"], r["payload"]["kind"]) for r in rows[2:]} == {
        (asset_ids[0], "annuity_due"),
        (asset_ids[1], "lapsed"),
    }
    assert len({r["dedupe_key"] for r in rows}) == 4
