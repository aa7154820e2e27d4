"""The worked example of docs/rules.md §Licensing royalties end to end through the
commands, every payout pinned to the fen and computed by hand below.

A bank lent CNY 3,000,000 to a Zhongshan optoelectronics firm; the loan defaulted owing
the principal and CNY 120,000 of interest; the bank wrote it off and the Zhongshan pool
(fund : bank : insurer : evaluator = 54 : 26 : 16 : 4) compensated the loss. The patent is
licensed back to the firm (反向许可): CNY 200,000 upfront, 6 % of net sales, at least CNY
250,000 a year, yearly, five years from 1 January 2026 (tests/licensing/test_royalties.py
TERMS). The firm pays the upfront fee on time, reports three years, pays 2026 through the
clearing statement, 2027 recorded by the operator by hand, and 2028 45 days late with its
interest through the statement again; each receipt is routed through the waterfall.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import asyncpg

from market.exchange_account import statement as exchange_statement
from market.licensing import payments, reminders, reports
from market.licensing.book import load_book
from market.licensing.royalties import SalesLine
from tests.factories import make_org
from tests.licensing.scene import beijing, make_contract, patent_of
from tests.licensing.test_royalties import REPORT_CSV, TERMS
from tests.pools.scene import (
    ZHONGSHAN,
    as_exchange,
    as_user,
    claim_and_pay,
    make_loan,
    make_pool,
    write_off,
)

SET_UP = beijing(date(2025, 12, 20))
UPFRONT = 20_000_000  # CNY 200,000


def statement(*lines: tuple[date, int, str, str]) -> bytes:
    """The clearing account's statement as the bank's portal exports it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["交易日期", "金额", "附言", "对方户名", "流水号"])
    for day, fen, note, txn in lines:
        w.writerow([day.isoformat(), f"{fen // 100}.{fen % 100:02d}", note, "中山光电", txn])
    return out.getvalue().encode()


# What each receipt pays each bearer (fund, insurer, evaluator, bank), by hand.
#
# Still borne at the start: fund 1,684,800; insurer 499,200; evaluator 124,800; bank
# 811,200 (the loss 3,120,000 shared 54 : 16 : 4 : 26); the claim owes 120,000 interest
# and 3,000,000 principal.
#
# Upfront 200,000 (1 Jan 2026): interest first (民法典 art. 561), 120,000 split by what each
# still bears = 54 : 16 : 4 : 26 exactly → 64,800 / 19,200 / 4,800 / 31,200; then 80,000
# of principal, still 54 : 16 : 4 : 26 → 43,200 / 12,800 / 3,200 / 20,800.
UPFRONT_PAYOUTS = {
    "fund": 6_480_000 + 4_320_000,
    "insurer": 1_920_000 + 1_280_000,
    "evaluator": 480_000 + 320_000,
    "bank": 3_120_000 + 2_080_000,
}
# Still borne: 1,576,800 / 467,200 / 116,800 / 759,200 (2,920,000, still 54 : 16 : 4 : 26).
# 2026, paid 28 Jan 2027: 312,807.41 principal; quotas 168,916.0014, 50,049.1856,
# 12,512.2964, 81,329.9266 → floors 312,807.39; the two fen to the largest remainders,
# the bank (.66) and the evaluator (.64).
PAYOUTS_2026 = {"fund": 16_891_600, "insurer": 5_004_918, "evaluator": 1_251_230, "bank": 8_132_993}
# Still borne: 1,407,884.00 / 417,150.82 / 104,287.70 / 677,870.07 (2,607,192.59).
# 2027, paid 30 Jan 2028: 250,000 (207,407.34 + the top-up 42,592.66); quotas
# 135,000.0001, 40,000.0005, 9,999.9966, 64,999.9967 → floors 249,999.98; the two fen to
# the bank (.9967) and the evaluator (.9966).
PAYOUTS_2027 = {"fund": 13_500_000, "insurer": 4_000_000, "evaluator": 1_000_000, "bank": 6_500_000}
# Still borne: 1,272,884.00 / 377,150.82 / 94,287.70 / 612,870.07 (2,357,192.59).
# 2028, paid 16 Mar 2029, 45 days late: 366,000.03 + interest 366,000.03 × 4.5 % × 45 / 365
# = 2,030.548… → 2,030.55; 368,030.58 in all. Quotas 198,736.5134, 58,884.8937,
# 14,721.2226, 95,687.9503 → floors 368,030.57; the fen to the insurer (.8937).
PAYOUTS_2028 = {"fund": 19_873_651, "insurer": 5_888_490, "evaluator": 1_472_122, "bank": 9_568_795}


