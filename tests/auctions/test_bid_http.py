"""Bids over the HTTP API: refusals say why, a retried Idempotency-Key makes one bid."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from auctions import live
from auctions.web_bidding import bid_panel
from market.clock import FrozenClock
from market.lots import services as lots
from market.lots.models import LotDraft, PublishInput, WithdrawInput
from market.lots.terms import TermsInput
from market.settings import Settings
from tests.factories import AGREEMENT, make_org, make_token, viewer
from tests.lots.factories import draft_lot, lot_action, make_case

START = 1_000_000


async def _lot(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> Any:
    policy = lots.policy_for(settings)
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    bank = await viewer(pool, bank_user)
    case_id, _ = await make_case(
        pool, clock.now(), bank_org, bank_user, valuation_fen=START * 10 // 7
    )
    starts = clock.now() + timedelta(days=30, hours=1)
    lot = await draft_lot(
        pool,
        clock.now(),
        policy,
        bank,
        case_id,
        LotDraft(
            title="接口出价测试",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            ),
        ),
    )
    lot = await lot_action(pool, clock.now(), policy, bank, lot.id, PublishInput())
    return lot, bank


async def _buyer(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    clock: FrozenClock,
    reference: str,
    operator_auth: dict[str, str] | None,
) -> dict[str, str]:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    auth = {"Authorization": f"Bearer {await make_token(pool, clock.now(), user, ['bids:write'])}"}
    r = await client.post(
        f"/api/v1/lots/{reference}/registrations",
        headers=auth,
        json={"agreement_version": AGREEMENT},
    )
    assert r.status_code == 201, r.text
    if operator_auth is not None:
        reg = r.json()
        r = await client.post(
            "/api/v1/operator/deposits/confirm",
            headers=operator_auth,
            json={
                "transfer_reference": reg["transfer_reference"],
                "amount_fen": reg["deposit_fen"],
            },
        )
        assert r.status_code in (200, 201), r.text
    return auth


async def _cast(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, reference: str
) -> tuple[dict[str, str], dict[str, str], dict[str, str], int]:
    """Alice (deposit confirmed), Bob (deposit not yet paid), an outsider who did not
    register: their Authorization headers, and the outsider's user id."""
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    alice = await _buyer(client, pool, clock, reference, op)
    bob = await _buyer(client, pool, clock, reference, None)
    _, outsider_user, _ = await make_org(pool, clock.now(), kind="buyer")
    outsider = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), outsider_user, ['bids:write'])}"
    }
    return alice, bob, outsider, outsider_user


async def test_bid_api_end_to_end(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    alice, bob, outsider, _ = await _cast(client, pool, clock, lot.reference)
    url = f"/api/v1/lots/{lot.reference}/bids"

    r = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "lot_not_open"  # still announced
    clock.set(lot.bidding_starts_at)  # the announced instant: bids open without the worker

    key = {"Idempotency-Key": "7f1c2d5e-retry-me"}
    first = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice | key)
    again = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice | key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    reused = await client.post(
        url, json={"type": "bid", "amount_fen": START + 50_000}, headers=alice | key
    )
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    r = await client.post(url, json={"type": "bid", "amount_fen": START + 100}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "too_low"  # proved without a write
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "already_leading"
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=bob)
    assert r.status_code == 403 and r.json()["code"] == "deposit_not_confirmed"
    r = await client.post(url, json={"type": "bid", "amount_fen": START + 5_000}, headers=outsider)
    assert r.status_code == 403 and r.json()["code"] == "not_registered"
    r = await client.post(url, json={"type": "bid", "amount": 1}, headers=alice)
    assert r.status_code == 400 and r.json()["field"] in ("amount", "amount_fen")

    async with pool.acquire() as conn:
        bids = await conn.fetch("SELECT amount_fen FROM bids WHERE lot_id=$1", lot.id)
        status = await conn.fetchval("SELECT status FROM lots WHERE id=$1", lot.id)
    assert [b["amount_fen"] for b in bids] == [START]  # one bid for the retried request
    assert status == "bidding"


