"""A database superuser cannot rewrite the audit log unseen (docs/rules.md §Security):
the chain is keyed with a key the database does not hold, and its heads are anchored in
a file outside PostgreSQL. Each case tampers with plain SQL, as a superuser would (the
append-only triggers switched off), and `market audit verify` must report it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from market import audit, audit_anchors
from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import make_org
from tests.test_audit import _append, audit_verify_cli
from workers.settings import anchor_audit_chains, verify_audit_chain

Hasher = Callable[[bytes, bytes], bytes]
ROWS = 6


def plain(prev: bytes, body: bytes) -> bytes:
    """The unkeyed SHA-256 chain: what an attacker without the key can compute."""
    return hashlib.sha256(prev + body).digest()


def guessed_key(prev: bytes, body: bytes) -> bytes:
    return hmac.new(b"a guess at the key", prev + body, hashlib.sha256).digest()


async def superuser(conn: asyncpg.Connection, sql: str, *args: object) -> None:
    """Run SQL with the append-only triggers out of the way, as a superuser can."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def recompute(conn: asyncpg.Connection, chain: int, hasher: Hasher, start: int = 1) -> None:
    """Relink the chain from row `start` on with `hasher`, renumbering seq without gaps,
    and move its head: a consistent chain, as far as anyone without the key can make one."""
    rows = await conn.fetch("SELECT * FROM audit_log WHERE chain_org_id = $1 ORDER BY seq", chain)
    prev = audit.GENESIS
    for seq, row in enumerate(rows, start=1):
        if seq < start:
            prev = bytes(row["hash"])
            continue
        digest = hasher(prev, audit.row_body(row, chain, seq))
        await superuser(
            conn,
            "UPDATE audit_log SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1",
            row["id"],
            seq,
            prev,
            digest,
        )
        prev = digest
    await conn.execute(
        "UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain_org_id = $1", chain, len(rows), prev
    )


async def row_id(conn: asyncpg.Connection, chain: int, seq: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT id FROM audit_log WHERE chain_org_id = $1 AND seq = $2", chain, seq
        )
    )


# --- the ten ways round ---------------------------------------------------------------


