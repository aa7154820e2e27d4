"""Sandbox mode (market/sandbox): the operator moves the exchange's clock forward, never
back; production has no such route; every page of a sandbox says it is one; the timers
react to a move at once, and the bid path reads the moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from arq.connections import create_pool
from arq.jobs import Job
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.clock import FrozenClock, SandboxClock
from market.sandbox.jobs import clock_moved
from market.settings import Settings
from tests.auctions.test_bid_http import START, _cast, _lot
from tests.factories import csrf, make_org, make_token, sign_in
from workers.settings import WorkerSettings, worker_context, worker_redis

ADVANCE = "/api/v1/sandbox/clock/advance"


@pytest.fixture
def sandbox_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, mode="sandbox")


@pytest.fixture
async def sandbox(
    sandbox_settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(sandbox_settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as c:
        yield c


async def _operator(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[dict[str, str], str]:
    """An operator's token that may move the clock, and the operator's e-mail."""
    _, user, email = await make_org(pool, clock.now(), kind="operator")
    token = await make_token(pool, clock.now(), user, ["clock:write", "operator:write"])
    return {"Authorization": f"Bearer {token}"}, email


async def _written(pool: asyncpg.Pool) -> tuple[int, int]:
    """(rows of the clock, audit rows of moves)."""
    return (
        await pool.fetchval("SELECT count(*) FROM exchange_clock"),
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'clock.move'"),
    )


async def _run_queued_move(settings: Settings, clock: FrozenClock, offset_ms: int) -> Any:
    """Run the job a move queued (`clock-moved:{offset}`) as the worker would, in a worker
    context of its own: its sandbox clock learns the offset from PostgreSQL."""
    arq = await create_pool(worker_redis(settings))
    ctx = {**worker_context(settings, clock), "redis": arq}
    await WorkerSettings.on_startup(ctx)
    try:
        info = await Job(f"clock-moved:{offset_ms}", arq).info()
        assert info is not None and info.function == "clock_moved"
        assert info.score is not None and info.score <= info.enqueue_time.timestamp() * 1000 + 1
        return await clock_moved(ctx, *info.args)
    finally:
        await WorkerSettings.on_shutdown(ctx)
        await arq.aclose()


async def test_moving_backwards_or_by_nothing_is_refused_naming_the_field(
    sandbox: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    op, email = await _operator(pool, clock)
    for body, field in [
        ({"seconds": -60}, "seconds"),
        ({"seconds": 0}, "seconds"),
        ({"to": (clock.now() - timedelta(hours=1)).isoformat()}, "to"),
        ({"to": clock.now().isoformat()}, "to"),
    ]:
        r = await sandbox.post(ADVANCE, json=body, headers=op)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == ("clock_moves_forward_only", field)
    r = await sandbox.post(ADVANCE, json={}, headers=op)
    assert (r.status_code, r.json()["field"]) == (422, "seconds")
    r = await sandbox.post(ADVANCE, json={"seconds": 400 * 86400}, headers=op)
    assert (r.status_code, r.json()["code"]) == (422, "clock_move_too_far")
    r = await sandbox.post(ADVANCE, json={"seconds": 1.5}, headers=op)
    assert (r.status_code, r.json()["field"]) == (400, "seconds")

    # The page refuses the same way, beside the field.
    await sign_in(sandbox, email)
    r = await sandbox.post(
        "/operator/sandbox/clock",
        data={"amount": "-2", "unit": "hours", "_csrf_token": await csrf(sandbox)},
    )
    assert r.status_code == 422 and 'data-testid="err-by-amount"' in r.text
    assert await _written(pool) == (0, 0)
    r = await sandbox.get("/api/v1/sandbox/clock")
    assert r.json() == {"now": clock.now().isoformat().replace("+00:00", "Z"), "offset_ms": 0}
    # The database refuses a decrease whatever writes it.
    await pool.execute("INSERT INTO exchange_clock (offset_ms, moved_at) VALUES (5, now())")
    with pytest.raises(asyncpg.RaiseError, match="only moves forward"):
        await pool.execute("UPDATE exchange_clock SET offset_ms = 4")


async def test_a_move_is_an_audited_command_of_the_operator(
    sandbox: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    op, email = await _operator(pool, clock)
    r = await sandbox.post(ADVANCE, json={"seconds": 3600}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["offset_ms"] == 3_600_000
    assert r.json()["now"] == (clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    to = clock.now() + timedelta(days=2)
    r = await sandbox.post(ADVANCE, json={"to": to.isoformat()}, headers=op)
    assert r.status_code == 200 and r.json()["offset_ms"] == 2 * 86_400_000
    assert (await sandbox.get("/api/v1/sandbox/clock")).json()["offset_ms"] == 2 * 86_400_000

    moves = await pool.fetch(
        "SELECT actor_user_id, object_kind, before, after FROM audit_log "
        "WHERE action = 'clock.move' ORDER BY id"
    )
    assert [(m["object_kind"], m["before"]) for m in moves] == [
        ("exchange_clock", {"offset_ms": 0}),
        ("exchange_clock", {"offset_ms": 3_600_000}),
    ]
    assert moves[1]["after"]["offset_ms"] == 2 * 86_400_000
    row = await pool.fetchrow("SELECT offset_ms, moved_by FROM exchange_clock")
    assert row is not None and row["offset_ms"] == 2 * 86_400_000
    assert row["moved_by"] == moves[0]["actor_user_id"] is not None

    # The page shows the time and moves it too; others may not.
    await sign_in(sandbox, email)
    page = await sandbox.get("/operator/sandbox")
    assert page.status_code == 200 and 'data-offset-ms="172800000"' in page.text
    r = await sandbox.post(
        "/operator/sandbox/clock",
        data={"amount": "30", "unit": "minutes", "_csrf_token": await csrf(sandbox)},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    assert await pool.fetchval("SELECT offset_ms FROM exchange_clock") == 2 * 86_400_000 + 1_800_000
    r = await sandbox.post(  # a date and time in Beijing time: 02:00 UTC, five days on
        "/operator/sandbox/clock",
        data={"to": "2026-01-10T10:00", "_csrf_token": await csrf(sandbox)},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    assert await pool.fetchval("SELECT offset_ms FROM exchange_clock") == 5 * 86_400_000
    _, buyer, _ = await make_org(pool, clock.now(), kind="buyer")
    bidder = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), buyer, ['bids:write'])}"
    }
    r = await sandbox.post(ADVANCE, json={"seconds": 60}, headers=bidder)
    assert r.status_code == 403
    assert (await _written(pool))[1] == 4


async def test_production_has_no_clock_to_move_and_no_banner(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    op, email = await _operator(pool, clock)
    assert (await client.post(ADVANCE, json={"seconds": 60}, headers=op)).status_code == 404
    assert (await client.get("/api/v1/sandbox/clock", headers=op)).status_code == 404
    await sign_in(client, email)
    assert (await client.get("/operator/sandbox")).status_code == 404
    r = await client.post(
        "/operator/sandbox/clock",
        data={"amount": "1", "unit": "days", "_csrf_token": await csrf(client)},
    )
    assert r.status_code == 404
    assert not any("sandbox" in route.path for route in client.app.routes)
    assert await _written(pool) == (0, 0)
    for path in ("/", "/lots", "/operator/organisations", "/no-such-page"):
        page = await client.get(path)
        assert "sandbox-banner" not in page.text and "/operator/sandbox" not in page.text


async def test_every_page_of_a_sandbox_says_so_chinese_first(
    sandbox: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, email = await _operator(pool, clock)
    zh = "沙盒演练环境"
    en = "Sandbox: the operator may move"
    for path in ("/", "/lots", "/login", "/no-such-page"):
        text = (await sandbox.get(path)).text
        assert 'data-testid="sandbox-banner"' in text, path
        assert 0 <= text.index(zh) < text.index(en), path
    await sign_in(sandbox, email)
    text = (await sandbox.get("/operator/organisations")).text
    assert 'data-testid="sandbox-banner"' in text and 'href="/operator/sandbox"' in text
    assert "2026-01-05 10:00" in text  # the exchange's time, in Beijing time


async def test_a_lot_closes_and_its_sale_defaults_right_after_the_moves(
    sandbox: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    sandbox_settings: Settings,
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    alice, _, _, _ = await _cast(sandbox, pool, clock, lot.reference)
    op, _ = await _operator(pool, clock)
    r = await sandbox.post(ADVANCE, json={"to": lot.bidding_starts_at.isoformat()}, headers=op)
    assert r.status_code == 200
    bid = {"type": "bid", "amount_fen": START}
    r = await sandbox.post(f"/api/v1/lots/{lot.reference}/bids", json=bid, headers=alice)
    assert r.status_code == 201, r.text

    left = lot.bidding_ends_at - lot.bidding_starts_at
    r = await sandbox.post(ADVANCE, json={"seconds": left // timedelta(seconds=1) + 60}, headers=op)
    assert r.status_code == 200
    # The move queued the sweeps to run at once: the lot closes at its own end, a day
    # early by the wall clock.
    done = await _run_queued_move(sandbox_settings, clock, r.json()["offset_ms"])
    assert done["close_due_lots"]["closed"] == [lot.id]
    sale = await pool.fetchrow(
        "SELECT status, closed_at, due_at FROM sales WHERE lot_id=$1", lot.id
    )
    assert sale is not None and sale["status"] == "awaiting_payment"
    assert sale["closed_at"] == lot.bidding_ends_at
    assert await pool.fetchval("SELECT status FROM lots WHERE id=$1", lot.id) == "sold"

    # Ten days on, the unpaid sale is void, as the payment deadline would have had it.
    days = (sale["due_at"] - lot.bidding_ends_at).days + 1
    r = await sandbox.post(ADVANCE, json={"seconds": days * 86400}, headers=op)
    assert r.status_code == 200
    done = await _run_queued_move(sandbox_settings, clock, r.json()["offset_ms"])
    assert done["default_overdue_sales"]["defaulted"] != []
    assert await pool.fetchval("SELECT status FROM sales WHERE lot_id=$1", lot.id) == "defaulted"


async def test_bids_after_the_moved_end_are_refused(
    sandbox: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    alice, _, _, _ = await _cast(sandbox, pool, clock, lot.reference)
    op, _ = await _operator(pool, clock)
    url = f"/api/v1/lots/{lot.reference}/bids"
    await sandbox.post(ADVANCE, json={"to": lot.bidding_starts_at.isoformat()}, headers=op)
    r = await sandbox.post(url, json={"type": "bid", "amount_fen": START}, headers=alice)
    assert r.status_code == 201, r.text
    r = await sandbox.post(ADVANCE, json={"to": lot.bidding_ends_at.isoformat()}, headers=op)
    assert r.status_code == 200
    # No worker has closed it: the bid path reads the moved clock itself.
    assert await pool.fetchval("SELECT status FROM lots WHERE id=$1", lot.id) == "bidding"
    r = await sandbox.post(url, json={"type": "bid", "amount_fen": START + 100_000}, headers=alice)
    assert (r.status_code, r.json()["code"]) == (409, "lot_closed")
    assert await pool.fetchval("SELECT count(*) FROM bids WHERE lot_id=$1", lot.id) == 1


def test_the_sandbox_clock_never_goes_back() -> None:
    base = FrozenClock()
    clock = SandboxClock(base, offset_ms=5_000)
    assert clock.now() == base.now() + timedelta(seconds=5)
    assert clock.learn(4_000) is False and clock.learn(5_000) is False
    assert clock.now() == base.now() + timedelta(seconds=5)
    assert clock.learn(7_000) is True and clock.now() == base.now() + timedelta(seconds=7)
