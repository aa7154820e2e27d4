"""A quarter-end of licence royalties: 10,000 licence contracts each report one quarter at
once, then every payment arrives and is routed through the waterfall with its payouts
(docs/rules.md §Licensing royalties; goal: all routed within 60 s on this machine).

Builds a scratch database with the migrations: 20 banks, a Zhongshan-style pool that
compensated every loan (54 : 26 : 16 : 4), 1,000 defaulted loans with their cases and paid
claims (through the pools' commands), and on each case 10 non-exclusive licences (an open
licence taken by 10 firms; BENCH_CONTRACTS of them in all). Then, timed, with
BENCH_WORKERS concurrent workers (32):
1. each licensee reports 2027Q1 (the report command);
2. the operator records each payment (the payment command): the payment row, the receipt
   routed by market/pools/services.route_receipt and one payout per payee.
Prints

  bench royalties contracts=10000 reports=10000 routed_per_s=… p99_ms=…

routed_per_s: contracts paid and routed per second over both phases (the quarter-end from
the first report to the last payout); p99_ms: the 99th percentile of one payment's command.
The phases' own figures go to stderr.

Run: .venv/bin/python bench/royalties.py   (uses DATABASE_URL, else embedded servers)
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from market import db
from market.accounts import services as accounts
from market.cli import resolved
from market.clock import FrozenClock
from market.commands import SYSTEM, Act, Actor, Command, Context, unit_of_work
from market.licensing import payments, reports
from market.licensing.royalties import RoyaltyTerms
from market.pools import bank as bank_cmds
from market.pools import dashboard, services
from market.pools.rules import parse_rule
from market.settings import load
from tests.factories import credit_code
from tests.pools.scene import ZHONGSHAN

CONTRACTS = int(os.environ.get("BENCH_CONTRACTS", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "32"))
PER_CASE = 10
BANKS = 20
LICENSEES = 100
SET_UP = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
# Enrolled while performing, the eve of the default (docs/rules.md §Guarantee pools).
ENROLLED = datetime(2026, 6, 29, 2, 0, tzinfo=UTC)
REPORT_AT = datetime(2027, 4, 2, 2, 0, tzinfo=UTC)
PAY_AT = datetime(2027, 4, 20, 2, 0, tzinfo=UTC)
TERMS = RoyaltyTerms(
    start=date(2027, 1, 1), end=date(2031, 12, 31), royalty_rate_bp=600, minimum_annual_fen=0
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _org(pool: asyncpg.Pool, kind: str, n: int) -> Actor:
    """An approved organisation with one admin, as the actor its user is."""
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(SET_UP)), SYSTEM) as uow:
        org = await accounts.create_organisation(
            uow, kind=kind, name=f"基准{kind}{n}", credit_code=credit_code(n), status="approved"
        )
        user = await accounts.create_user(
            uow,
            org_id=org.id,
            email=f"{kind}{n}@bench.test",
            display_name=f"{kind}{n}",
            password="",
            password_hash="x",
            role="admin",
        )
    viewer = await accounts.load_viewer(pool, user)
    assert viewer is not None
    return Actor.of(viewer)


async def _many(
    items: Sequence[Any], work: Callable[[Any], Awaitable[None]], workers: int
) -> list[float]:
    """Run `work(item)` over items with `workers` at once; each call's seconds."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    took: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            started = time.perf_counter()
            await work(item)
            took.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return took


async def _as(
    pool: asyncpg.Pool, at: datetime, actor: Actor, cmd: Command[Any, Any], data: Any
) -> Any:
    return await Act(Context(pool=pool, clock=FrozenClock(at)), actor)(cmd, data)


