"""Managing webhook endpoints: the /account/webhooks page, the /api/v1/webhooks API, their
tenancy (another organisation's endpoint is 404), who may change them, the "send test"
button against a real receiver, and the queries the relay and delivery job use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market import problems
from market.accounts import services as accounts
from market.app import create_app
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.notify import endpoints
from market.notify.endpoints import (
    MAX_ACTIVE_ENDPOINTS,
    CreateWebhook,
    WebhookOut,
    WebhookTestRequest,
)
from market.notify.webhooks import verify
from market.settings import Settings
from tests.factories import PASSWORD, act_as, csrf, make_org, make_token, sign_in
from tests.notify.test_webhooks import Receiver, running_receiver

ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=6a1f7c52-0b1e-4d8e-9a3b-2c9d1f00beef"


@pytest.fixture
async def web(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_of_new_org(
    pool: asyncpg.Pool, clock: FrozenClock, kind: str = "bank"
) -> tuple[int, int, str]:
    return await make_org(pool, clock.now(), kind=kind)


async def add_member(pool: asyncpg.Pool, clock: FrozenClock, org_id: int) -> str:
    email = f"member{org_id}@org.test"
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        await accounts.create_user(
            uow,
            org_id=org_id,
            email=email,
            display_name="成员",
            password=PASSWORD,
            role="officer",
        )
    return email


async def create(
    pool: asyncpg.Pool, clock: FrozenClock, user_id: int, url: str, **kw: Any
) -> WebhookOut:
    """An endpoint made by this administrator (private hosts allowed, as in development)."""
    act = await act_as(pool, clock, user_id)
    return await act(endpoints.create_webhook, CreateWebhook(url=url, private_hosts=True, **kw))


async def scalar(pool: asyncpg.Pool, sql: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def post_form(web: AsyncTestClient[Any], path: str, **data: Any) -> Any:
    return await web.post(
        path, data={**data, "_csrf_token": await csrf(web)}, follow_redirects=False
    )


# --- the page ---------------------------------------------------------------------------------


async def test_admin_adds_a_json_webhook_and_sees_its_secret_once(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, _, email = await admin_of_new_org(pool, clock)
    assert (await sign_in(web, email)).status_code in (302, 303)
    r = await web.get("/account/webhooks")
    assert r.status_code == 200 and "尚未配置 Webhook" in r.text
    assert "（含 <code>key</code> 或 <code>access_token</code>）" in r.text
    r = await post_form(
        web,
        "/account/webhooks",
        url="https://bank.example.cn/hooks/ipx?token=abcdefghijklmnop",
        format="json",
        events=["outbid", "won"],
    )
    assert r.status_code == 201, r.text
    row = await scalar(
        pool, "SELECT row(url, format, secret, events, active) FROM webhook_endpoints"
    )
    url, fmt, secret, events, active = row
    assert (url, fmt, events, active) == (
        "https://bank.example.cn/hooks/ipx?token=abcdefghijklmnop",
        "json",
        ["outbid", "won"],
        True,
    )
    assert secret.startswith("whsec_") and len(secret) > 40
    assert f'data-testid="webhook-secret">{secret}<' in r.text
    # the list masks the query value; the secret is never shown again
    assert "token=…mnop" in r.text and "abcdefghijklmnop" not in r.text.replace(secret, "")
    again = await web.get("/account/webhooks")
    assert secret not in again.text and "出价被超越" in again.text
    assert (
        await scalar(
            pool,
            "SELECT count(*) FROM audit_log WHERE action = 'webhook.create' AND chain_org_id = $1",
            org,
        )
        == 1
    )


async def test_page_refuses_bad_input_next_to_the_field_and_writes_nothing(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await admin_of_new_org(pool, clock)
    await sign_in(web, email)
    r = await post_form(web, "/account/webhooks", url="ftp://bank.example.cn/x", format="json")
    assert r.status_code == 422
    assert 'id="err-url"' in r.text and "ftp://bank.example.cn/x" in r.text  # value kept
    r = await post_form(web, "/account/webhooks", url=ROBOT, format="wecom", secret="SECabc")
    assert r.status_code == 422 and 'id="err-secret"' in r.text
    r = await post_form(web, "/account/webhooks", url=ROBOT, format="teams")
    assert r.status_code == 422 and 'id="err-format"' in r.text
    r = await post_form(
        web, "/account/webhooks", url="https://user:pw@bank.example.cn/", format="json"
    )
    assert r.status_code == 422 and 'id="err-url"' in r.text
    assert await scalar(pool, "SELECT count(*) FROM webhook_endpoints") == 0


async def test_members_and_strangers_cannot_manage_webhooks(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    r = await web.get("/account/webhooks", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    org, _, _ = await admin_of_new_org(pool, clock)
    member = await add_member(pool, clock, org)
    await sign_in(web, member)
    assert (await web.get("/account/webhooks")).status_code == 403
    r = await post_form(web, "/account/webhooks", url=ROBOT, format="wecom")
    assert r.status_code == 403
    assert await scalar(pool, "SELECT count(*) FROM webhook_endpoints") == 0


async def test_deactivate_and_tenancy_on_the_page(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user_a, email_a = await admin_of_new_org(pool, clock)
    _, user_b, _ = await admin_of_new_org(pool, clock, "buyer")
    mine = await create(pool, clock, user_a, ROBOT, format="wecom")
    theirs = await create(pool, clock, user_b, "https://buyer.example.cn/hook")
    await sign_in(web, email_a)
    page = await web.get("/account/webhooks")
    assert f'data-testid="webhook-{mine.id}"' in page.text
    assert "buyer.example.cn" not in page.text
    for action in ("deactivate", "test"):
        r = await post_form(web, f"/account/webhooks/{theirs.id}/{action}")
        assert r.status_code == 404, action
    assert await scalar(pool, "SELECT active FROM webhook_endpoints WHERE id = $1", theirs.id)
    r = await post_form(web, f"/account/webhooks/{mine.id}/deactivate")
    assert r.status_code in (302, 303) and r.headers["location"] == "/account/webhooks"
    assert not await scalar(pool, "SELECT active FROM webhook_endpoints WHERE id = $1", mine.id)
    page = await web.get("/account/webhooks")
    assert "已停用" in page.text and f"/account/webhooks/{mine.id}/test" not in page.text


async def test_send_test_from_the_page_reaches_the_receiver_signed(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, receiver: Receiver
) -> None:
    _, user, email = await admin_of_new_org(pool, clock)
    made = await create(pool, clock, user, receiver.url + "/in")
    assert made.secret
    await sign_in(web, email)
    r = await post_form(web, f"/account/webhooks/{made.id}/test")
    assert r.status_code == 200 and "测试消息已送达" in r.text
    [req] = receiver.requests
    assert req.headers["x-ipx-event"] == "test"
    assert req.json()["title"] == "交易所测试通知"  # the administrator's language
    assert verify(
        made.secret,
        req.headers["x-ipx-timestamp"],
        req.body,
        req.headers["x-ipx-signature"],
        clock.now(),
    )
    receiver.reply(503, b"maintenance")
    r = await post_form(web, f"/account/webhooks/{made.id}/test")
    assert "测试消息未送达" in r.text and "HTTP 503" in r.text and "临时故障" in r.text
    assert "maintenance" not in r.text  # the receiver's own words are the operator's
    first, second = receiver.requests
    assert first.headers["idempotency-key"] != second.headers["idempotency-key"]  # two clicks


# --- the API ------------------------------------------------------------------------------------


async def test_api_create_list_delete(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _ = await admin_of_new_org(pool, clock)
    token = await make_token(pool, clock.now(), user, ["account:read", "account:write"])
    r = await web.post(
        "/api/v1/webhooks",
        json={"url": "https://bank.example.cn/ipx", "events": ["won"]},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["format"] == "json" and created["events"] == ["won"] and created["active"]
    stored = await scalar(pool, "SELECT secret FROM webhook_endpoints WHERE id = $1", created["id"])
    assert created["secret"] == stored
    r = await web.post(
        "/api/v1/webhooks",
        json={
            "url": "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
            "format": "dingtalk",
            "secret": "SECdingtalk-secret",
        },
        headers=bearer(token),
    )
    assert r.status_code == 201 and r.json()["secret"] is None  # DingTalk's own, not echoed
    listed = (await web.get("/api/v1/webhooks", headers=bearer(token))).json()
    assert [w["id"] for w in listed] == [created["id"], r.json()["id"]]
    assert listed[1]["url"] == "https://oapi.dingtalk.com/robot/send?access_token=…cdef"
    assert all(w.get("secret") is None for w in listed)
    r = await web.delete(f"/api/v1/webhooks/{created['id']}", headers=bearer(token))
    assert r.status_code == 204
    r = await web.delete(f"/api/v1/webhooks/{created['id']}", headers=bearer(token))
    assert r.status_code == 204  # twice is harmless
    listed = (await web.get("/api/v1/webhooks", headers=bearer(token))).json()
    assert [w["active"] for w in listed] == [True, False]
    assert (
        await scalar(
            pool,
            "SELECT count(*) FROM audit_log WHERE action = 'webhook.deactivate' AND chain_org_id = $1",
            org,
        )
        == 1
    )


async def test_api_validation_names_the_field(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await admin_of_new_org(pool, clock)
    token = await make_token(pool, clock.now(), user, ["account:write"])
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (
            {"url": "https://a.example/x", "events": ["outbid", "everything"]},
            422,
            "events",
            "unknown_events",
        ),
        ({"url": "javascript:alert(1)"}, 422, "url", "url_not_http"),
        ({"url": "https:///nohost"}, 422, "url", "url_no_host"),
        ({"url": "https://a.example/x#frag"}, 422, "url", "url_has_fragment"),
        (
            {"url": "https://a.example/x", "secret": "mine"},
            422,
            "secret",
            "webhook_secret_generated",
        ),
        ({"url": "https://a.example/x", "format": "slack"}, 400, "format", "not_a_choice"),
        ({"url": "https://a.example/x", "colour": "red"}, 400, "colour", "unknown_field"),
        (
            {"url": "https://a.example/x", "private_hosts": True},
            400,
            "private_hosts",
            "unknown_field",
        ),
    ]
    for body, status, field, code in cases:
        r = await web.post("/api/v1/webhooks", json=body, headers=bearer(token))
        assert r.status_code == status, (body, r.text)
        assert (r.json()["field"], r.json()["code"]) == (field, code), (body, r.text)
    r = await web.post(
        "/api/v1/webhooks",
        json={"url": "https://a.example/x", "events": ["everything"]},
        headers=bearer(token) | {"Accept-Language": "en"},
    )
    assert r.json()["params"]["events"] == ["everything"]
    assert r.json()["detail"] == "events: Unknown events: everything."
    assert await scalar(pool, "SELECT count(*) FROM webhook_endpoints") == 0


async def test_api_tenancy_and_who_may_change(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, receiver: Receiver
) -> None:
    org_a, user_a, _ = await admin_of_new_org(pool, clock)
    _, user_b, _ = await admin_of_new_org(pool, clock, "buyer")
    scopes = ["account:read", "account:write"]
    token_a = await make_token(pool, clock.now(), user_a, scopes)
    token_b = await make_token(pool, clock.now(), user_b, scopes)
    r = await web.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(token_a))
    a_id = r.json()["id"]
    assert (await web.get("/api/v1/webhooks", headers=bearer(token_b))).json() == []
    assert (
        await web.delete(f"/api/v1/webhooks/{a_id}", headers=bearer(token_b))
    ).status_code == 404
    r = await web.post(f"/api/v1/webhooks/{a_id}/test", headers=bearer(token_b))
    assert r.status_code == 404 and receiver.requests == []
    assert (await web.delete("/api/v1/webhooks/999999", headers=bearer(token_a))).status_code == 404
    # The owner's test call is delivered.
    r = await web.post(f"/api/v1/webhooks/{a_id}/test", headers=bearer(token_a))
    assert r.status_code == 200
    assert r.json() == {"ok": True, "error": None, "transient": False, "code": None, "params": None}
    assert len(receiver.requests) == 1
    receiver.reply(404, b"no such hook")
    r = await web.post(f"/api/v1/webhooks/{a_id}/test", headers=bearer(token_a))
    failed = r.json()
    assert failed["ok"] is False and failed["transient"] is False
    assert failed["code"] == "webhook_http_status" and failed["params"]["status"] == 404
    assert "HTTP 404: no such hook" in failed["error"]
    # A token keeps reading, but stops changing anything once its creator is no admin.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET role = 'officer' WHERE id = $1", user_a)
    assert (await web.get("/api/v1/webhooks", headers=bearer(token_a))).status_code == 200
    r = await web.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(token_a))
    assert r.status_code == 403 and r.json()["code"] == "role_not_permitted"
    assert (
        await web.delete(f"/api/v1/webhooks/{a_id}", headers=bearer(token_a))
    ).status_code == 403
    assert (
        await web.post(f"/api/v1/webhooks/{a_id}/test", headers=bearer(token_a))
    ).status_code == 403
    assert (
        await scalar(pool, "SELECT count(*) FROM webhook_endpoints WHERE org_id = $1", org_a) == 1
    )
    assert (await web.get("/api/v1/webhooks")).status_code == 401


async def test_api_reads_with_account_read_and_changes_with_account_write(
    web: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await admin_of_new_org(pool, clock)
    token = await make_token(pool, clock.now(), user, ["collateral:read"])
    assert (await web.get("/api/v1/webhooks", headers=bearer(token))).status_code == 403
    reader = await make_token(pool, clock.now(), user, ["account:read"])
    assert (await web.get("/api/v1/webhooks", headers=bearer(reader))).status_code == 200
    made = await create(pool, clock, user, ROBOT, format="wecom")
    for method, path in (
        ("POST", "/api/v1/webhooks"),
        ("DELETE", f"/api/v1/webhooks/{made.id}"),
        ("POST", f"/api/v1/webhooks/{made.id}/test"),
    ):
        r = await web.request(
            method,
            path,
            json={"url": ROBOT, "format": "wecom"} if path.endswith("webhooks") else None,
            headers=bearer(reader),
        )
        assert r.status_code == 403, path
        assert r.json()["code"] == "token_lacks_scope"
        assert r.json()["params"] == {"scope": "account:write"}
    assert await scalar(pool, "SELECT count(*) FROM webhook_endpoints WHERE active") == 1


# --- services ----------------------------------------------------------------------------------


async def test_endpoints_for_an_event_and_by_id(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    org, user, _ = await admin_of_new_org(pool, clock)
    _, other_user, _ = await admin_of_new_org(pool, clock)

    async def make(user_id: int, **kw: Any) -> int:
        return (await create(pool, clock, user_id, "https://h.example/x", **kw)).id

    everything = await make(user)
    outbid_only = await make(user, events=["outbid"])
    gone = await make(user)
    await make(other_user)
    act = await act_as(pool, clock, user)
    await act(endpoints.deactivate_webhook, gone)
    async with pool.acquire() as conn:
        assert [e.id for e in await endpoints.for_event(conn, org, "outbid")] == [
            everything,
            outbid_only,
        ]
        won = await endpoints.for_event(conn, org, "won")
        assert [e.id for e in won] == [everything]
        assert won[0].secret.startswith("whsec_") and won[0].events == ()
        found = await endpoints.by_id(conn, gone)
        assert found is not None and not found.active and found.org_id == org
        assert await endpoints.by_id(conn, 999_999) is None


async def test_active_endpoints_are_capped(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, user, _ = await admin_of_new_org(pool, clock)
    made = [
        await create(pool, clock, user, "https://h.example/x") for _ in range(MAX_ACTIVE_ENDPOINTS)
    ]
    with pytest.raises(Conflict) as refused:
        await create(pool, clock, user, "https://h.example/x")
    assert refused.value.code == "webhook_limit_reached"
    assert refused.value.params == {"max": MAX_ACTIVE_ENDPOINTS}
    act = await act_as(pool, clock, user)
    await act(endpoints.deactivate_webhook, made[0].id)
    clock.advance(timedelta(seconds=1))
    await create(pool, clock, user, "https://h.example/x")
    assert (
        await scalar(pool, "SELECT count(*) FROM webhook_endpoints WHERE active")
        == MAX_ACTIVE_ENDPOINTS
    )


async def test_service_rules(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    org, user, _ = await admin_of_new_org(pool, clock)
    _, other_admin, _ = await admin_of_new_org(pool, clock)
    member = await add_member(pool, clock, org)
    member_id = await scalar(pool, "SELECT id FROM users WHERE email = $1", member)
    with pytest.raises(Forbidden) as refused:  # a member, not an administrator
        await create(pool, clock, member_id, ROBOT, format="wecom")
    assert refused.value.code == "role_not_permitted"
    made = await create(pool, clock, user, ROBOT, format="wecom")
    assert made.secret is None
    assert await scalar(pool, "SELECT secret FROM webhook_endpoints WHERE id = $1", made.id) == ""
    other = await act_as(pool, clock, other_admin)
    with pytest.raises(NotFound) as missing:  # another organisation's endpoint
        await other(endpoints.deactivate_webhook, made.id)
    assert missing.value.code == "no_such_webhook"
    with pytest.raises(NotFound):
        await other(endpoints.send_webhook_test, WebhookTestRequest(endpoint_id=made.id))
    act = await act_as(pool, clock, user)
    await act(endpoints.deactivate_webhook, made.id)
    with pytest.raises(Conflict) as refused_test:
        await act(endpoints.send_webhook_test, WebhookTestRequest(endpoint_id=made.id))
    assert refused_test.value.code == "webhook_inactive"
    with pytest.raises(Invalid):
        endpoints.validate_url("http://", private_hosts=False)


def test_url_rules_and_masking() -> None:
    assert (
        endpoints.validate_url(" HTTPS://Bank.example.cn/hook ", private_hosts=False)
        == "https://Bank.example.cn/hook"
    )
    local = "http://127.0.0.1:8080/x?y=1"
    assert endpoints.validate_url(local, private_hosts=True) == local  # development
    for private, host in (
        (local, "127.0.0.1"),
        ("https://localhost/hook", "localhost"),
        ("http://10.1.2.3/h", "10.1.2.3"),
        ("http://[::1]/h", "::1"),
    ):
        with pytest.raises(Invalid) as refused:
            endpoints.validate_url(private, private_hosts=False)
        assert (refused.value.code, refused.value.field) == ("webhook_host_not_public", "url")
        assert refused.value.params == {"host": host}
        assert problems.text(refused.value, "zh") == (
            f"{host} 不是公网主机：Webhook 只能推送到公网地址。"
        )
    for bad, code in (
        ("bank.example.cn/hook", "url_not_http"),
        ("ftp://x/y", "url_not_http"),
        ("https://x:99999/", "url_malformed"),
        ("https://a b/", "url_has_spaces"),
        ("https://x/\ny", "url_has_spaces"),
        ("https://u:p@x/", "url_has_credentials"),
        ("https://x:0/", "url_port_zero"),
        ("https://x/" + "y" * 2000, "too_long"),
    ):
        with pytest.raises(Invalid) as refused:
            endpoints.validate_url(bad, private_hosts=False)
        assert (refused.value.code, refused.value.field) == (code, "url"), bad
    assert endpoints.mask_url(ROBOT) == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…beef"
    assert endpoints.mask_url("https://x/y?a=short&b=&c") == "https://x/y?a=…&b&c"
    assert endpoints.mask_url("https://x/y") == "https://x/y"
