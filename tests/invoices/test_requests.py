"""Invoice requests (docs/rules.md §Invoices): made when the balance is recorded paid, from
the payer's details — the buyer for a premium, the bank for a commission — or asked for
when the details are missing and made when they come; one per sale however many ask at
once; cancelled or taken back (red letter) when the sale is unwound."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import Conflict, NotFound
from market.invoices import exports, requests
from market.invoices.policy import split_tax
from market.settings import Settings
from tests.factories import act_as, make_token
from tests.invoices.scene import exchange, give_details, paid, rows, sold


def test_the_fee_splits_into_amount_and_vat_at_six_percent() -> None:
    assert split_tax(106_00, 600) == (100_00, 6_00)
    assert split_tax(1_00, 600) == (94, 6)  # 0.943… rounds to 0.94
    assert split_tax(3_500_000, 600) == (3_301_887, 198_113)
    assert split_tax(0, 600) == (0, 0)
    for fen in (1, 7, 99, 12_345, 10**15):
        net, tax = split_tax(fen, 600)
        assert net + tax == fen and abs(net * 600 - tax * 10_000) <= 10_600


async def test_a_premium_is_requested_at_payment_from_the_buyers_details(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex = await exchange(pool, clock)
    s = await sold(pool, clock, settings, ex, premium_bp=300)
    await give_details(pool, clock, s.buyer_user, title="竞买人1有限公司")
    assert await rows(pool, "SELECT * FROM invoice_requests") == []  # not paid yet
    act = await act_as(pool, clock.now(), s.buyer_user)
    with pytest.raises(Conflict) as refused:
        await act(requests.request_invoice, requests.RequestIn(sale_id=s.sale.id))
    assert (refused.value.code, refused.value.field) == ("invoice_sale_not_paid", "sale_id")

    await paid(pool, clock, ex, s)
    [r] = await rows(pool, "SELECT * FROM invoice_requests")
    fee = s.sale.fee_fen
    assert fee == 700_000_00 // 100 * 3 + INCREMENT_PREMIUM
    assert (r["sale_id"], r["kind"], r["status"]) == (s.sale.id, "invoice", "requested")
    assert (r["payer_org_id"], r["fee_kind"], r["title"]) == (
        s.buyer_org,
        "buyer_premium",
        "竞买人1有限公司",
    )
    assert (r["amount_fen"], r["vat_rate_bp"]) == (fee, 600)
    assert (r["net_fen"], r["tax_fen"]) == split_tax(fee, 600)
    assert r["created_at"] == clock.now()
    audit = await rows(pool, "SELECT chain_org_id FROM audit_log WHERE action = 'invoice.request'")
    assert audit == [{"chain_org_id": s.buyer_org}]
    # Nobody was asked for details: they were on file.
    assert await rows(pool, "SELECT * FROM outbox WHERE event = 'invoice_details_needed'") == []
    # Asking again answers the same request.
    act = await act_as(pool, clock.now(), s.buyer_user)
    again = await act(requests.request_invoice, requests.RequestIn(sale_id=s.sale.id))
    assert again.id == r["id"] and again.lot_reference == s.scene.lot.reference


INCREMENT_PREMIUM = 5_000_00 * 3 // 100  # the premium on the winning increment


async def test_a_commission_without_details_asks_the_bank_and_is_requested_when_given(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex = await exchange(pool, clock)
    s = await sold(pool, clock, settings, ex)
    assert s.sale.fee_kind == "commission" and s.sale.fee_fen > 0
    await paid(pool, clock, ex, s)
    assert await rows(pool, "SELECT * FROM invoice_requests") == []
    [asked] = await rows(
        pool,
        "SELECT recipient_org_id, dedupe_key, payload FROM outbox"
        " WHERE event = 'invoice_details_needed'",
    )
    assert asked["recipient_org_id"] == ex.bank_org
    assert asked["dedupe_key"] == f"invoice_details_needed:{s.sale.id}"
    assert asked["payload"]["fee_fen"] == s.sale.fee_fen and asked["payload"]["path"] == "/invoices"

    token = await make_token(pool, clock.now(), ex.bank_user, ["invoices:read", "invoices:write"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.get("/api/v1/invoices/details", headers=auth)
    assert [a["sale_id"] for a in r.json()["awaiting"]] == [s.sale.id]
    r = await client.post("/api/v1/invoices", json={"sale_id": s.sale.id}, headers=auth)
    assert r.status_code == 409 and r.json()["field"] == "invoice_type", r.text
    # The buyer does not pay a commission: the sale is not its to invoice.
    buyer = await make_token(pool, clock.now(), s.buyer_user, ["invoices:write"])
    r = await client.post(
        "/api/v1/invoices",
        json={"sale_id": s.sale.id},
        headers={"Authorization": f"Bearer {buyer}"},
    )
    assert r.status_code == 404 and r.json()["field"] == "sale_id"

    saved = await give_details(pool, clock, ex.bank_user, title="示范银行股份有限公司")
    [r0] = await rows(pool, "SELECT * FROM invoice_requests")
    assert saved.requested == [r0["id"]]
    assert (r0["payer_org_id"], r0["fee_kind"], r0["amount_fen"]) == (
        ex.bank_org,
        "commission",
        s.sale.fee_fen,
    )
    r = await client.get("/api/v1/invoices", headers=auth)
    assert [i["id"] for i in r.json()["items"]] == [r0["id"]]
    assert r.json()["items"][0]["status"] == "requested"
    assert (await client.get("/api/v1/invoices/details", headers=auth)).json()["awaiting"] == []
    # The page shows the request with its words, not its codes.
    from tests.factories import sign_in

    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", ex.bank_user)
    await sign_in(client, email)
    page = await client.get("/invoices")
    assert page.status_code == 200 and f'data-request="{r0["id"]}"' in page.text
    assert "处置佣金" in page.text and "已申请" in page.text


async def test_two_requests_for_one_sale_at_once_make_one(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex = await exchange(pool, clock)
    s = await sold(pool, clock, settings, ex)
    await paid(pool, clock, ex, s)  # no details yet: no request
    await pool.execute(
        "INSERT INTO invoice_details (org_id, invoice_type, title, taxpayer_number, updated_at)"
        " VALUES ($1, 'vat_ordinary', '示范银行', '91510100MA6C8XY41N', $2)",
        ex.bank_org,
        clock.now(),
    )
    token = await make_token(pool, clock.now(), ex.bank_user, ["invoices:write"])
    auth = {"Authorization": f"Bearer {token}"}
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/invoices", json={"sale_id": s.sale.id}, headers=auth)
            for _ in range(8)
        )
    )
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await pool.fetchval("SELECT count(*) FROM invoice_requests") == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'invoice.request'") == 1
    )


async def _cancel(pool: asyncpg.Pool, clock: FrozenClock, sale_id: int, reason: str) -> None:
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        await requests.cancel_for_sale(uow, sale_id, reason)


async def test_an_unwound_sale_cancels_its_request_or_takes_the_invoice_back(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex = await exchange(pool, clock)
    await give_details(pool, clock, ex.bank_user, title="示范银行股份有限公司")
    first = await sold(pool, clock, settings, ex)
    await paid(pool, clock, ex, first)
    # Unwound before the export: the request is cancelled, nothing goes to finance.
    await _cancel(pool, clock, first.sale.id, "著录项目变更未获准予")
    [r] = await rows(pool, "SELECT status, reason, cancelled_at FROM invoice_requests")
    assert (r["status"], r["reason"], r["cancelled_at"]) == (
        "cancelled",
        "著录项目变更未获准予",
        clock.now(),
    )
    await _cancel(pool, clock, first.sale.id, "again")  # changes nothing
    assert await pool.fetchval("SELECT count(*) FROM invoice_cancellations") == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action='invoice.cancel_for_sale'")
        == 1
    )
    act = await act_as(pool, clock.now(), ex.bank_user)
    with pytest.raises(Conflict) as refused:
        await act(requests.request_invoice, requests.RequestIn(sale_id=first.sale.id))
    assert refused.value.code == "invoice_sale_unwound"

    # Unwound after the export: a red-letter request for the next export.
    second = await sold(pool, clock, settings, ex)
    await paid(pool, clock, ex, second)
    op = await act_as(pool, clock.now(), ex.operator_user)
    period = clock.now().astimezone(exports.CHINA).strftime("%Y-%m")
    done = await op(exports.export_invoice_requests, exports.ExportIn(period=period))
    assert done.requests == 1
    await _cancel(pool, clock, second.sale.id, "质押登记注销未完成")
    found = await rows(
        pool,
        "SELECT id, kind, status, cancels_id, amount_fen FROM invoice_requests"
        " WHERE sale_id = $1 ORDER BY id",
        second.sale.id,
    )
    assert [(x["kind"], x["status"]) for x in found] == [
        ("invoice", "exported"),
        ("red_letter", "requested"),
    ]
    assert found[1]["cancels_id"] == found[0]["id"]
    assert found[1]["amount_fen"] == found[0]["amount_fen"] == second.sale.fee_fen
    clock.advance(days=1)
    again = await op(exports.export_invoice_requests, exports.ExportIn(period=period))
    assert again.requests == 1
    async with pool.acquire() as conn:
        _, body = await exports.export_file(conn, again.id)
    text = body.decode("utf-8-sig")
    assert ",red_letter," in text and f",-{second.sale.fee_fen // 100}." in text

    with pytest.raises(NotFound):
        await _cancel(pool, clock, 10**9, "no such sale")


async def test_an_unwinding_and_a_request_at_once_leave_no_live_invoice(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex = await exchange(pool, clock)
    s = await sold(pool, clock, settings, ex)
    await paid(pool, clock, ex, s)  # no details yet: no request
    await pool.execute(
        "INSERT INTO invoice_details (org_id, invoice_type, title, taxpayer_number, updated_at)"
        " VALUES ($1, 'vat_ordinary', '示范银行', '91510100MA6C8XY41N', $2)",
        ex.bank_org,
        clock.now(),
    )
    act = await act_as(pool, clock.now(), ex.bank_user)

    async def ask() -> object:
        try:
            return await act(requests.request_invoice, requests.RequestIn(sale_id=s.sale.id))
        except Conflict as exc:
            return exc.code

    results = await asyncio.gather(ask(), _cancel(pool, clock, s.sale.id, "转让失败"), ask())
    found = await rows(pool, "SELECT status FROM invoice_requests")
    # Whichever came first, the sale ends with no invoice to issue.
    assert [r["status"] for r in found] in ([], ["cancelled"]), results
    assert await pool.fetchval("SELECT count(*) FROM invoice_cancellations") == 1
