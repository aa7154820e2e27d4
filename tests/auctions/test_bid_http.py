"""Bids over the HTTP API: refusals say why, a retried Idempotency-Key makes one bid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.models import LotDraft, PublishInput, WithdrawInput
from market.lots.terms import TermsInput
from market.settings import Settings
from tests.factories import make_org, make_token, viewer
from tests.lots.factories import make_case

START = 1_000_000


async def _lot(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> Any:
    policy = lots.policy_for(settings)
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    bank = await viewer(pool, bank_user)
    case_id, _ = await make_case(
        pool, clock.now(), bank_org, bank_user, valuation_fen=START * 10 // 7
    )
    starts = clock.now() + timedelta(days=30, hours=1)
    lot = await lots.create_lot(
        pool,
        clock.now(),
        policy,
        bank,
        case_id,
        LotDraft(
            title="接口出价测试",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            ),
        ),
    )
    await lots.act(pool, clock.now(), policy, bank, lot.id, PublishInput())
    return lot, bank


async def _buyer(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    clock: FrozenClock,
    reference: str,
    operator_auth: dict[str, str] | None,
) -> dict[str, str]:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    auth = {"Authorization": f"Bearer {await make_token(pool, clock.now(), user, ['bids:write'])}"}
    r = await client.post(f"/api/v1/lots/{reference}/registrations", headers=auth)
    assert r.status_code == 201, r.text
    if operator_auth is not None:
        reg = r.json()
        r = await client.post(
            "/api/v1/operator/deposits/confirm",
            headers=operator_auth,
            json={
                "transfer_reference": reg["transfer_reference"],
                "amount_fen": reg["deposit_fen"],
            },
        )
        assert r.status_code in (200, 201), r.text
    return auth


async def test_bid_api_end_to_end(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    alice = await _buyer(client, pool, clock, lot.reference, op)
    bob = await _buyer(client, pool, clock, lot.reference, None)  # deposit not yet paid
    _, outsider_user, _ = await make_org(pool, clock.now(), kind="buyer")
    outsider = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), outsider_user, ['bids:write'])}"
    }
    url = f"/api/v1/lots/{lot.reference}/bids"

    r = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "lot_not_open"  # still announced
    clock.set(lot.bidding_starts_at)  # the announced instant: bids open without the worker

    key = {"Idempotency-Key": "7f1c2d5e-retry-me"}
    first = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice | key)
    again = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice | key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    reused = await client.post(
        url, json={"type": "bid", "amount_fen": START + 50_000}, headers=alice | key
    )
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    r = await client.post(url, json={"type": "bid", "amount_fen": START + 100}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "too_low"  # proved without a write
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "already_leading"
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=bob)
    assert r.status_code == 403 and r.json()["code"] == "deposit_not_confirmed"
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=outsider)
    assert r.status_code == 403 and r.json()["code"] == "not_registered"
    r = await client.post(url, json={"type": "bid", "amount": 1}, headers=alice)
    assert r.status_code == 400 and r.json()["field"] in ("amount", "amount_fen")

    async with pool.acquire() as conn:
        bids = await conn.fetch("SELECT amount_fen FROM bids WHERE lot_id=$1", lot.id)
        status = await conn.fetchval("SELECT status FROM lots WHERE id=$1", lot.id)
    assert [b["amount_fen"] for b in bids] == [START]  # one bid for the retried request
    assert status == "bidding"


async def test_withdrawal_releases_confirmed_deposits(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, bank = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    await _buyer(client, pool, clock, lot.reference, op)
    await lots.act(
        pool,
        clock.now(),
        lots.policy_for(settings),
        bank,
        lot.id,
        WithdrawInput(reason="借款人已清偿"),
    )
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT deposit_status FROM registrations WHERE lot_id=$1", lot.id
        )
        total = await conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs")
    assert [r["deposit_status"] for r in statuses] == ["released"]
    assert total == 0
