"""Bidding throughput over loopback HTTP, the way users run the exchange.

Starts `market serve` (granian, one process) on a fresh benchmark database, seeds 64
approved buyers with API tokens, registered with confirmed deposits on one hot lot and on
1,000 other lots, and drives the bid API with wrk (C, so the load generator costs little
CPU) for BENCH_SECONDS (default 30) per scenario:

  hot_lot      64 bidders on one lot, each bid above every bid sent before it: the
               engine's pace of accepting bids (one that arrives behind a later one is
               refused, too low)
  hot_lot_racing  the same, but raising by the least increment from the price each
               bidder last saw, two streams racing for the same prices: most are refused
  many_lots    the same bidders spread over 1,000 lots, raising as racing bidders do
  rejects_only bids far below the price: refusals the cached state proves

then the same three against the plain one-transaction-per-bid path (MARKET_BID_PATH=direct).
One line per scenario:

  bench bidding scenario=hot_lot path=writer bidders=64 accepted_per_s=… rejected_per_s=…
        p50_ms=… p99_ms=…   (on one line)

Run: .venv/bin/python bench/bidding.py   (DATABASE_URL/REDIS_URL, else embedded servers;
BENCH_SECONDS, and BENCH_PATHS=writer / BENCH_SCENARIOS=hot_lot,… for a part of it)
Needs Debian's wrk (apt-get install wrk).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_seconds, known_names  # noqa: E402
from market import db  # noqa: E402
from market.cli import _child_env, resolved  # noqa: E402
from market.lots import services as lots  # noqa: E402
from market.lots.models import LotDraft, PublishInput  # noqa: E402
from market.lots.terms import TermsInput, TermsPolicy  # noqa: E402
from market.settings import load  # noqa: E402
from tests.factories import make_org, make_token, viewer  # noqa: E402
from tests.lots.factories import draft_lot, lot_action, make_case  # noqa: E402

SECONDS = bench_seconds(30)
# A subset while working on one part, e.g. BENCH_PATHS=writer BENCH_SCENARIOS=hot_lot.
PATHS = os.environ.get("BENCH_PATHS", "writer,direct").split(",")
SCENARIOS = os.environ.get(
    "BENCH_SCENARIOS", "hot_lot,hot_lot_racing,many_lots,rejects_only"
).split(",")
BIDDERS = 64
MANY = 1_000
START, DEPOSIT = 1_000_000, 100_000  # CNY 10,000 start; increment by the terms' default

LUA = r"""
local ffi = require("ffi")  -- wrk's LuaJIT: a clock shared by the threads
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local t0 = %(t0)d  -- CLOCK_MONOTONIC seconds as the scenario was written
local tokens = {%(tokens)s}
local lots = {%(lots)s}
local mode = "%(mode)s"
local start, inc = %(start)d, %(inc)d
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  accepted, rejected, other = 0, 0, 0
  seen = {}
  steps = {}
  math.randomseed(os.time() * 1000 + tid)