async def set_up(pool: asyncpg.Pool) -> tuple[list[tuple[int, Actor]], Actor]:
    """The contracts with their licensee actors, and the operator."""
    operator = await _org(pool, "operator", 1)
    manager = await _org(pool, "pool", 2)
    await _as(
        pool,
        SET_UP,
        operator,
        services.create_pool,
        services.NewPool(
            org_id=manager.org,
            code="ZS-BENCH",
            name="中山基准资金池",
            capital_fen=10**13,
            rule=parse_rule(ZHONGSHAN),
            effective_from=date(2020, 1, 1),
        ),
    )
    banks = [await _org(pool, "bank", 10 + i) for i in range(BANKS)]
    licensees = [await _org(pool, "buyer", 100 + i) for i in range(LICENSEES)]
    cases = CONTRACTS // PER_CASE
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            WITH p AS (
                INSERT INTO pledgors (bank_org_id, credit_code, name, region, created_at,
                                      updated_at)
                SELECT ($1::bigint[])[1 + g::int % $2], code, '基准出质人' || g, '广东省中山市',
                       $3, $3
                FROM unnest($4::text[]) WITH ORDINALITY AS t(code, g)
                RETURNING id, bank_org_id, credit_code
            ), l AS (
                INSERT INTO loans (bank_org_id, loan_no, pledgor_id, principal_fen, rate_bp,
                    outstanding_principal_fen, outstanding_interest_fen, default_date, npl_class,
                    created_at, updated_at)
                SELECT bank_org_id, 'L-' || right(credit_code, 8), id, 100000000, 435, 100000000, 0,
                       '2026-06-30', 'substandard', $3, $3
                FROM p
                RETURNING id, bank_org_id, pledgor_id, loan_no
            )
            INSERT INTO disposal_cases (bank_org_id, loan_id, reference, status,
                claim_principal_fen, claim_interest_fen, claim_costs_fen, opened_by, opened_at)
            SELECT l.bank_org_id, l.id, 'CZ-B-' || l.loan_no, 'open', 100000000, 0, 0,
                   (SELECT id FROM users WHERE org_id = l.bank_org_id LIMIT 1), $3
            FROM l
            RETURNING id, bank_org_id, loan_id
            """,
            [b.org for b in banks],
            BANKS,
            SET_UP,
            [credit_code(900_000 + g) for g in range(cases)],
        )
    by_bank = {b.org: b for b in banks}

    async def claim(row: asyncpg.Record) -> None:
        bank = by_bank[row["bank_org_id"]]
        await _as(
            pool,
            ENROLLED,
            bank,
            bank_cmds.enrol_loan,
            bank_cmds.EnrolIn(loan_id=row["loan_id"], pool_code="ZS-BENCH"),
        )
        await _as(
            pool,
            SET_UP,
            bank,
            bank_cmds.write_off,
            bank_cmds.WriteOff(loan_id=row["loan_id"], written_off_on=date(2026, 12, 20)),
        )
        filed = await _as(pool, SET_UP, bank, bank_cmds.file_claim, row["loan_id"])
        await _as(
            pool,
            SET_UP,
            manager,
            dashboard.decide_claim,
            dashboard.DecideClaim(claim_id=filed.id, decision="approve", reason=""),
        )

    started = time.perf_counter()
    await _many(list(rows), claim, 16)
    took = time.perf_counter() - started
    log(f"set-up: {cases} loans enrolled, written off and compensated in {took:.1f} s")
    terms = msgspec.to_builtins(TERMS)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, patent_type,
                filing_date, term_ends_on, owners, legal_status, created_at, updated_at)
            SELECT c.bank_org_id, l.pledgor_id, 'patent',
                   'ZL2019' || lpad(c.id::text, 7, '0') || '.X', '基准专利', 'invention',
                   '2019-03-01', '2039-03-01', ARRAY['基准'], 'valid', $1, $1
            FROM disposal_cases c JOIN loans l ON l.id = c.loan_id;
            """,
            SET_UP,
        )
        await conn.execute(
            """
            INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms,
                status, created_at)
            SELECT c.id, a.id, c.bank_org_id, $2::bigint, $3, 'declared', $1
            FROM disposal_cases c JOIN loans l ON l.id = c.loan_id
            JOIN ip_assets a ON a.pledgor_id = l.pledgor_id
            """,
            SET_UP,
            licensees[0].org,
            terms,
        )
        contracts = await conn.fetch(
            """
            INSERT INTO licence_contracts (reference, case_id, bank_org_id, open_licence_id,
                licensee_org_id, kind, terms, status, recordal_due_on, created_at, accepted_at)
            SELECT 'XK-2026-' || lpad(nextval('licence_contract_numbers')::text, 6, '0'),
                   o.case_id, o.bank_org_id, o.id, ($2::bigint[])[1 + (o.id * $4 + k) % $5],
                   'non_exclusive', $3, 'active', '2027-03-20', $1, $1
            FROM open_licences o, generate_series(0, $4 - 1) k
            RETURNING id, licensee_org_id
            """,
            SET_UP,
            [x.org for x in licensees],
            terms,
            PER_CASE,
            LICENSEES,
        )
    actors = {a.org: a for a in licensees}
    return [(r["id"], actors[r["licensee_org_id"]]) for r in contracts], operator


