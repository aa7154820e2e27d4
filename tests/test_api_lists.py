"""The API's lists (market/paging.py) on the demo exchange: for every list, paging through
it with a small limit returns every item the caller's organisation has exactly once and
nothing of anyone else's; a filter keeps exactly the rows it names; a cursor that is not
one answers 400 naming `cursor`. Tokens over the API, the buyer's payment instructions and
balance, and the ids a collateral import answers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.accounts.permissions import SCOPES_BY_KIND
from market.clock import FrozenClock
from market.demo import seed_demo
from market.pools.reconciliation import ImportStatement, import_statement
from market.settings import Settings
from tests.factories import act_as, make_org, make_token

# path, the demo login that calls it, the ids it must list ($1: the caller's organisation,
# $2: the caller's user), and one filter with the ids it must keep.
LISTS: list[tuple[str, str, str, str, str]] = [
    (
        "/api/v1/collateral/loans",
        "bank@ipx.demo",
        "SELECT id FROM loans WHERE bank_org_id = $1",
        "defaulted=true",
        "SELECT id FROM loans WHERE bank_org_id = $1 AND default_date IS NOT NULL",
    ),
    (
        "/api/v1/collateral/assets",
        "bank@ipx.demo",
        "SELECT id FROM ip_assets WHERE bank_org_id = $1",
        "kind=patent",
        "SELECT id FROM ip_assets WHERE bank_org_id = $1 AND kind = 'patent'",
    ),
    (
        "/api/v1/cases",
        "bank@ipx.demo",
        "SELECT id FROM disposal_cases WHERE bank_org_id = $1",
        "status=open",
        "SELECT id FROM disposal_cases WHERE bank_org_id = $1 AND status = 'open'",
    ),
    (
        "/api/v1/bank/lots",
        "bank@ipx.demo",
        "SELECT id FROM lots WHERE bank_org_id = $1",
        "status=sold",
        "SELECT id FROM lots WHERE bank_org_id = $1 AND status = 'sold'",
    ),
    (
        "/api/v1/registrations",
        "buyer@ipx.demo",
        "SELECT id FROM registrations WHERE buyer_org_id = $1",
        "deposit_status=awaiting",
        "SELECT id FROM registrations WHERE buyer_org_id = $1 AND deposit_status = 'awaiting'",
    ),
    (
        "/api/v1/bids",
        "buyer@ipx.demo",
        "SELECT b.id FROM bids b JOIN registrations r ON r.id = b.registration_id "
        "WHERE r.buyer_org_id = $1",
        "kind=manual",
        "SELECT b.id FROM bids b JOIN registrations r ON r.id = b.registration_id "
        "WHERE r.buyer_org_id = $1 AND b.kind = 'manual'",
    ),
    (
        "/api/v1/sales",
        "buyer@ipx.demo",
        "SELECT id FROM sales WHERE buyer_org_id = $1",
        "status=paid",
        "SELECT id FROM sales WHERE buyer_org_id = $1 AND status = 'paid'",
    ),
    (
        "/api/v1/payment-instructions",
        "buyer@ipx.demo",
        "SELECT r.id FROM registrations r JOIN lots l ON l.id = r.lot_id "
        "WHERE r.buyer_org_id = $1 AND r.deposit_status = 'awaiting' AND l.round = r.round "
        "AND l.status IN ('announced', 'bidding')",
        "kind=deposit",
        "SELECT r.id FROM registrations r JOIN lots l ON l.id = r.lot_id "
        "WHERE r.buyer_org_id = $1 AND r.deposit_status = 'awaiting' AND l.round = r.round "
        "AND l.status IN ('announced', 'bidding')",
    ),
    (
        "/api/v1/bank/claims",
        "bank@ipx.demo",
        "SELECT id FROM compensation_claims WHERE bank_org_id = $1",
        "status=paid",
        "SELECT id FROM compensation_claims WHERE bank_org_id = $1 AND status = 'paid'",
    ),
    (
        "/api/v1/pools/claims",
        "pool@ipx.demo",
        "SELECT c.id FROM compensation_claims c JOIN pools p ON p.id = c.pool_id "
        "WHERE p.org_id = $1",
        "status=paid",
        "SELECT c.id FROM compensation_claims c JOIN pools p ON p.id = c.pool_id "
        "WHERE p.org_id = $1 AND c.status = 'paid'",
    ),
    (
        "/api/v1/reconciliation/payouts",
        "pool@ipx.demo",
        "SELECT id FROM payouts WHERE payee_org_id = $1 AND payee_kind <> 'pledgor' "
        "AND (payee_kind <> 'pool' OR pool_id IN (SELECT id FROM pools WHERE org_id = $1))",
        "status=received",
        "SELECT id FROM payouts WHERE payee_org_id = $1 AND payee_kind <> 'pledgor' "
        "AND (payee_kind <> 'pool' OR pool_id IN (SELECT id FROM pools WHERE org_id = $1)) "
        "AND status = 'received'",
    ),
    (
        "/api/v1/reconciliation/statements",
        "pool@ipx.demo",
        "SELECT id FROM statements WHERE org_id = $1",
        "open_lines=true",
        "SELECT s.id FROM statements s WHERE s.org_id = $1 AND EXISTS (SELECT 1 FROM "
        "statement_lines l WHERE l.statement_id = s.id "
        "AND l.status IN ('amount_mismatch', 'reference_typo', 'unknown'))",
    ),
    (
        "/api/v1/notifications",
        "buyer@ipx.demo",
        "SELECT id FROM inbox WHERE user_id = $2",
        "unread_only=true",
        "SELECT id FROM inbox WHERE user_id = $2 AND read_at IS NULL",
    ),
    (
        "/api/v1/tokens",
        "bank@ipx.demo",
        "SELECT id FROM api_tokens WHERE org_id = $1",
        "active=false",
        "SELECT id FROM api_tokens WHERE org_id = $1 AND revoked_at IS NOT NULL",
    ),
]


async def _ids(pool: asyncpg.Pool, query: str, org_id: int, user_id: int) -> list[int]:
    if "$1" not in query:  # the user's own
        return sorted(r[0] for r in await pool.fetch(query.replace("$2", "$1"), user_id))
    args = (org_id, user_id) if "$2" in query else (org_id,)
    return sorted(r[0] for r in await pool.fetch(query, *args))


def _key(item: dict[str, Any]) -> int:
    # A payment instruction of a deposit is its registration's; the rest are their own.
    return int(item["registration_id"] if item.get("kind") == "deposit" else item["id"])


async def _walk(
    client: AsyncTestClient[Any], url: str, headers: dict[str, str], limit: int
) -> list[int]:
    """Every item of a list, page by page."""
    seen: list[int] = []
    cursor = None
    for _ in range(1000):
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = await client.get(url + ("&" if "?" in url else "?") + query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen.extend(_key(item) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


@pytest.fixture
async def demo(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> dict[str, tuple[int, int, str]]:
    """The demo exchange with something in every list: e-mail → (org, user, token)."""
    await seed_demo(settings, force=True)
    logins: dict[str, tuple[int, int, str]] = {}
    for email in ("bank@ipx.demo", "buyer@ipx.demo", "pool@ipx.demo"):
        row = await pool.fetchrow(
            "SELECT u.id, u.org_id, o.kind FROM users u JOIN organisations o ON o.id = u.org_id "
            "WHERE u.email = $1",
            email,
        )
        assert row is not None
        token = await make_token(pool, clock.now(), row["id"], sorted(SCOPES_BY_KIND[row["kind"]]))
        logins[email] = (row["org_id"], row["id"], token)
    bank_org, bank_user, _ = logins["bank@ipx.demo"]
    # More tokens, one revoked; the demo statement imported by the pool; a buyer's inbox.
    for _ in range(3):
        await make_token(pool, clock.now(), bank_user, ["collateral:read"])
    await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = (SELECT max(id) FROM api_tokens "
        "WHERE org_id = $1)",
        bank_org,
    )
    manager = logins["pool@ipx.demo"][1]
    statement = (settings.data_dir / "demo" / "demo-statement.csv").read_bytes()
    act = await act_as(pool, datetime.now(UTC), manager)
    await act(import_statement, ImportStatement(data=statement, filename="demo.csv"))
    buyer_user = logins["buyer@ipx.demo"][1]
    await pool.execute(
        "INSERT INTO inbox (user_id, outbox_id, event, title, body, created_at, read_at) "
        "SELECT $1, id, event, 'x', 'x', created_at, "
        "CASE WHEN id % 2 = 0 THEN created_at END FROM outbox",
        buyer_user,
    )
    return logins


async def test_every_list_pages_through_its_own_items_exactly_once(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, demo: Any
) -> None:
    buyer_token = demo["buyer@ipx.demo"][2]
    # A deposit to pay: the buyer registers for every lot open to registration.
    for (reference,) in await pool.fetch(
        "SELECT reference FROM lots WHERE status IN ('announced', 'bidding') ORDER BY id"
    ):
        r = await client.post(
            f"/api/v1/lots/{reference}/registrations",
            headers={"Authorization": f"Bearer {buyer_token}"},
            json={"agreement_version": "2020-01"},
        )
        assert r.status_code in (200, 201, 403, 409, 422), r.text
    # Someone else's objects of every kind, which must never appear.
    _, other_user, _ = await make_org(pool, clock.now(), kind="bank")
    await make_token(pool, clock.now(), other_user, ["collateral:read"])
    empty = []
    for path, email, query, filter_, filtered in LISTS:
        org_id, user_id, token = demo[email]
        headers = {"Authorization": f"Bearer {token}"}
        expected = await _ids(pool, query, org_id, user_id)
        if not expected:
            empty.append(path)
        for limit in (1, 2, 200):
            seen = await _walk(client, path, headers, limit)
            assert sorted(seen) == expected, (path, limit)
            assert len(seen) == len(set(seen)), (path, limit)
        kept = await _walk(client, f"{path}?{filter_}", headers, 2)
        assert sorted(kept) == await _ids(pool, filtered, org_id, user_id), (path, filter_)
        # A cursor of another list, an altered one, and noise: 400 naming `cursor`.
        foreign = base64.urlsafe_b64encode(b'["elsewhere",["2026-01-01T00:00:00Z",1]]')
        for bad in ("nope", foreign.decode().rstrip("="), "W10", "eyJhIjoxfQ"):
            r = await client.get(f"{path}?cursor={bad}", headers=headers)
            assert r.status_code == 400, (path, bad, r.text)
            assert (r.json()["code"], r.json()["field"]) == ("bad_cursor", "cursor")
        for bad_limit in ("0", "201", "x"):
            r = await client.get(f"{path}?limit={bad_limit}", headers=headers)
            assert r.status_code == 400 and r.json()["field"] == "limit", (path, bad_limit)
    # The demo has something in (nearly) every list, so the walk above is not vacuous.
    assert len(empty) <= 2, f"lists the demo leaves empty: {empty}"


async def test_the_buyer_reads_what_to_pay_where_and_its_balance(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, settings: Settings, demo: Any
) -> None:
    org_id, _, token = demo["buyer@ipx.demo"]
    headers = {"Authorization": f"Bearer {token}"}
    lot = await pool.fetchrow(
        "SELECT reference, bidding_ends_at, deposit_fen FROM lots "
        "WHERE status IN ('announced', 'bidding') AND NOT EXISTS (SELECT 1 FROM registrations r "
        "WHERE r.lot_id = lots.id AND r.round = lots.round AND r.buyer_org_id = $1) "
        "ORDER BY id LIMIT 1",
        org_id,
    )
    assert lot is not None
    registered = await client.post(
        f"/api/v1/lots/{lot['reference']}/registrations",
        headers=headers,
        json={"agreement_version": "2020-01"},
    )
    assert registered.status_code == 201, registered.text
    page = (await client.get("/api/v1/payment-instructions?kind=deposit", headers=headers)).json()
    [instruction] = [i for i in page["items"] if i["lot_reference"] == lot["reference"]]
    assert instruction == {
        "kind": "deposit",
        "amount_fen": lot["deposit_fen"],
        "pay_to": {
            "account_name": settings.deposit_account_name,
            "bank": settings.deposit_bank,
            "account_number": settings.deposit_account_number,
        },
        "reference": registered.json()["transfer_reference"],
        "deadline": instruction["deadline"],
        "lot_id": instruction["lot_id"],
        "lot_reference": lot["reference"],
        "lot_title": instruction["lot_title"],
        "registration_id": registered.json()["id"],
        "sale_id": None,
    }
    assert datetime.fromisoformat(instruction["deadline"]) == lot["bidding_ends_at"]
    everything = (
        await client.get("/api/v1/payment-instructions?limit=200", headers=headers)
    ).json()
    balance = (await client.get("/api/v1/balance", headers=headers)).json()
    assert balance["to_pay_now_fen"] == sum(i["amount_fen"] for i in everything["items"])
    assert balance["deposits_to_pay_fen"] == sum(
        i["amount_fen"] for i in everything["items"] if i["kind"] == "deposit"
    )
    paid = await pool.fetchval(
        "SELECT coalesce(sum(price_fen), 0) FROM sales WHERE buyer_org_id = $1 AND status = 'paid'",
        org_id,
    )
    assert paid > 0 and balance["paid_fen"] >= paid
    # Another buyer sees none of it.
    bank_token = demo["bank@ipx.demo"][2]
    r = await client.get("/api/v1/balance", headers={"Authorization": f"Bearer {bank_token}"})
    assert r.status_code == 403


async def test_tokens_are_managed_over_the_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _ = await make_org(pool, clock.now(), kind="bank")
    admin = await make_token(pool, clock.now(), user, ["account:write", "collateral:read"])
    headers = {"Authorization": f"Bearer {admin}"}
    r = await client.post(
        "/api/v1/tokens",
        json={"name": "报表系统", "scopes": ["collateral:read"], "expires_in_days": 30},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["secret"] and made["scopes"] == ["collateral:read"] and made["expires_at"]
    child = {"Authorization": f"Bearer {made['secret']}"}
    assert (await client.get("/api/v1/collateral/loans", headers=child)).status_code == 200
    # No scope the organisation's kind may not hold, none the calling token lacks.
    r = await client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["bids:write"]}, headers=headers
    )
    assert r.status_code == 422 and r.json()["code"] == "scopes_not_available"
    r = await client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["collateral:write"]}, headers=headers
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "scopes_beyond_token",
        "scopes",
    )
    # A token without account:write manages none.
    r = await client.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["collateral:read"]}, headers=child
    )
    assert r.status_code == 403 and r.json()["code"] == "token_lacks_scope"
    listed = (await client.get("/api/v1/tokens", headers=headers)).json()
    assert {t["id"] for t in listed["items"]} == {made["id"], listed["items"][-1]["id"]}
    assert all(t["secret"] is None for t in listed["items"])
    # Revoking answers the revoked token (200); it is refused from then on.
    r = await client.post(f"/api/v1/tokens/{made['id']}/revoke", headers=headers)
    assert r.status_code == 200 and r.json()["revoked_at"], r.text
    assert (await client.get("/api/v1/collateral/loans", headers=child)).status_code == 401
    active = (await client.get("/api/v1/tokens?active=true", headers=headers)).json()
    assert made["id"] not in {t["id"] for t in active["items"]}
    # Another organisation's token: 404, unrevoked.
    _, other_user, _ = await make_org(pool, clock.now(), kind="bank")
    await make_token(pool, clock.now(), other_user, ["collateral:read"])
    other_id = await pool.fetchval("SELECT max(id) FROM api_tokens")
    r = await client.post(f"/api/v1/tokens/{other_id}/revoke", headers=headers)
    assert r.status_code == 404
    assert await pool.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", other_id) is None
    assert org != other_user


async def test_a_token_made_by_a_token_does_not_outlive_it(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    admin = await make_token(pool, clock.now(), user, ["account:write", "bids:write"])
    headers = {"Authorization": f"Bearer {admin}"}
    r = await client.post(
        "/api/v1/tokens",
        json={"name": "短期", "scopes": ["account:write"], "expires_in_days": 7},
        headers=headers,
    )
    assert r.status_code == 201
    short = {"Authorization": f"Bearer {r.json()['secret']}"}
    for days in (None, 8):
        body: dict[str, Any] = {"name": "长期", "scopes": ["account:write"]}
        if days:
            body["expires_in_days"] = days
        r = await client.post("/api/v1/tokens", json=body, headers=short)
        assert (r.status_code, r.json()["code"]) == (422, "token_outlives_caller"), r.text
    body = {"name": "更短", "scopes": ["account:write"], "expires_in_days": 7}
    assert (await client.post("/api/v1/tokens", json=body, headers=short)).status_code == 201


async def test_an_import_answers_the_ids_it_created_and_updated(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    from tests.collateral.factories import portfolio_rows, to_csv

    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    token = await make_token(pool, clock.now(), user, ["collateral:write", "collateral:read"])
    headers = {"authorization": f"Bearer {token}", "content-type": "text/csv"}
    rows = portfolio_rows(20, seed=5)
    first = await client.post(
        "/api/v1/collateral/imports", content=to_csv(rows[:12]), headers=headers
    )
    assert first.status_code == 201, first.text
    loans = sorted(
        r[0] for r in await pool.fetch("SELECT id FROM loans WHERE bank_org_id = $1", bank)
    )
    assets = sorted(
        r[0] for r in await pool.fetch("SELECT id FROM ip_assets WHERE bank_org_id = $1", bank)
    )
    body = first.json()
    assert sorted(body["loan_ids_created"]) == loans and body["loan_ids_updated"] == []
    assert sorted(body["asset_ids_created"]) == assets and body["asset_ids_updated"] == []
    assert len(loans) == body["loans_created"] and len(assets) == body["assets_created"]
    again = (
        await client.post("/api/v1/collateral/imports", content=to_csv(rows), headers=headers)
    ).json()
    assert sorted(again["loan_ids_updated"]) == sorted(
        set(loans) & set(again["loan_ids_updated"])
    ) and set(loans) <= set(again["loan_ids_updated"])
    new_loans = {
        r[0] for r in await pool.fetch("SELECT id FROM loans WHERE bank_org_id = $1", bank)
    }
    assert set(again["loan_ids_created"]) == new_loans - set(loans)
    assert len(again["loan_ids_created"]) == again["loans_created"]
    assert len(again["asset_ids_created"]) == again["assets_created"]
