"""Lots against real PostgreSQL: terms refused with their rule, publication prerequisites,
concurrent transitions, the worker opening bidding on time and catching up, tenancy."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.lots import services
from market.lots.jobs import advance_lots
from market.lots.models import LotDraft, PublishInput
from market.lots.terms import TermsInput
from market.settings import Settings
from tests.factories import csrf, make_org, make_token, sign_in, viewer
from tests.lots.factories import make_case

VALUATION = 1_000_000_00


async def bank(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[int, int, str, str]:
    org, user, email = await make_org(pool, clock.now(), kind="bank")
    token = await make_token(pool, clock.now(), user, ["lots:write", "collateral:read"])
    return org, user, email, token


def body(clock: FrozenClock, **terms: Any) -> dict[str, Any]:
    starts = clock.now() + timedelta(days=30, hours=1)
    t = {
        "start_price_fen": 700_000_00,
        "deposit_fen": 70_000_00,
        "bidding_starts_at": starts.isoformat(),
        "bidding_ends_at": (starts + timedelta(days=1)).isoformat(),
    }
    t.update(terms)
    return {"title": "锂电池正极材料专利包", "terms": t}


async def count(pool: asyncpg.Pool, table: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


@pytest.mark.parametrize(
    ("terms", "field", "words"),
    [
        ({"start_price_fen": 690_000_00}, "start_price_fen", "70 %"),
        ({"deposit_fen": 28_000_00}, "deposit_fen", "5 %"),  # 4 % of the start
        ({"deposit_fen": 147_000_00}, "deposit_fen", "20 %"),  # 21 %
        ({"bidding_ends_at": None}, "bidding_ends_at", "24 hours"),  # 23 hours
    ],
)
async def test_api_refuses_terms_naming_the_rule(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    clock: FrozenClock,
    terms: dict[str, Any],
    field: str,
    words: str,
) -> None:
    org, user, _, token = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, valuation_fen=VALUATION)
    data = body(clock, **terms)
    if terms.get("bidding_ends_at", "") is None:
        starts = clock.now() + timedelta(days=30, hours=1)
        data["terms"]["bidding_ends_at"] = (starts + timedelta(hours=23)).isoformat()
    r = await client.post(
        f"/api/v1/cases/{case_id}/lots", json=data, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["message"]
    assert await count(pool, "lots") == 0


async def test_lot_lifecycle_over_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    case_id, assets = await make_case(pool, clock.now(), org, user)
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=body(clock), headers=auth)
    assert r.status_code == 201, r.text
    lot = r.json()
    assert lot["status"] == "draft" and lot["asset_ids"] == assets
    assert lot["increment_fen"] == 2_000_00 and lot["reference"].startswith("LOT-")
    url = f"/api/v1/bank/lots/{lot['id']}/actions"
    r = await client.post(url, json={"action": "publish"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "announced"
    r = await client.post(url, json={"action": "publish"}, headers=auth)
    assert r.status_code == 409 and "only a draft" in r.json()["message"]
    r = await client.post(url, json={"action": "withdraw", "reason": ""}, headers=auth)
    assert r.status_code == 400  # min_length on the reason: nothing changes
    r = await client.post(url, json={"action": "withdraw", "reason": "借款人已清偿"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    async with pool.acquire() as conn:
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM lot_transitions WHERE lot_id=$1 ORDER BY id", lot["id"]
            )
        ]
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE object_kind='lot' AND object_id=$1",
            str(lot["id"]),
        )
    assert actions == ["create", "publish", "withdraw"]
    assert audited == 3


async def test_publish_blocked_until_disclosure_complete(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    me = await viewer(pool, user)
    policy = services.policy_for(settings)
    lot = await services.create_lot(pool, clock.now(), policy, me, case_id, _draft(clock))
    with pytest.raises(services.lifecycle.IllegalTransition, match="chain_of_title"):
        await services.act(pool, clock.now(), policy, me, lot.id, PublishInput())
    assert (await services.get_lot(pool, org, lot.id)).status == "draft"


def _draft(clock: FrozenClock, start_offset: timedelta = timedelta(days=30, hours=1)) -> LotDraft:
    starts = clock.now() + start_offset
    return LotDraft(
        title="专利包",
        terms=TermsInput(
            start_price_fen=700_000_00,
            deposit_fen=70_000_00,
            bidding_starts_at=starts,
            bidding_ends_at=starts + timedelta(days=1),
        ),
    )


async def test_concurrent_publish_gives_one_publication(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    me = await viewer(pool, user)
    policy = services.policy_for(settings)
    lot = await services.create_lot(pool, clock.now(), policy, me, case_id, _draft(clock))
    results = await asyncio.gather(
        *(services.act(pool, clock.now(), policy, me, lot.id, PublishInput()) for _ in range(12)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, services.lifecycle.IllegalTransition)]
    assert len(ok) == 1 and len(refused) == 11
    async with pool.acquire() as conn:
        publishes = await conn.fetchval(
            "SELECT count(*) FROM lot_transitions WHERE lot_id=$1 AND action='publish'", lot.id
        )
    assert publishes == 1


async def test_worker_opens_bidding_at_the_instant_and_catches_up(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    me = await viewer(pool, user)
    policy = services.policy_for(settings)
    lots = []
    for hours in (1, 2, 3):
        case_id, _ = await make_case(pool, clock.now(), org, user)
        lot = await services.create_lot(
            pool, clock.now(), policy, me, case_id, _draft(clock, timedelta(days=30, hours=hours))
        )
        await services.act(pool, clock.now(), policy, me, lot.id, PublishInput())
        lots.append(lot)
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    first_open = lots[0].bidding_starts_at
    assert first_open is not None

    clock.set(first_open - timedelta(microseconds=1))
    assert (await advance_lots(ctx))["opened"] == []  # one microsecond early: still announced
    clock.set(first_open)
    assert (await advance_lots(ctx))["opened"] == [lots[0].id]  # at the announced instant
    async with pool.acquire() as conn:
        at = await conn.fetchval(
            "SELECT at FROM lot_transitions WHERE lot_id=$1 AND action='open'", lots[0].id
        )
    assert at == first_open

    # The worker is down for a day; on its return it opens everything that came due.
    clock.advance(days=1)
    assert sorted((await advance_lots(ctx))["opened"]) == [lots[1].id, lots[2].id]
    async with pool.acquire() as conn:
        late = await conn.fetchval(
            "SELECT at FROM lot_transitions WHERE lot_id=$1 AND action='open'", lots[2].id
        )
    assert late == lots[2].bidding_starts_at  # the announced instant, not the catch-up time
    assert (await advance_lots(ctx))["opened"] == []  # and running again changes nothing
    for lot in lots:
        assert (await services.get_lot(pool, org, lot.id)).status == "bidding"


async def test_pause_not_resumed_in_5_days_is_ended_by_the_worker(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from market.lots.models import PauseInput

    org, user, _, _ = await bank(pool, clock)
    me = await viewer(pool, user)
    policy = services.policy_for(settings)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await services.create_lot(pool, clock.now(), policy, me, case_id, _draft(clock))
    await services.act(pool, clock.now(), policy, me, lot.id, PublishInput())
    await services.act(pool, clock.now(), policy, me, lot.id, PauseInput(reason="权属争议"))
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    clock.advance(days=5)
    assert (await advance_lots(ctx))["pauses_expired"] == []
    clock.advance(minutes=1)
    assert (await advance_lots(ctx))["pauses_expired"] == [lot.id]
    assert (await services.get_lot(pool, org, lot.id)).status == "withdrawn"


async def test_other_bank_gets_404(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org_a, user_a, _, _ = await bank(pool, clock)
    _, _, email_b, token_b = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org_a, user_a)
    lot = await services.create_lot(
        pool,
        clock.now(),
        services.policy_for(settings),
        await viewer(pool, user_a),
        case_id,
        _draft(clock),
    )
    auth = {"Authorization": f"Bearer {token_b}"}
    assert (await client.get(f"/api/v1/bank/lots/{lot.id}", headers=auth)).status_code == 404
    r = await client.post(
        f"/api/v1/bank/lots/{lot.id}/actions", json={"action": "publish"}, headers=auth
    )
    assert r.status_code == 404
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=body(clock), headers=auth)
    assert r.status_code == 404
    await sign_in(client, email_b)
    assert (await client.get(f"/bank/lots/{lot.id}")).status_code == 404
    assert (await client.get(f"/bank/cases/{case_id}/lots/new")).status_code == 404
    assert (await services.get_lot(pool, org_a, lot.id)).status == "draft"


async def test_stale_edit_is_refused(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = (
        await client.post(f"/api/v1/cases/{case_id}/lots", json=body(clock), headers=auth)
    ).json()
    edit = {**body(clock, start_price_fen=800_000_00), "version": lot["version"]}
    r = await client.put(f"/api/v1/bank/lots/{lot['id']}", json=edit, headers=auth)
    assert r.status_code == 200 and r.json()["start_price_fen"] == 800_000_00
    r = await client.put(f"/api/v1/bank/lots/{lot['id']}", json=edit, headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "stale_version"


async def test_lot_editor_page_shows_errors_next_to_fields(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, assets = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    new = await client.get(f"/bank/cases/{case_id}/lots/new")
    assert new.status_code == 200 and "一种锂电池正极材料的制备方法" in new.text
    starts = (clock.now() + timedelta(days=31)).astimezone(ZoneInfo("Asia/Shanghai"))
    form = {
        "title": "锂电池专利包",
        "asset_ids": [str(a) for a in assets],
        "start_price": "690,000",
        "deposit": "70000",
        "bidding_starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "bidding_ends_at": (starts + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        "_csrf_token": await csrf(client),
    }
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form)
    assert r.status_code == 422
    assert 'id="err-start_price"' in r.text and "70 %" in r.text
    assert "低于评估价" in r.text  # the rule's message, Chinese first beside the Chinese label
    assert await count(pool, "lots") == 0
    form["start_price"] = "700,000"
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form, follow_redirects=True)
    assert r.status_code == 200 and 'data-testid="lot-status"' in r.text
    r = await client.post(str(r.url) + "/actions/publish", data={"_csrf_token": await csrf(client)})
    assert "公告中" in r.text


async def test_relist_and_fixed_price_through_the_service(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    me = await viewer(pool, user)
    policy = services.policy_for(settings)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await services.create_lot(pool, clock.now(), policy, me, case_id, _draft(clock))
    await services.act(pool, clock.now(), policy, me, lot.id, PublishInput())
    assert lot.bidding_ends_at is not None
    clock.set(lot.bidding_ends_at)
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    async with pool.acquire() as conn, conn.transaction():
        await services.close_round(conn, clock.now(), policy, lot.id, sold=False)
    url = f"/api/v1/bank/lots/{lot.id}/actions"
    starts = clock.now() + timedelta(days=15, hours=1)
    relist = {
        "action": "relist",
        "terms": {
            "start_price_fen": 700_000_00 * 79 // 100,
            "deposit_fen": 55_300_00,
            "bidding_starts_at": starts.isoformat(),
            "bidding_ends_at": (starts + timedelta(days=1)).isoformat(),
        },
    }
    r = await client.post(url, json=relist, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "start_price_fen"
    assert "20 %" in r.json()["message"]
    relist["terms"]["start_price_fen"] = 560_000_00
    r = await client.post(url, json=relist, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["round"], r.json()["deposit_fen"]) == (
        "announced",
        2,
        55_300_00,
    )
    clock.set(starts + timedelta(days=1))
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    async with pool.acquire() as conn, conn.transaction():
        await services.close_round(conn, clock.now(), policy, lot.id, sold=False)
    ends = clock.now() + timedelta(days=61)
    r = await client.post(
        url, json={"action": "fixed_price", "ends_at": ends.isoformat()}, headers=auth
    )
    assert r.status_code == 409 and "60 days" in r.json()["message"]
    r = await client.post(
        url,
        json={"action": "fixed_price", "ends_at": (ends - timedelta(days=1)).isoformat()},
        headers=auth,
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["round"], r.json()["start_price_fen"]) == (
        "bidding",
        3,
        560_000_00,
    )
    async with pool.acquire() as conn:
        rounds = await conn.fetch(
            "SELECT round, outcome FROM lot_rounds WHERE lot_id=$1 ORDER BY round", lot.id
        )
    assert [(r["round"], r["outcome"]) for r in rounds] == [(1, "failed"), (2, "failed"), (3, None)]


async def test_partial_lot_states_its_share_of_the_valuation(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    case_id, assets = await make_case(pool, clock.now(), org, user, assets=2)
    first = {**body(clock), "asset_ids": [assets[0]]}
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=first, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "valuation_fen"
    first["valuation_fen"] = VALUATION  # the whole case's value for half the assets
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=first, headers=auth)
    assert r.status_code == 201, r.text
    second = {
        **body(clock, start_price_fen=100_00, deposit_fen=10_00),
        "asset_ids": [assets[1]],
        "valuation_fen": 1_00,
    }
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=second, headers=auth)
    assert r.status_code == 422 and "at most ¥0.00" in r.json()["message"]
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json={**first}, headers=auth)
    assert r.status_code == 409 and r.json()["field"] == "asset_ids"  # already offered


async def test_a_bank_not_approved_acts_on_no_case_and_no_lot(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """Cases and lots, pages and API, answer only an approved bank: a suspended one gets
    403 and changes nothing (as the registry and the pools already did)."""
    org, user, email, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    case_id, _ = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    assert (await client.get(f"/bank/cases/{case_id}")).status_code == 200
    assert (await client.get(f"/bank/cases/{case_id}/lots/new")).status_code == 200
    await pool.execute("UPDATE organisations SET status = 'suspended' WHERE id = $1", org)
    for path in (
        "/bank/cases",
        f"/bank/cases/{case_id}",
        f"/bank/cases/{case_id}/lots/new",
    ):
        assert (await client.get(path)).status_code == 403, path
    token_field = {"_csrf_token": await csrf(client)}
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=token_field)
    assert r.status_code == 403
    # (the token was not used before: its caller is not cached as approved)
    assert (await client.get(f"/api/v1/cases/{case_id}", headers=auth)).status_code == 403
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=body(clock), headers=auth)
    assert r.status_code == 403 and "approved bank" in r.json()["message"]
    assert await count(pool, "lots") == 0
