"""Paid sales to invoice, made as the exchange makes them: a published lot, confirmed
deposits, two bids, the close, and the operator's record of the balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from auctions.closing import SaleOut
from market.clock import FrozenClock
from market.invoices import details
from market.lots.terms import Fee
from market.settings import Settings
from tests.auctions.test_closing import INCREMENT, START, close_one, make_scene, pay, place_bids
from tests.factories import act_as, credit_code, make_org

SPECIAL = {
    "invoice_type": "vat_special",
    "title": "成都锂能科技有限公司",
    "taxpayer_number": "91510100MA6C8XY41N",
    "address_phone": "成都市高新区天府大道 100 号 028-85550000",
    "bank_account": "中国银行成都高新支行 1234 5678 9012 3456",
}


@dataclass
class Exchange:
    bank_org: int
    bank_user: int
    operator_org: int
    operator_user: int
    operator_email: str


async def exchange(pool: asyncpg.Pool, clock: FrozenClock) -> Exchange:
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    op_org, op_user, op_email = await make_org(pool, clock.now(), kind="operator")
    return Exchange(bank_org, bank_user, op_org, op_user, op_email)


@dataclass
class Sold:
    sale: SaleOut
    buyer_org: int
    buyer_user: int
    scene: Any


async def sold(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    settings: Settings,
    ex: Exchange,
    *,
    premium_bp: int = 0,
) -> Sold:
    """A lot closed with a sale to the second of two bidders (not yet paid); a buyer's
    premium when `premium_bp`, else the statutory commission."""
    fee = Fee(kind="buyer_premium", premium_bp=premium_bp) if premium_bp else None
    scene = await make_scene(
        pool,
        clock,
        settings,
        buyers=2,
        waiting=0,
        fee=fee,
        bank=(ex.bank_org, ex.bank_user),
        operator=(ex.operator_org, ex.operator_user),
    )
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
    return Sold(sale=result.sale, buyer_org=b.org_id, buyer_user=b.user_id, scene=scene)


async def paid(pool: asyncpg.Pool, clock: FrozenClock, ex: Exchange, s: Sold) -> SaleOut:
    clock.advance(days=1)
    return await pay(
        pool, clock, ex.operator_user, s.sale.payment_reference, s.sale.balance_due_fen
    )


async def give_details(
    pool: asyncpg.Pool, clock: FrozenClock, user_id: int, **changes: str
) -> details.DetailsSaved:
    act = await act_as(pool, clock.now(), user_id)
    data = {**SPECIAL, "taxpayer_number": credit_code(), **changes}
    return await act(details.set_invoice_details, details.DetailsIn(**data))  # type: ignore[arg-type]


async def rows(pool: asyncpg.Pool, query: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(query, *args)]
