"""Taking part over HTTP: the register form and API, the registration panel, "我的竞拍"
with its tenancy, and the operator's deposit confirmation page and API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import jinja2
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from auctions import registration
from market import i18n, money, problems
from market.accounts.services import forget_tokens
from market.app import create_app
from market.catalogue.services import lot_detail
from market.clock import FrozenClock
from market.settings import ROOT, Settings
from tests.auctions.test_registration import (
    DEPOSIT,
    buyer,
    confirm,
    insert_sale,
    published_lot,
    register,
    scalar,
    withdraw,
)
from tests.factories import AGREEMENT, csrf, make_org, make_token, sign_in, viewer

# The register form's ticked box and the agreement version it carries.
ACCEPT = {"accept_agreement": "yes", "agreement_version": AGREEMENT}


@pytest.fixture
async def web(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signed_in_buyer(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, **kw: Any
) -> tuple[int, int]:
    org, user, email = await make_org(pool, clock.now(), **kw)
    r = await sign_in(web, email)
    assert r.status_code in (302, 303), r.text
    return org, user


# --- register -------------------------------------------------------------------------------


async def test_register_from_the_lot_page(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, _ = await signed_in_buyer(web, pool, clock)
    token = await csrf(web)
    r = await web.post(
        f"/lots/{lot.reference}/register",
        data={**ACCEPT, "_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"] == f"/lots/{lot.reference}#registration"
    assert await scalar(pool, "SELECT buyer_org_id FROM registrations") == org
    # A second click changes nothing.
    r = await web.post(
        f"/lots/{lot.reference}/register",
        data={**ACCEPT, "_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 1


async def test_register_form_needs_the_csrf_token(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    await signed_in_buyer(web, pool, clock)
    r = await web.post(f"/lots/{lot.reference}/register", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0


async def test_register_refusals_say_why(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    await signed_in_buyer(web, pool, clock, status="pending")
    r = await web.post(
        f"/lots/{lot.reference}/register",
        data={**ACCEPT, "_csrf_token": await csrf(web)},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert problems.describe("zh", "organisation_not_approved") in r.text
    closed = await published_lot(pool, clock, settings)
    await withdraw(pool, clock, settings, closed)
    await signed_in_buyer(web, pool, clock)
    r = await web.post(
        f"/lots/{closed.reference}/register",
        data={**ACCEPT, "_csrf_token": await csrf(web)},
        follow_redirects=False,
    )
    assert r.status_code == 409 and 'data-code="registration_closed"' in r.text
    assert f"拍品 {closed.reference} 不在公告或竞价期间" in r.text
    assert "not announced" not in r.text  # the page's language only
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0


async def test_a_barred_buyer_is_told_why_in_its_language(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await signed_in_buyer(web, pool, clock)
    reg = await register(pool, clock, lot, (org, user))
    sale = await insert_sale(pool, clock.now(), reg, org, status="defaulted")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO buyer_bars (buyer_org_id, asset_id, sale_id, created_at)"
            " SELECT $1, asset_id, $2, $3 FROM lot_assets WHERE lot_id = $4",
            org,
            sale,
            clock.now(),
            lot.id,
        )
        await conn.execute("UPDATE lots SET round = 2 WHERE id = $1", lot.id)
    web.cookies.set("ipx_lang", "en")
    r = await web.post(
        f"/lots/{lot.reference}/register",
        data={**ACCEPT, "_csrf_token": await csrf(web)},
        follow_redirects=False,
    )
    assert r.status_code == 403 and 'data-code="barred_after_default"' in r.text
    assert "barred from bidding on them again" in r.text and "悔拍" not in r.text


async def test_register_page_needs_a_signed_in_user(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    r = await web.post(
        f"/lots/{lot.reference}/register",
        data={**ACCEPT, "_csrf_token": await csrf(web)},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


async def test_register_over_the_api(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    _, user = await buyer(pool, clock)
    token = await make_token(pool, clock.now(), user, ["bids:write"])
    url = f"/api/v1/lots/{lot.reference}/registrations"
    r = await web.post(url, headers=bearer(token), json={"agreement_version": AGREEMENT})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["deposit_status"] == "awaiting" and body["deposit_fen"] == DEPOSIT
    assert body["transfer_reference"].startswith("BZJ")
    assert body["pay_to"]["account_name"] == settings.deposit_account_name
    again = await web.post(url, headers=bearer(token), json={"agreement_version": AGREEMENT})
    assert again.status_code == 200 and again.json() == body
    r = await web.get(f"/api/v1/registrations/{body['id']}", headers=bearer(token))
    assert r.status_code == 200 and r.json()["bidder_code"] == body["bidder_code"]
    r = await web.get("/api/v1/registrations", headers=bearer(token))
    assert [x["id"] for x in r.json()["items"]] == [body["id"]]
    r = await web.post(
        "/api/v1/lots/LOT-2099-000000/registrations",
        headers=bearer(token),
        json={"agreement_version": "2020-01"},
    )
    assert r.status_code == 404


async def test_registrants_are_told_the_deposit_account_the_exchange_set(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The deposit account is the exchange's setting (MARKET_DEPOSIT_ACCOUNT_*), not the
    demo's placeholder: the API's registrations and the buyer's page both show it."""
    ours = msgspec.structs.replace(
        settings,
        deposit_account_name="某某知识产权交易所有限公司保证金专户",
        deposit_bank="招商银行股份有限公司成都分行",
        deposit_account_number="1289 0000 5566 7788",
    )
    lot = await published_lot(pool, clock, ours)
    _, user, email = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), user, ["bids:write"])
    async with AsyncTestClient(
        app=create_app(ours, clock), base_url="http://127.0.0.1:8000"
    ) as web:
        r = await web.post(
            f"/api/v1/lots/{lot.reference}/registrations",
            headers=bearer(token),
            json={"agreement_version": "2020-01"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["pay_to"] == {
            "account_name": "某某知识产权交易所有限公司保证金专户",
            "bank": "招商银行股份有限公司成都分行",
            "account_number": "1289 0000 5566 7788",
        }
        listed = (await web.get("/api/v1/registrations", headers=bearer(token))).json()["items"]
        assert [x["pay_to"]["bank"] for x in listed] == ["招商银行股份有限公司成都分行"]
        assert (await sign_in(web, email)).status_code in (302, 303)
        page = await web.get("/my/auctions")
        assert page.status_code == 200
        assert "1289 0000 5566 7788" in page.text and "招商银行股份有限公司成都分行" in page.text
        assert settings.deposit_bank not in page.text


async def test_api_refusals(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    url = f"/api/v1/lots/{lot.reference}/registrations"
    # Only an approved organisation makes tokens: this one is made while it is approved,
    # and the organisation is then back to pending.
    pending_org, pending_user = await buyer(pool, clock)
    pending = await make_token(pool, clock.now(), pending_user, ["bids:write"])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE organisations SET status = 'pending' WHERE id = $1", pending_org)
    forget_tokens()
    r = await web.post(url, headers=bearer(pending))
    assert r.status_code == 403 and r.json()["code"] == "organisation_not_approved"
    assert r.json()["params"] == {"status": "pending"}
    _, reader_user = await buyer(pool, clock)
    reader = await make_token(pool, clock.now(), reader_user, ["account:read"])
    r = await web.post(url, headers=bearer(reader))
    assert r.status_code == 403 and r.json()["code"] == "token_lacks_scope"
    assert r.json()["params"] == {"scope": "bids:write"}
    r = await web.post(url)
    assert r.status_code == 401
    _, bank_user = await buyer(pool, clock, kind="bank")
    bank = await make_token(pool, clock.now(), bank_user, ["lots:write"])
    r = await web.post(url, headers=bearer(bank))
    assert r.status_code == 403
    closed = await published_lot(pool, clock, settings)
    await withdraw(pool, clock, settings, closed)
    _, user = await buyer(pool, clock)
    token = await make_token(pool, clock.now(), user, ["bids:write"])
    r = await web.post(
        f"/api/v1/lots/{closed.reference}/registrations",
        headers={**bearer(token), "Accept-Language": "en"},
        json={"agreement_version": AGREEMENT},
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert (body["code"], body["params"]) == (
        "registration_closed",
        {"reference": closed.reference, "status": "withdrawn"},
    )
    assert body["detail"].startswith(f"Lot {closed.reference} is neither announced")
    r = await web.post(
        "/api/v1/lots/LOT-2099-000000/registrations",
        headers=bearer(token),
        json={"agreement_version": "2020-01"},
    )
    assert r.status_code == 404 and r.json()["code"] == "no_such_lot"
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0


async def test_another_buyers_registration_is_404_in_the_api(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    mine = await register(pool, clock, lot, await buyer(pool, clock))
    _, other_user = await buyer(pool, clock)
    other = await make_token(pool, clock.now(), other_user, ["bids:write"])
    r = await web.get(f"/api/v1/registrations/{mine.id}", headers=bearer(other))
    assert r.status_code == 404
    assert mine.transfer_reference not in r.text
    r = await web.get("/api/v1/registrations", headers=bearer(other))
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    r = await web.get(f"/api/v1/registrations/{2**63}", headers=bearer(other))
    assert r.status_code in (400, 404)


# --- the registration panel ---------------------------------------------------------------


def panel_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    i18n.install(env)
    env.globals["format_cny"] = money.format_cny
    env.globals["registration_refusal"] = registration.registration_refusal
    env.filters["local"] = lambda v, fmt="%Y-%m-%d %H:%M": v.strftime(fmt) if v else ""
    return env


async def test_the_panel_shows_each_state(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """Rendered as catalogue/lot.html will include it: with the public LotDetail (whose
    deposit is under terms) and the page's viewer."""
    lot = await published_lot(pool, clock, settings)
    detail = await lot_detail(pool, lot.reference)
    org, user = await buyer(pool, clock)
    me = await viewer(pool, user)
    template = panel_env().get_template("auctions/_registration_panel.html")

    def render(**context: Any) -> str:
        base = {
            "lot": detail,
            "registration": None,
            "viewer": None,
            "csrf_input": "<csrf>",
            "deposit_account": registration.deposit_account(settings),
        }
        return template.render(lang="zh", **{**base, **context})

    assert "登录后报名参拍" in render()
    offer = render(viewer=me)
    assert f'action="/lots/{lot.reference}/register"' in offer and "¥70,000.00" in offer
    pending = await viewer(pool, (await buyer(pool, clock, status="pending"))[1])
    refused = render(viewer=pending)
    assert "尚未通过交易所审核" in refused and 'data-code="organisation_not_approved"' in refused
    assert "action=" not in refused
    bank = await viewer(pool, (await buyer(pool, clock, kind="bank"))[1])
    refused = render(viewer=bank)
    assert "register" not in refused.split("<h2>")[1].split("</h2>")[1]
    assert 'data-code="not_permitted"' in refused and "竞买人或收储机构可报名" in refused
    reg = await registration.registration_for_viewer(pool, org, "buyer", lot.reference)
    assert reg is None
    await register(pool, clock, lot, (org, user))
    reg = await registration.registration_for_viewer(pool, org, "buyer", lot.reference)
    assert reg is not None
    awaiting = render(viewer=me, registration=reg)
    assert reg.bidder_code in awaiting and reg.transfer_reference in awaiting
    assert "待确认" in awaiting and settings.deposit_bank in awaiting
    assert "action=" not in awaiting
    await confirm(pool, clock, reg, await buyer(pool, clock, kind="operator"))
    reg = await registration.registration_for_viewer(pool, org, "buyer", lot.reference)
    assert reg is not None
    confirmed = render(viewer=me, registration=reg)
    assert "已确认" in confirmed and reg.transfer_reference not in confirmed
    english = template.render(lang="en", lot=detail, registration=reg, viewer=me, csrf_input="")
    assert "Confirmed" in english and "Bidder code" in english


# --- my auctions ----------------------------------------------------------------------------


async def test_my_auctions_shows_only_the_buyers_own(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    other_lot = await published_lot(pool, clock, settings)
    operator = await buyer(pool, clock, kind="operator")
    stranger = await register(pool, clock, other_lot, await buyer(pool, clock))
    org, user = await signed_in_buyer(web, pool, clock)
    mine = await register(pool, clock, lot, (org, user))
    await confirm(pool, clock, mine, operator)
    rival_org = await buyer(pool, clock)
    rival = await register(pool, clock, lot, rival_org)
    at = clock.now() + timedelta(days=30, hours=2)
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO bids (lot_id, round, seq, registration_id, amount_fen, kind, at)"
            " VALUES ($1, 1, $2, $3, $4, $5, $6)",
            [
                (lot.id, 1, mine.id, 700_000_00, "manual", at),
                (lot.id, 2, rival.id, 702_000_00, "manual", at),
                (lot.id, 3, mine.id, 704_000_00, "proxy", at),
            ],
        )
        await conn.execute(
            "UPDATE lots SET current_price_fen = 704000000, leader_registration_id = $2,"
            " bid_count = 3, auction_seq = 3 WHERE id = $1",
            lot.id,
            mine.id,
        )
    r = await web.get("/my/auctions")
    assert r.status_code == 200, r.text
    assert mine.bidder_code in r.text and mine.transfer_reference not in r.text  # confirmed
    assert stranger.bidder_code not in r.text and stranger.transfer_reference not in r.text
    assert rival.bidder_code not in r.text and "¥702,000.00" not in r.text
    assert 'data-testid="leading"' in r.text and "¥704,000.00" in r.text
    assert "共 2 次" in r.text and "代理出价" in r.text
    assert 'data-testid="payments-due"' not in r.text
    rows = await registration.my_auctions(pool, org, clock.now())
    assert [x.registration.id for x in rows] == [mine.id]
    assert rows[0].leading and rows[0].bid_count == 2 and rows[0].highest_fen == 704_000_00
    assert [b.seq for b in rows[0].bids] == [3, 1]


async def test_my_auctions_highlights_payments_due(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings, open_bidding=True)
    org, user = await signed_in_buyer(web, pool, clock)
    mine = await register(pool, clock, lot, (org, user))
    await confirm(pool, clock, mine, await buyer(pool, clock, kind="operator"))
    awaiting_lot = await published_lot(pool, clock, settings)
    awaiting = await register(pool, clock, awaiting_lot, (org, user))
    sale = await insert_sale(pool, clock.now(), mine, org, due_in=timedelta(days=-1))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE lots SET status = 'sold' WHERE id = $1", lot.id)
    r = await web.get("/my/auctions")
    assert r.status_code == 200
    due = r.text.split('data-testid="payments-due"')[1].split("</section>")[0]
    assert f'data-sale="{sale}"' in due and f"CJK{mine.id:010d}" in due
    assert "¥680,000.00" in due and "已逾期" in due  # 750,000 − 70,000 deposit
    # The deposit still to pay shows how to pay it.
    assert awaiting.transfer_reference in r.text
    assert 'data-testid="leading"' not in r.text


async def test_my_auctions_is_for_buyers(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    r = await web.get("/my/auctions", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    await signed_in_buyer(web, pool, clock, kind="bank")
    assert (await web.get("/my/auctions")).status_code == 403


# --- the operator's deposits ----------------------------------------------------------------


async def test_operator_page_requires_an_operator(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    r = await web.get("/operator/deposits", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    await signed_in_buyer(web, pool, clock)
    assert (await web.get("/operator/deposits")).status_code == 403
    r = await web.post(
        "/operator/deposits/confirm",
        data={"_csrf_token": await csrf(web), "transfer_reference": "BZJ", "amount": "1"},
    )
    assert r.status_code == 403


async def test_operator_confirms_on_the_page(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    reg = await register(pool, clock, lot, await buyer(pool, clock, name="成都新材料有限公司"))
    await signed_in_buyer(web, pool, clock, kind="operator")
    r = await web.get("/operator/deposits")
    assert r.status_code == 200
    assert reg.transfer_reference in r.text and "成都新材料有限公司" in r.text
    assert "¥70,000.00" in r.text and lot.reference in r.text
    # The lot's status and round in words, never the internal code.
    assert "一拍" in r.text and "公告中" in r.text and "announced" not in r.text
    web.cookies.set("ipx_lang", "en")
    r = await web.get("/operator/deposits")
    assert "First auction" in r.text and "Announced" in r.text and "公告中" not in r.text
    web.cookies.set("ipx_lang", "zh")
    token = await csrf(web)
    form = {"_csrf_token": token, "transfer_reference": reg.transfer_reference}
    r = await web.post("/operator/deposits/confirm", data={**form, "amount": "7,000"})
    assert r.status_code == 422
    assert "¥7,000.00" in r.text and 'id="err-amount"' in r.text
    assert "不符，未确认" in r.text  # Chinese first, beside the field
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 0
    r = await web.post("/operator/deposits/confirm", data={**form, "amount": "七万"})
    assert r.status_code == 422 and 'id="err-amount"' in r.text
    assert "“七万”是用汉字写的金额" in r.text
    r = await web.post("/operator/deposits/confirm", data={**form, "amount": "0"})
    assert r.status_code == 422 and 'id="err-amount"' in r.text
    unknown = {**form, "transfer_reference": "BZJ2345678923", "amount": "70,000"}
    r = await web.post("/operator/deposits/confirm", data=unknown)
    assert r.status_code == 404 and 'id="err-reference"' in r.text
    assert "没有报名使用转账附言 BZJ2345678923" in r.text
    web.cookies.set("ipx_lang", "en")
    r = await web.post("/operator/deposits/confirm", data={**form, "amount": "7,000"})
    assert r.status_code == 422 and "does not match: nothing was confirmed" in r.text
    assert "不符" not in r.text  # one language at a time
    web.cookies.set("ipx_lang", "zh")
    r = await web.post(
        "/operator/deposits/confirm", data={**form, "amount": "70,000.00"}, follow_redirects=False
    )
    assert r.status_code in (302, 303)
    r = await web.get(r.headers["location"])
    assert f"已确认转账编号 {reg.transfer_reference}" in r.text
    assert 'data-testid="awaiting"' not in r.text  # the queue is empty now
    r = await web.post("/operator/deposits/confirm", data={**form, "amount": "70000"})
    assert r.status_code == 200 and "未重复记账" in r.text
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 1
    assert await scalar(pool, "SELECT deposit_status FROM registrations") == "confirmed"


async def test_operator_confirms_over_the_api(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    org, user = await buyer(pool, clock)
    reg = await register(pool, clock, lot, (org, user))
    _, operator_user = await buyer(pool, clock, kind="operator")
    operator = await make_token(pool, clock.now(), operator_user, ["operator:write"])
    buyer_token = await make_token(pool, clock.now(), user, ["bids:write"])
    url = "/api/v1/operator/deposits/confirm"
    body = {"transfer_reference": reg.transfer_reference, "amount_fen": DEPOSIT}
    r = await web.post(url, json=body, headers=bearer(buyer_token))
    assert r.status_code == 403
    r = await web.post(url, json={**body, "amount_fen": 1}, headers=bearer(operator))
    assert r.status_code == 422 and r.json()["field"] == "amount_fen"
    assert r.json()["code"] == "deposit_amount_mismatch"
    assert r.json()["params"] == {
        "reference": reg.transfer_reference,
        "deposit_fen": DEPOSIT,
        "received_fen": 1,
    }
    assert "¥0.01" in r.json()["detail"] and "到账金额" in r.json()["detail"]
    r = await web.post(url, json={**body, "amount_fen": "70000.00"}, headers=bearer(operator))
    assert r.status_code == 400 and r.json()["field"] == "amount_fen"
    r = await web.post(url, json={**body, "amount_fen": 7e6}, headers=bearer(operator))
    assert r.status_code == 400 and r.json()["field"] == "amount_fen"
    r = await web.post(
        url,
        json={**body, "transfer_reference": "BZJ2345678923"},
        headers={**bearer(operator), "Accept-Language": "en"},
    )
    assert r.status_code == 404 and r.json()["code"] == "no_such_transfer_reference"
    assert r.json()["detail"].startswith("transfer_reference: No registration has")
    r = await web.post(url, json={**body, "extra": 1}, headers=bearer(operator))
    assert r.status_code == 400 and r.json()["field"] == "extra"
    r = await web.post(url, json=body, headers=bearer(operator))
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True
    assert r.json()["registration"]["deposit_status"] == "confirmed"
    r = await web.post(url, json=body, headers=bearer(operator))
    assert r.status_code == 200 and r.json()["changed"] is False
    assert await scalar(pool, "SELECT count(*) FROM ledger_entries") == 1
    r = await web.get(f"/api/v1/registrations/{reg.id}", headers=bearer(buyer_token))
    assert r.json()["deposit_status"] == "confirmed"


async def test_the_lot_page_carries_the_panel(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    r = await web.get(f"/lots/{lot.reference}")
    assert r.status_code == 200 and "登录后报名参拍" in r.text
    await signed_in_buyer(web, pool, clock)
    r = await web.get(f"/lots/{lot.reference}")
    assert f'action="/lots/{lot.reference}/register"' in r.text
    r = await web.post(
        f"/lots/{lot.reference}/register", data={**ACCEPT, "_csrf_token": await csrf(web)}
    )  # follows the redirect back to the lot page
    assert r.status_code == 200
    code = await scalar(pool, "SELECT bidder_code FROM registrations")
    reference = await scalar(pool, "SELECT transfer_reference FROM registrations")
    assert code in r.text and reference in r.text and "待确认" in r.text


async def test_registration_accepts_the_agreement_in_force_and_records_its_version(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot = await published_lot(pool, clock, settings)
    _, user = await signed_in_buyer(web, pool, clock)
    # The lot page asks to accept the agreement and links its text.
    page = (await web.get(f"/lots/{lot.reference}")).text
    assert f'value="{AGREEMENT}"' in page and f'href="/agreements/{AGREEMENT}"' in page
    text = await web.get(f"/agreements/{AGREEMENT}")
    assert text.status_code == 200 and "竞买人" in text.text
    # Unticked: refused, saying what to do; nothing written.
    r = await web.post(f"/lots/{lot.reference}/register", data={"_csrf_token": await csrf(web)})
    assert r.status_code == 422 and "竞买协议" in r.text
    assert await scalar(pool, "SELECT count(*) FROM registrations") == 0
    token = await make_token(pool, clock.now(), user, ["bids:write"])
    url = f"/api/v1/lots/{lot.reference}/registrations"
    current = (await web.get("/api/v1/agreements/current")).json()
    assert current["version"] == AGREEMENT and current["body_en"]
    # An outdated version is refused naming the field and the version in force.
    r = await web.post(url, headers=bearer(token), json={"agreement_version": "2019-12"})
    assert r.status_code == 409 and r.json()["field"] == "agreement_version"
    assert AGREEMENT in r.json()["detail"]
    r = await web.post(url, headers=bearer(token), json={"agreement_version": AGREEMENT})
    assert r.status_code == 201 and r.json()["agreement_version"] == AGREEMENT
    audit = await pool.fetchval(
        "SELECT after->>'agreement_version' FROM audit_log WHERE action = 'registration.create'"
    )
    assert audit == AGREEMENT
