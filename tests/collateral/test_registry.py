"""Reading the registry: what cases and lots call, the API and the pages, tenancy; the demo."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.accounts.permissions import READ_COLLATERAL, WRITE_COLLATERAL, permission_of
from market.clock import FrozenClock
from market.collateral import services
from market.collateral.demo import seed_demo_portfolio
from market.collateral.monitoring import business_day
from market.errors import NotFound
from market.validators import patent_application_number
from tests.collateral.factories import make_portfolio
from tests.factories import act_as, make_org, make_token, sign_in


async def _loans(pool: asyncpg.Pool, bank: int) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT default_date FROM loans WHERE bank_org_id = $1", bank))


async def _loan_ids(pool: asyncpg.Pool, bank: int) -> list[int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM loans WHERE bank_org_id = $1 ORDER BY id", bank)
    return [r["id"] for r in rows]


async def test_loan_for_case_has_pledgor_pledge_and_assets(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    other, _, _ = await make_org(pool, clock.now(), kind="bank")
    await make_portfolio(pool, clock.now(), user, rows=15, seed=41)
    loan_id = (await _loan_ids(pool, bank))[0]
    async with pool.acquire() as conn:
        loan = await services.loan_for_case(conn, bank, loan_id)
        assert loan.id == loan_id and loan.pledge is not None and loan.pledge.assets
        assert loan.pledgor.name.endswith("有限公司")
        assert loan.pledge.pledgor_id == loan.pledgor.id
        assert 0 < loan.rate_bp < 1000 and loan.outstanding_principal_fen <= loan.principal_fen
        patent = next(a for a in loan.pledge.assets if a.kind == "patent")
        assert patent_application_number(patent.number) == patent.number
        assert patent.patent_type in ("invention", "utility_model")
        assert patent.filing_date is not None and patent.term_ends_on is not None
        assert patent.term_ends_on.year - patent.filing_date.year in (10, 20)
        assert patent.owners[0] == loan.pledgor.name
        with pytest.raises(NotFound):
            await services.loan_for_case(conn, other, loan_id)
        with pytest.raises(NotFound):
            await services.loan_for_case(conn, bank, 999_999)


async def test_assets_by_ids_keeps_order_and_leaves_out_others(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    a_bank, a_user, _ = await make_org(pool, clock.now(), kind="bank")
    b_bank, b_user, _ = await make_org(pool, clock.now(), kind="bank")
    await make_portfolio(pool, clock.now(), a_user, rows=5, seed=42)
    await make_portfolio(pool, clock.now(), b_user, rows=5, seed=43)
    async with pool.acquire() as conn:
        mine = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM ip_assets WHERE bank_org_id = $1", a_bank)
        ]
        theirs = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM ip_assets WHERE bank_org_id = $1", b_bank)
        ]
        asked = [mine[3], theirs[0], mine[1], mine[3]]
        found = await services.assets_by_ids(conn, a_bank, asked)
    assert [a.id for a in found] == [mine[3], mine[1]]


async def test_api_reads_and_tenancy(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    _, other_user, _ = await make_org(pool, clock.now(), kind="bank")
    await make_portfolio(pool, clock.now(), user, rows=6, seed=44)
    loan_id = (await _loan_ids(pool, bank))[0]
    mine = {
        "authorization": f"Bearer {await make_token(pool, clock.now(), user, ['collateral:read'])}"
    }
    theirs = {
        "authorization": f"Bearer {await make_token(pool, clock.now(), other_user, ['collateral:read'])}"
    }
    r = await client.get(f"/api/v1/collateral/loans/{loan_id}", headers=mine)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pledge"]["assets"] and body["pledgor"]["credit_code"]
    asset_id = body["pledge"]["assets"][0]["id"]
    r = await client.get(f"/api/v1/collateral/loans/{loan_id}", headers=theirs)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert (
        await client.get(f"/api/v1/collateral/assets/{asset_id}", headers=mine)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/collateral/assets/{asset_id}", headers=theirs)
    ).status_code == 404
    flags = await client.get(f"/api/v1/collateral/assets/{asset_id}/flags", headers=mine)
    assert flags.status_code == 200 and isinstance(flags.json(), list)
    assert (
        await client.get(f"/api/v1/collateral/assets/{asset_id}/flags", headers=theirs)
    ).status_code == 404


async def test_pages_show_the_registry_and_hide_others(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, email = await make_org(pool, clock.now(), kind="bank")
    other, other_user, _ = await make_org(pool, clock.now(), kind="bank")
    await make_portfolio(pool, clock.now(), user, rows=120, seed=45)
    await make_portfolio(pool, clock.now(), other_user, rows=3, seed=46)
    await sign_in(client, email)
    page = await client.get("/bank/collateral")
    assert page.status_code == 200 and "质押资产登记" in page.text
    assert len(re.findall(r"/bank/collateral/assets/\d", page.text)) == 50  # one page of assets
    assert "assets_page=2" in page.text
    second = await client.get("/bank/collateral", params={"assets_page": 3})
    assert second.status_code == 200
    assert len(re.findall(r"/bank/collateral/assets/\d", second.text)) == 20
    loan_id = (await _loan_ids(pool, bank))[0]
    their_loan = (await _loan_ids(pool, other))[0]
    loan_page = await client.get(f"/bank/collateral/loans/{loan_id}")
    assert loan_page.status_code == 200 and "/bank/collateral/assets/" in loan_page.text
    assert (await client.get(f"/bank/collateral/loans/{their_loan}")).status_code == 404
    async with pool.acquire() as conn:
        asset_id = await conn.fetchval(
            "SELECT id FROM ip_assets WHERE bank_org_id = $1 LIMIT 1", bank
        )
        their_asset = await conn.fetchval(
            "SELECT id FROM ip_assets WHERE bank_org_id = $1 LIMIT 1", other
        )
    assert (await client.get(f"/bank/collateral/assets/{asset_id}")).status_code == 200
    assert (await client.get(f"/bank/collateral/assets/{their_asset}")).status_code == 404
    defaulted = sum(1 for r in (await _loans(pool, bank)) if r["default_date"] is not None)
    assert f"{len(await _loan_ids(pool, bank))}（其中违约 {defaulted}）" in page.text
    # The English page works too, in English only.
    client.cookies.set("ipx_lang", "en")
    english = (await client.get("/bank/collateral")).text
    assert "Collateral registry" in english
    assert f"{len(await _loan_ids(pool, bank))} ({defaulted} defaulted)" in english
    assert "其中违约" not in english and "质押资产登记" not in english
    asset_en = (await client.get(f"/bank/collateral/assets/{asset_id}")).text
    assert "Legal status" in asset_en and "（" not in asset_en and "；" not in asset_en


async def test_demo_portfolio(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    act = await act_as(pool, clock, user)
    first = await seed_demo_portfolio(act)
    again = await seed_demo_portfolio(act)
    async with pool.acquire() as conn:
        kinds = dict(
            await conn.fetch(
                "SELECT kind, count(*) FROM ip_assets WHERE bank_org_id = $1 GROUP BY kind", bank
            )
        )
        defaulted = await conn.fetch(
            "SELECT npl_class FROM loans WHERE bank_org_id = $1 AND default_date IS NOT NULL", bank
        )
        flags = {
            r["kind"]
            for r in await conn.fetch("SELECT kind FROM monitoring_flags WHERE resolved_at IS NULL")
        }
        numbers = [
            r["number"]
            for r in await conn.fetch("SELECT number FROM ip_assets WHERE kind = 'patent'")
        ]
    assert first["pledgors"] == 8 and first["rows"] == 23 and first["loans"] == 10
    assert kinds == {"patent": 20, "trademark": 2, "software_copyright": 1}
    assert len(defaulted) == 6 and all(d["npl_class"] for d in defaulted)
    assert {"annuity_grace", "expiring"} <= flags
    assert all(patent_application_number(n) == n for n in numbers)
    assert again["assets"] == 23 and again["flags_raised"] == 0  # seeding twice adds nothing
    assert business_day(clock.now()) == date(2026, 1, 5)


def _collateral_routes(client: AsyncTestClient[Any]) -> dict[str, Any]:
    return {
        handler.operation_id: handler
        for route in client.app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler.operation_id, str)
        and (
            "collateral" in handler.operation_id or handler.operation_id == "import_collateral_csv"
        )
    }


async def test_every_route_declares_its_permission(client: AsyncTestClient[Any]) -> None:
    routes = _collateral_routes(client)
    writes = {
        "web_collateral_upload",
        "import_collateral_csv",
        "web_collateral_asset_new",
        "web_collateral_asset_add",
        "add_collateral_asset",
    }
    assert writes <= set(routes) and len(routes) == 18
    for operation_id, handler in routes.items():
        expected = WRITE_COLLATERAL if operation_id in writes else READ_COLLATERAL
        assert permission_of(handler) is expected, operation_id


async def test_a_bank_not_approved_sees_no_registry_and_a_buyer_no_template(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, pending = await make_org(pool, clock.now(), kind="bank", status="pending")
    await sign_in(client, pending)
    assert (await client.get("/bank/collateral")).status_code == 403
    client.cookies.clear()
    _, _, buyer = await make_org(pool, clock.now(), kind="buyer")
    await sign_in(client, buyer)
    assert (await client.get("/bank/collateral/template.csv")).status_code == 403
    client.cookies.clear()
    assert (await client.get("/bank/collateral", follow_redirects=False)).status_code in (302, 303)
