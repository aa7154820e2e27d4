"""The acquisition institution as the taker through the API and the pages, in both
languages: the bank names it on its case's section (and sees it there), the acquirer sees
the proposal on /agreed-disposals and accepts it there or over the API with its own scope;
a refusal is problem+json naming its field, nothing written."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.acquisition.taker_scene import PRICE, make_taker_scene
from tests.acquisition.test_api_and_pages import _as, _read
from tests.factories import csrf, make_org, make_token


async def test_the_bank_names_the_acquirer_and_it_accepts_over_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    bank = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), t.s.loan.bank_user, ['collateral:write'])}"
    }
    taker = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), t.acquirer[1], ['agreements:read', 'agreements:write'])}"
    }
    # The acquirer's read-only token.
    reader = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), t.acquirer[1], ['agreements:read'])}"
    }
    _, other_user, _ = await make_org(pool, clock.now(), kind="acquirer")
    other = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), other_user, ['agreements:read', 'agreements:write'])}"
    }
    buyer, _, _ = await make_org(pool, clock.now(), kind="buyer")
    url = f"/api/v1/bank/cases/{t.s.loan.case_id}/acquisitions"
    body = {"amount_fen": PRICE, "consent_document_id": t.s.consent_id}
    r = await client.post(url, json={**body, "taker_org_id": buyer}, headers=bank)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")
    assert (r.json()["code"], r.json()["field"]) == ("agreement_taker_not_acquirer", "taker_org_id")
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 0
    choices = await client.get(
        f"/api/v1/bank/cases/{t.s.loan.case_id}/agreed-disposals", headers=bank
    )
    assert t.acquirer[0] in {c["org_id"] for c in choices.json()["takers"]}

    made = await client.post(url, json={**body, "taker_org_id": t.acquirer[0]}, headers=bank)
    assert made.status_code == 201, made.text
    disposal = made.json()
    assert (disposal["taker_org_id"], disposal["accept_by"] is not None) == (t.acquirer[0], True)
    seen = await client.get("/api/v1/agreed-disposals", headers=taker)
    assert [a["id"] for a in seen.json()] == [disposal["id"]]
    answer = f"/api/v1/agreed-disposals/{disposal['id']}/answer"
    # Reading is not answering: the token scope decides.
    assert (
        await client.post(answer, json={"decision": "accept"}, headers=reader)
    ).status_code == 403
    assert (
        await client.post(answer, json={"decision": "accept"}, headers=other)
    ).status_code == 404
    bad = await client.post(answer, json={"decision": "maybe"}, headers=taker)
    assert (bad.status_code, bad.json()["field"]) == (400, "decision")
    ok = await client.post(answer, json={"decision": "accept"}, headers=taker)
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted_at"] is not None


async def test_the_acquirer_accepts_on_its_page_and_the_bank_sees_the_taker(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    t = await make_taker_scene(pool, clock, settings)
    await _as(client, pool, t.s.loan.bank_user)
    section = f"/bank/cases/{t.s.loan.case_id}/agreed-disposals"
    html = await _read(client, section, "zh")
    assert 'data-testid="acquisition-taker"' in html and "中国长城资产管理股份有限公司" in html
    # Not an acquirer: the form comes back with the refusal beside the taker field.
    buyer, _, _ = await make_org(pool, clock.now(), kind="buyer")
    form = {
        "_csrf_token": await csrf(client),
        "amount": f"{PRICE // 100}",
        "consent": str(t.s.consent_id),
        "taker": str(buyer),
    }
    r = await client.post(f"{section}/acquisition", data=form, follow_redirects=False)
    assert r.status_code == 422 and 'data-testid="err-acquisition-taker"' in r.text, r.text[-2000:]
    assert await pool.fetchval("SELECT count(*) FROM agreed_disposals") == 0
    form["taker"] = str(t.acquirer[0])
    r = await client.post(f"{section}/acquisition", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text[-2000:]
    disposal = await pool.fetchval("SELECT id FROM agreed_disposals")
    for lang in ("zh", "en"):
        html = await _read(client, section, lang)
        assert "中国长城资产管理股份有限公司" in html
    assert "须于" in await _read(client, section, "zh")

    await _as(client, pool, t.acquirer[1])
    for lang, words in (("zh", "接受受让"), ("en", "Accept")):
        html = await _read(client, "/agreed-disposals", lang)
        assert f'data-testid="accept-{disposal}"' in html and words in html
    r = await client.post(
        f"/agreed-disposals/{disposal}/answer",
        data={"_csrf_token": await csrf(client), "decision": "accept"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = await _read(client, "/agreed-disposals", "zh")
    assert f'data-testid="accept-{disposal}"' not in html and "已于" in html
    assert await pool.fetchval("SELECT accepted_at FROM agreed_disposals") is not None

    await _as(client, pool, t.s.loan.bank_user)
    assert "已于" in await _read(client, section, "zh")
