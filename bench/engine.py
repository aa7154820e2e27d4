"""The bid engine alone, without HTTP: how fast the writer decides and commits.

bench/bidding.py measures what users get, through granian, the API and wrk; on this
2-core machine the web process's own CPU and its neighbours' take most of that. This
drives the lots' writers (auctions/writer.py) directly, in one process, on a fresh
benchmark database seeded as bench/bidding.py seeds it (64 buyers registered with
confirmed deposits on one hot lot and 1,000 others), so a change to the writer — its
batches, its flights, its one statement a batch — shows in figures that do not drown in
the HTTP stack's noise.

64 bidder tasks each bid, wait for their answer and bid again, for BENCH_SECONDS
(default 10, after a 3-second warm-up that caches the lots' states), on:

  hot_lot    one lot, each bid above every bid made before it (a shared counter)
  many_lots  1,000 lots, a random lot each time, one or two increments above the price
             the bidder's writer last committed (racing bidders: some are refused)

and print one line per scenario:

  bench engine scenario=many_lots bidders=64 decided_per_s=… accepted_per_s=…
        cpu_us_per_decided=… batches_per_s=… bids_per_batch=… stale_batches=…

`decided` counts the answers the writer gave after a commit (accepted and refused); a bid
the cached state proves too low is answered before it is queued and is not counted here.
`cpu_us_per_decided` is this process's CPU (bidders included) per decided bid.

Run: .venv/bin/python bench/engine.py   (DATABASE_URL, else the embedded server;
BENCH_SECONDS, BENCH_SCENARIOS=hot_lot,many_lots)
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auctions import rules  # noqa: E402
from auctions.writer import Pending, Writers, provable_refusal  # noqa: E402
from bench.bidding import MANY, START, seed_lots  # noqa: E402
from bench.common import bench_seconds, known_names  # noqa: E402
from market import db  # noqa: E402
from market.cli import resolved  # noqa: E402
from market.clock import SystemClock  # noqa: E402
from market.lots import services as lots  # noqa: E402
from market.settings import load  # noqa: E402

BIDDERS = 64
WARM_UP_S = 3.0
KNOWN = ("hot_lot", "many_lots")


async def run(url: str, scenario: str, secs: int) -> str:
    pool = await db.create_pool(url, max_size=12)
    try:
        lot_ids = [
            r["id"]
            for r in await pool.fetch("SELECT id FROM lots WHERE status = 'bidding' ORDER BY id")
        ]
        lot_ids = lot_ids[:1] if scenario == "hot_lot" else lot_ids[1:]
        registrations: dict[int, list[int]] = {}
        for r in await pool.fetch(
            "SELECT id, lot_id FROM registrations WHERE lot_id = ANY($1) ORDER BY id", lot_ids
        ):
            registrations.setdefault(r["lot_id"], []).append(r["id"])
        increment = await pool.fetchval("SELECT increment_fen FROM lots WHERE id = $1", lot_ids[0])
        clock = SystemClock()
        writers = Writers(pool, clock, lots.policy_for(load()))
        decided = {"accepted": 0, "refused": 0}
        batches = [0, 0]  # batches committed, commands in them
        commit_all = writers.batcher._commit_all

        async def counted(groups: dict[int, Any]) -> Any:
            batches[0] += 1
            batches[1] += sum(len(batch) for _, batch in groups.values())
            return await commit_all(groups)

        writers.batcher._commit_all = counted  # type: ignore[method-assign]
        running = True
        steps = iter(range(1, 1 << 62))  # hot_lot: each bid tops all before it

        async def bidder(i: int) -> None:
            while running:
                lot_id = random.choice(lot_ids)
                writer = writers.for_lot(lot_id)
                cached = writer.state
                price = START if cached is None or cached.price_fen is None else cached.price_fen
                if scenario == "hot_lot":
                    amount = START + increment * next(steps)
                else:
                    amount = price + increment * random.randint(1, 2)
                registration = registrations[lot_id][i % len(registrations[lot_id])]
                command = rules.Bid(registration_id=registration, amount_fen=amount, at=clock.now())
                if provable_refusal(cached, command) is not None:
                    await asyncio.sleep(0)  # answered at once, as the bid path does
                    continue
                answer = await writer.submit(Pending(command=command, registration_id=registration))
                decided["accepted" if answer.accepted else "refused"] += 1

        tasks = [asyncio.create_task(bidder(i)) for i in range(BIDDERS)]
        await asyncio.sleep(WARM_UP_S)
        start = (dict(decided), list(batches), time.perf_counter(), time.process_time())
        stale = getattr(writers.batcher, "from_memory_retries", 0)
        await asyncio.sleep(secs)
        end = (dict(decided), list(batches), time.perf_counter(), time.process_time())
        stale = getattr(writers.batcher, "from_memory_retries", 0) - stale
        running = False
        await asyncio.gather(*tasks)
        await writers.stop()
    finally:
        await pool.close()
    elapsed, cpu = end[2] - start[2], end[3] - start[3]
    accepted = end[0]["accepted"] - start[0]["accepted"]
    total = accepted + end[0]["refused"] - start[0]["refused"]
    n_batches = end[1][0] - start[1][0]
    return (
        f"bench engine scenario={scenario} bidders={BIDDERS}"
        f" decided_per_s={total / elapsed:.0f} accepted_per_s={accepted / elapsed:.0f}"
        f" cpu_us_per_decided={1e6 * cpu / max(total, 1):.0f}"
        f" batches_per_s={n_batches / elapsed:.0f}"
        f" bids_per_batch={(end[1][1] - start[1][1]) / max(n_batches, 1):.1f}"
        f" stale_batches={stale}"
    )


async def fresh_database(admin_url: str, url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    conn = await db.connect(url)
    await db.migrate(conn)
    await conn.close()
    pool = await db.create_pool(url, max_size=4)
    policy = lots.policy_for(load())
    await seed_lots(pool, datetime.now(UTC), policy, bidders=BIDDERS, copies=MANY)
    await pool.close()


def main() -> None:
    secs = bench_seconds(10)
    scenarios = known_names(
        "BENCH_SCENARIOS", os.environ.get("BENCH_SCENARIOS", ",".join(KNOWN)).split(","), KNOWN
    )
    with resolved(load()) as settings:
        assert settings.database_url
        parts = urlsplit(settings.database_url)
        name = (parts.path.lstrip("/") or "postgres") + "_bench_engine"
        url = urlunsplit(parts._replace(path="/" + name))
        for scenario in scenarios:
            asyncio.run(fresh_database(settings.database_url, url, name))
            print(asyncio.run(run(url, scenario, secs)), flush=True)


if __name__ == "__main__":
    main()