end
function request()
  local lot = lots[1]
  if mode == "many" then lot = lots[math.random(#lots)] end
  local amount = start
  if mode == "hot" then
    -- A bidding war at the engine's pace: each bid tops every bid sent before it, by the
    -- increments of the microseconds since the scenario began on a clock both threads
    -- share, taken as the request is written. Bids reach the engine in the order sent
    -- (bench/arrival_order.py), so what is refused is what arrived behind a later one.
    ffi.C.clock_gettime(1, ts)
    local us = (tonumber(ts.tv_sec) - t0) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
    amount = start + inc * us
  elseif mode ~= "rejects" then
    -- Racing bidders raise by the least increment: each thread walks its own ascending
    -- steps (two threads interleave), jumping past the price it last saw.
    local id = lot[2]
    local step = steps[id] or tid
    local least = math.floor(((seen[id] or start) - start) / inc) + 1
    if step < least then step = least end
    steps[id] = step + 2
    amount = start + inc * step
  end
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  wrk.headers["Content-Type"] = "application/json"
  -- The war's jumps are far above the large-bid line (docs/rules.md §Bidding): confirmed.
  local confirm = ""
  if mode == "hot" then confirm = ',"confirm":true' end
  return wrk.format("POST", "/api/v1/lots/" .. lot[1] .. "/bids", nil,
                    '{"type":"bid","amount_fen":' .. amount .. confirm .. '}')
end
function response(status, headers, body)
  if status == 201 then accepted = accepted + 1
  elseif status == 409 then rejected = rejected + 1
  else other = other + 1 end
  local id = tonumber(body:match('"lot_id":(%%d+)'))
  local price = tonumber(body:match('"price_fen":(%%d+)'))
  if id and price and price > (seen[id] or 0) then seen[id] = price end
end
function done(summary, latency, requests)
  local a, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); r = r + t:get("rejected"); o = o + t:get("other")
  end
  io.write(string.format(
    "RESULT accepted=%%d rejected=%%d other=%%d p50_us=%%d p99_us=%%d us=%%d\n",
    a, r, o, latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed_lots(
    pool: asyncpg.Pool, now: datetime, policy: TermsPolicy, *, bidders: int, copies: int
) -> tuple[list[tuple[int, int, str]], list[tuple[str, int]], int]:
    """`bidders` approved buyers, each registered with a confirmed deposit on one lot open
    for bidding and on `copies` copies of it. Returns (buyers as (org id, user id, e-mail),
    [(lot reference, lot id)] the first lot first, the increment). Also used by
    bench/notification_drill.py."""
    bank_org, bank_user, _ = await make_org(pool, now, kind="bank")
    buyers = [await make_org(pool, now, kind="buyer") for _ in range(bidders)]
    case_id, _ = await make_case(
        pool, now - timedelta(days=40), bank_org, bank_user, valuation_fen=START * 10 // 7
    )
    opens = now - timedelta(minutes=1)
    created = opens - policy.announcement_period - timedelta(minutes=1)
    bank = await viewer(pool, bank_user)
    lot = await draft_lot(
        pool,
        created,
        policy,
        bank,
        case_id,
        LotDraft(
            title="基准测试热门拍品",
            terms=TermsInput(
                start_price_fen=START,
                deposit_fen=DEPOSIT,
                bidding_starts_at=opens,
                bidding_ends_at=now + timedelta(days=2),
            ),
        ),
    )
    await lot_action(pool, created, policy, bank, lot.id, PublishInput())
    await lots.open_due_lots(pool, now, policy)
    async with pool.acquire() as c, c.transaction():
        # More lots in bidding: copies of the first (the bid path reads only the row).
        await c.execute(
            """INSERT INTO lots (case_id, bank_org_id, reference, title, description, status,
                   round, valuation_fen, start_price_fen, deposit_fen, increment_fen,
                   first_start_fen, terms, announced_at, bidding_starts_at, bidding_ends_at,
                   created_at, updated_at, published_at)
               SELECT case_id, bank_org_id, 'LOT-BENCH-' || g, title || g, description,
                   status, round, valuation_fen, start_price_fen, deposit_fen,
                   increment_fen, first_start_fen, terms, announced_at, bidding_starts_at,
                   bidding_ends_at, created_at, updated_at, published_at
               FROM lots, generate_series(1, $2) g WHERE id = $1""",
            lot.id,
            copies,
        )
        # Every buyer registered on every lot with a confirmed deposit (set-based: a
        # benchmark's set-up, not the registration path under test).
        await c.execute(
            """INSERT INTO registrations (lot_id, round, buyer_org_id, user_id, bidder_code,
                   deposit_fen, transfer_reference, deposit_status, confirmed_at, created_at)
               SELECT l.id, 1, u.org_id, u.id,
                   upper(substr(md5(l.id || '-' || u.id), 1, 6)),
                   l.deposit_fen, 'BZJ' || l.id || 'X' || u.id, 'confirmed', $1, $1
               FROM lots l CROSS JOIN users u JOIN organisations o ON o.id = u.org_id
               WHERE l.status = 'bidding' AND o.kind = 'buyer'""",
            now,
        )
        refs = [
            (r["reference"], r["id"])
            for r in await c.fetch(
                "SELECT reference, id FROM lots WHERE status = 'bidding' ORDER BY id"
            )
        ]
    return buyers, refs, lot.increment_fen


async def seed(url: str) -> tuple[list[str], list[tuple[str, int]], int]:
    """(tokens, [(lot reference, lot id)] hot lot first, increment)."""
    conn = await db.connect(url)
    await db.migrate(conn)
    await conn.close()
    pool = await db.create_pool(url, max_size=8)
    now = datetime.now(UTC)
    policy = lots.policy_for(load())
    buyers, refs, increment = await seed_lots(pool, now, policy, bidders=BIDDERS, copies=MANY)
    tokens = [await make_token(pool, now, user, ["bids:write"]) for _, user, _ in buyers]
    await pool.close()
    return tokens, refs, increment


def run_wrk(base: str, script: Path) -> dict[str, int]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{BIDDERS}", f"-d{SECONDS}s", "--timeout", "5s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (.*)", out)
    if match is None:
        raise RuntimeError(out)
    return {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


def serve(env: dict[str, str], path: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**env, "MARKET_BID_PATH": path},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk: apt-get install wrk")
    known_names("BENCH_PATHS", PATHS, ("writer", "direct"))
    known_names(
        "BENCH_SCENARIOS", SCENARIOS, ("hot_lot", "hot_lot_racing", "many_lots", "rejects_only")
    )
    with resolved(load()) as settings:
        assert settings.database_url
        parts = urlsplit(settings.database_url)
        name = (parts.path.lstrip("/") or "postgres") + "_bench_bidding"
        admin_url = settings.database_url
        env_base = _child_env(settings)

        for path in PATHS:

            async def fresh() -> None:
                admin = await asyncpg.connect(admin_url)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}"')
                await admin.close()

            asyncio.run(fresh())
            url = urlunsplit(parts._replace(path="/" + name))
            tokens, refs, inc = asyncio.run(seed(url))
            env = {
                **env_base,
                "DATABASE_URL": url,
                "MARKET_LOG_LEVEL": "WARNING",
                # The per-bidder limit would otherwise cap 64 bidders at 6,400 bids/s.
                "MARKET_BID_RATE": "1000000",
                "MARKET_BID_BURST": "1000000",
                "MARKET_DB_POOL_MAX": "40",
            }
            proc, base = serve(env, path)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    for scenario, mode, lot_refs in (
                        ("hot_lot", "hot", refs[:1]),
                        ("hot_lot_racing", "racing", refs[:1]),
                        ("many_lots", "many", refs[1:]),
                        ("rejects_only", "rejects", refs[:1]),
                    ):
                        if scenario not in SCENARIOS:
                            continue
                        script = Path(tmp) / f"{scenario}.lua"
                        script.write_text(
                            LUA
                            % {
                                "tokens": ",".join(f'"{t}"' for t in tokens),
                                "lots": ",".join(f'{{"{r}",{i}}}' for r, i in lot_refs),
                                "mode": mode,
                                "start": START,
                                "inc": inc,
                                "t0": int(time.monotonic()),  # CLOCK_MONOTONIC on Linux
                            }
                        )
                        r = run_wrk(base, script)
                        secs = r["us"] / 1e6
                        print(
                            f"bench bidding scenario={scenario} path={path} bidders={BIDDERS}"
                            f" accepted_per_s={r['accepted'] / secs:.0f}"
                            f" rejected_per_s={r['rejected'] / secs:.0f}"
                            f" errors={r['other']}"
                            f" p50_ms={r['p50_us'] / 1000:.1f} p99_ms={r['p99_us'] / 1000:.1f}",
                            flush=True,
                        )
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
