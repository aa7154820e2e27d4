"""Closing on time, settlement, payment and default against real PostgreSQL and Redis
(docs/rules.md §After the close): the close happens at the effective end and is recorded there however
late the worker runs; extensions move it; one close however many workers try; losing
deposits go back at once; payment applies the winner's deposit; an unpaid sale is voided,
its deposit forfeited and the defaulter barred. After every step the ledger balances and
every deposit is in exactly one state with exactly one settling posting."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from arq.connections import ArqRedis, create_pool
from redis.asyncio import Redis

from auctions import closing, deposits, registration
from auctions.closing import RecordPayment
from auctions.deposits import ConfirmDeposit
from auctions.jobs import (
    CLOSE_GRACE,
    CRON,
    JOBS,
    close_due_lots,
    close_job_id,
    close_lot_job,
    default_overdue_sales,
    schedule_close,
)
from auctions.registration import RegisterForLot
from market.clock import FrozenClock
from market.errors import Conflict, Forbidden, Invalid
from market.lots import services as lots
from market.lots.jobs import advance_lots
from market.lots.models import LotDraft, LotOut, PublishInput, RelistInput
from market.lots.terms import Fee, TermsInput, fee_fen
from market.settings import Settings
from tests.factories import AGREEMENT, act_as, make_org, viewer
from tests.lots.factories import draft_lot, lot_action, make_case
from tests.transfer.factories import complete_transfer

START = 700_000_00
DEPOSIT = 70_000_00
INCREMENT = 5_000_00


@dataclass
class Buyer:
    org_id: int
    user_id: int
    registration_id: int
    bidder_code: str
    org_name: str


@dataclass
class Scene:
    lot: LotOut
    bank_org: int
    bank_user: int
    operator_org: int
    operator_user: int
    buyers: list[Buyer] = field(default_factory=list)  # deposits confirmed
    waiting: list[Buyer] = field(default_factory=list)  # registered, deposit not paid
    ctx: dict[str, Any] = field(default_factory=dict)

    @property
    def ends_at(self) -> datetime:
        assert self.lot.bidding_ends_at is not None
        return self.lot.bidding_ends_at


async def make_scene(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    buyers: int = 3,
    waiting: int = 1,
    fee: Fee | None = None,
    start_offset: timedelta = timedelta(days=30, hours=1),
    bank: tuple[int, int] | None = None,
    operator: tuple[int, int] | None = None,
) -> Scene:
    """A published lot with registrations (deposits confirmed by the operator through
    auctions/deposits.py), then opened for bidding by the lots worker at its instant."""
    if bank is None:
        org, user, _ = await make_org(pool, clock.now(), kind="bank")
        bank = (org, user)
    if operator is None:
        op_org, op_user, _ = await make_org(pool, clock.now(), kind="operator")
        operator = (op_org, op_user)
    me = await viewer(pool, bank[1])
    policy = lots.policy_for(settings)
    case_id, _ = await make_case(pool, clock.now(), bank[0], bank[1], assets=2)
    starts = clock.now() + start_offset
    draft = LotDraft(
        title="锂电池正极材料专利包",
        terms=TermsInput(
            start_price_fen=START,
            deposit_fen=DEPOSIT,
            increment_fen=INCREMENT,
            bidding_starts_at=starts,
            bidding_ends_at=starts + timedelta(days=1),
            **({"fee": fee} if fee is not None else {}),
        ),
    )
    lot = await draft_lot(pool, clock.now(), policy, me, case_id, draft)
    lot = await lot_action(pool, clock.now(), policy, me, lot.id, PublishInput())
    scene = Scene(
        lot=lot,
        bank_org=bank[0],
        bank_user=bank[1],
        operator_org=operator[0],
        operator_user=operator[1],
    )
    operator_act = await act_as(pool, clock.now(), operator[1])
    for n in range(buyers + waiting):
        org, user, _ = await make_org(pool, clock.now(), kind="buyer", name=f"竞买人{n}有限公司")
        buyer_act = await act_as(pool, clock.now(), user)
        done = await buyer_act(
            registration.register_for_lot,
            RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT),
        )
        reg = done.registration
        buyer = Buyer(org, user, reg.id, reg.bidder_code, f"竞买人{n}有限公司")
        if n < buyers:
            await operator_act(
                deposits.confirm_deposit,
                ConfirmDeposit(
                    transfer_reference=reg.transfer_reference, amount_fen=reg.deposit_fen
                ),
            )
            scene.buyers.append(buyer)
        else:
            scene.waiting.append(buyer)
    scene.ctx = {"pool": pool, "clock": clock, "settings": settings}
    saved = clock.now()
    clock.set(starts)
    await advance_lots(scene.ctx)
    clock.set(saved)
    scene.lot = await lots.get_lot(pool, bank[0], lot.id)
    assert scene.lot.status == "bidding"
    return scene


async def place_bids(
    pool: asyncpg.Pool,
    lot_id: int,
    bids: list[tuple[int, int, datetime]],
    *,
    ends_at: datetime | None = None,
) -> None:
    """Accepted bids as the writer records them: bids rows and the lot's live columns."""
    async with pool.acquire() as conn, conn.transaction():
        lot = await conn.fetchrow(
            "SELECT round, auction_seq, bid_count FROM lots WHERE id=$1 FOR UPDATE", lot_id
        )
        seq, count = lot["auction_seq"], lot["bid_count"]
        for registration_id, amount, at in bids:
            seq += 1
            count += 1
            await conn.execute(
                "INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)"
                " VALUES ($1, $2, $3, $4, $5, 'manual', $6)",
                lot_id,
                lot["round"],
                seq,
                registration_id,
                amount,
                at,
            )
        last = bids[-1]
        await conn.execute(
            "UPDATE lots SET current_price_fen=$2, leader_registration_id=$3, bid_count=$4,"
            " auction_seq=$5, first_bid_at=coalesce(first_bid_at, $6),"
            " bidding_ends_at=coalesce($7, bidding_ends_at) WHERE id=$1",
            lot_id,
            last[1],
            last[0],
            count,
            seq,
            bids[0][2],
            ends_at,
        )


