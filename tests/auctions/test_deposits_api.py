"""The operator's queue of deposits awaiting confirmation, over the API (OPERATE)."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_bid_http import _cast, _lot
from tests.factories import make_org, make_token


async def test_the_operator_lists_the_deposits_awaiting_confirmation(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    paid, waiting, _, _ = await _cast(client, pool, clock, lot.reference)
    mine = (await client.get("/api/v1/registrations", headers=waiting)).json()["items"][0]
    _, operator, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator, ['operator:write'])}"
    }

    listed = await client.get("/api/v1/operator/deposits", headers=op)
    assert listed.status_code == 200
    (row,) = listed.json()  # the confirmed deposit is no longer awaited
    assert row["registration_id"] == mine["id"]
    assert row["transfer_reference"] == mine["transfer_reference"]
    assert (row["lot_reference"], row["deposit_fen"]) == (lot.reference, mine["deposit_fen"])
    assert row["bidder_code"] == mine["bidder_code"]

    # A buyer sees its own registrations, never the operator's queue.
    for buyer in (paid, waiting):
        refused = await client.get("/api/v1/operator/deposits", headers=buyer)
        assert refused.status_code == 403 and refused.json()["code"] == "token_lacks_scope"
