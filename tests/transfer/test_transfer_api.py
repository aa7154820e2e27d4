"""The transfer of title over the API and on its pages: each party uploads its own notice,
the operator confirms; bad input is a 4xx naming the field with nothing written; another
organisation's sale is 404; only the operator confirms."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.services import china_today
from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import value
from tests.factories import csrf, make_token, sign_in
from tests.transfer.factories import PDF
from tests.transfer.test_escrow_flow import owed_to_somebody, paid_scene

B64 = base64.b64encode(PDF).decode()


def body(kind: str, number: str, issued_on: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "number": number,
        "issued_on": issued_on,
        "filename": "notice.pdf",
        "content": B64,
    }


async def written(pool: asyncpg.Pool) -> tuple[int, int, int]:
    return (
        await value(pool, "SELECT count(*) FROM transfer_notices"),
        await value(pool, "SELECT count(*) FROM case_documents"),
        await value(pool, "SELECT count(*) FROM audit_log"),
    )


async def test_the_transfer_over_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, other_sale = await paid_scene(pool, clock, settings)
    scene, sale = await paid_scene(pool, clock, settings)
    winner = scene.buyers[0]
    today = china_today(clock.now()).isoformat()

    async def auth(user: int, scopes: list[str]) -> dict[str, str]:
        token = await make_token(pool, clock.now(), user, scopes)
        return {"Authorization": f"Bearer {token}"}

    bank = await auth(scene.bank_user, ["transfers:read", "transfers:write"])
    buyer = await auth(winner.user_id, ["transfers:read", "transfers:write"])
    operator = await auth(scene.operator_user, ["operator:write"])
    url = f"/api/v1/transfers/{sale.id}"

    r = await client.get(url, headers=buyer)
    assert r.status_code == 200 and r.json()["step"] == "release", r.text
    assert r.json()["needed"] == ["pledge_release", "patent_recordal"]
    assert (
        await client.get(f"/api/v1/transfers/{other_sale.id}", headers=buyer)
    ).status_code == 404
    listed = await client.get("/api/v1/transfers", headers=bank)
    assert [t["sale_id"] for t in listed.json()] == [sale.id]

    before = await written(pool)
    # A notice for another sale; a date before the sale; a kind of the other party; a body
    # whose date is no date: each a 4xx naming the field, nothing written.
    r = await client.post(
        f"/api/v1/transfers/{other_sale.id}/recordal",
        json=body("patent_recordal", "BG1", today),
        headers=buyer,
    )
    assert (r.status_code, r.json()["field"]) == (404, "sale_id"), r.text
    early = (sale.closed_at - timedelta(days=1)).date().isoformat()
    r = await client.post(
        f"{url}/recordal", json=body("patent_recordal", "BG1", early), headers=buyer
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "transfer_notice_before_sale",
        "issued_on",
    ), r.text
    r = await client.post(
        f"{url}/recordal", json=body("pledge_release", "ZX1", today), headers=buyer
    )
    assert (r.status_code, r.json()["field"]) == (403, "kind"), r.text
    r = await client.post(
        f"{url}/recordal", json=body("patent_recordal", "BG1", "昨天"), headers=buyer
    )
    assert (r.status_code, r.json()["field"]) == (400, "issued_on"), r.text
    r = await client.post(
        f"{url}/release", json=body("pledge_release", "ZX1", today), headers=buyer
    )
    assert r.status_code == 403  # the buyer may not use the bank's route
    r = await client.post(f"{url}/confirm", headers=buyer)
    assert r.status_code in (403, 404, 405)
    assert await written(pool) == before

    r = await client.post(f"{url}/release", json=body("pledge_release", "ZX1", today), headers=bank)
    assert r.status_code == 200 and r.json()["step"] == "recordal", r.text
    r = await client.post(
        f"{url}/recordal", json=body("patent_recordal", "BG1", today), headers=buyer
    )
    assert r.status_code == 200 and r.json()["step"] == "check", r.text
    notice = r.json()["notices"][1]["id"]
    doc = await client.get(f"{url}/notices/{notice}/document", headers=bank)
    assert doc.status_code == 200 and doc.content == PDF
    queue = await client.get("/api/v1/operator/transfers", headers=operator)
    assert {t["sale_id"]: t["step"] for t in queue.json()} == {
        sale.id: "check",
        other_sale.id: "release",
    }
    r = await client.post(
        f"/api/v1/operator/transfers/{other_sale.id}/notices/{notice}/reject",
        json={"reason": "x"},
        headers=operator,
    )
    assert (r.status_code, r.json()["field"]) == (404, "notice_id"), r.text
    r = await client.post(f"/api/v1/operator/transfers/{sale.id}/confirm", headers=operator)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    again = await client.post(f"/api/v1/operator/transfers/{sale.id}/confirm", headers=operator)
    assert again.json() == r.json()
    r = await client.post(
        f"/api/v1/operator/transfers/{other_sale.id}/failure",
        json={"cause": "somebody"},
        headers=operator,
    )
    assert (r.status_code, r.json()["field"]) == (400, "cause"), r.text
    r = await client.post(
        f"/api/v1/operator/transfers/{other_sale.id}/failure",
        json={"cause": "pledgor_dispute", "note": "出质人对转让提出异议"},
        headers=operator,
    )
    assert r.status_code == 200 and r.json()["status"] == "unwound", r.text
    await owed_to_somebody(pool, sale)
    await owed_to_somebody(pool, other_sale)


async def test_the_pages(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    email = await value(pool, "SELECT email FROM users WHERE id = $1", scene.bank_user)
    await sign_in(client, email)
    page = await client.get(f"/transfers/{sale.id}")
    assert page.status_code == 200 and 'data-testid="notice-form"' in page.text
    token = await csrf(client)
    early = (sale.closed_at - timedelta(days=1)).date().isoformat()
    r = await client.post(
        f"/transfers/{sale.id}/release",
        data={"_csrf_token": token, "kind": "pledge_release", "number": "ZX1", "issued_on": early},
        files={"document": ("notice.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422 and 'data-testid="err-notice-issued_on"' in r.text
    assert await value(pool, "SELECT count(*) FROM transfer_notices") == 0
    today = china_today(clock.now()).isoformat()
    r = await client.post(
        f"/transfers/{sale.id}/release",
        data={"_csrf_token": token, "kind": "pledge_release", "number": "ZX1", "issued_on": today},
        files={"document": ("notice.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert await value(pool, "SELECT count(*) FROM transfer_notices") == 1
    pools = await client.get("/bank/pools")
    assert 'data-testid="held-in-escrow"' in pools.text
