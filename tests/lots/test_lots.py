"""Lots against real PostgreSQL: terms refused with their rule, publication prerequisites,
concurrent transitions, the worker opening bidding on time and catching up, tenancy,
the lot pages in one language at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import Forbidden, NotFound
from market.lots import services
from market.lots.jobs import advance_lots
from market.lots.lifecycle import FIXED_PRICE_ROUND, RELIST_ROUND, IllegalTransition
from market.lots.models import DraftLot, LotDraft, LotOut, PauseLot, PublishLot
from market.lots.terms import TermsInput
from market.problems import MEDIA_TYPE
from market.settings import Settings
from tests.factories import act_as, csrf, make_org, make_token, sign_in
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


async def new_lot(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    user: int,
    case_id: int,
    *,
    start_offset: timedelta = timedelta(days=30, hours=1),
    publish: bool = False,
) -> LotOut:
    """A draft lot made by the bank's user through the command (published if asked)."""
    act = await act_as(pool, clock, user)
    policy = services.policy_for(settings)
    lot = await act(
        services.draft_lot,
        DraftLot(case_id=case_id, lot=_draft(clock, start_offset), policy=policy),
    )
    if publish:
        lot = await act(services.publish_lot, PublishLot(lot_id=lot.id, policy=policy))
    return lot