async def test_withdrawal_releases_confirmed_deposits(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, bank = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    await _buyer(client, pool, clock, lot.reference, op)
    await lot_action(
        pool,
        clock.now(),
        lots.policy_for(settings),
        bank,
        lot.id,
        WithdrawInput(reason="借款人已清偿"),
    )
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT deposit_status FROM registrations WHERE lot_id=$1", lot.id
        )
        total = await conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs")
    assert [r["deposit_status"] for r in statuses] == ["released"]
    assert total == 0


async def test_relisted_round_starts_a_fresh_auction(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from auctions.closing import close_due
    from market.lots.models import RelistInput

    policy = lots.policy_for(settings)
    lot, bank = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    await _buyer(client, pool, clock, lot.reference, op)
    clock.set(lot.bidding_ends_at)  # nobody bid: round 1 fails
    await lots.open_due_lots(pool, clock.now(), policy)  # the worker's part
    assert await close_due(pool, clock.now() + timedelta(seconds=5), policy) == [lot.id]
    starts = clock.now() + timedelta(days=16)
    await lot_action(
        pool,
        clock.now(),
        policy,
        bank,
        lot.id,
        RelistInput(
            terms=TermsInput(
                start_price_fen=START * 8 // 10,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            )
        ),
    )
    buyer = await _buyer(client, pool, clock, lot.reference, op)  # registers for round 2
    clock.set(starts)
    url = f"/api/v1/lots/{lot.reference}/bids"
    r = await client.post(url, json={"type": "bid", "amount_fen": START * 8 // 10}, headers=buyer)
    assert r.status_code == 201, r.text
    assert r.json()["price_fen"] == START * 8 // 10 and r.json()["bids"][0]["seq"] == 1
    async with pool.acquire() as conn:
        rounds = await conn.fetch(
            "SELECT round, count(*) FROM bids WHERE lot_id=$1 GROUP BY 1", lot.id
        )
    assert [tuple(r) for r in rounds] == [(2, 1)]


async def test_sealed_tender_hides_bids_until_the_close(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    from auctions.closing import close_due

    policy = lots.policy_for(settings)
    bank_org, bank_user, _ = await make_org(pool, clock.now(), kind="bank")
    bank = await viewer(pool, bank_user)
    case_id, _ = await make_case(
        pool, clock.now(), bank_org, bank_user, valuation_fen=START * 10 // 7
    )
    starts = clock.now() + timedelta(days=30, hours=1)
    lot = await draft_lot(
        pool,
        clock.now(),
        policy,
        bank,
        case_id,
        LotDraft(
            title="密封报价测试",
            auction_kind="sealed",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=START // 10,
                bidding_starts_at=starts,
                bidding_ends_at=starts + timedelta(days=1),
            ),
        ),
    )
    lot = await lot_action(pool, clock.now(), policy, bank, lot.id, PublishInput())
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    a = await _buyer(client, pool, clock, lot.reference, op)
    b = await _buyer(client, pool, clock, lot.reference, op)
    clock.set(starts)
    url = f"/api/v1/lots/{lot.reference}/bids"
    ra = await client.post(url, json={"type": "bid", "amount_fen": START + 123_45}, headers=a)
    rb = await client.post(url, json={"type": "bid", "amount_fen": START + 99}, headers=b)
    assert ra.status_code == 201 and rb.status_code == 201
    assert ra.json().get("price_fen") is None and rb.json().get("leader_code") is None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT current_price_fen, leader_registration_id FROM lots WHERE id=$1", lot.id
        )
    assert row["current_price_fen"] is None and row["leader_registration_id"] is None
    # Not even how many tendered is told: not to a bidder, the public or the bank's list.
    assert "bid_count" not in ra.json() and "bid_count" not in rb.json()
    assert (await live.snapshot(pool, lot.reference, clock.now())).bid_count == 0
    page = await client.get(f"/lots/{lot.reference}")
    assert page.status_code == 200 and 'data-testid="live-bid-count"' not in page.text
    listed = await client.get(
        "/api/v1/bank/lots", headers=await _bank_token(pool, clock, bank_user)
    )
    assert [x["bid_count"] for x in listed.json()["items"] if x["id"] == lot.id] == [None]
    regs = await pool.fetch(
        "SELECT user_id, bidder_code FROM registrations WHERE lot_id=$1 ORDER BY id", lot.id
    )
    panel = await bid_panel(
        pool, await viewer(pool, regs[0]["user_id"]), lot.reference, clock.now()
    )
    assert panel["bidding"].revealed is None  # sealed until the close
    early = await client.get(f"/api/v1/lots/{lot.reference}/sealed-bids", headers=a)
    assert early.status_code == 409 and early.json()["code"] == "not_revealed"
    clock.set(lot.bidding_ends_at)
    assert await close_due(pool, clock.now() + timedelta(seconds=5), policy) == [lot.id]
    async with pool.acquire() as conn:
        sale = await conn.fetchrow("SELECT price_fen FROM sales WHERE lot_id=$1", lot.id)
    assert sale["price_fen"] == START + 123_45  # the highest sealed bid wins
    # At the close every participant sees every sealed bid, best first.
    for reg in regs:
        panel = await bid_panel(
            pool, await viewer(pool, reg["user_id"]), lot.reference, clock.now()
        )
        assert [(b.code, b.amount_fen) for b in panel["bidding"].revealed] == [
            (regs[0]["bidder_code"], START + 123_45),
            (regs[1]["bidder_code"], START + 99),
        ]
    opened = await client.get(f"/api/v1/lots/{lot.reference}/sealed-bids", headers=b)
    assert [(x["code"], x["amount_fen"]) for x in opened.json()] == [
        (regs[0]["bidder_code"], START + 123_45),
        (regs[1]["bidder_code"], START + 99),
    ]
    outsider = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), outsider[1], ["bids:write"])
    other = await client.get(
        f"/api/v1/lots/{lot.reference}/sealed-bids", headers={"Authorization": f"Bearer {token}"}
    )
    assert other.status_code == 404
    panel = await bid_panel(pool, await viewer(pool, outsider[1]), lot.reference, clock.now())
    assert panel["bidding"].revealed is None  # the participants only


async def test_amounts_beyond_bigint_are_a_400_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """An on-grid amount too large to store is refused at the door, not by a failed batch."""
    from market.money import MAX_FEN

    lot, _ = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    alice = await _buyer(client, pool, clock, lot.reference, op)
    clock.set(lot.bidding_starts_at)
    url = f"/api/v1/lots/{lot.reference}/bids"
    steps = (MAX_FEN - START) // lot.increment_fen + 1
    huge = START + steps * lot.increment_fen  # on the increment grid, above bigint
    assert huge > MAX_FEN
    for body, name in (
        ({"type": "bid", "amount_fen": huge}, "amount_fen"),
        ({"type": "proxy", "max_fen": huge}, "max_fen"),
    ):
        r = await client.post(url, json=body, headers=alice)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == name
    r = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice)
    assert r.status_code == 201, r.text  # the lot's writer is unharmed
    async with pool.acquire() as conn:
        amounts = await conn.fetch("SELECT amount_fen FROM bids WHERE lot_id=$1", lot.id)
    assert [b["amount_fen"] for b in amounts] == [START]


