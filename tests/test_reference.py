"""The API reference: the OpenAPI document says who may call each operation and what every
webhook carries, and /api/reference shows all of it, in both languages, without scripts."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from market.accounts.permissions import permission_of
from market.app import create_app
from market.notify import endpoints
from market.notify.payloads import EVENT_TYPES, json_schema
from market.notify.webhooks import VERSION
from market.settings import Settings
from tests.servers import running_server
from tests.test_browser import CHROMIUM_ARGS, _chromium
from tests.test_every_page import VISIBLE_TEXT, _internal_words, problems_on


def _api_operations(app: Any) -> set[tuple[str, str, HTTPRouteHandler]]:
    found = set()
    for route in app.routes:
        if not route.path.startswith("/api/") or route.path == "/api/reference":
            continue
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler):
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
                    found.add((method, path, handler))
    return found


def _without_nulls(node: Any) -> Any:
    """A schema as the document serialises it: Litestar leaves out null values."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


def test_the_document_has_every_webhook_event_and_who_may_call_what(settings: Settings) -> None:
    app = create_app(settings)
    doc = app.openapi_schema.to_schema()
    assert doc["openapi"].startswith("3.1")
    hooks = doc["webhooks"]
    assert set(hooks) == {*endpoints.EVENTS, "test"}  # every event the code can emit
    assert set(EVENT_TYPES) == set(hooks)
    for event, item in hooks.items():
        post = item["post"]
        assert VERSION in post["summary"] and VERSION in post["description"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert schema == _without_nulls(json_schema(event))
        assert schema["properties"]["event"] == {"enum": [event]}
        assert schema["properties"]["version"] == {"enum": [VERSION]}
        assert {"id", "sequence", "subject", "created_at", "payload"} <= set(schema["required"])
        assert "$ref" not in str(schema)  # self-contained
        assert {p["name"] for p in post["parameters"]} >= {"Idempotency-Key", "X-IPX-Signature"}
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for method, path, handler in _api_operations(app):
        op = doc["paths"][path][method.lower()]
        permission = permission_of(handler)
        if permission is None:
            assert "security" not in op and "x-permission" not in op, path
        else:
            assert op["security"] == [{"token": [permission.scope]}], path
            assert op["x-permission"]["name"] == permission.name
            assert set(op["x-permission"]["organisations"]) == set(permission.kinds)


async def test_the_reference_page_lists_every_operation_and_webhook(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    app = create_app(settings)
    operations = _api_operations(app)
    assert len(operations) > 50
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as client:
        zh = await client.get("/api/reference")
        assert zh.status_code == 200 and zh.headers["content-type"].startswith("text/html")
        page = html.unescape(zh.text)
        assert "<script" not in page.split("</head>", 1)[1]  # nothing needs a script
        shown = set(re.findall(r'data-method="(\w+)" data-path="([^"]+)"', page))
        assert shown == {(m, p) for m, p, _ in operations}
        for _, _, handler in operations:
            assert f"<code>{handler.operation_id}</code>" in page
        assert set(re.findall(r'data-event="(\w+)"', page)) == {*endpoints.EVENTS, "test"}
        assert "API 参考" in page and "令牌权限范围" in page and "<code>bids:write</code>" in page
        assert "<code>WebhookOutbid</code>" in page and "<code>OutbidPayload</code>" in page
        assert "<code>sequence</code>" in page
        client.cookies.set("ipx_lang", "en")
        en = html.unescape((await client.get("/api/reference")).text)
        assert "API reference" in en and "token scope" in en and "API 参考" not in en
        # Linked from every page's footer.
        home = await client.get("/")
        assert 'href="/api/reference"' in home.text


@pytest.fixture
def server(settings: Settings, pool: asyncpg.Pool) -> Iterator[str]:
    with running_server(settings) as url:
        yield url


@pytest.mark.browser
async def test_the_reference_page_in_chromium_speaks_chinese(server: str) -> None:
    from playwright.async_api import async_playwright

    executable = _chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(locale="zh-CN")
            page = await context.new_page()
            await page.goto(server + "/")
            await page.click("footer a[href='/api/reference']")
            await page.wait_for_load_state()
            assert await page.inner_text("h1") == "API 参考"
            assert await page.locator("[data-testid=operation]").count() > 50
            webhook = page.locator("[data-event=outbid]")
            assert "sequence" in await webhook.inner_text()
            # The page's own words are translated and show no codes; the document's
            # (class="doc", English for programmers) are left as they are.
            await page.evaluate("() => document.querySelectorAll('.doc').forEach(e => e.remove())")
            text = await page.evaluate(VISIBLE_TEXT)
            assert problems_on(text, _internal_words()) == []
        finally:
            await browser.close()
