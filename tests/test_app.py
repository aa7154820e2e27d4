"""The web shell: health, errors, request ids, OpenAPI."""

from __future__ import annotations

import gc
import logging
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient


async def test_healthz_ok(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"postgres": "ok", "redis": "ok"}
    assert r.headers["x-request-id"]


async def test_each_request_gets_its_own_id(client: AsyncTestClient[Any]) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


async def test_request_id_is_echoed(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


async def test_openapi_schema(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    ops = {op["operationId"] for path in r.json()["paths"].values() for op in path.values()}
    assert {"healthz", "register_buyer", "get_token"} <= ops


async def test_unknown_api_path_is_json_404(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == 404 and body["code"] == "not_found" and body["request_id"]


async def test_unknown_page_is_friendly_html(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/nothing-here")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert "页面不存在" in r.text


async def test_home_is_chinese_first_with_english_switch(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and "知识产权质物处置" in r.text
    token = client.cookies["ipx_csrf"]
    r = await client.post("/lang", data={"lang": "en", "next": "/", "_csrf_token": token})
    assert r.status_code == 200 and "Disposal of pledged IP" in r.text


async def test_healthz_names_redis_when_down(client: AsyncTestClient[Any]) -> None:
    from redis.asyncio import Redis

    app = client.app
    healthy = app.state.redis
    app.state.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        r = await client.get("/healthz")
    finally:
        await app.state.redis.aclose()
        app.state.redis = healthy
    assert r.status_code == 503
    body = r.json()
    assert body["postgres"] == "ok" and body["redis"].startswith("down")


def test_the_web_process_collects_young_objects_rarely(
    test_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests in flight must not trigger collections (market/asgi.py)."""
    from market import asgi

    # As `market serve` gives them to the server process (no embedded services here).
    monkeypatch.setenv("DATABASE_URL", test_urls[0])
    monkeypatch.setenv("REDIS_URL", test_urls[1])
    before = gc.get_threshold()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        asgi.app()
        assert gc.get_threshold() == (asgi.YOUNG_COLLECTION_THRESHOLD, *before[1:])
        assert asgi.YOUNG_COLLECTION_THRESHOLD >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        root.handlers[:] = handlers
        root.setLevel(level)
