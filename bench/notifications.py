"""Notification throughput and latency, commit to delivery.

On a fresh benchmark database: BENCH_USERS buyers; a real SMTP server (aiosmtpd) on
loopback; BENCH_WORKERS arq worker processes running the notification jobs (relay,
deliver, requeue) exactly as the worker does. This process commits outbox rows at a
steady BENCH_RATE per second for BENCH_SECONDS — a `won` for one user each, as the
closer writes them, so two deliveries each: inbox and e-mail — and kicks the relay after
each commit as producers do. Then it waits for every delivery and prints:

  bench notifications delivered_per_s=… commit_to_delivery_p50_ms=… p99_ms=…
        owed=… sent=… smtp_messages=… duplicates=…   (one line)

delivered_per_s counts deliveries (inbox and e-mail) sent per second over the run;
latency is deliveries.sent_at − outbox.created_at (both from the system clock).

Run: .venv/bin/python bench/notifications.py   (DATABASE_URL/REDIS_URL, else embedded)
The Redis database named by REDIS_URL is flushed first: give the bench one of its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_seconds  # noqa: E402
from market import db  # noqa: E402
from market.cli import _child_env, resolved  # noqa: E402
from market.settings import load  # noqa: E402

SECONDS = bench_seconds(20)
RATE = int(os.environ.get("BENCH_RATE", "275"))  # outbox rows per second (×2 deliveries)
USERS = int(os.environ.get("BENCH_USERS", "200"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
TICK = 0.02  # commit every 20 ms: a steady stream, not one burst

SALE = {
    "sale_id": 1,
    "price_fen": 120_000_000,
    "deposit_fen": 12_000_000,
    "balance_due_fen": 108_000_000,
    "due_at": "2026-01-15T02:00:00+00:00",
    "payment_reference": "JK7A2B",
    "fee_kind": "commission",
    "fee_fen": 0,
}


# --- the worker process ------------------------------------------------------------------


def run_worker() -> None:
    """`bench/notifications.py --worker`: the notification jobs, as `market worker` runs
    them (settings from the environment; poll delay and concurrency as WorkerSettings, or
    BENCH_POLL / BENCH_MAX_JOBS)."""
    from arq.worker import Worker

    from market.clock import SystemClock
    from market.notify.delivery import close_channels, open_channels
    from market.notify.jobs import CRON, JOBS
    from workers.settings import WorkerSettings, worker_redis

    settings = load()

    async def startup(ctx: dict[str, Any]) -> None:
        assert settings.database_url
        ctx["pool"] = await db.create_pool(settings.database_url, max_size=24)
        await open_channels(ctx)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await close_channels(ctx)
        await ctx["pool"].close()

    worker = Worker(
        functions=JOBS,
        cron_jobs=CRON,
        redis_settings=worker_redis(settings),
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"settings": settings, "clock": SystemClock()},
        poll_delay=float(os.environ.get("BENCH_POLL", WorkerSettings.poll_delay)),
        max_jobs=int(os.environ.get("BENCH_MAX_JOBS", WorkerSettings.max_jobs)),
        keep_result=0,
        handle_signals=True,
    )
    worker.run()


# --- the run ------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
                break
        return "250 OK"


async def seed(url: str) -> list[int]:
    from market.accounts.passwords import _hasher

    conn = await db.connect(url)
    try:
        await db.migrate(conn)
        now = datetime.now(UTC)
        org = await conn.fetchval(
            "INSERT INTO organisations (kind, name, credit_code, status, created_at)"
            " VALUES ('buyer', '基准测试竞买人有限公司', '91110108MA00000001', 'approved', $1)"
            " RETURNING id",
            now,
        )
        secret = _hasher.hash("bench-password-123")
        return [
            await conn.fetchval(
                "INSERT INTO users (org_id, email, display_name, password_hash, role, language,"
                " created_at) VALUES ($1, $2, $3, $4, 'officer', $5, $6) RETURNING id",
                org,
                f"bidder{n}@bench.test",
                f"竞买人{n}",
                secret,
                "en" if n % 3 == 0 else "zh",
                now,
            )
            for n in range(USERS)
        ]
    finally:
        await conn.close()


async def produce(url: str, redis_url: str, users: list[int]) -> int:
    """Commit outbox rows at RATE per second for SECONDS; returns how many."""
    from arq.connections import RedisSettings, create_pool

    from market.notify import relay

    pool = await db.create_pool(url, min_size=2, max_size=4)
    arq = await create_pool(RedisSettings.from_dsn(redis_url))
    written = 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < SECONDS:
            due = int(elapsed * RATE) + 1 - written
            if due > 0:
                ids = list(range(written, written + due))
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "INSERT INTO outbox (event, recipient_user_id, payload, dedupe_key,"
                        " created_at) SELECT 'won', u, $3::jsonb, 'bench:' || k, $4"
                        " FROM unnest($1::bigint[], $2::bigint[]) AS t (u, k)",
                        [users[i % len(users)] for i in ids],
                        ids,
                        SALE,
                        datetime.now(UTC),
                    )
                written += due
                await relay.kick(arq)
            await asyncio.sleep(TICK)
    finally:
        await arq.aclose()
        await pool.close()
    return written


async def wait_and_measure(url: str, owed: int, patience_s: float = 120) -> dict[str, Any]:
    conn = await db.connect(url)
    try:
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT (SELECT count(*) FROM outbox WHERE relayed_at IS NULL)"
                " + (SELECT count(*) FROM deliveries WHERE status = 'pending')"
            )
            if pending == 0:
                break
            await asyncio.sleep(0.2)
        row = await conn.fetchrow(
            """
            SELECT count(*) AS sent,
                   count(*) FILTER (WHERE d.channel = 'email') AS emails,
                   extract(epoch FROM max(d.sent_at) - min(o.created_at)) AS span_s,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY
                       extract(epoch FROM d.sent_at - o.created_at)) AS p50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY
                       extract(epoch FROM d.sent_at - o.created_at)) AS p99
            FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
            WHERE d.status = 'sent'
            """
        )
        owed_deliveries = await conn.fetchval("SELECT count(*) FROM deliveries")
        unrelayed = await conn.fetchval("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")
        return {**dict(row), "owed": owed_deliveries + 2 * unrelayed, "outbox": owed}
    finally:
        await conn.close()


def main() -> None:
    if "--worker" in sys.argv:
        run_worker()
        return
    from aiosmtpd.controller import Controller

    from tests.notify.delivery_scene import free_port

    with resolved(load()) as settings:
        assert settings.database_url and settings.redis_url
        parts = urlsplit(settings.database_url)
        name = (parts.path.lstrip("/") or "postgres") + "_bench_notifications"
        admin_url = settings.database_url
        url = urlunsplit(parts._replace(path="/" + name))

        async def fresh() -> list[int]:
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            from redis.asyncio import Redis

            r = Redis.from_url(settings.redis_url or "")
            await r.flushdb()
            await r.aclose()
            return await seed(url)

        users = asyncio.run(fresh())
        sink = Sink()
        smtp_port = free_port()
        smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        env = {
            **_child_env(settings),
            "DATABASE_URL": url,
            "MARKET_WEBHOOK_PRIVATE_HOSTS": "true",  # the receiver listens on 127.0.0.1
            "MARKET_SMTP_HOST": "127.0.0.1",
            "MARKET_SMTP_PORT": str(smtp_port),
            "MARKET_LOG_LEVEL": "WARNING",
        }
        workers = [
            subprocess.Popen([sys.executable, __file__, "--worker"], cwd=ROOT, env=env)
            for _ in range(WORKERS)
        ]
        try:
            time.sleep(2)  # the workers connect and run their start-up crons
            owed = asyncio.run(produce(url, settings.redis_url, users))
            r = asyncio.run(wait_and_measure(url, owed))
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=30)
            smtp.stop()
        span = float(r["span_s"] or 0) or 1.0
        duplicates = len(sink.message_ids) - len(set(sink.message_ids))
        print(
            "bench notifications"
            f" delivered_per_s={r['sent'] / span:.0f}"
            f" commit_to_delivery_p50_ms={float(r['p50'] or 0) * 1000:.0f}"
            f" p99_ms={float(r['p99'] or 0) * 1000:.0f}"
            f" owed={r['owed']} sent={r['sent']} smtp_messages={len(sink.message_ids)}"
            f" duplicates={duplicates} rate={RATE * 2}/s workers={WORKERS}",
            flush=True,
        )


if __name__ == "__main__":
    main()
