"""Disposal by agreement through the API (problem+json naming the field, nothing written)
and through the pages (the bank's form re-rendered with the refusal beside its field, the
pool manager's objection), in both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.acquisition import agreement
from market.clock import FrozenClock
from market.web import LANG_COOKIE
from tests.acquisition.scene import make_scene, propose_acquisition, upload
from tests.factories import csrf, make_token, sign_in
from tests.pools.scene import make_loan

KEYS = re.compile(r"\b(?:acquisition|problem|cases|notify)\.[a-z_.]+\b")


async def _as(client: AsyncTestClient[Any], pool: asyncpg.Pool, user_id: int) -> None:
    client.cookies.clear()
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    assert (await sign_in(client, email)).status_code in (302, 303)


async def _read(client: AsyncTestClient[Any], url: str, lang: str) -> str:
    client.cookies.set(LANG_COOKIE, lang)
    r = await client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    text = re.sub(r"<[^>]+>", " ", re.sub(r'(href|action|name|data-[a-z-]+)="[^"]*"', "", r.text))
    assert not KEYS.findall(text), KEYS.findall(text)
    return r.text


async def test_the_api_refuses_naming_the_field_and_runs_the_steps(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    bank = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), s.loan.bank_user, ['collateral:write', 'agreements:read'])}"
    }
    manager = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), s.pool_b.user_id, ['pools:write', 'agreements:read'])}"
    }
    other = await make_loan(
        pool, clock.now(), principal_fen=100_000_000, bank=(s.loan.bank_org, s.loan.bank_user)
    )
    foreign = await upload(pool, clock.now(), other, agreement.CONSENT_ITEM)
    url = f"/api/v1/bank/cases/{s.loan.case_id}/acquisitions"
    for body, code, field in [
        (
            {"amount_fen": 119_999_999, "consent_document_id": s.consent_id},
            "agreement_below_auction_start",
            "amount_fen",
        ),
        (
            {"amount_fen": 123_456_789, "consent_document_id": foreign},
            "agreement_document_not_of_case",
            "consent_document_id",
        ),
    ]:
        r = await client.post(url, json=body, headers=bank)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == (code, field)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 0

    r = await client.post(
        url, json={"amount_fen": 123_456_789, "consent_document_id": s.consent_id}, headers=bank
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["status"], made["floor_fen"]) == ("pending", 120_000_000)
    seen = await client.get("/api/v1/agreed-disposals", headers=manager)
    assert [a["id"] for a in seen.json()] == [made["id"]]
    listed = await client.get(f"/api/v1/bank/cases/{s.loan.case_id}/agreed-disposals", headers=bank)
    assert [a["status"] for a in listed.json()["agreements"]] == ["pending"]

    clock.advance(timedelta(days=10))
    late = await client.post(
        f"/api/v1/agreed-disposals/{made['id']}/objection",
        json={"reason": "价格偏低"},
        headers=manager,
    )
    assert late.status_code == 422
    assert (late.json()["code"], late.json()["field"]) == ("objection_window_closed", "reason")
    assert await pool.fetchval("SELECT status FROM agreed_disposals") == "pending"


async def test_the_bank_proposes_on_its_page_and_a_pool_objects_on_its_own(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    page_url = f"/bank/cases/{s.loan.case_id}/agreed-disposals"
    await _as(client, pool, s.loan.bank_user)
    for lang in ("zh", "en"):
        shown = await _read(client, page_url, lang)
        assert 'data-testid="acquisition-form"' in shown and 'data-testid="equity-form"' in shown
    case_page = await _read(client, f"/bank/cases/{s.loan.case_id}", "zh")
    assert 'data-testid="case-agreed-disposals"' in case_page
    client.cookies.set(LANG_COOKIE, "zh")
    form = {
        "_csrf_token": await csrf(client),
        "amount": "1,199,999.99",
        "consent": str(s.consent_id),
    }
    r = await client.post(f"{page_url}/acquisition", data=form, follow_redirects=False)
    assert r.status_code == 422
    assert 'data-testid="err-acquisition-amount"' in r.text and "1,200,000.00" in r.text
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 0
    form["amount"] = "1,234,567.89"
    r = await client.post(f"{page_url}/acquisition", data=form, follow_redirects=False)
    assert r.status_code == 303
    disposal = await pool.fetchrow("SELECT id, amount_fen FROM agreed_disposals")
    assert disposal["amount_fen"] == 123_456_789

    await _as(client, pool, s.pool_a.user_id)
    for lang in ("zh", "en"):
        mine = await _read(client, "/agreed-disposals", lang)
        assert f'data-testid="object-form-{disposal["id"]}"' in mine
    client.cookies.set(LANG_COOKIE, "zh")
    token = await csrf(client)
    url = f"/agreed-disposals/{disposal['id']}/objection"
    r = await client.post(url, data={"_csrf_token": token, "reason": "  "}, follow_redirects=False)
    assert r.status_code == 422 and f'data-testid="err-reason-{disposal["id"]}"' in r.text
    r = await client.post(
        url, data={"_csrf_token": token, "reason": "评估价偏低"}, follow_redirects=False
    )
    assert r.status_code == 303

    await _as(client, pool, s.loan.bank_user)
    after = await _read(client, page_url, "zh")
    assert 'data-status="objected"' in after and "评估价偏低" in after
    await _as(client, pool, s.operator[1])
    everything = await _read(client, "/operator/agreed-disposals", "en")
    assert f'data-testid="agreement-{disposal["id"]}"' in everything


async def test_another_bank_and_an_uninvolved_pool_see_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await make_scene(pool, clock)
    proposed = await propose_acquisition(pool, clock.now(), s, 123_456_789)
    stranger = await make_scene(pool, clock)  # another bank, other pools
    await _as(client, pool, stranger.loan.bank_user)
    r = await client.get(f"/bank/cases/{s.loan.case_id}/agreed-disposals")
    assert r.status_code == 404
    await _as(client, pool, stranger.pool_a.user_id)
    assert f"agreement-{proposed.id}" not in await _read(client, "/agreed-disposals", "zh")
    token = await csrf(client)
    r = await client.post(
        f"/agreed-disposals/{proposed.id}/objection",
        data={"_csrf_token": token, "reason": "不相干"},
        follow_redirects=False,
    )
    assert r.status_code == 404
    assert (
        await pool.fetchval("SELECT status FROM agreed_disposals WHERE id = $1", proposed.id)
        == "pending"
    )