async def ledger_total(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs"))


async def balance(pool: asyncpg.Pool, code: str) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(l.amount_fen), 0) FROM ledger_legs l JOIN ledger_accounts a"
                " ON a.id = l.account_id WHERE a.code = $1",
                code,
            )
        )


async def check_books(pool: asyncpg.Pool) -> dict[int, str]:
    """The ledger balances; every deposit is in one state with the postings that state
    needs: confirmed ones one `deposit_confirmed`, settled ones exactly one settling
    posting of their kind and no other, awaiting ones none. Returns registration → status."""
    assert await ledger_total(pool) == 0
    async with pool.acquire() as conn:
        regs = await conn.fetch("SELECT id, deposit_status, settled_at FROM registrations")
        entries = await conn.fetch(
            "SELECT source_kind, source_id FROM ledger_entries WHERE source_kind LIKE 'deposit_%'"
        )
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_legs GROUP BY entry_id"
            " HAVING sum(amount_fen) <> 0) x"
        )
    assert unbalanced == 0
    kinds: dict[str, list[str]] = {}
    for e in entries:
        kinds.setdefault(e["source_id"], []).append(e["source_kind"])
    settling = {"released", "applied", "forfeited"}
    for r in regs:
        got = sorted(kinds.get(str(r["id"]), []))
        status = r["deposit_status"]
        assert status in {"awaiting", "confirmed", *settling}
        if status == "awaiting":
            assert got == []
        elif status == "confirmed":
            assert got == ["deposit_confirmed"] and r["settled_at"] is None
        else:
            assert got == sorted(["deposit_confirmed", f"deposit_{status}"]), (r["id"], got)
            assert r["settled_at"] is not None
    return {r["id"]: r["deposit_status"] for r in regs}


