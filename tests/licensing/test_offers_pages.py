"""The licence offers' pages over HTTP (docs/rules.md §Licence offers and decision): the
lot's public terms show its offers block in both languages; an offeror's wrong values are
shown beside their fields and write nothing; an offer made and withdrawn from /my/offers;
the bank's lot form refuses a wrong percentage beside its field."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.services import china_today
from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import csrf, sign_in
from tests.licensing.offers_scene import make_offer_scene


async def _email(pool: asyncpg.Pool, user_id: int) -> str:
    return str(await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id))


def _offer(start: str, **changes: str) -> dict[str, str]:
    year = int(start[:4])
    form = {
        "type": "licence",
        "kind": "non_exclusive",
        "field_of_use": "储能电池",
        "territory": "广东省",
        "term_start": start,
        "term_end": f"{year + 2}{start[4:]}",
        "upfront": "50000",
        "royalty_rate_pct": "3",
        "forecast_net_sales": "1000000",
        "period": "yearly",
        "security_kind": "none",
    }
    form.update(changes)
    return form


async def test_the_offer_pages(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_offer_scene(pool, clock, settings)
    ref = scene.lot.reference
    page = await client.get(f"/lots/{ref}")
    assert 'data-testid="offers-mode"' in page.text and "竞买出价与许可报价" in page.text
    assert 'data-testid="offers-discount-rate">8%' in page.text
    client.cookies.set("ipx_lang", "en")
    english = await client.get(f"/lots/{ref}")
    assert "Discount rate" in english.text and "Bids and licence offers" in english.text
    client.cookies.delete("ipx_lang")

    assert (await sign_in(client, await _email(pool, scene.offeror.user_id))).status_code < 400
    token = await csrf(client)
    form = await client.get(f"/lots/{ref}/offer")
    assert form.status_code == 200 and 'data-testid="offer-form"' in form.text
    assert scene.lot.bidding_ends_at is not None
    start = china_today(scene.lot.bidding_ends_at).isoformat()
    count = "SELECT count(*) FROM licence_offers"
    wrong = [
        (_offer(start, term_end="2099-12-31"), "term_end"),
        (_offer(start, term_start="2020-01-01"), "term_start"),
        (_offer(start, security_kind="bank_guarantee"), "security_amount"),
        (_offer(start, royalty_rate_pct="abc"), "royalty_rate_pct"),
        (_offer(start, upfront="-5"), "upfront"),
        (_offer(start, field_of_use=""), "field_of_use"),
        (_offer(start, type="sale_and_licence_back"), "price"),
    ]
    for data, field in wrong:
        r = await client.post(f"/lots/{ref}/offer", data={**data, "_csrf_token": token})
        assert r.status_code == 422, (field, r.status_code)
        assert f'data-testid="err-{field}"' in r.text, field
    assert await pool.fetchval(count) == 0

    r = await client.post(
        f"/lots/{ref}/offer", data={**_offer(start), "_csrf_token": token}, follow_redirects=False
    )
    assert r.status_code in (302, 303), r.text
    offer_id = await pool.fetchval("SELECT id FROM licence_offers")
    assert r.headers["location"] == f"/my/offers?made={offer_id}"
    mine = await client.get("/my/offers")
    assert f'data-offer-id="{offer_id}"' in mine.text and "有效" in mine.text
    r = await client.post(
        f"/my/offers/{offer_id}/withdraw", data={"_csrf_token": token}, follow_redirects=False
    )
    assert r.status_code in (302, 303)
    assert await pool.fetchval("SELECT status FROM licence_offers") == "withdrawn"
    again = await client.post(f"/my/offers/{offer_id}/withdraw", data={"_csrf_token": token})
    assert again.status_code == 409 and 'data-testid="err-withdraw"' in again.text
    # Another organisation's offer, or its comparison: not found.
    assert (await client.get(f"/bank/lots/{scene.lot.id}/offers")).status_code in (403, 404)

    assert (await sign_in(client, await _email(pool, scene.bank.user_id))).status_code < 400
    token = await csrf(client)
    r = await client.post(
        f"/bank/cases/{scene.case_id}/lots/new",
        data={"title": "x", "margin_pct": "abc", "offers_mode": "bids", "_csrf_token": token},
    )
    assert r.status_code == 422 and 'id="err-margin_pct"' in r.text
    shown = await client.get(f"/bank/lots/{scene.lot.id}")
    assert 'data-testid="offers-block"' not in shown.text  # published: no form
    assert 'data-testid="lot-offers-mode"' in shown.text
    before = await client.get(f"/bank/lots/{scene.lot.id}/offers")
    assert before.status_code == 200 and 'data-testid="no-decision"' in before.text