async def test_the_fast_path_answers_as_the_route_does(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """`Exchange` answers the bid API without Litestar's routing (auctions/api_bidding.py):
    every kind of answer must be the route's own, byte for byte but the request id."""
    lot, _ = await _lot(pool, clock, settings)
    alice, bob, outsider, outsider_user = await _cast(client, pool, clock, lot.reference)
    reader = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), outsider_user, ['account:read'])}"
    }
    clock.set(lot.bidding_starts_at)
    url = f"/api/v1/lots/{lot.reference}/bids"
    key = {"Idempotency-Key": "fast-or-route"}
    first = await client.post(url, json={"type": "bid", "amount_fen": START}, headers=alice | key)
    assert first.status_code == 201, first.text
    bid = b'{"type":"bid","amount_fen":%d}'
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        ("replayed", url, alice | key, bid % START),
        ("key reused", url, alice | key, bid % (START + 50_000)),
        ("too low, from the cache", url, alice, bid % (START + 100)),
        ("already leading, from the writer", url, alice, bid % (START + 5_000)),
        ("deposit not confirmed", url, bob, bid % (START + 5_000)),
        ("not registered", url, outsider, bid % (START + 5_000)),
        ("no token", url, {}, bid % (START + 5_000)),
        ("bad token", url, {"Authorization": "Bearer ipx_nothing_here"}, bid % START),
        ("scope missing", url, reader, bid % (START + 5_000)),
        ("no such lot", "/api/v1/lots/LOT-NOPE/bids", alice, bid % START),
        ("key too long", url, alice | {"Idempotency-Key": "k" * 201}, bid % START),
        ("malformed JSON", url, alice, b'{"type": "bid", '),
        ("unknown field", url, alice, b'{"type":"bid","amount":1}'),
        ("wrong type", url, alice, b'{"type":"bid","amount_fen":"many"}'),
        ("large body", url, alice, b'{"type":"bid",' + b" " * 5000 + b'"amount_fen":1}'),
        ("request id", url, alice | {"X-Request-ID": "trace-42"}, bid % (START + 100)),
    ]
    app: Any = client.app
    for name, path, headers, body in cases:
        answers = []
        for fast in (True, False):
            app.fast_bids = fast
            r = await client.post(path, content=body, headers=json_type | headers)
            answer = r.json()
            assert r.headers["x-request-id"] and answer.pop("request_id", None) in (
                None,
                r.headers["x-request-id"],
            ), name
            answers.append((r.status_code, r.headers["content-type"], answer))
        app.fast_bids = True
        assert answers[0] == answers[1], name
        assert answers[0][0] >= 400 or name == "replayed", (name, answers[0])
    assert r.headers["x-request-id"] == "trace-42"
    async with pool.acquire() as conn:
        bids = await conn.fetch("SELECT amount_fen FROM bids WHERE lot_id=$1", lot.id)
    assert [b["amount_fen"] for b in bids] == [START]  # none of the above wrote a bid