@pytest.mark.parametrize(
    ("terms", "field", "code", "params"),
    [
        (
            {"start_price_fen": 690_000_00},
            "start_price_fen",
            "start_below_valuation_floor",
            {"floor_fen": 700_000_00, "min_pct": 70},
        ),
        (  # 4 % of the start
            {"deposit_fen": 28_000_00},
            "deposit_fen",
            "deposit_out_of_range",
            {"low_fen": 35_000_00, "min_pct": 5},
        ),
        (  # 21 %
            {"deposit_fen": 147_000_00},
            "deposit_fen",
            "deposit_out_of_range",
            {"high_fen": 140_000_00, "max_pct": 20},
        ),
        (  # 23 hours
            {"bidding_ends_at": None},
            "bidding_ends_at",
            "bidding_window_too_short",
            {"min_hours": 24},
        ),
    ],
)
async def test_api_refuses_terms_naming_the_rule(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    clock: FrozenClock,
    terms: dict[str, Any],
    field: str,
    code: str,
    params: dict[str, Any],
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
    assert r.headers["content-type"].startswith(MEDIA_TYPE)
    problem = r.json()
    assert (problem["code"], problem["field"]) == (code, field)
    assert params.items() <= problem["params"].items()
    assert await count(pool, "lots") == 0


async def test_api_refusal_detail_in_the_callers_language(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, valuation_fen=VALUATION)
    url = f"/api/v1/cases/{case_id}/lots"
    data = body(clock, start_price_fen=690_000_00)
    auth = {"Authorization": f"Bearer {token}"}
    zh = (await client.post(url, json=data, headers=auth)).json()
    assert "低于评估价" in zh["detail"] and "¥700,000.00" in zh["detail"]
    assert "valuation" not in zh["detail"]
    en = (await client.post(url, json=data, headers={**auth, "Accept-Language": "en"})).json()
    assert "70 % of the valuation ¥1,000,000.00" in en["detail"]
    assert "评估" not in en["detail"]


async def test_api_amounts_are_integer_fen(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """A string or a float for an amount is refused naming the field; nothing is parsed."""
    org, user, _, token = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, valuation_fen=VALUATION)
    auth = {"Authorization": f"Bearer {token}"}
    for wrong in ("700000.00", 700_000.5):
        r = await client.post(
            f"/api/v1/cases/{case_id}/lots",
            json=body(clock, start_price_fen=wrong),
            headers=auth,
        )
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "terms.start_price_fen"
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
    assert lot["increment_fen"] == 2_000_00 and lot["reference"].startswith("DRAFT-")
    url = f"/api/v1/bank/lots/{lot['id']}/actions"
    r = await client.post(url, json={"action": "publish"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "announced"
    assert r.json()["reference"] == f"LOT-{clock.now().year}-000001"  # numbered on publication
    r = await client.post(url, json={"action": "publish"}, headers=auth)
    assert r.status_code == 409
    assert r.json()["code"] == "publish_needs_draft"
    assert r.json()["params"] == {"action": "publish", "status": "announced", "round": 1}
    r = await client.post(url, json={"action": "withdraw", "reason": ""}, headers=auth)
    assert r.status_code == 400  # min_length on the reason: nothing changes
    assert (r.json()["code"], r.json()["field"]) == ("too_short", "reason")
    r = await client.post(url, json={"action": "withdraw", "reason": "借款人已清偿"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    async with pool.acquire() as conn:
        transitions = await conn.fetch(
            "SELECT action, actor_user_id FROM lot_transitions WHERE lot_id=$1 ORDER BY id",
            lot["id"],
        )
        audited = await conn.fetch(
            "SELECT action, actor_user_id, actor_org_id, chain_org_id FROM audit_log"
            " WHERE object_kind='lot' AND object_id=$1 ORDER BY id",
            str(lot["id"]),
        )
    assert [t["action"] for t in transitions] == ["create", "publish", "withdraw"]
    assert {t["actor_user_id"] for t in transitions} == {user}  # the token's user
    assert [a["action"] for a in audited] == ["lot.create", "lot.publish", "lot.withdraw"]
    assert {(a["actor_user_id"], a["actor_org_id"], a["chain_org_id"]) for a in audited} == {
        (user, org, org)
    }


async def test_publish_blocked_until_disclosure_complete(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    lot = await new_lot(pool, clock, settings, user, case_id)
    act = await act_as(pool, clock, user)
    with pytest.raises(IllegalTransition) as info:
        await act(
            services.publish_lot, PublishLot(lot_id=lot.id, policy=services.policy_for(settings))
        )
    error = info.value
    assert error.code == "lot_not_publishable"
    assert error.problems is not None and error.params["count"] == len(error.problems)
    missing = {p.params.get("item") for p in error.problems if p.code == "lot_disclosure_missing"}
    assert "chain_of_title" in missing
    assert (await services.get_lot(pool, org, lot.id)).status == "draft"


async def test_api_publish_refusal_lists_each_blocker(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, token = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    lot = await new_lot(pool, clock, settings, user, case_id)
    r = await client.post(
        f"/api/v1/bank/lots/{lot.id}/actions",
        json={"action": "publish"},
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    assert r.status_code == 409
    problem = r.json()
    assert problem["code"] == "lot_not_publishable"
    assert problem["params"]["count"] == len(problem["errors"]) > 0
    lines = {e["params"].get("item"): e for e in problem["errors"]}
    assert lines["chain_of_title"]["code"] == "lot_disclosure_missing"
    assert lines["chain_of_title"]["detail"].startswith("Disclosure document missing")


async def test_concurrent_publish_gives_one_publication(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id)
    act = await act_as(pool, clock, user)
    publish = PublishLot(lot_id=lot.id, policy=services.policy_for(settings))
    results = await asyncio.gather(
        *(act(services.publish_lot, publish) for _ in range(12)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, IllegalTransition)]
    assert len(ok) == 1 and len(refused) == 11
    assert {r.code for r in refused} == {"publish_needs_draft"}
    async with pool.acquire() as conn:
        publishes = await conn.fetchval(
            "SELECT count(*) FROM lot_transitions WHERE lot_id=$1 AND action='publish'", lot.id
        )
    assert publishes == 1


async def test_worker_opens_bidding_at_the_instant_and_catches_up(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, _ = await bank(pool, clock)
    lots = []
    for hours in (1, 2, 3):
        case_id, _ = await make_case(pool, clock.now(), org, user)
        offset = timedelta(days=30, hours=hours)
        lots.append(
            await new_lot(pool, clock, settings, user, case_id, start_offset=offset, publish=True)
        )
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    first_open = lots[0].bidding_starts_at
    assert first_open is not None

    clock.set(first_open - timedelta(microseconds=1))
    assert (await advance_lots(ctx))["opened"] == []  # one microsecond early: still announced
    clock.set(first_open)
    assert (await advance_lots(ctx))["opened"] == [lots[0].id]  # at the announced instant
    async with pool.acquire() as conn:
        opened = await conn.fetchrow(
            "SELECT at, actor_user_id FROM lot_transitions WHERE lot_id=$1 AND action='open'",
            lots[0].id,
        )
        audited = await conn.fetchrow(
            "SELECT actor_user_id, actor_org_id, chain_org_id FROM audit_log"
            " WHERE action='lot.open' AND object_id=$1",
            str(lots[0].id),
        )
    assert opened["at"] == first_open
    assert opened["actor_user_id"] is None  # the exchange, not a person
    assert tuple(audited) == (None, None, org)  # in the bank's chain

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
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id, publish=True)
    act = await act_as(pool, clock, user)
    policy = services.policy_for(settings)
    await act(services.pause_lot, PauseLot(lot_id=lot.id, policy=policy, reason="权属争议"))
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    clock.advance(days=5)
    assert (await advance_lots(ctx))["pauses_expired"] == []
    clock.advance(minutes=1)
    assert (await advance_lots(ctx))["pauses_expired"] == [lot.id]
    ended = await services.get_lot(pool, org, lot.id)
    assert (ended.status, ended.status_reason) == ("withdrawn", "lot.reason.pause_expired")


async def test_the_lots_commands_answer_only_a_bank(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The permission is checked when the command runs, whoever runs it."""
    org, user, _, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    _, buyer, _ = await make_org(pool, clock.now(), kind="buyer")
    act = await act_as(pool, clock, buyer)
    data = DraftLot(case_id=case_id, lot=_draft(clock), policy=services.policy_for(settings))
    with pytest.raises(Forbidden) as info:
        await act(services.draft_lot, data)
    assert info.value.code == "not_permitted"
    assert await count(pool, "lots") == 0


async def test_other_bank_gets_404(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org_a, user_a, _, _ = await bank(pool, clock)
    _, user_b, email_b, token_b = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org_a, user_a)
    lot = await new_lot(pool, clock, settings, user_a, case_id)
    auth = {"Authorization": f"Bearer {token_b}"}
    assert (await client.get(f"/api/v1/bank/lots/{lot.id}", headers=auth)).status_code == 404
    r = await client.post(
        f"/api/v1/bank/lots/{lot.id}/actions", json={"action": "publish"}, headers=auth
    )
    assert r.status_code == 404 and r.json()["code"] == "no_such_lot"
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=body(clock), headers=auth)
    assert r.status_code == 404
    act_b = await act_as(pool, clock, user_b)
    publish = PublishLot(lot_id=lot.id, policy=services.policy_for(settings))
    with pytest.raises(NotFound):
        await act_b(services.publish_lot, publish)
    await sign_in(client, email_b)
    assert (await client.get(f"/bank/lots/{lot.id}")).status_code == 404
    assert (await client.get(f"/bank/cases/{case_id}/lots/new")).status_code == 404
    token = {"_csrf_token": await csrf(client)}
    r = await client.post(f"/bank/lots/{lot.id}/actions/publish", data=token)
    assert r.status_code == 404
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
    assert r.status_code == 409
    assert (r.json()["code"], r.json()["field"]) == ("lot_version_stale", "version")
    url = f"/api/v1/bank/lots/{lot['id']}/actions"
    assert (await client.post(url, json={"action": "publish"}, headers=auth)).status_code == 200
    edit["version"] = lot["version"] + 1
    r = await client.put(f"/api/v1/bank/lots/{lot['id']}", json=edit, headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "edit_needs_draft"


def _editor_form(clock: FrozenClock, assets: list[int], **values: Any) -> dict[str, Any]:
    starts = (clock.now() + timedelta(days=31)).astimezone(ZoneInfo("Asia/Shanghai"))
    form = {
        "title": "锂电池专利包",
        "asset_ids": [str(a) for a in assets],
        "start_price": "690,000",
        "deposit": "70000",
        "bidding_starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "bidding_ends_at": (starts + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
    }
    form.update(values)
    return form


async def test_lot_editor_page_shows_errors_next_to_fields(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, assets = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    new = await client.get(f"/bank/cases/{case_id}/lots/new")
    assert new.status_code == 200 and "一种锂电池正极材料的制备方法" in new.text
    form = {**_editor_form(clock, assets), "_csrf_token": await csrf(client)}
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form)
    assert r.status_code == 422
    assert 'id="err-start_price"' in r.text and "70%" in r.text
    assert "低于评估价" in r.text  # the rule's words, in the page's language only
    assert "of the valuation" not in r.text
    assert await count(pool, "lots") == 0
    form["start_price"] = "700,000"
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form, follow_redirects=True)
    assert r.status_code == 200 and 'data-testid="lot-status"' in r.text
    r = await client.post(str(r.url) + "/actions/publish", data={"_csrf_token": await csrf(client)})
    assert "公告中" in r.text


async def test_lot_editor_page_in_english_speaks_english_only(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, assets = await make_case(pool, clock.now(), org, user)
    await sign_in(client, email)
    client.cookies.set("ipx_lang", "en")
    form = {
        **_editor_form(
            clock, assets, start_price="700,000", deposit="70,000.123", bidding_ends_at="tomorrow"
        ),
        "_csrf_token": await csrf(client),
    }
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form)
    assert r.status_code == 422
    assert "An amount in yuan has at most 2 decimal places" in r.text  # beside the deposit
    assert "A date and time like 2026-05-01T10:00 (Beijing time)" in r.text
    assert "金额最多两位小数" not in r.text and "北京时间）" not in r.text
    form.update(deposit="70,000", bidding_ends_at=form["bidding_starts_at"])
    r = await client.post(f"/bank/cases/{case_id}/lots/new", data=form)
    assert r.status_code == 422
    assert "The bidding window must last at least 24 hours" in r.text
    assert "竞价期" not in r.text


async def test_lot_page_history_and_reasons_are_labelled(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The history shows what happened in words, never the lifecycle's internal names."""
    org, user, email, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id, publish=True)
    act = await act_as(pool, clock, user)
    policy = services.policy_for(settings)
    await act(services.pause_lot, PauseLot(lot_id=lot.id, policy=policy, reason="权属争议"))
    clock.advance(days=6)
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    await sign_in(client, email)
    page = (await client.get(f"/bank/lots/{lot.id}")).text
    for words in ("创建草稿", "发布公告", "中止", "中止超期终止", "权属争议", "一拍"):
        assert words in page, words
    assert "中止后未在规定期限内恢复" in page  # the exchange's reason, translated
    assert "lot.reason." not in page
    for internal in (">create<", ">publish<", ">pause<", ">expire_pause<"):
        assert internal not in page
    client.cookies.set("ipx_lang", "en")
    page = (await client.get(f"/bank/lots/{lot.id}")).text
    for words in ("Draft created", "Published", "Paused", "Pause expired", "Round 1"):
        assert words in page, words
    assert "Not resumed within the time allowed" in page
    assert "创建草稿" not in page and "中止超期终止" not in page


async def test_draft_page_lists_what_blocks_publication(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, email, _ = await bank(pool, clock)
    case_id, _ = await make_case(pool, clock.now(), org, user, disclosed=False)
    lot = await new_lot(pool, clock, settings, user, case_id)
    await sign_in(client, email)
    page = (await client.get(f"/bank/lots/{lot.id}")).text
    assert 'data-testid="publish-blockers"' in page
    assert "尚缺披露材料：权利转移记录" in page  # the document by its name
    r = await client.post(
        f"/bank/lots/{lot.id}/actions/publish", data={"_csrf_token": await csrf(client)}
    )
    assert r.status_code == 409
    assert 'data-testid="action-error"' in r.text and "拍品尚不能发布" in r.text
    r = await client.post(
        f"/bank/lots/{lot.id}/actions/withdraw", data={"_csrf_token": await csrf(client)}
    )
    assert r.status_code == 422 and "必填" in r.text  # the reason
    assert (await services.get_lot(pool, org, lot.id)).status == "draft"


async def test_relist_and_fixed_price_through_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    policy = services.policy_for(settings)
    case_id, _ = await make_case(pool, clock.now(), org, user)
    lot = await new_lot(pool, clock, settings, user, case_id, publish=True)
    assert lot.bidding_ends_at is not None
    clock.set(lot.bidding_ends_at)
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    # The auction engine's close on its own connection and transaction.
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
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == (
        "relist_reduction_too_large",
        "start_price_fen",
    )
    assert r.json()["params"]["max_reduction_pct"] == 20
    assert r.json()["params"]["lowest_fen"] == 560_000_00
    relist["terms"]["start_price_fen"] = 560_000_00
    r = await client.post(url, json=relist, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["round"], r.json()["deposit_fen"]) == (
        "announced",
        RELIST_ROUND,
        55_300_00,
    )
    r = await client.post(url, json=relist, headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "relist_needs_failed_first_round"
    clock.set(starts + timedelta(days=1))
    await advance_lots({"pool": pool, "clock": clock, "settings": settings})
    # The close inside a unit of work the auction engine opened as the exchange.
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        await services.close_round(uow, clock.now(), policy, lot.id, sold=False)
    ends = clock.now() + timedelta(days=61)
    r = await client.post(
        url, json={"action": "fixed_price", "ends_at": ends.isoformat()}, headers=auth
    )
    assert r.status_code == 409
    assert (r.json()["code"], r.json()["params"]["max_days"]) == ("fixed_price_too_long", 60)
    r = await client.post(
        url,
        json={"action": "fixed_price", "ends_at": (ends - timedelta(days=1)).isoformat()},
        headers=auth,
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["round"], r.json()["start_price_fen"]) == (
        "bidding",
        FIXED_PRICE_ROUND,
        560_000_00,
    )
    async with pool.acquire() as conn:
        rounds = await conn.fetch(
            "SELECT round, outcome FROM lot_rounds WHERE lot_id=$1 ORDER BY round", lot.id
        )
        closes = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action='lot.close' AND object_id=$1",
            str(lot.id),
        )
    assert [(r["round"], r["outcome"]) for r in rounds] == [(1, "failed"), (2, "failed"), (3, None)]
    assert closes == 2  # both hand-overs wrote their audit row


async def test_partial_lot_answers_to_its_assets_share_of_the_valuation(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _, token = await bank(pool, clock)
    auth = {"Authorization": f"Bearer {token}"}
    case_id, assets = await make_case(pool, clock.now(), org, user, assets=2)
    half = {**body(clock, start_price_fen=350_000_00, deposit_fen=35_000_00)}
    first = {**half, "asset_ids": [assets[0]], "valuation_fen": VALUATION}
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=first, headers=auth)
    assert r.status_code == 422  # the whole case's value for half the assets
    assert (r.json()["code"], r.json()["field"]) == (
        "lot_valuation_is_assets_share",
        "valuation_fen",
    )
    assert r.json()["params"] == {"share_fen": VALUATION // 2, "case_valuation_fen": VALUATION}
    del first["valuation_fen"]
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=first, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["valuation_fen"] == VALUATION // 2
    second = {**half, "asset_ids": [assets[1]], "valuation_fen": VALUATION // 2}
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json=second, headers=auth)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/cases/{case_id}/lots", json={**first}, headers=auth)
    assert r.status_code == 409  # already offered
    assert (r.json()["code"], r.json()["field"]) == ("assets_in_other_lot", "asset_ids")
    assert r.json()["params"]["asset_ids"] == [assets[0]]


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
    assert r.status_code == 403 and r.json()["code"] == "organisation_not_approved"
    assert await count(pool, "lots") == 0
