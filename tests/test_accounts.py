"""Accounts: registration, sign-in, sessions, CSRF, rate limits, tokens, tenancy."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.factories import PASSWORD, credit_code, csrf, make_org, make_token, sign_in


async def _count(pool: asyncpg.Pool, table: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


def _buyer(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "苏州微纳传感科技有限公司",
        "credit_code": credit_code(424242),
        "email": "ops@weina.test",
        "display_name": "周工",
        "password": "long enough password",
    }
    body.update(overrides)
    return body


# --- registration through the API: good input, bad input, nothing written -----------


async def test_register_buyer_pending(client: AsyncTestClient[Any], pool: asyncpg.Pool) -> None:
    r = await client.post("/api/v1/buyers", json=_buyer())
    assert r.status_code == 201, r.text
    org = r.json()["organisation"]
    assert org["status"] == "pending" and org["kind"] == "buyer"
    assert await _count(pool, "users") == 1


async def test_malformed_json_is_400_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    r = await client.post(
        "/api/v1/buyers", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed"
    assert await _count(pool, "organisations") == 0


async def test_unknown_field_is_400_naming_it(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    r = await client.post("/api/v1/buyers", json=_buyer(nickname="x"))
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "unknown_field"
    assert body["field"] == "nickname"
    assert "nickname" in body["detail"] and body["detail"].endswith("未知字段。")
    assert await _count(pool, "organisations") == 0
    assert await _count(pool, "audit_log") == 0


async def test_wrong_type_names_field(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/api/v1/buyers", json=_buyer(password=12345678901))
    assert r.status_code == 400
    assert r.json()["field"] == "password"


async def test_invalid_credit_code_is_422_and_writes_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    good = credit_code(777)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    r = await client.post("/api/v1/buyers", json=_buyer(credit_code=bad))
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "credit_code"
    assert "校验码" in body["detail"]
    assert await _count(pool, "organisations") == 0


async def test_duplicate_email_is_409_and_first_stays(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    assert (await client.post("/api/v1/buyers", json=_buyer())).status_code == 201
    r = await client.post("/api/v1/buyers", json=_buyer(credit_code=credit_code(515151)))
    assert r.status_code == 409
    assert r.json()["field"] == "email"
    assert await _count(pool, "organisations") == 1


async def test_concurrent_identical_signups_one_wins(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    """The unique keys, not the pre-checks, decide a race: one 201, the rest 409."""
    results = await asyncio.gather(
        *(client.post("/api/v1/buyers", json=_buyer()) for _ in range(8))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7
    assert await _count(pool, "organisations") == 1
    assert await _count(pool, "users") == 1


# --- sign-in, sessions, CSRF -----------------------------------------------------------


async def test_sign_in_sets_httponly_lax_session(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now())
    r = await sign_in(client, email)
    assert r.status_code in (302, 303)
    cookie = r.headers["set-cookie"].lower()
    assert "ipx_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = await client.get("/account")
    assert page.status_code == 200 and email in page.text


async def test_account_page_requires_sign_in(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/account", follow_redirects=False)
    assert r.status_code in (302, 303)
    assert r.headers["location"].startswith("/login")


async def test_form_post_without_csrf_token_is_403(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now())
    await csrf(client)  # the cookie alone is not enough: the form must echo the token
    r = await client.post("/login", data={"email": email, "password": PASSWORD})
    assert r.status_code == 403
    assert "ipx_session" not in client.cookies


async def test_logout_ends_session(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now())
    await sign_in(client, email)
    token = await csrf(client)
    await client.post("/logout", data={"_csrf_token": token})
    r = await client.get("/account", follow_redirects=False)
    assert r.status_code in (302, 303)


async def test_repeated_wrong_passwords_are_rate_limited(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now())
    for _ in range(5):
        r = await sign_in(client, email, "wrong password!")
        assert r.status_code == 401
    r = await sign_in(client, email, "wrong password!")
    assert r.status_code == 429
    # Locked even with the right password now: guessing cannot continue.
    r = await sign_in(client, email, PASSWORD)
    assert r.status_code == 429
    assert "ipx_session" not in client.cookies


# --- API tokens --------------------------------------------------------------------------


async def test_token_authenticates_then_revoked_is_401(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org_id, user_id, email = await make_org(pool, clock.now(), kind="bank")
    secret = await make_token(pool, clock.now(), user_id, ["account:read"])
    auth = {"Authorization": f"Bearer {secret}"}
    r = await client.get("/api/v1/organisation", headers=auth)
    assert r.status_code == 200 and r.json()["id"] == org_id

    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret_sha256 FROM api_tokens")
        token_id = await conn.fetchval("SELECT id FROM api_tokens")
    # Only a hash is kept. The secret is token_urlsafe, itself free to hold "_": split
    # as authenticate_token does (a bare split("_") gave "" one run in ~64, and b"" is in
    # every stored hash).
    raw = secret.split("_", 2)[2]
    assert len(raw) >= 32 and raw.encode() not in stored

    await sign_in(client, email)
    r = await client.post(
        f"/account/tokens/{token_id}/revoke", data={"_csrf_token": await csrf(client)}
    )
    assert r.status_code == 200
    r = await client.get("/api/v1/organisation", headers=auth)
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


async def test_missing_or_forged_token_is_401(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/v1/organisation")).status_code == 401
    r = await client.get("/api/v1/organisation", headers={"Authorization": "Bearer ipx_x_y"})
    assert r.status_code == 401


async def test_token_scope_is_enforced(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user_id, _ = await make_org(pool, clock.now(), kind="bank")
    secret = await make_token(pool, clock.now(), user_id, ["collateral:read"])
    r = await client.get("/api/v1/organisation", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403
    assert r.json()["code"] == "token_lacks_scope" and r.json()["params"] == {
        "scope": "account:read"
    }


async def test_token_scopes_limited_by_kind(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now(), kind="buyer")
    await sign_in(client, email)
    r = await client.post(
        "/account/tokens",
        data={"name": "erp", "scopes": "collateral:write", "_csrf_token": await csrf(client)},
    )
    assert r.status_code == 422
    assert "collateral:write" in r.text
    assert await _count(pool, "api_tokens") == 0


async def test_token_created_in_page_is_shown_once(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now(), kind="bank")
    await sign_in(client, email)
    r = await client.post(
        "/account/tokens",
        data={
            "name": "core banking",
            "scopes": ["account:read", "collateral:write"],
            "_csrf_token": await csrf(client),
        },
    )
    assert r.status_code == 201
    assert 'data-testid="new-token">ipx_' in r.text
    again = await client.get("/account")
    assert "ipx_" not in again.text


# --- tenancy -----------------------------------------------------------------------------


async def test_other_tenants_token_is_404(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user_a, _ = await make_org(pool, clock.now(), kind="bank")
    _, user_b, _ = await make_org(pool, clock.now(), kind="bank")
    secret_a = await make_token(pool, clock.now(), user_a, ["account:read"])
    secret_b = await make_token(pool, clock.now(), user_b, ["account:read"])
    async with pool.acquire() as conn:
        token_b = await conn.fetchval("SELECT id FROM api_tokens WHERE created_by = $1", user_b)
    r = await client.get(
        f"/api/v1/tokens/{token_b}", headers={"Authorization": f"Bearer {secret_a}"}
    )
    assert r.status_code == 404
    r = await client.get(
        f"/api/v1/tokens/{token_b}", headers={"Authorization": f"Bearer {secret_b}"}
    )
    assert r.status_code == 200
    # Nor can bank A's user revoke bank B's token from the web page.
    _, _, email_a = await make_org(pool, clock.now(), kind="bank")
    await sign_in(client, email_a)
    r = await client.post(
        f"/account/tokens/{token_b}/revoke", data={"_csrf_token": await csrf(client)}
    )
    assert r.status_code == 404
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", token_b) is None
        )


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


# --- operator approval -------------------------------------------------------------------


async def test_operator_approves_pending_buyer(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    buyer_id, _, _ = await make_org(pool, clock.now(), kind="buyer", status="pending")
    _, _, operator_email = await make_org(pool, clock.now(), kind="operator")
    await sign_in(client, operator_email)
    queue = await client.get("/operator/organisations")
    assert f'data-org="{buyer_id}"' in queue.text
    decide = f"/operator/organisations/{buyer_id}/decision"
    # No business licence yet: the approval is refused, saying what is missing.
    r = await client.post(decide, data={"decision": "approve", "_csrf_token": await csrf(client)})
    assert r.status_code == 409 and "营业执照" in r.text
    r = await client.post(
        f"/operator/organisations/{buyer_id}/documents",
        data={"_csrf_token": await csrf(client)},
        files={"doc_business_licence": ("licence.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await client.get(f"/operator/organisations/{buyer_id}")
    assert "licence.pdf" in page.text
    r = await client.post(
        decide,
        data={"decision": "approve", "_csrf_token": await csrf(client)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM organisations WHERE id=$1", buyer_id) == (
            "approved"
        )
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM audit_log WHERE chain_org_id=$1 ORDER BY seq", buyer_id
            )
        ]
        told = await conn.fetchval(
            "SELECT payload->>'status' FROM outbox WHERE event = 'organisation_decided' "
            "AND recipient_org_id = $1",
            buyer_id,
        )
    assert actions[-1] == "organisation.approved" and told == "approved"
    # Deciding twice is a conflict, not a second approval.
    r = await client.post(
        decide, data={"decision": "reject", "reason": "late", "_csrf_token": await csrf(client)}
    )
    assert r.status_code == 409


async def test_non_operator_cannot_approve(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    buyer_id, _, _ = await make_org(pool, clock.now(), kind="buyer", status="pending")
    _, _, bank_email = await make_org(pool, clock.now(), kind="bank")
    await sign_in(client, bank_email)
    r = await client.post(
        f"/operator/organisations/{buyer_id}/decision",
        data={"decision": "approve", "_csrf_token": await csrf(client)},
    )
    assert r.status_code == 403
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM organisations WHERE id=$1", buyer_id) == (
            "pending"
        )


async def test_operator_token_decides_over_api(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    buyer_id, _, _ = await make_org(pool, clock.now(), kind="buyer", status="pending")
    _, operator_user, _ = await make_org(pool, clock.now(), kind="operator")
    secret = await make_token(pool, clock.now(), operator_user, ["operator:write"])
    auth = {"Authorization": f"Bearer {secret}"}
    url = f"/api/v1/operator/organisations/{buyer_id}/decision"
    r = await client.post(url, json={"approve": False, "reason": ""}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await client.post(
        url, json={"approve": False, "reason": "信用代码与营业执照不符"}, headers=auth
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"


async def test_the_registration_page_says_in_plain_words_what_a_field_lacks(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    """msgspec's 'Expected `str` of length >= 10 - at `$.password`' is for programs; the
    page says how long, in the page's language, beside the field, and registers nobody."""
    form = {
        "name": "深圳市测试科技有限公司",
        "credit_code": "91440300MA5FXXXX00",
        "email": "short@example.cn",
        "display_name": "张三",
        "password": "short",
        "_csrf_token": await csrf(client),
    }
    r = await client.post("/register", data=form)
    assert r.status_code == 422
    assert "至少 10 个字符。" in r.text
    assert "Expected `str`" not in r.text and "at least" not in r.text
    form |= {"password": "long-enough-passphrase", "credit_code": "91440300MA5F"}
    r = await client.post("/register", data=form)
    assert r.status_code == 422
    assert "统一社会信用代码应为 18 位，现为 12 位" in r.text  # the validator's words too
    assert await pool.fetchval("SELECT count(*) FROM organisations") == 0


async def test_a_signed_in_user_chooses_the_language_for_good(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """The language form is public; signed in, the choice is also the user's own (for the
    e-mails and API answers they get)."""
    _, user, email = await make_org(pool, clock.now())
    await sign_in(client, email)
    r = await client.post(
        "/lang",
        data={"lang": "en", "next": "/account", "_csrf_token": await csrf(client)},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303) and r.headers["location"] == "/account"
    assert await pool.fetchval("SELECT language FROM users WHERE id = $1", user) == "en"
