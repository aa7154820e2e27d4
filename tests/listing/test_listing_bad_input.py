"""A listing's wrong values answer a 4xx naming the field and write nothing
(docs/rules.md §Listing): a listing price under the 70 % floor, a period shorter than the
minimum of working days, and the transfer's steps out of turn."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import make_org, make_token
from tests.listing.scene import DEPOSIT, PERIOD_END, PRICE, PUBLISHED, VALUATION, make_listing
from tests.lots.factories import make_case

COUNTED = ("lots", "lot_transitions", "lot_rounds", "listing_periods", "listing_transfers", "sales")


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in COUNTED}


async def test_a_price_under_the_floor_or_a_short_period_is_refused_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    clock.set(PUBLISHED)
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    case_id, _ = await make_case(pool, clock.now(), bank_org, bank_user, valuation_fen=VALUATION)
    token = await make_token(pool, clock.now(), bank_user, ["lots:write"])
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/cases/{case_id}/lots"

    def lot(**terms: Any) -> dict[str, Any]:
        body = {"start_price_fen": PRICE, "deposit_fen": DEPOSIT, "mode": "listing", **terms}
        return {"title": "挂牌测试", "terms": body}

    before = await _counts(pool)
    probes: list[tuple[dict[str, Any], int, str, str]] = [
        (lot(start_price_fen=PRICE - 1), 422, "start_below_valuation_floor", "start_price_fen"),
        (
            lot(listing={"period_working_days": 19}),
            422,
            "listing_period_too_short",
            "listing.period_working_days",
        ),
        (lot(listing={"period_working_days": 0}), 400, "", "listing.period_working_days"),
        (lot(listing={"auction_hours": 23}), 422, "listing_auction_hours", "listing.auction_hours"),
        (lot(offers={"mode": "licences_only"}), 422, "listing_takes_bids_only", "offers.mode"),
        (lot(mode="haggle"), 400, "", "mode"),
    ]
    for body, status, code, field in probes:
        r = await client.post(url, json=body, headers=auth)
        assert r.status_code == status, (body, r.text)
        problem = r.json()
        assert problem["field"].endswith(field), (body, problem)
        if code:
            assert problem["code"] == code, problem
    assert await _counts(pool) == before  # nothing written

    # An auction still needs its window: a missing one is named.
    r = await client.post(
        url,
        json={"title": "拍卖", "terms": {"start_price_fen": PRICE, "deposit_fen": DEPOSIT}},
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"].endswith("bidding_starts_at"), r.text
    assert await _counts(pool) == before
    # The floor passes exactly at 70 %, and a period of exactly the minimum.
    ok = lot(listing={"period_working_days": 20})
    r = await client.post(url, json=ok, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["terms"]["mode"] == "listing"


async def test_the_transfer_refuses_steps_out_of_turn_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_listing(pool, clock, settings)
    buyer, _ = await scene.buyer()
    await scene.advance(PERIOD_END)
    ref = scene.lot.reference
    b = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), buyer.user_id, ['bids:write'])}"
    }
    k = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), scene.bank.user_id, ['lots:write'])}"
    }
    _, stranger, _ = await make_org(pool, clock.now(), kind="buyer")
    s = {"Authorization": f"Bearer {await make_token(pool, clock.now(), stranger, ['bids:write'])}"}
    before = await _counts(pool)
    confirm = f"/api/v1/listings/{ref}/transfer/confirmation"
    counter = f"/api/v1/bank/listings/{ref}/transfer/confirmation"
    probes: list[tuple[str, dict[str, str], dict[str, Any] | None, int, str | None]] = [
        (confirm, b, {"price_fen": PRICE - 1}, 422, "price_fen"),
        (confirm, b, {"price_fen": -5}, 400, "price_fen"),
        (confirm, b, {"price": 1}, 400, "price"),
        (confirm, s, {}, 403, None),
        (counter, k, None, 409, None),  # the buyer has not signed
        (f"/api/v1/bank/listings/{ref}/extension", k, None, 409, None),
    ]
    for url, who, body, status, field in probes:
        r = await client.post(url, json=body, headers=who)
        assert r.status_code == status, (url, body, r.text)
        if field is not None:
            assert r.json()["field"] == field, r.text
    assert await _counts(pool) == before
    r = await client.get(f"/api/v1/listings/{ref}")
    assert r.status_code == 200 and r.json()["state"] == "negotiation"
    assert r.json()["transfer"]["buyer_confirmed"] is False
    assert (await client.get("/api/v1/listings/NO-SUCH-LOT")).status_code == 404
