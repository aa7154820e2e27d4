"""Test harness: real PostgreSQL and Redis, schema built by the migrations.

With DATABASE_URL / REDIS_URL set, tests use those servers (a separate database
`<name>_test_<worker>` and Redis database 9+worker, never the named ones); otherwise they
start the embedded servers under .market/test-services on free ports. Each test that
touches storage starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from auctions.bidding import forget_caches
from market import audit, db
from market.accounts.services import forget_tokens
from market.app import create_app
from market.clock import FrozenClock
from market.settings import ROOT, Settings

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
SECRET_KEY = "test-secret-" + "x" * 32
WORKER_N = int(re.sub(r"\D", "", WORKER) or 0)


@pytest.fixture(scope="session", autouse=True)
def _audit_key() -> None:
    """Every test appends and verifies audit rows with the test settings' key, app or no
    app (market/audit.py `use_key`)."""
    audit.use_key(audit.key_of(Settings(secret_key=SECRET_KEY)))


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis server URL) for the whole run."""
    pg, rd = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    services = None
    if not (pg and rd):
        from market.services import EmbeddedServices

        data = ROOT / ".market" / f"test-services-{WORKER}"
        data.parent.mkdir(exist_ok=True)
        services = EmbeddedServices(data, pg_port=0, redis_port=0, postgres=not pg, redis=not rd)
        services.start()
        pg = pg or services.database_url
        rd = rd or services.redis_url
    try:
        yield pg, rd
    finally:
        if services is not None:
            services.stop()


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
async def test_urls(server_urls: tuple[str, str]) -> tuple[str, str]:
    """A fresh database built by running every migration, and this worker's Redis db."""
    pg, rd = server_urls
    base = urlsplit(pg).path.lstrip("/") or "postgres"
    name = f"{base}_test_{WORKER}"
    admin = await asyncpg.connect(pg)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    test_pg = _with_db(pg, name)
    conn = await db.connect(test_pg)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    # Databases 9-15 of a default Redis (16 databases), one per test worker.
    return test_pg, _with_db(rd, str(9 + WORKER_N % 7))


@pytest.fixture(scope="session")
async def _session_pool(test_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(test_urls[0], min_size=1, max_size=30)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def _session_redis(test_urls: tuple[str, str]) -> AsyncIterator[Redis]:
    redis = Redis.from_url(test_urls[1])
    yield redis
    await redis.aclose()


@pytest.fixture
async def pool(_session_pool: asyncpg.Pool, redis: Redis) -> asyncpg.Pool:
    """A pool on empty tables (every test starts from nothing)."""
    async with _session_pool.acquire() as conn:
        # The migrations' own rows stay: which ran, and reference data they seed.
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('schema_migrations', 'bidding_agreements')"
        )
        # replica role: the audit log's append-only triggers stay out of the way of cleanup.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "TRUNCATE "
            + ", ".join(f'"{t["tablename"]}"' for t in tables)
            + " RESTART IDENTITY CASCADE"
        )
        await conn.execute("SET session_replication_role = DEFAULT")
    # In-process caches keyed by ids that RESTART IDENTITY hands out again.
    forget_caches()
    forget_tokens()
    return _session_pool


@pytest.fixture
async def redis(_session_redis: Redis) -> Redis:
    await _session_redis.flushdb()
    return _session_redis


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(test_urls: tuple[str, str], tmp_path: Path) -> Settings:
    return Settings(
        database_url=test_urls[0],
        redis_url=test_urls[1],
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
        webhook_private_hosts=True,  # the tests' receivers listen on 127.0.0.1
    )


@pytest.fixture
async def client(
    settings: Settings, clock: FrozenClock, pool: asyncpg.Pool
) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(settings, clock)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as c:
        yield c
