"""A pool's payout paid out of the clearing account before the pool's own statement shows
it: the pool's figures count it received once, at the instant the money left, and stay the
sum of their postings; the pool's statement then moves the recovery into its fund and posts
nothing twice (docs/rules.md §Payments out)."""

from __future__ import annotations

from datetime import date

import asyncpg

from market.exchange_account import statement as clearing
from market.pools import reconciliation
from tests.factories import make_org
from tests.payments.test_instructions import incoming_csv, outgoing_csv
from tests.pools.scene import as_user
from tests.pools.test_pool_pages import T2, build, dashboard_of, drill


async def test_a_pool_payout_paid_from_clearing_first_counts_once(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    pid = s.p.pool_id
    _, operator, _ = await make_org(pool, T2, kind="operator")
    payout = await pool.fetchrow(
        "SELECT p.*, i.id AS instruction_id FROM payouts p"
        " JOIN payment_instructions i ON i.payout_id = p.id"
        " WHERE p.pool_id = $1 AND p.status = 'expected'",
        pid,
    )
    before = await dashboard_of(pool, pid)
    assert before.recoveries_outstanding_fen == payout["amount_fen"] == 55_000_00
    fund_before = (await drill(pool, pid, "fund")).total_fen

    day = date(2026, 1, 5)
    done = await as_user(
        pool,
        T2,
        operator,
        clearing.import_exchange_statement,
        clearing.ImportExchangeStatement(
            data=outgoing_csv((day, 55_000_00, payout["reference"], "C1"))
        ),
    )
    assert done.paid_out == [payout["reference"]]
    after = await dashboard_of(pool, pid)
    assert after.recoveries_outstanding_fen == 0
    assert after.recoveries_received_fen == before.recoveries_received_fen + 55_000_00
    for figure, headline in (
        ("recoveries_received", after.recoveries_received_fen),
        ("recoveries_outstanding", after.recoveries_outstanding_fen),
    ):
        assert (await drill(pool, pid, figure)).total_fen == headline, figure
    # The fund moves when the pool's own statement shows the transfer, not before.
    assert (await drill(pool, pid, "fund")).total_fen == fund_before
    got = await as_user(
        pool,
        T2,
        s.p.user_id,
        reconciliation.import_statement,
        reconciliation.ImportStatement(
            data=incoming_csv((day, 55_000_00, payout["reference"], "P1"))
        ),
    )
    assert got.counts["matched"] == 1
    assert (await drill(pool, pid, "fund")).total_fen == fund_before + 55_000_00
    assert (await dashboard_of(pool, pid)).recoveries_received_fen == after.recoveries_received_fen
    kinds = await pool.fetch(
        "SELECT source_kind, count(*) AS n FROM ledger_entries WHERE source_id = $1"
        " AND source_kind IN ('payout_paid', 'payout_received') GROUP BY 1",
        str(payout["id"]),
    )
    assert {r["source_kind"]: r["n"] for r in kinds} == {"payout_paid": 1, "payout_received": 1}
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
