"""How long a bank's 10,000-row portfolio CSV takes to import (seconds, not minutes:
docs/rules.md §Collateral and monitoring).

Builds a scratch database with the migrations, creates a bank, then imports a realistic
GB18030 file with Chinese headers (as Chinese Excel saves it) twice: the first run creates
everything, the second updates everything. Prints:

  bench collateral_import rows=10000 seconds=…
  bench collateral_import_again rows=10000 seconds=…

Run: .venv/bin/python bench/collateral_import.py   (uses DATABASE_URL, else embedded)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from market import db
from market.accounts import services as accounts
from market.cli import resolved
from market.clock import SystemClock
from market.collateral.csv_import import StartImport, import_now
from market.commands import SYSTEM, Act, Actor, Context, unit_of_work
from market.settings import load
from tests.collateral.factories import portfolio_rows, to_csv
from tests.factories import credit_code

ROWS = int(os.environ.get("BENCH_ROWS", "10000"))


async def run(url: str) -> None:
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_bench_collateral"
    admin = await asyncpg.connect(url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    scratch = urlunsplit(parts._replace(path="/" + name))
    try:
        conn = await db.connect(scratch)
        await db.migrate(conn)
        await conn.close()
        data = to_csv(portfolio_rows(ROWS, seed=77), headers="zh", encoding="gb18030")
        pool = await db.create_pool(scratch, max_size=4)
        try:
            ctx = Context(pool=pool, clock=SystemClock())
            async with unit_of_work(ctx, SYSTEM) as uow:
                org = await accounts.create_organisation(
                    uow,
                    kind="bank",
                    name="基准测试银行",
                    credit_code=credit_code(1),
                    status="approved",
                )
                user = await accounts.create_user(
                    uow,
                    org_id=org.id,
                    email="bench@bank.test",
                    display_name="基准",
                    password="",
                    password_hash="x",
                    role="admin",
                )
            bank_user = await accounts.load_viewer(pool, user)
            assert bank_user is not None
            act = Act(ctx, Actor.of(bank_user))
            for label in ("collateral_import", "collateral_import_again"):
                started = time.perf_counter()
                result = await import_now(
                    act, StartImport(content=data, filename="bench.csv", via="api")
                )
                seconds = time.perf_counter() - started
                print(f"bench {label} rows={result.rows} seconds={seconds:.2f}")
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    with resolved(load()) as settings:
        assert settings.database_url
        asyncio.run(run(settings.database_url))


if __name__ == "__main__":
    main()
