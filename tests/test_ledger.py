"""The ledger: balanced or refused by the database, idempotent by source, append-only."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market import ledger
from market.clock import FrozenClock
from market.ledger import Account, credit, debit

CLEARING = Account("exchange:clearing", "asset", "Exchange clearing account")
HELD = Account("deposit:reg:1", "liability", "Deposit held for registration 1")
OTHER = Account("deposit:reg:2", "liability", "Deposit held for registration 2")


async def test_post_is_idempotent_by_source(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    async with pool.acquire() as conn, conn.transaction():
        first = await ledger.post(
            conn,
            source_kind="deposit_confirmed",
            source_id=1,
            at=clock.now(),
            legs=[debit(CLEARING, 50_000_00), credit(HELD, 50_000_00)],
        )
        again = await ledger.post(
            conn,
            source_kind="deposit_confirmed",
            source_id=1,
            at=clock.now(),
            legs=[debit(CLEARING, 50_000_00), credit(HELD, 50_000_00)],
        )
    assert first.created and not again.created and again.entry_id == first.entry_id
    async with pool.acquire() as conn:
        assert await ledger.balance(conn, "deposit:reg:1") == -50_000_00
        assert await ledger.balance(conn, "exchange:clearing") == 50_000_00


async def test_unbalanced_entry_refused_in_python(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(ledger.UnbalancedEntry):
            await ledger.post(
                conn,
                source_kind="x",
                source_id=1,
                at=clock.now(),
                legs=[debit(CLEARING, 100), credit(HELD, 99)],
            )


async def test_database_refuses_unbalanced_legs_at_commit(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):  # noqa: PT012
            async with conn.transaction():
                posted = await ledger.post(
                    conn,
                    source_kind="x",
                    source_id=2,
                    at=clock.now(),
                    legs=[debit(CLEARING, 100), credit(HELD, 100)],
                )
                account = await conn.fetchval("SELECT id FROM ledger_accounts LIMIT 1")
                # A leg slipped in behind the API's back: the commit must fail.
                await conn.execute(
                    "INSERT INTO ledger_legs (entry_id, account_id, amount_fen) VALUES ($1,$2,5)",
                    posted.entry_id,
                    account,
                )
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0


async def test_ledger_is_append_only(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await ledger.post(
                conn,
                source_kind="x",
                source_id=3,
                at=clock.now(),
                legs=[debit(CLEARING, 100), credit(HELD, 100)],
            )
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE ledger_legs SET amount_fen = amount_fen * 2")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM ledger_entries")


async def test_reversal_is_a_new_entry(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    async with pool.acquire() as conn, conn.transaction():
        p = await ledger.post(
            conn,
            source_kind="x",
            source_id=4,
            at=clock.now(),
            legs=[debit(CLEARING, 700), credit(HELD, 700)],
        )
        r = await ledger.reverse(
            conn, entry_id=p.entry_id, source_kind="x_reversal", source_id=4, at=clock.now()
        )
        assert r.created and r.entry_id != p.entry_id
        assert await ledger.balance(conn, "deposit:reg:1") == 0
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 2


async def test_concurrent_posts_of_one_source_make_one_entry(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    async def attempt() -> ledger.Posted:
        async with pool.acquire() as conn, conn.transaction():
            return await ledger.post(
                conn,
                source_kind="deposit_confirmed",
                source_id=99,
                at=clock.now(),
                legs=[debit(CLEARING, 1_00), credit(OTHER, 1_00)],
            )

    results = await asyncio.gather(*(attempt() for _ in range(16)))
    assert sum(r.created for r in results) == 1
    assert len({r.entry_id for r in results}) == 1
    async with pool.acquire() as conn:
        assert await ledger.balance(conn, "deposit:reg:2") == -1_00


@settings(
    max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(amounts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=5))
async def test_trial_balance_sums_to_zero(
    pool: asyncpg.Pool, clock: FrozenClock, amounts: list[int]
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        base = await conn.fetchval("SELECT count(*) FROM ledger_entries")
        legs = [credit(Account(f"t:{i}", "liability", "t"), a) for i, a in enumerate(amounts)]
        await ledger.post(
            conn,
            source_kind="prop",
            source_id=f"{base}",
            at=clock.now(),
            legs=[debit(CLEARING, sum(amounts)), *legs],
        )
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs")
    assert total == 0