async def _payouts(pool: asyncpg.Pool, receipt_id: int) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT coalesce(party, CASE payee_kind WHEN 'pool' THEN 'fund' ELSE payee_kind END)"
        " AS who, amount_fen FROM payouts WHERE receipt_id = $1",
        receipt_id,
    )
    return {r["who"]: r["amount_fen"] for r in rows}


async def test_three_years_of_royalties_reported_paid_and_routed_to_the_fen(
    pool: asyncpg.Pool,
) -> None:
    zs = await make_pool(pool, SET_UP, ZHONGSHAN)
    loan = await make_loan(
        pool,
        SET_UP,
        principal_fen=300_000_000,
        interest_fen=12_000_000,
        default_date=date(2025, 6, 30),
        enrol_in=zs,
    )
    await write_off(pool, SET_UP, loan, date(2025, 12, 20))
    await claim_and_pay(pool, SET_UP, loan, zs)
    firm, firm_user, _ = await make_org(pool, SET_UP, kind="pledgor")
    _, operator_user, _ = await make_org(pool, SET_UP, kind="operator")
    asset = await patent_of(pool, SET_UP, loan.bank_org, loan.pledgor_id)
    contract = await make_contract(
        pool,
        SET_UP,
        case_id=loan.case_id,
        bank_org=loan.bank_org,
        licensee_org=firm,
        pledgor_org=firm,
        asset_id=asset,
        terms=TERMS,
        upfront_fen=UPFRONT,
    )
    ref = contract.reference
    receipts: list[int] = []

    # The upfront fee, on its day, through the clearing statement.
    day = date(2026, 1, 1)
    done = await as_user(
        pool,
        beijing(date(2026, 1, 2)),
        operator_user,
        exchange_statement.import_exchange_statement,
        exchange_statement.ImportExchangeStatement(
            data=statement((day, UPFRONT, f"{ref}-UPFRONT 入门费", "T1"))
        ),
    )
    assert done.counts == {"matched": 1, "amount_mismatch": 0, "unknown": 0}
    receipts.append(
        await pool.fetchval(
            "SELECT receipt_id FROM royalty_payments WHERE contract_id = $1 AND period = 'UPFRONT'",
            contract.id,
        )
    )

    # The report of three years, as the firm uploads it in January 2029 — refused
    # earlier: 2028 has not ended on 10 January 2028.
    reported = await as_user(
        pool,
        beijing(date(2027, 1, 10)),
        firm_user,
        reports.report_sales,
        reports.ReportSales(
            contract_id=contract.id,
            lines=(reports.SalesIn(period="2026", net_sales_fen=521_345_678),),
        ),
    )
    assert [(r.period, r.due_fen, r.due_on) for r in reported] == [
        ("2026", 31_280_741, date(2027, 1, 30))
    ]
    # 2026 paid two days early through the statement; a second transfer of it the same
    # day is left unknown ("paid already") and routes nothing.
    done = await as_user(
        pool,
        beijing(date(2027, 1, 29)),
        operator_user,
        exchange_statement.import_exchange_statement,
        exchange_statement.ImportExchangeStatement(
            data=statement(
                (date(2027, 1, 28), 31_280_741, f"许可费 {ref.replace('-', '')}2026", "T2"),
                (date(2027, 1, 28), 31_280_741, f"{ref}-2026", "T3"),
            )
        ),
    )
    assert done.counts == {"matched": 1, "amount_mismatch": 0, "unknown": 1}
    receipts.append(
        await pool.fetchval(
            "SELECT receipt_id FROM royalty_payments WHERE contract_id = $1 AND period = '2026'",
            contract.id,
        )
    )

    # 2027 reported and paid on its payment date, recorded by the operator by hand.
    await as_user(
        pool,
        beijing(date(2028, 1, 10)),
        firm_user,
        reports.report_sales,
        reports.ReportSales(
            contract_id=contract.id,
            lines=(reports.SalesIn(period="2027年度", net_sales_fen=345_678_901),),
        ),
    )
    paid = await as_user(
        pool,
        beijing(date(2028, 1, 30)),
        operator_user,
        payments.record_royalty_payment,
        payments.RecordPayment(
            contract_id=contract.id, period="2027", amount_fen=25_000_000, paid_on=date(2028, 1, 30)
        ),
    )
    assert (paid.amount_fen, paid.interest_fen) == (25_000_000, 0)
    receipts.append(paid.receipt_id)

    # 2028 reported by CSV line 4 of the firm's file (its first two lines were reported).
    csv_2028 = b"\r\n".join(REPORT_CSV.split(b"\r\n")[:1] + REPORT_CSV.split(b"\r\n")[3:])
    got = await as_user(
        pool,
        beijing(date(2029, 1, 10)),
        firm_user,
        reports.report_sales_csv,
        reports.ReportCsv(contract_id=contract.id, data=csv_2028),
    )
    assert [(r.period, r.due_fen) for r in got] == [("2028", 36_600_003)]

    # Unpaid on 31 January: the day-after reminder; on 24 February, mid grace's and the
    # last one's too — each written once however often the job runs.
    for day in (date(2029, 1, 31), date(2029, 1, 31), date(2029, 2, 24)):
        await as_exchange(
            pool, beijing(day), reminders.remind_royalties, reminders.RemindRoyalties()
        )
    late = await pool.fetch(
        "SELECT dedupe_key, payload FROM outbox WHERE event = 'royalty_payment_late'"
        " ORDER BY dedupe_key"
    )
    assert [r["dedupe_key"] for r in late] == [
        f"royalty:{contract.id}:2028:payment:after:{d}" for d in (1, 15, 25)
    ]
    # On 24 Feb 2029: 25 days late, interest 366,000.03 × 4.5 % × 25 / 365 = 1,128.08.
    assert late[2]["payload"]["owed_fen"] == 36_600_003 + 112_808

    # A transfer of the royalty without its interest waits as an exception.
    short = await as_user(
        pool,
        beijing(date(2029, 3, 17)),
        operator_user,
        exchange_statement.import_exchange_statement,
        exchange_statement.ImportExchangeStatement(
            data=statement((date(2029, 3, 16), 36_600_003, f"{ref}-2028", "T4"))
        ),
    )
    assert short.counts == {"matched": 0, "amount_mismatch": 1, "unknown": 0}
    # Then the right amount, 45 days late: royalty and interest.
    done = await as_user(
        pool,
        beijing(date(2029, 3, 18)),
        operator_user,
        exchange_statement.import_exchange_statement,
        exchange_statement.ImportExchangeStatement(
            data=statement((date(2029, 3, 16), 36_803_058, f"{ref}-2028 含利息", "T5"))
        ),
    )
    assert done.counts == {"matched": 1, "amount_mismatch": 0, "unknown": 0}
    row = await pool.fetchrow(
        "SELECT receipt_id, interest_fen FROM royalty_payments WHERE contract_id = $1"
        " AND period = '2028'",
        contract.id,
    )
    assert row["interest_fen"] == 203_055
    receipts.append(row["receipt_id"])

    assert [await _payouts(pool, r) for r in receipts] == [
        UPFRONT_PAYOUTS,
        PAYOUTS_2026,
        PAYOUTS_2027,
        PAYOUTS_2028,
    ]
    kinds = await pool.fetch(
        "SELECT kind, source, amount_fen FROM receipts ORDER BY id",
    )
    assert [(k["kind"], k["source"], k["amount_fen"]) for k in kinds] == [
        ("licence_fee", f"royalty:{contract.id}:UPFRONT", UPFRONT),
        ("royalty", f"royalty:{contract.id}:2026", 31_280_741),
        ("royalty", f"royalty:{contract.id}:2027", 25_000_000),
        ("royalty", f"royalty:{contract.id}:2028", 36_803_058),
    ]
    # The book on 18 March 2029: three years and the fee settled, nothing to terminate for.
    async with pool.acquire() as conn:
        crow = await conn.fetchrow("SELECT * FROM licence_contracts WHERE id = $1", contract.id)
        b = await load_book(conn, crow, date(2029, 3, 18))
    settled = {i.key: (i.settled, i.interest_fen) for i in b.items}
    assert settled["UPFRONT"] == (True, 0)
    assert settled["2026"] == (True, 0) and settled["2027"] == (True, 0)
    assert settled["2028"] == (True, 203_055)
    assert not b.may_terminate
    assert SalesLine  # the pure example's type, for the reader