async def test_concurrent_bidders_over_http_through_the_fast_path(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """32 bidders' first bids (their registrations looked up together) and then their
    races, all at once over HTTP: every 201 is a stored bid, prices rise by increments in
    sequence order, no answer is a 5xx, and each refusal says why."""
    lot, _ = await _lot(pool, clock, settings)
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator_user, ['operator:write'])}"
    }
    bidders = [await _buyer(client, pool, clock, lot.reference, op) for _ in range(32)]
    clock.set(lot.bidding_starts_at)
    url = f"/api/v1/lots/{lot.reference}/bids"
    inc = lot.increment_fen
    answers: list[tuple[int, dict[str, Any]]] = []

    async def bidder(n: int, auth: dict[str, str]) -> None:
        seen = START - inc
        for i in range(8):
            amount = max(seen + inc, START) + inc * ((n + i) % 3)
            r = await client.post(url, json={"type": "bid", "amount_fen": amount}, headers=auth)
            answers.append((r.status_code, r.json()))
            seen = max(seen, r.json().get("price_fen") or seen)

    await asyncio.gather(*(bidder(n, auth) for n, auth in enumerate(bidders)))
    assert {status for status, _ in answers} <= {201, 409}, answers
    assert all(a["code"] for status, a in answers if status == 409)
    accepted = sorted(
        (b["seq"], b["amount_fen"]) for status, a in answers if status == 201 for b in a["bids"]
    )
    async with pool.acquire() as conn:
        stored = [
            (r["seq"], r["amount_fen"])
            for r in await conn.fetch(
                "SELECT seq, amount_fen FROM bids WHERE lot_id=$1 ORDER BY seq", lot.id
            )
        ]
    assert accepted == stored and len(stored) > 10  # every 201 is a stored bid, and no other
    assert stored[0][1] >= START
    assert all(b - a >= inc and (b - a) % inc == 0 for (_, a), (_, b) in pairwise(stored))