async def run(url: str) -> None:
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_bench_royalties"
    admin = await asyncpg.connect(url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    scratch = urlunsplit(parts._replace(path="/" + name))
    try:
        conn = await db.connect(scratch)
        await db.migrate(conn)
        await conn.close()
        pool = await db.create_pool(scratch, max_size=WORKERS)
        try:
            contracts, operator = await set_up(pool)
            sales = {cid: 10_000_000 + (cid * 7919) % 90_000_000 for cid, _ in contracts}

            async def report(item: tuple[int, Actor]) -> None:
                cid, actor = item
                await _as(
                    pool,
                    REPORT_AT,
                    actor,
                    reports.report_sales,
                    reports.ReportSales(
                        contract_id=cid,
                        lines=(reports.SalesIn(period="2027Q1", net_sales_fen=sales[cid]),),
                    ),
                )

            async def pay(item: tuple[int, Actor]) -> None:
                cid, _ = item
                await _as(
                    pool,
                    PAY_AT,
                    operator,
                    payments.record_royalty_payment,
                    payments.RecordPayment(
                        contract_id=cid,
                        period="2027Q1",
                        amount_fen=(sales[cid] * 600 + 5_000) // 10_000,  # 6 %, half up
                        paid_on=date(2027, 4, 20),
                    ),
                )

            started = time.perf_counter()
            await _many(contracts, report, WORKERS)
            reported = time.perf_counter()
            # Transfers arrive in no particular order: not the ten licences of a case together.
            arriving = list(contracts)
            random.Random(7).shuffle(arriving)
            took = await _many(arriving, pay, WORKERS)
            ended = time.perf_counter()
            async with pool.acquire() as c:
                n_reports = await c.fetchval("SELECT count(*) FROM royalty_reports")
                routed = await c.fetchval("SELECT count(*) FROM receipts WHERE kind = 'royalty'")
                payouts = await c.fetchval("SELECT count(*) FROM payouts")
            assert routed == len(contracts), routed
            took.sort()
            p99 = took[min(len(took) - 1, int(len(took) * 0.99))] * 1000
            log(
                f"reports: {n_reports} in {reported - started:.1f} s; payments: {routed} routed "
                f"with {payouts} payouts in {ended - reported:.1f} s; quarter-end "
                f"{ended - started:.1f} s"
            )
            print(
                f"bench royalties contracts={len(contracts)} reports={n_reports} "
                f"routed_per_s={routed / (ended - started):.0f} p99_ms={p99:.0f}"
            )
        finally:
            await pool.close()
    finally:
        if not os.environ.get("BENCH_KEEP"):  # BENCH_KEEP=1 leaves the database to look at
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    with resolved(load()) as settings:
        assert settings.database_url
        asyncio.run(run(settings.database_url))


if __name__ == "__main__":
    main()
