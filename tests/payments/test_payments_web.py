"""Payments out through the API and the pages: bad input is a 4xx naming the field with
nothing written, the buyer reads its refunds a page at a time, the operator exports, reads
back and closes; whose account a payee's instruction is paid to (docs/rules.md §Payments
out)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.cases.services import china_today
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import NotFound
from market.payments import accounts as payee_accounts
from market.payments import views
from market.payments.instructions import Payee, owe
from market.settings import Settings
from tests.factories import csrf, make_org, make_token, sign_in
from tests.payments.test_instructions import paid_scene, value
from tests.pools.scene import ZHONGSHAN, as_user, make_loan, make_pool

GOOD = {
    "account_name": "竞买人有限公司",
    "account_number": "6222021234567890",
    "bank_name": "工商银行",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_refunds_accounts_and_files(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    loser, winner = scene.buyers[1], scene.buyers[0]
    at = clock.now()
    buyer = bearer(await make_token(pool, at, loser.user_id, ["account:read", "account:write"]))
    other = bearer(await make_token(pool, at, winner.user_id, ["account:read"]))
    bank = bearer(await make_token(pool, at, scene.bank_user, ["account:read", "account:write"]))
    op = bearer(await make_token(pool, at, scene.operator_user, ["operator:write"]))

    # Bad accounts: 422 naming the field, nothing written.
    for body, field in (
        ({**GOOD, "account_number": "6222-0212-3456"}, "account_number"),
        ({**GOOD, "account_number": "1234567"}, "account_number"),
        ({**GOOD, "bank_name": ""}, "bank_name"),
        ({**GOOD, "account_name": "@x"}, "account_name"),
    ):
        r = await client.put("/api/v1/settlement-account", json=body, headers=buyer)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field
    r = await client.put("/api/v1/settlement-account", json={**GOOD, "x": 1}, headers=buyer)
    assert r.status_code == 400
    assert await value(pool, "SELECT count(*) FROM settlement_accounts") == 0
    r = await client.get("/api/v1/settlement-account", headers=buyer)
    assert r.status_code == 404

    # The buyer's refunds, a page at a time; the winner has none.
    r = await client.get("/api/v1/payments-owed?limit=1", headers=buyer)
    assert r.status_code == 200
    page = r.json()
    assert page["next_cursor"] is None and len(page["items"]) == 1
    refund = page["items"][0]
    assert (refund["purpose"], refund["status"], refund["amount_fen"]) == (
        "deposit_refund",
        "pending",
        sale.deposit_fen,
    )
    r = await client.get("/api/v1/payments-owed?purpose=payout", headers=buyer)
    assert r.json()["items"] == []
    assert (await client.get("/api/v1/payments-owed", headers=other)).json()["items"] == []
    bank_owed = (await client.get("/api/v1/payments-owed", headers=bank)).json()["items"]
    assert [i["purpose"] for i in bank_owed] == ["payout"]

    # The operator: export refused while no payee has an account, nothing written.
    day = china_today(clock.now() + timedelta(days=5)).isoformat()
    r = await client.post("/api/v1/operator/payment-files", json={"value_date": day}, headers=op)
    assert (r.status_code, r.json()["field"]) == (422, "value_date")
    listed = await client.get("/api/v1/operator/payment-instructions", headers=op)
    assert {i["held"] for i in listed.json()["items"]} == {"payee_no_account"}
    for who in (buyer, bank):
        r = await client.put("/api/v1/settlement-account", json=GOOD, headers=who)
        assert r.status_code == 200 and r.json()["account_number"] == GOOD["account_number"]
    r = await client.post("/api/v1/operator/payment-files", json={"value_date": day}, headers=op)
    assert r.status_code == 201, r.text
    made = r.json()
    r = await client.get(f"/api/v1/operator/payment-files/{made['id']}/content", headers=op)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert [x["用途/附言"] for x in rows] == [
        i["reference"]
        for i in (await client.get("/api/v1/operator/payment-instructions", headers=op)).json()[
            "items"
        ]
    ]
    r = await client.get("/api/v1/payments-owed", headers=buyer)
    assert r.json()["items"][0]["status"] == "in_file"

    # Close the value date; another export for it: 409 naming value_date, nothing written.
    r = await client.post(
        "/api/v1/operator/payment-periods/close", json={"value_date": day}, headers=op
    )
    assert r.status_code == 200 and r.json()["files"] == 1
    files_before = await value(pool, "SELECT count(*) FROM payment_files")
    r = await client.post("/api/v1/operator/payment-files", json={"value_date": day}, headers=op)
    assert (r.status_code, r.json()["field"], r.json()["code"]) == (
        409,
        "value_date",
        "payment_period_closed",
    )
    assert await value(pool, "SELECT count(*) FROM payment_files") == files_before
    r = await client.post(
        "/api/v1/operator/payment-periods/close", json={"value_date": day}, headers=op
    )
    assert (r.status_code, r.json()["field"]) == (409, "value_date")
    # Not the operator's: 403.
    r = await client.post("/api/v1/operator/payment-files", json={"value_date": day}, headers=buyer)
    assert r.status_code == 403


async def test_pages_show_refunds_and_refuse_a_bad_account(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    loser = scene.buyers[1]
    email = await value(pool, "SELECT email FROM users WHERE id = $1", loser.user_id)
    await sign_in(client, email)
    token = await csrf(client)
    r = await client.post(
        "/payments/account",
        data={**GOOD, "account_number": "12ab", "_csrf_token": token},
    )
    assert r.status_code == 422
    assert 'data-testid="err-account-account_number"' in r.text
    assert "账号须为 8 至 32 位数字" in r.text
    assert await value(pool, "SELECT count(*) FROM settlement_accounts") == 0
    r = await client.post("/payments/account", data={**GOOD, "_csrf_token": token})
    assert r.status_code == 201 or r.status_code == 200
    assert 'data-testid="account-saved"' in r.text
    r = await client.get("/payments/")
    assert r.status_code == 200
    assert "保证金退还" in r.text and "待付" in r.text


async def test_operator_page_exports_and_refuses_a_closed_value_date(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    for user in (scene.buyers[1].user_id, scene.bank_user):
        await as_user(
            pool,
            clock.now(),
            user,
            payee_accounts.set_own_account,
            payee_accounts.AccountIn(**GOOD),
        )
    email = await value(pool, "SELECT email FROM users WHERE id = $1", scene.operator_user)
    await sign_in(client, email)
    token = await csrf(client)
    day = china_today(clock.now() + timedelta(days=5)).isoformat()
    r = await client.post(
        "/operator/payments-out/export", data={"value_date": day, "_csrf_token": token}
    )
    assert r.status_code in (200, 201) and 'data-testid="exported"' in r.text
    file_id = await value(pool, "SELECT id FROM payment_files")
    r = await client.get(f"/operator/payments-out/files/{file_id}")
    assert r.status_code == 200 and r.content.startswith("\ufeff序号".encode())
    r = await client.post(
        "/operator/payments-out/close", data={"value_date": day, "_csrf_token": token}
    )
    assert 'data-testid="closed"' in r.text
    r = await client.post(
        "/operator/payments-out/export", data={"value_date": day, "_csrf_token": token}
    )
    assert r.status_code == 409
    assert 'data-testid="err-export-value_date"' in r.text
    assert await value(pool, "SELECT count(*) FROM payment_files") == 1
    r = await client.get("/operator/payments-out/")
    assert r.status_code == 200 and "已列入付款文件" in r.text


async def test_whose_account_an_instruction_is_paid_to(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    at = clock.now()
    fund = await make_pool(pool, at, ZHONGSHAN)
    loan = await make_loan(pool, at, principal_fen=100_000_00)
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        for source, payee in (
            ("t:pool", Payee(kind="pool", pool_id=fund.pool_id, org_id=fund.org_id)),
            ("t:pledgor", Payee(kind="pledgor", pledgor_id=loan.pledgor_id)),
            ("t:party", Payee(kind="party", party="insurer")),
        ):
            await owe(uow, source=source, purpose="payout", payee=payee, amount_fen=100, due_at=at)

    async def accounts_now() -> dict[str, tuple[str | None, str | None]]:
        page = await views.page_instructions(pool, status=None, cursor=None, limit=10)
        by_id = {
            r["id"]: r["source"]
            for r in await pool.fetch("SELECT id, source FROM payment_instructions")
        }
        return {by_id[i.id]: (i.account_number, i.held) for i in page.items}

    assert await accounts_now() == {
        "t:pool": (None, "payee_no_account"),
        "t:pledgor": (None, "payee_no_account"),
        "t:party": (None, "party_not_here"),
    }
    # The manager organisation's account, until the pool has its own.
    account = {**GOOD}
    await as_user(
        pool,
        at,
        fund.user_id,
        payee_accounts.set_own_account,
        payee_accounts.AccountIn(**{**account, "account_number": "11111111"}),
    )
    assert (await accounts_now())["t:pool"] == ("11111111", None)
    await as_user(
        pool,
        at,
        fund.user_id,
        payee_accounts.set_pool_account,
        payee_accounts.SetPoolAccount(
            pool_id=fund.pool_id,
            account=payee_accounts.AccountIn(**{**account, "account_number": "22222222"}),
        ),
    )
    assert (await accounts_now())["t:pool"] == ("22222222", None)
    # The pledgor: the account its bank recorded, until it is onboarded with its own.
    await as_user(
        pool,
        at,
        loan.bank_user,
        payee_accounts.set_pledgor_account,
        payee_accounts.SetPledgorAccount(
            pledgor_id=loan.pledgor_id,
            account=payee_accounts.AccountIn(**{**account, "account_number": "33333333"}),
        ),
    )
    assert (await accounts_now())["t:pledgor"] == ("33333333", None)
    org, user, _ = await make_org(pool, at, kind="pledgor")
    await pool.execute(
        "UPDATE organisations SET credit_code = (SELECT credit_code FROM pledgors WHERE id = $2)"
        " WHERE id = $1",
        org,
        loan.pledgor_id,
    )
    await as_user(
        pool,
        at,
        user,
        payee_accounts.set_own_account,
        payee_accounts.AccountIn(**{**account, "account_number": "44444444"}),
    )
    assert (await accounts_now())["t:pledgor"] == ("44444444", None)
    # Another bank cannot record an account for this pledgor, another manager not for the pool.
    _, other_bank, _ = await make_org(pool, at, kind="bank")
    with pytest.raises(NotFound) as not_its:
        await as_user(
            pool,
            at,
            other_bank,
            payee_accounts.set_pledgor_account,
            payee_accounts.SetPledgorAccount(
                pledgor_id=loan.pledgor_id, account=payee_accounts.AccountIn(**account)
            ),
        )
    assert not_its.value.field == "pledgor_id"
    other_pool = await make_pool(pool, at, ZHONGSHAN)
    with pytest.raises(NotFound):
        await as_user(
            pool,
            at,
            other_pool.user_id,
            payee_accounts.set_pool_account,
            payee_accounts.SetPoolAccount(
                pool_id=fund.pool_id, account=payee_accounts.AccountIn(**account)
            ),
        )
    assert (await accounts_now())["t:pool"] == ("22222222", None)