async def test_a_bad_reference_fails_only_its_own_request(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """Lots are looked up together (auctions/loader.py): a reference PostgreSQL cannot
    even hold is refused alone (404), not by failing the look-up shared with good ones."""
    from auctions import bidding
    from market.errors import NotFound

    lot, _ = await _lot(pool, clock, settings)
    good, bad = await asyncio.gather(  # one event-loop turn: one shared look-up
        bidding._lot(pool, lot.reference), bidding._lot(pool, "LOT\x00X"), return_exceptions=True
    )
    assert good == (lot.id, 1)
    assert isinstance(bad, NotFound)
    alice, _, _, _ = await _cast(client, pool, clock, lot.reference)
    r = await client.post(
        "/api/v1/lots/LOT%00X/bids", json={"type": "bid", "amount_fen": START}, headers=alice
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_a_mistyped_large_bid_waits_for_the_bidders_confirmation(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    alice, _, _, _ = await _cast(client, pool, clock, lot.reference)
    url = f"/api/v1/lots/{lot.reference}/bids"
    clock.set(lot.bidding_starts_at)
    # ¥7.75 bn on a lot valued ¥14,285.71: far above 3 × the valuation (the larger base).
    huge = START + 7_750_000_000_00 // lot.increment_fen * lot.increment_fen
    r = await client.post(url, json={"type": "bid", "amount_fen": huge}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "bid_needs_confirmation", r.text
    assert r.json()["params"] == {"amount_fen": huge, "line_fen": 3 * (START * 10 // 7)}
    # The fast path's answer carries the API's security headers (docs/rules.md §Security).
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert await pool.fetchval("SELECT count(*) FROM bids WHERE lot_id=$1", lot.id) == 0
    r = await client.post(
        url, json={"type": "bid", "amount_fen": huge, "confirm": True}, headers=alice
    )
    assert r.status_code == 201, r.text
    assert await pool.fetchval("SELECT amount_fen FROM bids WHERE lot_id=$1", lot.id) == huge


async def _bank_token(pool: asyncpg.Pool, clock: FrozenClock, user_id: int) -> dict[str, str]:
    token = await make_token(pool, clock.now(), user_id, ["lots:write"])
    return {"Authorization": f"Bearer {token}"}


async def test_a_proxy_maximum_off_the_grid_is_rounded_down_and_said_so(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    lot, _ = await _lot(pool, clock, settings)
    alice, _, _, _ = await _cast(client, pool, clock, lot.reference)
    clock.set(lot.bidding_starts_at)
    url = f"/api/v1/lots/{lot.reference}/bids"
    async with pool.acquire() as conn:
        inc = await conn.fetchval("SELECT increment_fen FROM lots WHERE id=$1", lot.id)
    typed = START + 3 * inc + inc // 2
    r = await client.post(url, json={"type": "proxy", "max_fen": typed}, headers=alice)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["proxy_max_fen"] == START + 3 * inc and answer["note"] == "proxy_rounded_down"
    on_grid = await client.post(
        url, json={"type": "proxy", "max_fen": START + 4 * inc}, headers=alice
    )
    assert on_grid.status_code == 201 and "note" not in on_grid.json()
    assert on_grid.json()["proxy_max_fen"] == START + 4 * inc
    async with pool.acquire() as conn:
        standing = await conn.fetchval("SELECT max_fen FROM proxy_maxima WHERE lot_id=$1", lot.id)
    assert standing == START + 4 * inc
