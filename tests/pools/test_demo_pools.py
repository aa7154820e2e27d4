"""`market seed-demo` seeds the guarantee pools: the pools and their
versioned rules, enrolments, claims in every state, recoveries routed into payouts (some
received), a balanced ledger, and a statement CSV that reconciles into one line of each
kind. Seeding twice adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from market.demo import seed_demo
from market.pools import reconciliation
from market.pools.demo import STATEMENT_NAME
from market.settings import Settings
from tests.factories import act_as

ENROLLED_IN = (
    "SELECT l.loan_no, p.code FROM pool_enrolments e"
    " JOIN loans l ON l.id = e.loan_id JOIN pools p ON p.id = e.pool_id"
)


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    out = {}
    for table in (
        "pools",
        "pool_rule_versions",
        "pool_enrolments",
        "compensation_claims",
        "receipts",
        "payouts",
        "distributions",
        "ledger_entries",
    ):
        out[table] = int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
    return out


async def test_seed_demo_pools(
    pool: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    logins = await seed_demo(settings, force=True)
    assert {"pool@ipx.demo", "pool-sz@ipx.demo", "pool-dg@ipx.demo", "pool-sh@ipx.demo"} <= {
        email for _who, email, _pw in logins
    }
    path = settings.data_dir / "demo" / STATEMENT_NAME
    assert str(path.resolve()) in capsys.readouterr().out

    pools = {
        r["code"]: r
        for r in await pool.fetch(
            "SELECT p.code, o.name AS org, u.email FROM pools p"
            " JOIN organisations o ON o.id = p.org_id JOIN users u ON u.org_id = o.id"
        )
    }
    assert set(pools) == {"ZS-RCF", "SZ-RCF", "DG-RCF", "SH-QBC", "SH-BZJ"}
    assert pools["ZS-RCF"]["email"] == "pool@ipx.demo"

    # Every entry balances, so the whole ledger does.
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
    assert not await pool.fetch(
        "SELECT entry_id FROM ledger_legs GROUP BY entry_id HAVING sum(amount_fen) <> 0"
    )

    # Versioning: the Shanghai loan enrolled in 2021 keeps version 1; today's gets 2.
    versions = dict(
        await pool.fetch(
            "SELECT l.loan_no, v.version FROM pool_enrolments e JOIN loans l ON l.id = e.loan_id"
            " JOIN pool_rule_versions v ON v.id = e.rule_version_id"
        )
    )
    assert versions["WH-ZGC-2021-0316"] == 1 and versions["HZ-ZGC-2022-0561"] == 2
    codes = dict(await pool.fetch(ENROLLED_IN))
    assert codes["BJ-ZGC-2021-0433"] == "SH-BZJ" and codes["ZS-ZGC-2022-1205"] == "ZS-RCF"

    claims = await pool.fetch(
        "SELECT p.code, c.status, c.amount_fen FROM compensation_claims c"
        " JOIN pools p ON p.id = c.pool_id ORDER BY c.id"
    )
    by = {(r["code"], r["status"]): r["amount_fen"] for r in claims}
    assert {r["status"] for r in claims} == {"paid", "rejected", "filed", "parked"}
    assert by[("SZ-RCF", "paid")] == 200_000_000  # the CNY 2 m cap
    assert by[("ZS-RCF", "paid")] == 309_425_400  # 54 % of CNY 5,730,100
    # 25 % (version 1) of CNY 1,596,620: CNY 2,626,800 less the demo's sold lot on that
    # case (CNY 1,084,400, its CNY 54,220 commission deducted), routed as an auction receipt
    assert by[("SH-QBC", "paid")] == 39_915_500
    assert by[("SH-BZJ", "parked")] == 673_600_000  # 80 % of CNY 8,420,000
    assert by[("DG-RCF", "filed")] == 28_000_000  # 4 % of CNY 7 m enrolled
    assert ("DG-RCF", "rejected") in by

    receipts = dict(await pool.fetch("SELECT source, status FROM receipts"))
    assert receipts["manual:SET-SZ-2025-002"] == "reversed"
    assert sum(1 for s in receipts.values() if s == "routed") >= 5
    payouts = dict(await pool.fetch("SELECT status, count(*) FROM payouts GROUP BY status"))
    assert payouts["received"] >= 4 and payouts["expected"] >= 4
    received_by_pool = await pool.fetchval(
        "SELECT count(*) FROM payouts WHERE payee_kind = 'pool' AND status = 'received'"
    )
    assert received_by_pool >= 2
    # every receipt still standing is distributed to the fen
    assert not await pool.fetch(
        "SELECT r.id FROM receipts r JOIN distributions d ON d.receipt_id = r.id"
        " GROUP BY r.id HAVING sum(d.amount_fen) <> max(r.amount_fen)"
    )

    # The statement: header after two account lines, four transfers.
    text = path.read_bytes().decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[2] == "交易日期,金额,附言,对方户名,流水号" and len(lines) == 7

    before = await _counts(pool)
    assert await seed_demo(settings, force=True) == []
    assert await _counts(pool) == before
    # the portfolio's re-import writes the CSV's pool codes (loans.pool_code, as the bank
    # filed them); the pool a loan is in is its enrolment, which stays
    assert dict(await pool.fetch(ENROLLED_IN)) == codes

    # It reconciles into one line of each kind, as the pool manager would import it.
    user = await pool.fetchval("SELECT id FROM users WHERE email = 'pool@ipx.demo'")
    act = await act_as(pool, datetime.now(UTC), user)
    await act(
        reconciliation.import_statement,
        reconciliation.ImportStatement(data=path.read_bytes(), filename=STATEMENT_NAME),
    )
    statuses = [
        r["status"] for r in await pool.fetch("SELECT status FROM statement_lines ORDER BY line_no")
    ]
    assert statuses == ["matched", "amount_mismatch", "reference_typo", "unknown"]
    assert await pool.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM ledger_legs") == 0