async def edit_a_row(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await superuser(
        conn,
        "UPDATE audit_log SET after = '{\"n\": 999}' WHERE id = $1",
        await row_id(conn, chain, 3),
    )


async def edit_and_recompute_without_the_key(
    conn: asyncpg.Connection, chain: int, other: int
) -> None:
    await edit_a_row(conn, chain, other)
    await recompute(conn, chain, plain, start=3)


async def edit_and_recompute_with_a_guessed_key(
    conn: asyncpg.Connection, chain: int, other: int
) -> None:
    await edit_a_row(conn, chain, other)
    await recompute(conn, chain, guessed_key, start=3)


async def rewrite_the_tail(conn: asyncpg.Connection, chain: int, other: int) -> None:
    """A superuser's rewrite of the tail: the last rows cut, the head moved back onto the
    row now last, every remaining link intact and keyed."""
    await superuser(conn, "DELETE FROM audit_log WHERE chain_org_id = $1 AND seq > 4", chain)
    last = await conn.fetchval(
        "SELECT hash FROM audit_log WHERE chain_org_id = $1 AND seq = 4", chain
    )
    await conn.execute(
        "UPDATE audit_heads SET seq = 4, hash = $2 WHERE chain_org_id = $1", chain, last
    )


async def replace_the_last_row(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await superuser(
        conn,
        "UPDATE audit_log SET action = 'organisation.forged' WHERE id = $1",
        await row_id(conn, chain, ROWS),
    )
    await recompute(conn, chain, plain, start=ROWS)


async def delete_a_middle_row(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await superuser(conn, "DELETE FROM audit_log WHERE chain_org_id = $1 AND seq = 3", chain)


async def delete_a_middle_row_and_renumber(
    conn: asyncpg.Connection, chain: int, other: int
) -> None:
    await delete_a_middle_row(conn, chain, other)
    await recompute(conn, chain, plain, start=3)


async def reorder_a_pair(conn: asyncpg.Connection, chain: int, other: int) -> None:
    """Rows 3 and 4 swap places, each keeping the link its new place needs."""
    three, four = await row_id(conn, chain, 3), await row_id(conn, chain, 4)
    links = {
        r["id"]: r["prev_hash"]
        for r in await conn.fetch(
            "SELECT id, prev_hash FROM audit_log WHERE id IN ($1, $2)", three, four
        )
    }
    for row, seq, link in ((three, 1000, links[four]), (four, 3, links[three]), (three, 4, None)):
        await superuser(
            conn,
            "UPDATE audit_log SET seq = $2, prev_hash = coalesce($3, prev_hash) WHERE id = $1",
            row,
            seq,
            link,
        )


async def change_the_head(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await conn.execute(
        "UPDATE audit_heads SET hash = $2 WHERE chain_org_id = $1", chain, bytes(range(32))
    )


async def delete_the_whole_chain(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await superuser(conn, "DELETE FROM audit_log WHERE chain_org_id = $1", chain)
    await conn.execute("DELETE FROM audit_heads WHERE chain_org_id = $1", chain)


async def move_a_row_to_another_chain(conn: asyncpg.Connection, chain: int, other: int) -> None:
    await superuser(
        conn,
        "UPDATE audit_log SET chain_org_id = $2, seq = 1000 WHERE id = $1",
        await row_id(conn, chain, ROWS),
        other,
    )
    await recompute(conn, chain, plain, start=ROWS)


async def append_a_forged_row(conn: asyncpg.Connection, chain: int, other: int) -> None:
    head = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE chain_org_id = $1", chain)
    await conn.execute(
        "INSERT INTO audit_log (chain_org_id, seq, action, object_kind, object_id, at,"
        " prev_hash, hash) VALUES ($1, $2, 'lot.forged', 'lot', '1', now(), $3, $4)",
        chain,
        head["seq"] + 1,
        head["hash"],
        bytes(32),
    )
    await recompute(conn, chain, plain, start=ROWS + 1)


Tampering = Callable[[asyncpg.Connection, int, int], Awaitable[None]]
# Each way round, and the seq of the first broken link verify names.
CASES: list[tuple[Tampering, int]] = [
    (edit_a_row, 3),
    (edit_and_recompute_without_the_key, 3),
    (edit_and_recompute_with_a_guessed_key, 3),
    (rewrite_the_tail, 5),
    (replace_the_last_row, ROWS),
    (delete_a_middle_row, 3),
    (delete_a_middle_row_and_renumber, 3),
    (reorder_a_pair, 3),
    (change_the_head, ROWS),
    (delete_the_whole_chain, 1),
    (move_a_row_to_another_chain, ROWS),
    (append_a_forged_row, ROWS + 1),
]


async def _chain(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[int, int]:
    """An organisation whose chain has ROWS rows, and another organisation."""
    org, _, _ = await make_org(pool, clock.now())
    other, _, _ = await make_org(pool, clock.now())
    have = await pool.fetchval("SELECT max(seq) FROM audit_log WHERE chain_org_id = $1", org)
    for n in range(have + 1, ROWS + 1):
        await _append(pool, clock, org, n)
    return org, other


async def _verify(conn: asyncpg.Connection, path: Path) -> list[audit.Break]:
    return (await audit.verify(conn, anchors=audit_anchors.read(path, audit.current_key())))[1]


@pytest.mark.parametrize(("tamper", "seq"), CASES, ids=[c.__name__ for c, _ in CASES])
async def test_tampering_is_detected(
    pool: asyncpg.Pool, clock: FrozenClock, tmp_path: Path, tamper: Tampering, seq: int
) -> None:
    org, other = await _chain(pool, clock)
    path = tmp_path / "anchors.jsonl"
    async with pool.acquire() as conn:
        written, refused = await audit_anchors.anchor(conn, path, audit.current_key(), clock.now())
        assert written >= 2 and refused == []
        assert await _verify(conn, path) == []
        await tamper(conn, org, other)
        breaks = await _verify(conn, path)
    assert [b.seq for b in breaks if b.chain_org_id == org] == [seq], breaks
    assert {b.chain_org_id for b in breaks} <= {org, other}  # a moved row breaks both
    # Nor will the anchorer bless the tampered chain.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE audit_heads SET seq = seq + 1 WHERE chain_org_id = $1 AND $2", org, True
        )
        _, refused = await audit_anchors.anchor(conn, path, audit.current_key(), clock.now())
        lines = audit_anchors.read(path, audit.current_key())
    point = lines.latest[org]
    assert point.seq == ROWS and not [b for b in refused if b.chain_org_id != org]


async def test_without_anchors_a_cut_tail_passes_which_is_why_they_exist(
    pool: asyncpg.Pool, clock: FrozenClock, tmp_path: Path
) -> None:
    org, other = await _chain(pool, clock)
    async with pool.acquire() as conn:
        await rewrite_the_tail(conn, org, other)
        assert await _verify(conn, tmp_path / "none.jsonl") == []


async def test_rows_written_before_the_key_are_a_prefix_counted_at_the_first_anchoring(
    pool: asyncpg.Pool, clock: FrozenClock, tmp_path: Path
) -> None:
    org, other = await _chain(pool, clock)
    path = tmp_path / "anchors.jsonl"
    async with pool.acquire() as conn:
        # The chain as the exchange wrote it before it was keyed: plain SHA-256 all along.
        await recompute(conn, org, plain)
        assert await _verify(conn, path) == []
        await _chain(pool, clock)  # new rows are keyed and follow the unkeyed prefix
        await _append(pool, clock, org, 99)
        assert await _verify(conn, path) == []
        await audit_anchors.anchor(conn, path, audit.current_key(), clock.now())
        anchors = audit_anchors.read(path, audit.current_key())
        assert anchors.latest[org].legacy == ROWS and anchors.latest[other].legacy == 0
        # An unkeyed row after a keyed one, or a chain rewritten unkeyed, is refused.
        await recompute(conn, other, plain)
        assert [b.chain_org_id for b in await _verify(conn, path)] == [other]


async def test_a_forged_anchor_line_is_reported(
    pool: asyncpg.Pool, clock: FrozenClock, tmp_path: Path
) -> None:
    await _chain(pool, clock)
    path = tmp_path / "anchors.jsonl"
    async with pool.acquire() as conn:
        await audit_anchors.anchor(conn, path, audit.current_key(), clock.now())
        line = path.read_text().splitlines()[0].replace('"legacy":0', '"legacy":9')
        with path.open("a") as f:
            f.write(line + "\n")
        breaks = await _verify(conn, path)
    assert any("not written with the audit key" in b.reason for b in breaks)


async def test_the_worker_anchors_and_the_cli_finds_a_cut_tail(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, other = await _chain(pool, clock)
    ctx = {"pool": pool, "settings": settings, "clock": clock}
    done = await anchor_audit_chains(ctx)
    assert done["anchored"] >= 2 and done["refused"] == []
    assert (settings.data_dir / "audit-anchors.jsonl").exists()
    assert (await verify_audit_chain(ctx))["breaks"] == []
    async with pool.acquire() as conn:
        await rewrite_the_tail(conn, org, other)
    assert len((await verify_audit_chain(ctx))["breaks"]) == 1
    bad = audit_verify_cli(settings)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"chain {org}, seq 5" in bad.stdout and "anchored at seq 6" in bad.stdout
