"""Notification fault drill: workers killed, Redis and PostgreSQL restarted, nothing lost.

In a fresh temporary folder: its own embedded PostgreSQL and Redis on free ports (never
the machine's), migrated and seeded with buyers (e-mail on: the default) registered with
confirmed deposits on a few lots open for bidding; every `webhook_every`-th buyer
organisation has a webhook endpoint. A real SMTP server (aiosmtpd) and an HTTP receiver
take what arrives. `workers` processes run `market worker` (workers/settings.py, all of
it). Bidders then bid through the real bid path (auctions/bidding.py `place`, the lots'
writers) for `seconds`; every accepted bid that displaces a leader writes an `outbid`
outbox row. During the run, the faults:

* a worker SIGKILLed `kills` times (started again at once, as a supervisor would);
* Redis killed, its data folder deleted, started empty on the same port, once;
* PostgreSQL stopped with `pg_ctl stop -m immediate` and started again, once.

Then it waits (at most `patience_s`) until the outbox is relayed and no delivery is
pending, and compares, per channel, what was owed with what arrived:

* owed — recipients.plan (the relay's own rules) over every committed outbox row, less
  the outbids the collapse rule skipped (delivery.py) because a newer outbid to the same
  bidder on the same lot was written within `outbid_collapse_s` (checked here against
  the outbox). Counted as `collapsed`.
* delivered — inbox: the inbox rows; email: the Message-IDs the SMTP server received
  (email.message_id, one per notification and address); webhook: the (notification,
  endpoint) pairs the receiver got.
* missing — owed, never delivered.
* duplicates — one notification delivered twice to one recipient as the recipient sees
  it: two inbox rows, or two arrivals under different Message-IDs or Idempotency-Keys.
* unrecorded — arrivals the delivery rows do not account for: the same Message-ID or
  Idempotency-Key again, or a notification that the collapse then skipped. E-mail and
  webhooks are handed over before the delivery is marked sent (no other order is sure
  to lose nothing), so a worker killed, or cut from PostgreSQL, between the two tries
  again later — with the same key, for the receiver to drop (Message-ID,
  idempotency header). Reported, and bounded by what the workers had in hand when it
  happened: `max_jobs` for each worker killed or crashed, and for each at the
  PostgreSQL restart.
* unexpected — delivered, neither owed nor unrecorded: must not happen.

Prints one line per channel, the faults and the run, e.g.

  drill channel=email owed=981 delivered=981 missing=0 duplicates=0 unrecorded=0 …
  drill faults worker_sigkills=4 worker_crashes=0 redis_wiped=1 (…) postgres_immediate=1 (…)
  drill run outbox=6806 bids_accepted=6815 bid_errors=… settled=True ok=True

and exits 1 unless delivery settled, nothing is missing, duplicated or unexpected, the
unrecorded stay within their bound, and every fault happened with its evidence (new pids,
the Redis marker key gone, PostgreSQL's crash recovery in its log).

Run: .venv/bin/python bench/notification_drill.py [--seconds 60] [--kills 4] …  (--help)
tests/notify/test_fault_drill.py runs a smaller one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import asyncpg
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from arq.connections import ArqRedis, create_pool  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from auctions.bidding import BidBody, TokenBucket, forget_caches, place  # noqa: E402
from auctions.writer import bidding_writers  # noqa: E402
from bench.bidding import START, seed_lots  # noqa: E402
from bench.notifications import Sink  # noqa: E402
from market import db  # noqa: E402
from market.cli import _child_env  # noqa: E402
from market.clock import SystemClock  # noqa: E402
from market.lots import services as lots  # noqa: E402
from market.notify import recipients  # noqa: E402
from market.notify.delivery import DEFAULT_POLICY  # noqa: E402
from market.notify.email import message_id  # noqa: E402
from market.services import EmbeddedServices  # noqa: E402
from market.settings import Settings  # noqa: E402
from tests.servers import free_port  # noqa: E402
from workers.settings import WorkerSettings, worker_redis  # noqa: E402

CHANNELS = ("inbox", "email", "webhook")
BIDDERS_AT_ONCE = 16  # bid requests in flight
OwnThread = Callable[[Callable[[], Any]], Awaitable[Any]]  # runs a call on the services' thread


@dataclass(frozen=True)
class DrillConfig:
    seconds: float = 60.0  # the bidding run, during which the faults happen
    bids_per_s: float = 120.0  # bid attempts a second; most are accepted and outbid someone
    buyers: int = 120
    lots: int = 8
    webhook_every: int = 4  # every n-th buyer organisation has a webhook endpoint
    workers: int = 2
    kills: int = 4  # SIGKILLs of a worker
    patience_s: float = 150.0  # at most this long for delivery to settle after the run
    keep_logs: str = ""  # a folder to copy the servers', workers' and drill's logs to


@dataclass(frozen=True)
class ChannelCount:
    channel: str
    owed: int
    delivered: int
    missing: int
    duplicates: int
    unrecorded: int
    unexpected: int
    collapsed: int
    missing_rows: str = ""  # the delivery rows of the missing ones, by status

    def line(self) -> str:
        return (
            f"drill channel={self.channel} owed={self.owed} delivered={self.delivered}"
            f" missing={self.missing} duplicates={self.duplicates}"
            f" unrecorded={self.unrecorded} unexpected={self.unexpected}"
            f" collapsed={self.collapsed}"
            + (f" missing_rows={self.missing_rows}" if self.missing_rows else "")
        )


@dataclass
class Faults:
    """What was done, with the evidence that it took effect."""

    worker_kills: list[tuple[int, int]] = field(default_factory=list)  # (killed pid, new pid)
    worker_crashes: int = 0  # workers that died without being killed (started again)
    redis_pids: tuple[int, int] | None = None  # (before, after) the wipe
    redis_keys_before: int = 0  # keys just before the wipe (the queue among them)
    redis_keys_after: int = -1  # keys as it came back
    redis_marker_survived: bool = True  # a key set before the wipe, still there after?
    postgres_pids: tuple[int, int] | None = None  # the postmaster's, before and after
    postgres_recovered: bool = False  # its log shows crash recovery after the restart

    @property
    def complete(self) -> bool:
        return (
            bool(self.worker_kills)
            and all(old != new for old, new in self.worker_kills)
            and self.redis_pids is not None
            and self.redis_keys_before > 0
            and not self.redis_marker_survived
            and self.postgres_pids is not None
            and self.postgres_pids[0] != self.postgres_pids[1]
            and self.postgres_recovered
        )

    def line(self) -> str:
        redis, pg = self.redis_pids or (0, 0), self.postgres_pids or (0, 0)
        return (
            f"drill faults worker_sigkills={len(self.worker_kills)}"
            f" worker_crashes={self.worker_crashes}"
            f" redis_wiped={int(self.redis_pids is not None)} (pid {redis[0]}→{redis[1]},"
            f" keys {self.redis_keys_before}→{self.redis_keys_after},"
            f" marker_survived={self.redis_marker_survived})"
            f" postgres_immediate={int(self.postgres_pids is not None)}"
            f" (postmaster {pg[0]}→{pg[1]}, crash_recovery={self.postgres_recovered})"
        )


@dataclass
class DrillResult:
    channels: dict[str, ChannelCount]
    faults: Faults
    outbox: int
    bids_accepted: int
    bid_errors: Counter[str]
    run_s: float
    settle_s: float
    settled: bool
    inbox_latency_s: tuple[float, float]  # commit to inbox: p99, max
    logs: str = ""  # the end of the logs, when something went wrong

    workers: int = 1

    @property
    def unrecorded_limit(self) -> int:
        """What the workers had in hand when they died or lost PostgreSQL."""
        cut = len(self.faults.worker_kills) + self.faults.worker_crashes + self.workers
        return cut * WorkerSettings.max_jobs

    @property
    def ok(self) -> bool:
        counts = self.channels.values()
        return (
            self.settled
            and self.faults.complete
            and all(c.missing == c.duplicates == c.unexpected == 0 for c in counts)
            and sum(c.unrecorded for c in counts) <= self.unrecorded_limit
        )

    def lines(self) -> list[str]:
        errors = ",".join(f"{k}:{n}" for k, n in self.bid_errors.most_common()) or "0"
        p99, worst = self.inbox_latency_s
        return [
            *(c.line() for c in self.channels.values()),
            self.faults.line(),
            f"drill run outbox={self.outbox} bids_accepted={self.bids_accepted}"
            f" bid_errors={errors} inbox_latency_p99_s={p99:.1f} max_s={worst:.1f}"
            f" run_s={self.run_s:.0f} settle_s={self.settle_s:.0f} settled={self.settled}"
            f" ok={self.ok}",
        ]


# --- the webhook receiver --------------------------------------------------------------------


class Hooks:
    """An HTTP receiver for the endpoints `/hook/{org id}`: keeps (notification id, org id,
    Idempotency-Key) of every POST and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[int, int, str]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                org = int(self.path.rsplit("/", 1)[1])
                with lock:
                    received.append((body["notification_id"], org, self.headers["Idempotency-Key"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hooks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --- the workers -----------------------------------------------------------------------------


class Workers:
    """`market worker` processes; one that dies is started again (as systemd would)."""

    def __init__(self, env: dict[str, str], count: int, logs: Path) -> None:
        self.env, self.logs = env, logs
        self.files: list[IO[bytes]] = [(logs / f"worker-{n}.log").open("ab") for n in range(count)]
        self.procs = [self._start(n) for n in range(count)]
        self.crashes = 0

    def _start(self, n: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "market.cli", "worker"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.files[n],
            stderr=subprocess.STDOUT,
        )

    def kill(self, n: int) -> tuple[int, int]:
        """SIGKILL worker n and start another; (old pid, new pid)."""
        n %= len(self.procs)
        old = self.procs[n]
        old.send_signal(signal.SIGKILL)
        old.wait()
        self.procs[n] = self._start(n)
        return old.pid, self.procs[n].pid

    def revive(self) -> None:
        for n, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.crashes += 1
                self.procs[n] = self._start(n)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self.files:
            f.close()


# --- the bidding run -------------------------------------------------------------------------


@dataclass
class Bidding:
    accepted: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def bid(
    pool: asyncpg.Pool,
    redis: ArqRedis,
    settings: Settings,
    buyers: list[int],
    lot_refs: list[tuple[str, int]],
    increment: int,
    cfg: DrillConfig,
    until: float,
) -> Bidding:
    """Bid through the real bid path until `until` (monotonic), about cfg.bids_per_s
    attempts a second, each one or two increments above the price last seen; a failure
    (the faults) is counted and the bidder goes on."""
    writers = bidding_writers(pool, redis, SystemClock(), settings)
    limiter = TokenBucket(settings.bid_rate_per_second, settings.bid_burst)
    clock = SystemClock()
    stats = Bidding()
    price: dict[int, int] = {}
    rng = random.Random(5)
    next_at = time.monotonic()

    async def bidder() -> None:
        nonlocal next_at
        while (now := time.monotonic()) < until:
            slot = max(now, next_at)
            next_at = slot + 1 / cfg.bids_per_s
            await asyncio.sleep(slot - now)
            reference, lot_id = rng.choice(lot_refs)
            known = price.get(lot_id)
            body = BidBody(
                amount_fen=START if known is None else known + increment * rng.randint(1, 2)
            )
            try:
                status, answer = await place(
                    pool=pool,
                    writers=writers,
                    limiter=limiter,
                    at=clock.now(),
                    org_id=rng.choice(buyers),
                    reference=reference,
                    body=body,
                    raw=msgspec.json.encode(body),
                    idempotency_key=None,
                )
            except Exception as exc:  # the faults: PostgreSQL down, connections lost
                stats.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.2)
                continue
            if answer.price_fen is not None:
                price[lot_id] = max(price.get(lot_id, 0), answer.price_fen)
            stats.accepted += status == 201

    try:
        await asyncio.gather(*(bidder() for _ in range(BIDDERS_AT_ONCE)))
    finally:
        await writers.stop()
    return stats


# --- the faults ------------------------------------------------------------------------------


async def wipe_redis(services: EmbeddedServices, own: OwnThread, faults: Faults) -> None:
    r = Redis.from_url(services.redis_url)
    try:
        await r.set("drill:before-wipe", "1")
        faults.redis_keys_before = await r.dbsize()
    finally:
        await r.aclose()
    faults.redis_pids = await own(partial(services.restart, "redis", immediate=True, wipe=True))
    r = Redis.from_url(services.redis_url)
    try:
        faults.redis_keys_after = await r.dbsize()
        faults.redis_marker_survived = bool(await r.exists("drill:before-wipe"))
    finally:
        await r.aclose()


def crash_postgres(services: EmbeddedServices, faults: Faults) -> None:
    log = services.data_dir / "logs" / "postgres.log"
    offset = log.stat().st_size
    faults.postgres_pids = services.restart("postgres", immediate=True)
    with log.open("rb") as f:
        f.seek(offset)
        # What PostgreSQL says when it starts after an immediate stop.
        faults.postgres_recovered = b"automatic recovery in progress" in f.read()


async def inject(
    cfg: DrillConfig,
    services: EmbeddedServices,
    own: OwnThread,
    workers: Workers,
    faults: Faults,
    started: float,
    until: float,
) -> None:
    """The faults at fixed points of the run; meanwhile, a worker that dies is revived."""
    span = until - started
    plan: list[tuple[float, str]] = [(0.32, "redis"), (0.57, "postgres")]
    plan += [(0.1 + 0.8 * (k + 0.5) / cfg.kills, f"kill {k}") for k in range(cfg.kills)]
    for at, what in [*sorted(plan), (1.0, "end")]:
        while time.monotonic() < started + at * span:
            workers.revive()
            await asyncio.sleep(0.2)
        if what == "redis":
            await wipe_redis(services, own, faults)
        elif what == "postgres":
            await own(partial(crash_postgres, services, faults))
        elif what.startswith("kill"):
            faults.worker_kills.append(workers.kill(int(what.split()[1])))


# --- settling and counting -------------------------------------------------------------------


async def settle(pool: asyncpg.Pool, workers: Workers, patience_s: float) -> bool:
    """Wait until every outbox row is relayed and no delivery is pending."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        workers.revive()
        async with pool.acquire() as conn:
            left = await conn.fetchval(
                "SELECT (SELECT count(*) FROM outbox WHERE relayed_at IS NULL)"
                " + (SELECT count(*) FROM deliveries WHERE status = 'pending')"
            )
        if left == 0:
            return True
        await asyncio.sleep(0.5)
    return False


async def stuck(pool: asyncpg.Pool, redis: ArqRedis, limit: int = 5) -> str:
    """A few deliveries still pending, with what Redis knows of their jobs."""
    async with pool.acquire() as conn:
        pending = await conn.fetch(
            "SELECT id, channel, attempts, next_attempt_at, last_error, created_at"
            " FROM deliveries WHERE status = 'pending' ORDER BY id LIMIT $1",
            limit,
        )
    out = []
    for d in pending:
        job = f"deliver:{d['id']}:{d['attempts']}"
        keys = sorted(k.decode() for k in await redis.keys(f"*{job}*"))
        score = await redis.zscore("arq:queue", job)
        out.append(f"pending {dict(d)} redis={keys} queued_at={score}")
    return "\n".join(out)


# Skipped by the outbid collapse (delivery.py), and rightly: a newer outbid to the same
# bidder on the same lot was written within the window. Any channel: an inbox or webhook
# delivery that runs late (after a fault, or behind a queue) collapses as e-mails do.
COLLAPSED = """
SELECT d.outbox_id, d.channel, d.target
FROM deliveries d
JOIN outbox o ON o.id = d.outbox_id
JOIN outbox n ON n.id = substring(d.last_error FROM 'superseded by #([0-9]+)')::bigint
WHERE d.status = 'skipped' AND o.event = 'outbid'
  AND n.event = 'outbid' AND n.recipient_user_id = o.recipient_user_id
  AND n.lot_id = o.lot_id AND n.id > o.id
  AND n.created_at <= o.created_at + make_interval(secs => $1)
"""
LATENCY = """
SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99, max(s) AS max
FROM (SELECT extract(epoch FROM d.sent_at - o.created_at)::float8 AS s
      FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
      WHERE d.channel = 'inbox' AND d.status = 'sent') t
"""


def tally(
    channel: str,
    owed: dict[Any, tuple[int, str]],
    collapsed: set[Any],
    arrivals: list[tuple[Any, str]],
    status: dict[tuple[int, str, str], str],
) -> ChannelCount:
    """owed and collapsed: notifications as they arrive (inbox: (outbox id, user id),
    email: Message-ID, webhook: (outbox id, endpoint id)), owed ones → (outbox id,
    delivery target); arrivals: (notification, the key it came with); status: each
    delivery row's status, to say where a missing one stopped."""
    keys: dict[Any, set[str]] = {}
    for notification, key in arrivals:
        keys.setdefault(notification, set()).add(key)
    missing = owed.keys() - keys.keys()
    stopped = Counter(status.get((owed[m][0], channel, owed[m][1]), "none") for m in missing)
    return ChannelCount(
        channel=channel,
        owed=len(owed),
        delivered=len(owed.keys() & keys.keys()),
        missing=len(missing),
        duplicates=sum(len(k) - 1 for k in keys.values()),
        unrecorded=len(arrivals) - len(set(arrivals)) + len(keys.keys() & collapsed),
        unexpected=len(keys.keys() - owed.keys() - collapsed),
        collapsed=len(collapsed),
        missing_rows=",".join(f"{s}:{n}" for s, n in stopped.most_common()),
    )


async def count(
    pool: asyncpg.Pool, settings: Settings, sink: Sink, hooks: Hooks
) -> tuple[int, dict[str, ChannelCount], tuple[float, float]]:
    """(outbox rows, each channel's count (module docstring), the p99 and the longest
    seconds from an outbox row's commit to its inbox delivery)."""
    async with pool.acquire() as conn:
        outbox = await conn.fetch("SELECT id, event FROM outbox ORDER BY id")
        planned: list[recipients.Planned] = []
        for start in range(0, len(outbox), 1000):
            planned += await recipients.plan(conn, outbox[start : start + 1000])
        collapsed = {
            (r["outbox_id"], r["channel"], r["target"])
            for r in await conn.fetch(COLLAPSED, DEFAULT_POLICY.outbid_collapse_s)
        }
        status = {
            (r["outbox_id"], r["channel"], r["target"]): r["status"]
            for r in await conn.fetch("SELECT outbox_id, channel, target, status FROM deliveries")
        }
        inbox = await conn.fetch("SELECT id, outbox_id, user_id FROM inbox")
        endpoint_of = dict(await conn.fetch("SELECT org_id, id FROM webhook_endpoints"))
        latency = await conn.fetchrow(LATENCY)
    owed: dict[str, dict[Any, tuple[int, str]]] = {c: {} for c in CHANNELS}
    skipped: dict[str, set[Any]] = {c: set() for c in CHANNELS}
    for p in planned:
        notification: Any = (p.outbox_id, p.target)  # the inbox's (outbox id, user id)
        if p.channel == "email":
            notification = message_id(p.outbox_id, p.target, settings.mail_from)
        elif p.channel == "webhook":
            notification = (p.outbox_id, int(p.target))
        if (p.outbox_id, p.channel, p.target) in collapsed:
            skipped[p.channel].add(notification)
        else:
            owed[p.channel][notification] = (p.outbox_id, p.target)
    arrivals: dict[str, list[tuple[Any, str]]] = {
        "inbox": [((r["outbox_id"], str(r["user_id"])), str(r["id"])) for r in inbox],
        "email": [(m, m) for m in list(sink.message_ids)],
        "webhook": [((n, endpoint_of[org]), key) for n, org, key in list(hooks.received)],
    }
    counts = {c: tally(c, owed[c], skipped[c], arrivals[c], status) for c in CHANNELS}
    return len(outbox), counts, (latency["p99"] or 0.0, latency["max"] or 0.0)


def tails(logs: Path, lines: int = 12) -> str:
    out = []
    for path in sorted(logs.glob("*.log")):
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
        out.append(f"--- {path.name}\n" + "\n".join(text))
    return "\n".join(out)


# --- the drill -------------------------------------------------------------------------------


async def drill(cfg: DrillConfig) -> DrillResult:
    """The whole drill in a temporary folder; every process it starts is stopped.

    The embedded servers are started, restarted and stopped by a thread of their own: they
    die with the thread that started them (services.py), and the bidders on this event
    loop must go on while PostgreSQL is down, to feel the outage. This process's log
    records go to logs/drill.log in the folder (a fault drill logs many failures)."""
    loop = asyncio.get_running_loop()
    with (
        tempfile.TemporaryDirectory(prefix="ipx-drill-") as tmp,
        ThreadPoolExecutor(1, thread_name_prefix="drill-services") as thread,
    ):
        folder = Path(tmp)
        (folder / "logs").mkdir()
        handler = logging.FileHandler(folder / "logs" / "drill.log")
        handler.setLevel(logging.WARNING)
        logging.getLogger().addHandler(handler)
        services = EmbeddedServices(folder, pg_port=0, redis_port=0, database="drill")

        def own(call: Callable[[], Any]) -> Awaitable[Any]:
            return loop.run_in_executor(thread, call)

        forget_caches()  # the bid path's caches, keyed by lot references other runs reuse
        try:
            await own(services.start)
            result = await _drill(cfg, folder, services, own)
            if not result.ok:
                result.logs = tails(folder / "logs")
            return result
        finally:
            forget_caches()
            await own(services.stop)
            logging.getLogger().removeHandler(handler)
            handler.close()
            if cfg.keep_logs:
                shutil.copytree(folder / "logs", cfg.keep_logs, dirs_exist_ok=True)


async def _drill(
    cfg: DrillConfig, folder: Path, services: EmbeddedServices, own: OwnThread
) -> DrillResult:
    smtp_port = free_port()
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        data_dir=folder,
        secret_key="fault-drill-" + os.urandom(8).hex(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        log_level="WARNING",
        webhook_private_hosts=True,  # the drill's receiver listens on 127.0.0.1
    )
    assert settings.database_url and settings.redis_url
    conn = await db.connect(settings.database_url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    pool = await db.create_pool(settings.database_url, min_size=2, max_size=10)
    redis = await create_pool(worker_redis(settings))
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    workers: Workers | None = None
    try:
        with Hooks() as hooks:
            now = datetime.now(UTC)
            people, lot_refs, increment = await seed_lots(
                pool, now, lots.policy_for(settings), bidders=cfg.buyers, copies=cfg.lots - 1
            )
            async with pool.acquire() as c:
                await c.executemany(
                    "INSERT INTO webhook_endpoints (org_id, url, format, secret, created_at)"
                    " VALUES ($1, $2, 'json', 'drill-secret', $3)",
                    [
                        (org, f"http://127.0.0.1:{hooks.port}/hook/{org}", now)
                        for org, _, _ in people[:: cfg.webhook_every]
                    ],
                )
            env = {
                **_child_env(settings),
                "MARKET_DATA_DIR": str(folder),
                "MARKET_WEBHOOK_PRIVATE_HOSTS": "true",
                "MARKET_SMTP_HOST": "127.0.0.1",
                "MARKET_SMTP_PORT": str(smtp_port),
                "MARKET_LOG_LEVEL": "WARNING",
            }
            workers = Workers(env, cfg.workers, folder / "logs")
            faults = Faults()
            started = time.monotonic()
            until = started + cfg.seconds
            buyers = [org for org, _, _ in people]
            bidding, _ = await asyncio.gather(
                bid(pool, redis, settings, buyers, lot_refs, increment, cfg, until),
                inject(cfg, services, own, workers, faults, started, until),
            )
            run_s = time.monotonic() - started
            settled = await settle(pool, workers, cfg.patience_s)
            settle_s = time.monotonic() - started - run_s
            if not settled:
                logging.getLogger("drill").warning("not settled:\n%s", await stuck(pool, redis))
            faults.worker_crashes = workers.crashes
            outbox, channels, latency = await count(pool, settings, sink, hooks)
            return DrillResult(
                channels=channels,
                faults=faults,
                outbox=outbox,
                bids_accepted=bidding.accepted,
                bid_errors=bidding.errors,
                run_s=run_s,
                settle_s=settle_s,
                settled=settled,
                inbox_latency_s=latency,
                workers=cfg.workers,
            )
    finally:
        if workers is not None:
            workers.stop()
        smtp.stop()
        await redis.aclose()
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    defaults = DrillConfig()
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    for name, value in vars(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    cfg = DrillConfig(**vars(parser.parse_args(argv)))
    # Log records go to the drill's log file only (drill()), not to the terminal.
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    result = asyncio.run(drill(cfg))
    for line in result.lines():
        print(line, flush=True)
    if result.logs:
        print(result.logs, flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
