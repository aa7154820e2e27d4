"""The operator records a buyer's payment over the API and on the payments page: the
amount must be the balance due (422, nothing written), a second recording changes
nothing, overdue sales stand out, and only the operator may do it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import (
    INCREMENT,
    START,
    check_books,
    close_one,
    make_scene,
    place_bids,
    value,
)
from tests.factories import csrf, make_org, make_token, sign_in


async def sold(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> tuple[Any, Any]:
    op_org, op_user, op_email = await make_org(pool, clock.now(), kind="operator")
    scene = await make_scene(pool, clock, settings, buyers=2, waiting=0, operator=(op_org, op_user))
    a, b = scene.buyers
    await place_bids(
        pool,
        scene.lot.id,
        [
            (a.registration_id, START, scene.ends_at - timedelta(hours=2)),
            (b.registration_id, START + INCREMENT, scene.ends_at - timedelta(hours=1)),
        ],
    )
    clock.set(scene.ends_at)
    result = await close_one(pool, settings, clock.now(), scene.lot.id)
    assert result is not None and result.sale is not None
    scene.ctx["operator_email"] = op_email
    return scene, result.sale


async def test_payment_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await sold(pool, clock, settings)
    token = await make_token(pool, clock.now(), scene.operator_user, ["operator:write"])
    auth = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/operator/payments"
    body = {"payment_reference": sale.payment_reference, "amount_fen": sale.balance_due_fen}

    assert (await client.post(url, json=body)).status_code == 401
    buyer = scene.buyers[1]
    buyer_token = await make_token(pool, clock.now(), buyer.user_id, ["bids:write"])
    r = await client.post(url, json=body, headers={"Authorization": f"Bearer {buyer_token}"})
    assert r.status_code == 403

    r = await client.get(url, headers=auth)
    assert r.status_code == 200
    assert [(s["sale_id"], s["overdue"]) for s in r.json()] == [(sale.id, False)]

    r = await client.post(
        url, json={**body, "amount_fen": sale.balance_due_fen + 100}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "amount_fen", r.text
    assert r.json()["code"] == "balance_amount_mismatch"
    assert r.json()["params"]["received_fen"] == sale.balance_due_fen + 100
    for loose in (str(sale.balance_due_fen), float(sale.balance_due_fen)):
        r = await client.post(url, json={**body, "amount_fen": loose}, headers=auth)
        assert r.status_code == 400 and r.json()["field"] == "amount_fen", r.text
        assert r.json()["code"] == "whole_number"
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "awaiting_payment"
    assert (
        await value(pool, "SELECT count(*) FROM ledger_entries WHERE source_kind='sale_payment'")
        == 0
    )
    r = await client.post(url, json={**body, "payment_reference": "JKNOSUCHREF2"}, headers=auth)
    assert r.status_code == 404 and r.json()["field"] == "payment_reference"
    assert r.json()["code"] == "no_such_payment_reference"
    r = await client.post(url, json={**body, "note": "x"}, headers=auth)
    assert r.status_code == 400 and r.json()["field"] == "note"

    clock.advance(days=2)
    r = await client.post(url, json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["id"]) == ("paid", sale.id)
    r2 = await client.post(url, json=body, headers=auth)
    assert r2.status_code == 200 and r2.json() == r.json()  # recorded once
    assert (
        await value(pool, "SELECT count(*) FROM ledger_entries WHERE source_kind='sale_payment'")
        == 1
    )
    statuses = await check_books(pool)
    assert statuses[scene.buyers[1].registration_id] == "applied"
    assert (await client.get(url, headers=auth)).json() == []
    assert (
        await value(
            pool,
            "SELECT count(*) FROM audit_log WHERE action='sale.pay' AND object_id=$1",
            str(sale.id),
        )
        == 1
    )


async def test_payments_page(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await sold(pool, clock, settings)
    # A buyer may not see the page.
    _, _, buyer_email = await make_org(pool, clock.now(), kind="buyer")
    await sign_in(client, buyer_email)
    assert (await client.get("/operator/payments")).status_code == 403
    await client.post("/logout", data={"_csrf_token": await csrf(client)})

    await sign_in(client, scene.ctx["operator_email"])
    r = await client.get("/operator/payments")
    assert r.status_code == 200
    assert f'data-sale="{sale.id}"' in r.text and sale.payment_reference in r.text
    assert 'class="overdue"' not in r.text
    assert "佣金（处置费用）" in r.text and ">commission<" not in r.text  # a label, not the code
    clock.set(sale.due_at)  # the deadline has come; the default sweep has not run yet
    r = await client.get("/operator/payments")
    assert f'<tr data-sale="{sale.id}" class="overdue">' in r.text

    form = {"_csrf_token": await csrf(client), "payment_reference": sale.payment_reference}
    r = await client.post("/operator/payments", data={**form, "amount": "1.00"})
    assert r.status_code == 422
    assert 'id="err-amount"' in r.text and 'aria-invalid="true"' in r.text
    assert "不符，未入账" in r.text
    r = await client.post("/operator/payments", data={**form, "amount": "2万3亿"})
    assert r.status_code == 422 and 'id="err-amount"' in r.text
    r = await client.post("/operator/payments", data={**form, "payment_reference": ""})
    assert r.status_code == 422 and 'id="err-payment_reference"' in r.text
    r = await client.post(
        "/operator/payments", data={**form, "payment_reference": "JKNOSUCHREF2", "amount": "1"}
    )
    assert r.status_code == 404 and 'id="err-payment_reference"' in r.text
    client.cookies.set("ipx_lang", "en")
    r = await client.post("/operator/payments", data={**form, "amount": "1.00"})
    assert r.status_code == 422 and "nothing was recorded" in r.text and "未入账" not in r.text
    client.cookies.set("ipx_lang", "zh")
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "awaiting_payment"

    yuan, fen = divmod(sale.balance_due_fen, 100)
    r = await client.post("/operator/payments", data={**form, "amount": f"{yuan:,}.{fen:02d}"})
    assert r.status_code == 200, r.text
    assert 'role="status"' in r.text and f'data-sale="{sale.id}"' not in r.text
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "paid"
    await check_books(pool)