async def rows(pool: asyncpg.Pool, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def value(pool: asyncpg.Pool, sql: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def close_one(pool: asyncpg.Pool, settings: Settings, at: datetime, lot_id: int) -> Any:
    """Close the lot if it is due by `at`, as the exchange does (at its effective end)."""
    return await closing.close_when_due(pool, at, lots.policy_for(settings), lot_id)


async def pay(
    pool: asyncpg.Pool, clock: FrozenClock, operator_user: int, reference: str, amount: int
) -> closing.SaleOut:
    """The operator's user records a transfer through the command, at the clock's instant."""
    act = await act_as(pool, clock.now(), operator_user)
    data = RecordPayment(payment_reference=reference, amount_fen=amount)
    return await act(closing.record_payment, data)


# --- on time ------------------------------------------------------------------------------


async def test_closes_exactly_at_the_effective_end_and_catches_up_after_downtime(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    first = await make_scene(pool, clock, settings, buyers=2, waiting=0)
    later = await make_scene(
        pool, clock, settings, buyers=2, waiting=0, start_offset=timedelta(days=30, hours=3)
    )
    policy = lots.policy_for(settings)
    a, b = first.buyers
    await place_bids(
        pool, first.lot.id, [(a.registration_id, START, first.ends_at - timedelta(hours=2))]
    )

    assert await closing.close_due(pool, first.ends_at - timedelta(microseconds=1), policy) == []
    assert (await lots.get_lot(pool, first.bank_org, first.lot.id)).status == "bidding"
    assert await closing.close_due(pool, first.ends_at, policy) == [first.lot.id]
    assert (await lots.get_lot(pool, first.bank_org, first.lot.id)).status == "sold"
    closed_at = await value(
        pool, "SELECT at FROM lot_transitions WHERE lot_id=$1 AND action='close'", first.lot.id
    )
    assert closed_at == first.ends_at
    assert await value(pool, "SELECT closed_at FROM sales WHERE lot_id=$1", first.lot.id) == (
        first.ends_at
    )
    audited = await rows(
        pool, "SELECT at, chain_org_id, actor_user_id FROM audit_log WHERE action='sale.close'"
    )
    assert [tuple(r) for r in audited] == [(first.ends_at, first.bank_org, None)]
    await check_books(pool)

    # The worker is down for hours; the sweep on its return closes the later lot at its
    # own effective end, not at the moment it ran.
    clock.set(later.ends_at + timedelta(hours=5))
    result = await close_due_lots(later.ctx)
    assert result["closed"] == [later.lot.id]
    got = await rows(
        pool,
        "SELECT at, to_status FROM lot_transitions WHERE lot_id=$1 AND action='close'",
        later.lot.id,
    )
    assert [(r["at"], r["to_status"]) for r in got] == [(later.ends_at, "failed")]
    assert (
        await value(
            pool, "SELECT closed_at FROM lot_rounds WHERE lot_id=$1 AND round=1", later.lot.id
        )
        == later.ends_at
    )
    assert (await close_due_lots(later.ctx))["closed"] == []  # running again: nothing
    statuses = await check_books(pool)
    assert statuses[b.registration_id] == "released"
    assert statuses[a.registration_id] == "confirmed"  # the winner's, until payment


async def test_extension_moves_the_close_and_the_job(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2, waiting=0)
    a, b = scene.buyers
    old_end = scene.ends_at
    new_end = old_end - timedelta(seconds=30) + timedelta(minutes=5)
    await place_bids(
        pool,
        scene.lot.id,
        [
            (a.registration_id, START, old_end - timedelta(hours=1)),
            (b.registration_id, START + INCREMENT, old_end - timedelta(seconds=30)),
        ],
        ends_at=new_end,
    )
    arq: ArqRedis = await create_pool(worker_redis_settings(settings))
    try:
        ctx = {**scene.ctx, "redis": arq}
        # The job enqueued for the old end runs there and finds the end moved.
        assert await schedule_close(arq, scene.lot.id, 1, old_end, clock)
        assert not await schedule_close(arq, scene.lot.id, 1, old_end, clock)  # same id: once
        clock.set(old_end + CLOSE_GRACE)
        assert await close_lot_job(ctx, scene.lot.id) is None
        assert (await lots.get_lot(pool, scene.bank_org, scene.lot.id)).status == "bidding"

        # The sweep enqueues the job for the new end, under a new id, deferred to it.
        swept = await close_due_lots(ctx)
        assert swept == {"closed": [], "scheduled": [scene.lot.id]}
        job_id = close_job_id(scene.lot.id, 1, new_end)
        assert job_id == f"lot-close:{scene.lot.id}:1:{int(new_end.timestamp() * 1000)}"
        assert await arq.zscore("arq:queue", job_id) is not None
        assert (await close_due_lots(ctx))["scheduled"] == []  # already enqueued

        clock.set(new_end + CLOSE_GRACE - timedelta(microseconds=1))
        assert await close_lot_job(ctx, scene.lot.id) is None
        clock.set(new_end + CLOSE_GRACE)
        done = await close_lot_job(ctx, scene.lot.id)
        assert done is not None and done["status"] == "sold"
        assert done["closed_at"] == new_end.isoformat()
        assert await close_lot_job(ctx, scene.lot.id) is None  # a retry: nothing more
    finally:
        await arq.aclose()
    sale = (await rows(pool, "SELECT * FROM sales WHERE lot_id=$1", scene.lot.id))[0]
    assert (sale["registration_id"], sale["price_fen"], sale["closed_at"]) == (
        b.registration_id,
        START + INCREMENT,
        new_end,
    )
    await check_books(pool)


def worker_redis_settings(settings: Settings) -> Any:
    from workers.settings import worker_redis

    return worker_redis(settings)


# --- settlement -----------------------------------------------------------------------------


@pytest.mark.parametrize("premium", [False, True])
async def test_sold_lot_settles_and_releases_losing_deposits_at_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, premium: bool
) -> None:
    fee = Fee(kind="buyer_premium", premium_bp=300) if premium else None
    scene = await make_scene(pool, clock, settings, buyers=3, waiting=1, fee=fee)
    a, b, idle = scene.buyers
    price = START + 4 * INCREMENT
    await place_bids(
        pool,
        scene.lot.id,
        [
            (a.registration_id, START, scene.ends_at - timedelta(hours=3)),
            (b.registration_id, START + 2 * INCREMENT, scene.ends_at - timedelta(hours=2)),
            (a.registration_id, price, scene.ends_at - timedelta(hours=1)),
        ],
    )
    clock.set(scene.ends_at + timedelta(minutes=1))
    result = await close_one(pool, settings, clock.now(), scene.lot.id)
    assert result is not None and result.status == "sold"
    assert (result.winner, result.price_fen, result.closed_at) == (
        a.registration_id,
        price,
        scene.ends_at,
    )
    assert sorted(result.released) == sorted([b.registration_id, idle.registration_id])
    # Identities are revealed with the result: who was behind each code.
    revealed = {x.bidder_code: x.org_name for x in result.bidders}
    for buyer in [*scene.buyers, *scene.waiting]:
        assert revealed[buyer.bidder_code] == buyer.org_name

    sale = result.sale
    assert sale is not None
    commission = fee_fen(Fee(), price)
    if premium:
        prem = price * 300 // 10_000
        assert (sale.fee_kind, sale.fee_fen) == ("buyer_premium", prem)
        assert sale.balance_due_fen == price + prem - DEPOSIT
        assert await balance(pool, "income:buyer_premium") == -prem
    else:
        assert (sale.fee_kind, sale.fee_fen) == ("commission", commission)
        assert commission == 5 * price // 100  # the 5 % bracket: below CNY 2 m
        assert sale.balance_due_fen == price - DEPOSIT  # commission is a disposal cost
    assert sale.deposit_fen == DEPOSIT
    assert sale.due_at == scene.ends_at + timedelta(days=10)
    assert re.fullmatch(r"JK[A-HJ-NP-Z2-9]{10}", sale.payment_reference)
    assert sale.status == "awaiting_payment"
    stored = (await rows(pool, "SELECT * FROM sales WHERE lot_id=$1", scene.lot.id))[0]
    assert stored["balance_due_fen"] == sale.balance_due_fen

    statuses = await check_books(pool)
    assert statuses[a.registration_id] == "confirmed"
    assert statuses[b.registration_id] == statuses[idle.registration_id] == "released"
    assert statuses[scene.waiting[0].registration_id] == "awaiting"  # no money came
    assert await balance(pool, f"sale:receivable:{sale.id}") == sale.balance_due_fen + DEPOSIT
    assert await balance(pool, f"proceeds:lot:{scene.lot.id}") == -price
    assert await balance(pool, f"refund:org:{b.org_id}") == -DEPOSIT
    assert await balance(pool, f"deposit:reg:{a.registration_id}") == -DEPOSIT
    events = {
        r["dedupe_key"]: r["recipient_org_id"]
        for r in await rows(pool, "SELECT dedupe_key, recipient_org_id FROM outbox")
    }
    assert events[f"won:{sale.id}"] == events[f"payment_due:{sale.id}"] == a.org_id
    for loser in (b, idle):
        assert events[f"lost:{scene.lot.id}:1:{loser.registration_id}"] == loser.org_id
        assert events[f"deposit_released:{loser.registration_id}"] == loser.org_id
    assert f"lost:{scene.lot.id}:1:{a.registration_id}" not in events
    assert (await lots.get_lot(pool, scene.bank_org, scene.lot.id)).status == "sold"

    # A deposit confirmed only now, for a round that is over, goes straight back.
    late = scene.waiting[0]
    ref = await value(
        pool, "SELECT transfer_reference FROM registrations WHERE id=$1", late.registration_id
    )
    operator_act = await act_as(pool, clock.now(), scene.operator_user)
    confirmation = await operator_act(
        deposits.confirm_deposit, ConfirmDeposit(transfer_reference=ref, amount_fen=DEPOSIT)
    )
    assert confirmation.released
    assert (await check_books(pool))[late.registration_id] == "released"


async def test_failed_lot_releases_every_deposit(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=3, waiting=1)
    clock.set(scene.ends_at)
    result = await close_one(pool, settings, clock.now(), scene.lot.id)
    assert result is not None
    assert (result.status, result.sale, result.winner) == ("failed", None, None)
    assert sorted(result.released) == sorted(b.registration_id for b in scene.buyers)
    statuses = await check_books(pool)
    assert [statuses[b.registration_id] for b in scene.buyers] == ["released"] * 3
    assert statuses[scene.waiting[0].registration_id] == "awaiting"
    assert await value(pool, "SELECT count(*) FROM sales") == 0
    lot = await lots.get_lot(pool, scene.bank_org, scene.lot.id)
    assert (lot.status, lot.round) == ("failed", 1)  # 流拍: the bank may relist
    assert await value(pool, "SELECT outcome FROM lot_rounds WHERE lot_id=$1", lot.id) == "failed"
    assert await value(pool, "SELECT count(*) FROM outbox WHERE event='lost'") == 0


async def test_concurrent_closes_close_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=4, waiting=0)
    a, b = scene.buyers[:2]
    await place_bids(
        pool,
        scene.lot.id,
        [
            (a.registration_id, START, scene.ends_at - timedelta(hours=2)),
            (b.registration_id, START + INCREMENT, scene.ends_at - timedelta(hours=1)),
        ],
    )
    clock.set(scene.ends_at + timedelta(seconds=3))
    results = await asyncio.gather(
        *(close_one(pool, settings, clock.now(), scene.lot.id) for _ in range(8))
    )
    done = [r for r in results if r is not None]
    assert len(done) == 1 and done[0].winner == b.registration_id
    assert await value(pool, "SELECT count(*) FROM sales") == 1
    kinds = {
        r["source_kind"]: r["n"]
        for r in await rows(
            pool, "SELECT source_kind, count(*) AS n FROM ledger_entries GROUP BY source_kind"
        )
    }
    assert kinds == {"deposit_confirmed": 4, "deposit_released": 3, "sale_closed": 1}
    assert (
        await value(
            pool,
            "SELECT count(*) FROM lot_transitions WHERE lot_id=$1 AND action='close'",
            scene.lot.id,
        )
        == 1
    )
    assert await value(pool, "SELECT count(*) FROM outbox WHERE event='lost'") == 3
    await check_books(pool)
    # The sweep and a late job find nothing more to do.
    assert (await close_due_lots(scene.ctx))["closed"] == []


# --- payment and default ----------------------------------------------------------------------


async def sold_scene(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    *,
    waiting: int = 0,
    operator: tuple[int, int] | None = None,
) -> tuple[Scene, closing.SaleOut]:
    """Two bidders, the first wins; `waiting` registrations never paid their deposit."""
    scene = await make_scene(pool, clock, settings, buyers=2, waiting=waiting, operator=operator)
    a, b = scene.buyers
    await place_bids(
        pool,
        scene.lot.id,
        [
            (b.registration_id, START, scene.ends_at - timedelta(hours=2)),
            (a.registration_id, START + INCREMENT, scene.ends_at - timedelta(hours=1)),
        ],
    )
    clock.set(scene.ends_at)
    result = await close_one(pool, settings, clock.now(), scene.lot.id)
    assert result is not None and result.sale is not None
    return scene, result.sale


async def test_payment_applies_the_deposit_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await sold_scene(pool, clock, settings)
    winner = scene.buyers[0]
    clock.advance(days=3)
    operator, reference = scene.operator_user, sale.payment_reference
    audit_before = await value(pool, "SELECT count(*) FROM audit_log")
    with pytest.raises(Invalid) as wrong:
        await pay(pool, clock, operator, reference, sale.balance_due_fen - 1)
    assert wrong.value.field == "amount_fen" and wrong.value.status == 422
    assert wrong.value.code == "balance_amount_mismatch"
    assert wrong.value.params == {
        "reference": reference,
        "balance_due_fen": sale.balance_due_fen,
        "received_fen": sale.balance_due_fen - 1,
    }
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "awaiting_payment"
    assert await value(pool, "SELECT count(*) FROM audit_log") == audit_before

    # Six clicks at once (the reference as typed, in lower case): one payment recorded.
    results = await asyncio.gather(
        *(pay(pool, clock, operator, reference.lower(), sale.balance_due_fen) for _ in range(6))
    )
    paid = results[0]
    assert all(r == paid for r in results)
    assert (paid.status, paid.paid_at) == ("paid", clock.now())
    kinds = await rows(
        pool,
        "SELECT source_kind FROM ledger_entries WHERE source_kind IN ('sale_payment',"
        " 'deposit_applied')",
    )
    assert sorted(r["source_kind"] for r in kinds) == ["deposit_applied", "sale_payment"]
    statuses = await check_books(pool)
    assert statuses[winner.registration_id] == "applied"
    assert await balance(pool, f"sale:receivable:{sale.id}") == 0
    assert await balance(pool, f"deposit:reg:{winner.registration_id}") == 0
    # The price is held in escrow until the title has moved (§Transfer of title), then
    # routed through the waterfall: commission to the exchange, the rest to the bank's
    # claim; one receipt however many clicks.
    assert await balance(pool, f"proceeds:lot:{scene.lot.id}") == -sale.price_fen
    assert await value(pool, "SELECT count(*) FROM receipts") == 0
    await complete_transfer(
        pool,
        clock,
        sale.id,
        bank_user=scene.bank_user,
        buyer_user=winner.user_id,
        operator_user=operator,
    )
    assert await balance(pool, f"proceeds:lot:{scene.lot.id}") == 0
    assert (
        await value(pool, "SELECT count(*) FROM receipts WHERE source=$1", f"sale:{sale.id}") == 1
    )
    assert await balance(pool, "income:commission") == -sale.fee_fen
    assert await balance(pool, f"payable:org:{scene.bank_org}") == -(sale.price_fen - sale.fee_fen)
    entries = await value(pool, "SELECT count(*) FROM ledger_entries")

    clock.advance(hours=1)
    again = await pay(pool, clock, operator, reference, sale.balance_due_fen)
    assert again.paid_at == paid.paid_at  # the first payment stands; nothing new
    assert await value(pool, "SELECT count(*) FROM ledger_entries") == entries
    with pytest.raises(Conflict) as twice:
        await pay(pool, clock, operator, reference, 1)
    assert (twice.value.code, twice.value.field) == ("sale_already_paid", "amount_fen")
    # Paid: the default sweep leaves it alone even long after the deadline.
    clock.set(sale.due_at + timedelta(days=30))
    assert (await default_overdue_sales(scene.ctx))["defaulted"] == []
    assert (await check_books(pool))[winner.registration_id] == "applied"


async def test_unpaid_sale_defaults_after_the_deadline(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await sold_scene(pool, clock, settings)
    winner, loser = scene.buyers
    clock.set(sale.due_at - timedelta(microseconds=1))
    assert (await default_overdue_sales(scene.ctx))["defaulted"] == []
    clock.set(sale.due_at + timedelta(hours=2))
    assert (await default_overdue_sales(scene.ctx))["defaulted"] == [sale.id]
    assert (await default_overdue_sales(scene.ctx))["defaulted"] == []  # once

    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "defaulted"
    statuses = await check_books(pool)
    assert statuses[winner.registration_id] == "forfeited"
    assert statuses[loser.registration_id] == "released"
    # Forfeited, then routed through the waterfall at once (§The waterfall): the account is empty
    # and one receipt of the deposit stands.
    assert await balance(pool, f"forfeit:lot:{scene.lot.id}") == 0
    assert (
        await value(
            pool, "SELECT amount_fen FROM receipts WHERE source=$1", f"forfeit:sale:{sale.id}"
        )
        == DEPOSIT
    )
    assert await balance(pool, f"sale:receivable:{sale.id}") == 0  # sale_voided reversed it
    assert await balance(pool, f"proceeds:lot:{scene.lot.id}") == 0
    voided = await rows(
        pool,
        "SELECT v.reverses, c.id FROM ledger_entries v JOIN ledger_entries c"
        " ON c.source_kind='sale_closed' AND c.source_id=$1"
        " WHERE v.source_kind='sale_voided' AND v.source_id=$1",
        str(sale.id),
    )
    assert len(voided) == 1 and voided[0]["reverses"] == voided[0]["id"]
    bars = await rows(pool, "SELECT buyer_org_id, asset_id, sale_id FROM buyer_bars")
    assert sorted((r["buyer_org_id"], r["asset_id"], r["sale_id"]) for r in bars) == sorted(
        (winner.org_id, asset, sale.id) for asset in scene.lot.asset_ids
    )
    assert len(bars) == 2
    keys = {r["dedupe_key"] for r in await rows(pool, "SELECT dedupe_key FROM outbox")}
    assert {f"payment_overdue:{sale.id}", f"defaulted:{sale.id}"} <= keys
    lot = await lots.get_lot(pool, scene.bank_org, scene.lot.id)
    assert (lot.status, lot.round) == ("failed", 1)  # back to the lifecycle for a relist

    # A transfer that arrives now is refused: the operator sends it back.
    with pytest.raises(Conflict) as late:
        await pay(pool, clock, scene.operator_user, sale.payment_reference, sale.balance_due_fen)
    assert (late.value.code, late.value.field) == ("sale_defaulted", "payment_reference")

    # The relist: the defaulter may not register again; the other buyer may.
    me = await viewer(pool, scene.bank_user)
    starts = clock.now() + timedelta(days=15, hours=1)
    await lot_action(
        pool,
        clock.now(),
        lots.policy_for(settings),
        me,
        lot.id,
        RelistInput(
            terms=TermsInput(
                start_price_fen=START * 9 // 10,
                deposit_fen=DEPOSIT,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            )
        ),
    )
    relisted = RegisterForLot(reference=lot.reference, agreement_version=AGREEMENT)
    with pytest.raises(Forbidden) as barred:
        await (await act_as(pool, clock.now(), winner.user_id))(
            registration.register_for_lot, relisted
        )
    assert barred.value.code == "barred_after_default"
    done = await (await act_as(pool, clock.now(), loser.user_id))(
        registration.register_for_lot, relisted
    )
    assert done.created and done.registration.round == 2
    await check_books(pool)


def test_jobs_and_crons_are_declared() -> None:
    names = {f.__name__ for f in JOBS}
    assert names == {"close_lot_job", "close_due_lots", "default_overdue_sales", "seal_bids"}
    crons = {c.name: c for c in CRON}
    assert set(crons) == {"cron:close_due_lots", "cron:default_overdue_sales", "cron:seal_bids"}
    assert all(c.run_at_startup and c.unique for c in crons.values())


async def test_close_job_runs_in_an_arq_worker(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, redis: Redis
) -> None:
    from arq.worker import Worker

    from workers.settings import shutdown, startup, worker_context

    scene = await make_scene(pool, clock, settings, buyers=2, waiting=0)
    a = scene.buyers[0]
    await place_bids(
        pool, scene.lot.id, [(a.registration_id, START, scene.ends_at - timedelta(hours=1))]
    )
    clock.set(scene.ends_at + CLOSE_GRACE)
    arq: ArqRedis = await create_pool(worker_redis_settings(settings))
    job = await arq.enqueue_job(
        "close_lot_job", scene.lot.id, _job_id=close_job_id(scene.lot.id, 1, scene.ends_at)
    )
    assert job is not None
    worker = Worker(
        functions=JOBS,
        redis_settings=worker_redis_settings(settings),
        burst=True,
        on_startup=startup,
        on_shutdown=shutdown,
        ctx=worker_context(settings, clock),
        poll_delay=0.05,
        handle_signals=False,
    )
    try:
        await worker.main()
        assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
        result = await job.result(timeout=5)
        assert (result["status"], result["closed_at"]) == ("sold", scene.ends_at.isoformat())
    finally:
        await worker.close()
        await arq.aclose()
    assert (await check_books(pool))[a.registration_id] == "confirmed"
