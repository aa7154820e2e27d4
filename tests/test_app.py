"""The web shell: health, errors, request ids, OpenAPI."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.clock import FrozenClock
from market.settings import Settings
from tests.factories import make_org, make_token


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


async def test_a_stopping_server_lets_the_requests_it_is_answering_finish(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> None:
    """The shutdown waits for the requests in progress before it closes the pool: a bid
    whose body is still arriving when the server is told to stop gets its answer (here,
    unknown lot), not a 500 from a closed pool."""
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), user, ["bids:write"])
    app = create_app(settings, clock)
    body_sent = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await body_sent.wait()
        return {
            "type": "http.request",
            "body": b'{"type": "bid", "amount_fen": 100000}',
            "more_body": False,
        }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/lots/NO-SUCH-LOT/bids",
        "raw_path": b"/api/v1/lots/NO-SUCH-LOT/bids",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    # The server's side of the ASGI lifespan, on this event loop as under granian.
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    life = asyncio.create_task(app(lifespan, to_app.get, from_app.put))  # type: ignore[arg-type]
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    request = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the request runs until it waits for its body
    assert app.requests == 1
    draining, drain = asyncio.Event(), app.drain

    async def noted(within: float) -> int:
        draining.set()
        return await drain(within)

    app.drain = noted  # type: ignore[method-assign]
    await to_app.put({"type": "lifespan.shutdown"})
    await asyncio.wait(
        [asyncio.create_task(draining.wait()), life],
        timeout=10,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert not life.done(), "the shutdown did not wait for the request"
    body_sent.set()
    await request
    assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
    await life
    assert sent[0]["status"] == 404, sent
    assert app.requests == 0
