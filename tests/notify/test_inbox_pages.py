"""The inbox (page, header count, mark read, API), the preferences page and who may see
the operator's failures — through the real app, signed in, with CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.accounts.services import forget_tokens
from market.clock import FrozenClock
from market.notify import inbox, relay
from market.notify.delivery import deliver
from market.settings import Settings
from tests.factories import make_org, make_token, sign_in
from tests.notify.delivery_scene import job_ctx, make_scene, notify_app, owe, rows, value


def _box(html: str, event: str) -> str:
    """The e-mail checkbox of one event on the preferences page."""
    match = re.search(rf'<input type="checkbox" name="email" value="{event}"[^>]*>', html)
    assert match is not None, event
    return match.group(0)


@pytest.fixture
async def client(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(
        app=notify_app(settings, clock), base_url="http://127.0.0.1:8000"
    ) as c:
        yield c


async def _deliver_inbox(pool: asyncpg.Pool, settings: Settings, clock: FrozenClock) -> None:
    await relay.relay_once(pool, None, clock.now())
    ctx = job_ctx(pool, settings, clock)
    for r in await rows(
        pool, "SELECT id FROM deliveries WHERE channel='inbox' AND status='pending'"
    ):
        assert await deliver(ctx, r["id"]) == "sent"


async def test_inbox_lists_counts_and_marks_read(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    for price in (120_500_000, 121_000_000):
        await owe(
            pool,
            clock.now(),
            "lost",
            user_id=a.user_id,
            lot_id=scene.lot.id,
            payload={"price_fen": price},
        )
        clock.advance(minutes=5)
    await owe(
        pool, clock.now(), "won", user_id=b.user_id, lot_id=scene.lot.id, payload={"price_fen": 1}
    )
    await _deliver_inbox(pool, settings, clock)
    assert await inbox.unread_count(pool, a.user_id) == 2

    # Signed out: no count, and the inbox asks to sign in.
    anonymous = await client.get("/inbox/count")
    assert anonymous.status_code == 200 and anonymous.text == ""
    assert (await client.get("/inbox", follow_redirects=False)).status_code in (302, 303)

    await sign_in(client, a.email)
    count = await client.get("/inbox/count")
    assert re.search(r'data-testid="unread-count"[^>]*>2</span>', count.text)
    assert (
        'hx-trigger="every 15s, ipx:inbox from:body"' in count.text
        and count.headers["cache-control"] == "no-store"
    )
    page = await client.get("/inbox")
    assert page.status_code == 200
    assert "<h1>消息中心</h1>" in page.text and "未读 2 条" in page.text
    assert "¥1,210,000.00" in page.text and "¥1,205,000.00" in page.text
    assert f'href="/lots/{scene.lot.reference}"' in page.text
    mine = [
        r["id"]
        for r in await rows(pool, "SELECT id FROM inbox WHERE user_id=$1 ORDER BY id", a.user_id)
    ]
    assert page.text.index(f'data-inbox-item="{mine[1]}"') < page.text.index(
        f'data-inbox-item="{mine[0]}"'
    )
    theirs = await value(pool, "SELECT id FROM inbox WHERE user_id=$1", b.user_id)
    assert f'data-inbox-item="{theirs}"' not in page.text

    # Without the CSRF token: refused, nothing changes.
    refused = await client.post(f"/inbox/{mine[0]}/read", follow_redirects=False)
    assert refused.status_code == 403
    assert await inbox.unread_count(pool, a.user_id) == 2
    token = client.cookies["ipx_csrf"]
    done = await client.post(
        f"/inbox/{mine[0]}/read", data={"_csrf_token": token}, follow_redirects=False
    )
    assert done.status_code in (302, 303)
    assert await inbox.unread_count(pool, a.user_id) == 1
    # Another user's message is not found, and stays unread.
    other = await client.post(
        f"/inbox/{theirs}/read", data={"_csrf_token": token}, follow_redirects=False
    )
    assert other.status_code == 404
    assert await inbox.unread_count(pool, b.user_id) == 1
    unread_page = await client.get("/inbox?unread=1")
    assert f'data-inbox-item="{mine[1]}"' in unread_page.text
    assert f'data-inbox-item="{mine[0]}"' not in unread_page.text

    await client.post("/inbox/read-all", data={"_csrf_token": token}, follow_redirects=False)
    assert await inbox.unread_count(pool, a.user_id) == 0
    assert 'data-testid="unread-count"' not in (await client.get("/inbox/count")).text
    assert await inbox.unread_count(pool, b.user_id) == 1


async def test_inbox_pages_by_id(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    for n in range(5):
        await owe(
            pool,
            clock.now(),
            "deposit_released",
            user_id=a.user_id,
            lot_id=scene.lot.id,
            payload={"amount_fen": n + 1},
        )
    await _deliver_inbox(pool, settings, clock)
    first = await inbox.list_items(pool, a.user_id, limit=3)
    assert len(first.items) == 3 and first.unread == 5 and first.next_before is not None
    rest = await inbox.list_items(pool, a.user_id, before=first.next_before, limit=3)
    assert len(rest.items) == 2 and rest.next_before is None
    ids = [i.id for i in first.items + rest.items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5


async def test_inbox_api(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    await owe(
        pool,
        clock.now(),
        "won",
        user_id=a.user_id,
        lot_id=scene.lot.id,
        payload={"price_fen": 120_000_000},
    )
    await owe(
        pool,
        clock.now(),
        "lost",
        user_id=b.user_id,
        lot_id=scene.lot.id,
        payload={"price_fen": 120_000_000},
    )
    await _deliver_inbox(pool, settings, clock)
    token = await make_token(pool, clock.now(), a.user_id, ["account:read"])
    auth = {"Authorization": f"Bearer {token}"}
    got = await client.get("/api/v1/inbox", headers=auth)
    assert got.status_code == 200
    body = got.json()
    assert body["unread"] == 1 and body["next_before"] is None
    (item,) = body["items"]
    assert item["event"] == "won" and item["lot_reference"] == scene.lot.reference
    assert item["title"] == f"恭喜竞得：{scene.lot.reference} 成交价 ¥1,200,000.00"
    assert (await client.get("/api/v1/inbox")).status_code == 401
    bad = await client.get("/api/v1/inbox?limit=0", headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "limit"
    assert (bad.json()["code"], bad.json()["params"]) == ("too_small", {"min": 1})
    bad = await client.get("/api/v1/inbox?limit=201", headers=auth)
    assert (bad.json()["code"], bad.json()["params"]) == ("too_large", {"max": 200})
    read = await client.post(f"/api/v1/inbox/{item['id']}/read", headers=auth)
    assert read.status_code == 204
    assert (await client.get("/api/v1/inbox?unread_only=true", headers=auth)).json()["items"] == []
    theirs = await value(pool, "SELECT id FROM inbox WHERE user_id=$1", b.user_id)
    other = await client.post(f"/api/v1/inbox/{theirs}/read", headers=auth)
    assert other.status_code == 404 and other.json()["code"] == "no_such_message"
    # A user reads their own inbox whatever their organisation's standing (OWN_ACCOUNT).
    suspended_org, suspended_user, _ = await make_org(pool, clock.now(), kind="buyer")
    suspended = await make_token(pool, clock.now(), suspended_user, ["account:read"])
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE organisations SET status = 'suspended' WHERE id = $1", suspended_org
        )
    forget_tokens()
    mine = await client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {suspended}"})
    assert mine.status_code == 200 and mine.json()["items"] == []


async def test_preferences_page_saves_email_choices_and_language(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    await sign_in(client, a.email)
    page = await client.get("/account/notifications")
    assert page.status_code == 200
    assert "checked" in _box(page.text, "outbid") and "checked" in _box(page.text, "payment_due")
    assert 'data-testid="email-monitoring_flag"' not in page.text  # a bank's event
    assert 'href="/account/webhooks"' in page.text  # an administrator sees the webhooks
    token = client.cookies["ipx_csrf"]
    keep = ["won", "lost", "outbid", "extended"]
    saved = await client.post(
        "/account/notifications",
        data={"_csrf_token": token, "language": "en", "email": keep},
        follow_redirects=False,
    )
    assert saved.status_code in (302, 303) and saved.cookies.get("ipx_lang") == "en"
    prefs = {
        r["event"]: r["enabled"]
        for r in await rows(
            pool,
            "SELECT event, enabled FROM notification_preferences WHERE user_id=$1 AND channel='email'",
            a.user_id,
        )
    }
    assert prefs["extended"] is True and prefs["payment_due"] is False and prefs["won"] is True
    assert await value(pool, "SELECT language FROM users WHERE id=$1", a.user_id) == "en"
    assert (
        await value(pool, "SELECT count(*) FROM audit_log WHERE action='notification.preferences'")
        == 1
    )
    again = await client.get("/account/notifications?saved=1")
    assert "checked" not in _box(again.text, "payment_due")
    assert "checked" in _box(again.text, "extended")

    # The relay follows them: payment_due by inbox only, extended by e-mail too, in English.
    due = await owe(
        pool,
        clock.now(),
        "payment_due",
        user_id=a.user_id,
        lot_id=scene.lot.id,
        payload={"balance_due_fen": 5},
    )
    ext = await owe(
        pool,
        clock.now(),
        "extended",
        lot_id=scene.lot.id,
        payload={"ends_at": clock.now().isoformat()},
    )
    await _deliver_inbox(pool, settings, clock)
    channels = {
        (r["outbox_id"], r["channel"])
        for r in await rows(pool, "SELECT outbox_id, channel FROM deliveries")
    }
    assert (due, "email") not in channels and (ext, "email") in channels
    titles = [r["title"] for r in await rows(pool, "SELECT title FROM inbox ORDER BY id")]
    assert titles[0].startswith("Payment due for")

    # A bad value names its field, in the page's language only, and saves nothing.
    bad = await client.post("/account/notifications", data={"_csrf_token": token, "language": "fr"})
    assert bad.status_code == 422 and 'data-field="language"' in bad.text
    assert "fr&#39; is not one of the choices." in bad.text  # the page is in English now
    bad_event = await client.post(
        "/account/notifications",
        data={"_csrf_token": token, "language": "zh", "email": ["monitoring_flag"]},
    )
    assert bad_event.status_code == 422 and 'data-field="email"' in bad_event.text
    assert "Unknown events: monitoring_flag." in bad_event.text
    assert "未知的事件" not in bad_event.text
    assert await value(pool, "SELECT language FROM users WHERE id=$1", a.user_id) == "en"


async def test_only_the_operator_sees_failed_notifications(
    pool: asyncpg.Pool, clock: FrozenClock, client: AsyncTestClient[Any]
) -> None:
    assert (await client.get("/operator/notifications", follow_redirects=False)).status_code in (
        302,
        303,
    )
    _, _, buyer_email = await make_org(pool, clock.now(), kind="buyer")
    await sign_in(client, buyer_email)
    assert (await client.get("/operator/notifications")).status_code == 403
    token = client.cookies["ipx_csrf"]
    refused = await client.post(
        "/operator/notifications/replay-failed", data={"_csrf_token": token}
    )
    assert refused.status_code == 403
    refused = await client.post("/operator/notifications/1/replay", data={"_csrf_token": token})
    assert refused.status_code == 403


async def test_inbox_api_marks_every_message_read(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=2)
    a, b = scene.buyers
    for user, event in ((a.user_id, "won"), (a.user_id, "lost"), (b.user_id, "lost")):
        await owe(
            pool,
            clock.now(),
            event,
            user_id=user,
            lot_id=scene.lot.id,
            payload={"price_fen": 120_000_000},
        )
    await _deliver_inbox(pool, settings, clock)
    auth = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), a.user_id, ['account:read'])}"
    }
    done = await client.post("/api/v1/inbox/read-all", headers=auth)
    assert done.status_code == 200 and done.json() == {"marked": 2}
    assert (await client.get("/api/v1/inbox", headers=auth)).json()["unread"] == 0
    again = await client.post("/api/v1/inbox/read-all", headers=auth)
    assert again.json() == {"marked": 0}
    # The other user's message is theirs to read.
    unread_b = "SELECT count(*) FROM inbox WHERE user_id=$1 AND read_at IS NULL"
    assert await value(pool, unread_b, b.user_id) == 1
    # A token without the account scope changes nothing.
    bids_only = await make_token(pool, clock.now(), b.user_id, ["bids:write"])
    refused = await client.post(
        "/api/v1/inbox/read-all", headers={"Authorization": f"Bearer {bids_only}"}
    )
    assert refused.status_code == 403
    assert (await client.post("/api/v1/inbox/read-all")).status_code == 401
    assert await value(pool, unread_b, b.user_id) == 1


async def test_preferences_api_reads_and_saves_the_users_choices(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    read = await make_token(pool, clock.now(), a.user_id, ["account:read"])
    auth = {"Authorization": f"Bearer {read}"}
    shown = await client.get("/api/v1/notification-preferences", headers=auth)
    assert shown.status_code == 200
    prefs = shown.json()
    assert prefs["language"] == "zh" and "monitoring_flag" not in prefs["events"]
    assert prefs["email"]["outbid"] is True and prefs["email"]["payment_due"] is True
    saved = await client.put(
        "/api/v1/notification-preferences",
        headers=auth,
        json={"language": "en", "email": ["won", "outbid"]},
    )
    assert saved.status_code == 200
    assert saved.json()["language"] == "en"
    assert saved.json()["email"]["won"] is True and saved.json()["email"]["payment_due"] is False
    assert await value(pool, "SELECT language FROM users WHERE id=$1", a.user_id) == "en"
    again = (await client.get("/api/v1/notification-preferences", headers=auth)).json()
    assert again["email"] == saved.json()["email"]
    # A bank's event is no choice of a buyer's: 422 naming the field, nothing saved.
    bad = await client.put(
        "/api/v1/notification-preferences",
        headers=auth,
        json={"language": "zh", "email": ["monitoring_flag"]},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "email"
    assert await value(pool, "SELECT language FROM users WHERE id=$1", a.user_id) == "en"
    bids_only = await make_token(pool, clock.now(), a.user_id, ["bids:write"])
    refused = await client.put(
        "/api/v1/notification-preferences",
        headers={"Authorization": f"Bearer {bids_only}"},
        json={"language": "zh", "email": []},
    )
    assert refused.status_code == 403
    assert await value(pool, "SELECT language FROM users WHERE id=$1", a.user_id) == "en"


async def test_the_operator_lists_and_replays_failed_deliveries_over_the_api(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    scene = await make_scene(pool, clock, settings, buyers=1)
    (a,) = scene.buyers
    outbox = await owe(
        pool, clock.now(), "won", user_id=a.user_id, lot_id=scene.lot.id, payload={"price_fen": 1}
    )
    failed = []
    for target in ("a@x.test", "b@x.test"):
        failed.append(
            await value(
                pool,
                "INSERT INTO deliveries (outbox_id, channel, target, status, attempts, last_error,"
                " created_at) VALUES ($1, 'email', $2, 'failed', 6, 'smtp: refused', $3)"
                " RETURNING id",
                outbox,
                target,
                clock.now(),
            )
        )
    # Not the operator: refused, nothing replayed.
    buyer = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), a.user_id, ['bids:write', 'account:read'])}"
    }
    assert (
        await client.get("/api/v1/operator/deliveries/failed", headers=buyer)
    ).status_code == 403
    refused = await client.post(f"/api/v1/operator/deliveries/{failed[0]}/replay", headers=buyer)
    assert refused.status_code == 403
    refused = await client.post("/api/v1/operator/deliveries/replay-failed", headers=buyer)
    assert refused.status_code == 403
    still = "SELECT count(*) FROM deliveries WHERE status='failed'"
    assert await value(pool, still) == 2

    _, operator, _ = await make_org(pool, clock.now(), kind="operator")
    op = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), operator, ['operator:write'])}"
    }
    listed = await client.get("/api/v1/operator/deliveries/failed", headers=op)
    assert listed.status_code == 200
    assert {d["id"] for d in listed.json()} == set(failed)
    first = next(d for d in listed.json() if d["id"] == failed[0])
    assert (first["event"], first["channel"], first["attempts"]) == ("won", "email", 6)
    assert first["last_error"] == "smtp: refused"
    assert first["lot_reference"] == scene.lot.reference
    one = await client.post(f"/api/v1/operator/deliveries/{failed[0]}/replay", headers=op)
    assert one.status_code == 200 and one.json() == {"replayed": 1}
    status = "SELECT status FROM deliveries WHERE id=$1"
    assert await value(pool, status, failed[0]) == "pending"
    # A delivery no longer failed is not replayed again.
    twice = await client.post(f"/api/v1/operator/deliveries/{failed[0]}/replay", headers=op)
    assert twice.json() == {"replayed": 0}
    rest = await client.post("/api/v1/operator/deliveries/replay-failed", headers=op)
    assert rest.status_code == 200 and rest.json() == {"replayed": 1}
    assert await value(pool, still) == 0
    assert (await client.get("/api/v1/operator/deliveries/failed", headers=op)).json() == []
    audited = "SELECT count(*) FROM audit_log WHERE action='notification.replay'"
    assert await value(pool, audited) == 2
