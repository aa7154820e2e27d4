"""The hash-chained audit log: appends under concurrency, and tampering found."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from market import audit
from market.clock import FrozenClock
from market.settings import ROOT, Settings
from tests.factories import make_org


def audit_verify_cli(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`market audit verify` run as the operator would, with the tests' settings."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "MARKET_DATA_DIR": str(settings.data_dir),
        "MARKET_SECRET_KEY": settings.secret_key,
    }
    cmd = [sys.executable, "-m", "market.cli", "audit", "verify"]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)


async def _append(pool: asyncpg.Pool, clock: FrozenClock, org_id: int, n: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await audit.append(
            conn,
            at=clock.now(),
            chain_org_id=org_id,
            actor_user_id=None,
            actor_org_id=org_id,
            action="test.event",
            object_kind="thing",
            object_id=n,
            before={"n": n - 1},
            after={"n": n, "名称": "专利"},
        )


async def test_concurrent_appends_make_one_gapless_chain(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org_a, _, _ = await make_org(pool, clock.now())
    org_b, _, _ = await make_org(pool, clock.now())
    await asyncio.gather(*(_append(pool, clock, org_a if i % 2 else org_b, i) for i in range(200)))
    async with pool.acquire() as conn:
        for org in (org_a, org_b):
            seqs = [
                r["seq"]
                for r in await conn.fetch(
                    "SELECT seq FROM audit_log WHERE chain_org_id=$1 ORDER BY seq", org
                )
            ]
            assert seqs == list(range(1, len(seqs) + 1))
        checked, breaks = await audit.verify(conn)
    assert breaks == []
    assert checked >= 200


async def test_append_outside_transaction_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await audit.append(
                conn,
                at=clock.now(),
                chain_org_id=1,
                actor_user_id=None,
                actor_org_id=None,
                action="x",
                object_kind="x",
                object_id=1,
            )


async def test_database_refuses_update_and_delete(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    await make_org(pool, clock.now())
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE audit_log SET action = 'forged'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM audit_log")


async def _tamper(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    # A privileged attacker disables the append-only trigger first.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def test_edited_row_is_named(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    org, _, _ = await make_org(pool, clock.now())
    for i in range(5):
        await _append(pool, clock, org, i)
    async with pool.acquire() as conn:
        target = await conn.fetchrow(
            "SELECT id, seq FROM audit_log WHERE chain_org_id=$1 AND seq=4", org
        )
    await _tamper(pool, "UPDATE audit_log SET after = '{\"n\": 999}' WHERE id = $1", target["id"])
    async with pool.acquire() as conn:
        _, breaks = await audit.verify(conn)
    assert len(breaks) == 1
    assert breaks[0].row_id == target["id"] and breaks[0].seq == 4
    assert "edited" in breaks[0].reason


async def test_deleted_rows_are_found(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    org, _, _ = await make_org(pool, clock.now())
    for i in range(4):
        await _append(pool, clock, org, i)
    await _tamper(pool, "DELETE FROM audit_log WHERE chain_org_id=$1 AND seq=3", org)
    async with pool.acquire() as conn:
        _, breaks = await audit.verify(conn)
    assert [(b.chain_org_id, b.seq) for b in breaks] == [(org, 3)]
    assert "deleted" in breaks[0].reason
    # Deleting the newest rows leaves no gap, but the chain head gives it away.
    org2, _, _ = await make_org(pool, clock.now())
    await _append(pool, clock, org2, 1)
    await _tamper(
        pool,
        "DELETE FROM audit_log WHERE chain_org_id=$1 AND seq=(SELECT max(seq) "
        "FROM audit_log WHERE chain_org_id=$1)",
        org2,
    )
    async with pool.acquire() as conn:
        _, breaks = await audit.verify(conn)
    assert (org2, 3) in [(b.chain_org_id, b.seq) for b in breaks]


async def test_cli_audit_verify_names_the_edited_row(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, _, _ = await make_org(pool, clock.now())
    ok = audit_verify_cli(settings)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    async with pool.acquire() as conn:
        row_id = await conn.fetchval(
            "SELECT id FROM audit_log WHERE chain_org_id=$1 AND seq=1", org
        )
    await _tamper(pool, "UPDATE audit_log SET action='organisation.forged' WHERE id=$1", row_id)
    bad = audit_verify_cli(settings)
    assert bad.returncode == 1
    assert f"row id {row_id}" in bad.stdout and f"chain {org}" in bad.stdout
