"""A case on a written-off loan whose loss two pools bore (the loan's own pool, and a
second pool named in its rule as a co-bearer), valued, with a failed auction round and the
pledgor's consent on file; each step through the command a person would run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from market.acquisition import agreement
from market.cases import services as cases
from market.cases.models import AppraisalIn, RecordValuation, UploadDocument
from market.cases.services import china_today
from market.clock import FrozenClock
from market.exchange_account.statement import (
    ExchangeStatementImported,
    ImportExchangeStatement,
    import_exchange_statement,
)
from tests.exchange_account.scene import statement
from tests.factories import make_org
from tests.pools.scene import Loan, PoolOrg, as_user, claim_and_pay, make_loan, make_pool, write_off

M = 100_000_000  # CNY 1 m in fen
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class Scene:
    loan: Loan
    pool_a: PoolOrg  # the loan's pool: its fund bore 50 %
    pool_b: PoolOrg  # a co-bearing pool named in A's rule: 20 %
    consent_id: int
    operator: tuple[int, int]


async def upload(pool: asyncpg.Pool, at: datetime, loan: Loan, item: str) -> int:
    doc = await as_user(
        pool,
        at,
        loan.bank_user,
        cases.upload_document,
        UploadDocument(case_id=loan.case_id, item=item, filename=f"{item}.pdf", content=PDF),
    )
    return doc.id


async def fail_an_auction(pool: asyncpg.Pool, at: datetime, loan: Loan, start_fen: int) -> None:
    """A round of the case's lot that failed at `start_fen` (no bidder)."""
    lot = await pool.fetchval(
        "INSERT INTO lots (case_id, bank_org_id, reference, title, status, valuation_fen,"
        " start_price_fen, deposit_fen, increment_fen, first_start_fen, terms, created_at,"
        " updated_at) VALUES ($1, $2, 'LOT-T-' || ($1::bigint)::text, '光电专利包', 'failed', $3, $3, 100, 100,"
        " $3, '{}', $4, $4) RETURNING id",
        loan.case_id,
        loan.bank_org,
        start_fen,
        at,
    )
    await pool.execute(
        "INSERT INTO lot_rounds (lot_id, round, start_price_fen, outcome, closed_at)"
        " VALUES ($1, 1, $2, 'failed', $3)",
        lot,
        start_fen,
        at,
    )


async def make_scene(
    pool: asyncpg.Pool,
    clock: FrozenClock,
    *,
    valuation_fen: int = 150_000_000,
    failed_start_fen: int | None = 120_000_000,
) -> Scene:
    """Loan CNY 3 m written off; pool A's rule: fund 50, bank 30, pool B 20 — A's fund bore
    1,500,000, B 600,000, the bank 900,000. Appraised at `valuation_fen` today."""
    at = clock.now()
    pool_b = await make_pool(
        pool, at, {"shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}]}
    )
    pool_a = await make_pool(
        pool,
        at,
        {
            "shares": [
                {"name": "fund", "weight": 50},
                {"name": "bank", "weight": 30},
                {"name": "co_fund", "weight": 20, "org_id": pool_b.org_id, "label": "共担资金池"},
            ]
        },
    )
    loan = await make_loan(pool, at, principal_fen=3 * M, enrol_in=pool_a)
    await write_off(pool, at, loan, date(2026, 1, 5))
    await claim_and_pay(pool, at, loan, pool_a)
    await as_user(
        pool,
        at,
        loan.bank_user,
        cases.record_valuation,
        RecordValuation(
            case_id=loan.case_id,
            valuation=AppraisalIn(
                appraiser="中联资产评估",
                report_no="ZL-2026-1",
                value_fen=valuation_fen,
                valued_on=china_today(at),
            ),
        ),
    )
    if failed_start_fen is not None:
        await fail_an_auction(pool, at, loan, failed_start_fen)
    consent = await upload(pool, at, loan, agreement.CONSENT_ITEM)
    operator = await make_org(pool, at, kind="operator")
    return Scene(loan, pool_a, pool_b, consent, (operator[0], operator[1]))


async def propose_acquisition(
    pool: asyncpg.Pool, at: datetime, s: Scene, amount_fen: int, consent_id: int | None = None
) -> agreement.Agreement:
    offer = agreement.AcquisitionIn(
        amount_fen=amount_fen, consent_document_id=consent_id or s.consent_id
    )
    data = agreement.Propose(case_id=s.loan.case_id, offer=offer)
    return await as_user(pool, at, s.loan.bank_user, agreement.propose, data)


async def propose_equity(
    pool: asyncpg.Pool,
    at: datetime,
    s: Scene,
    amount_fen: int,
    *,
    valued_on: date,
    percent: Decimal,
    shares: int | None = None,
) -> agreement.Agreement:
    """The bank converts `amount_fen` of its claim into `percent` of the borrower, at the
    value an appraisal report it uploads now gives it (the same amount)."""
    appraisal = await upload(pool, at, s.loan, agreement.APPRAISAL_ITEM)
    offer = agreement.EquityIn(
        amount_fen=amount_fen,
        consent_document_id=s.consent_id,
        appraisal_document_id=appraisal,
        appraiser="中联资产评估",
        report_no="ZL-EQ-7",
        appraised_fen=amount_fen,
        valued_on=valued_on,
        equity_percent=percent,
        equity_shares=shares,
    )
    data = agreement.Propose(case_id=s.loan.case_id, offer=offer)
    return await as_user(pool, at, s.loan.bank_user, agreement.propose, data)


async def object_as(
    pool: asyncpg.Pool, at: datetime, who: PoolOrg, disposal_id: int, reason: str = "价格偏低"
) -> agreement.Agreement:
    data = agreement.Object(disposal_id=disposal_id, reason=reason)
    return await as_user(pool, at, who.user_id, agreement.object_to, data)


async def import_lines(
    pool: asyncpg.Pool, at: datetime, s: Scene, *lines: tuple[int, str, str]
) -> ExchangeStatementImported:
    """The exchange account's statement with these lines, imported by the operator."""
    data = ImportExchangeStatement(data=statement(*lines, day=china_today(at)), filename="x.csv")
    return await as_user(pool, at, s.operator[1], import_exchange_statement, data)


async def balance_of(pool: asyncpg.Pool, code: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT coalesce(sum(l.amount_fen), 0) FROM ledger_legs l"
            " JOIN ledger_accounts a ON a.id = l.account_id WHERE a.code = $1",
            code,
        )
    )


async def demo_attempt(pool: asyncpg.Pool, at: datetime, *, taker: bool = False) -> int:
    """On the demo (market/demo.py): the demo bank's acquisition at an agreed price of the
    assets of its case on the Zhongshan loan, whose loss the demo pool manager's pool bore,
    in its objection window; with `taker`, the demo acquisition institution named as the
    taker, awaiting its answer. The demo's lot of that case is being bid on, which the
    command refuses (`agreement_lot_on_market`): the row is written as the command would
    have."""
    bank = await pool.fetchrow("SELECT id, org_id FROM users WHERE email = 'bank@ipx.demo'")
    case_id = await pool.fetchval(
        "SELECT c.id FROM disposal_cases c JOIN loans l ON l.id = c.loan_id"
        " WHERE l.loan_no = 'ZS-ZGC-2022-1205' AND c.status = 'open'"
    )
    assert bank is not None and case_id is not None
    consent = await as_user(
        pool,
        at,
        bank["id"],
        cases.upload_document,
        UploadDocument(
            case_id=case_id, item=agreement.CONSENT_ITEM, filename="出质人同意书.pdf", content=PDF
        ),
    )
    taker_org, lot, lot_round, accept_by = bank["org_id"], None, None, None
    if taker:
        taker_org = await pool.fetchval(
            "SELECT org_id FROM users WHERE email = 'acquirer@ipx.demo'"
        )
        found = await pool.fetchrow(
            "SELECT id, round FROM lots WHERE case_id = $1 ORDER BY id LIMIT 1", case_id
        )
        assert taker_org is not None and found is not None
        lot, lot_round = found["id"], found["round"]
        accept_by = at + agreement.POLICY.acceptance_window
    return int(
        await pool.fetchval(
            "INSERT INTO agreed_disposals (case_id, bank_org_id, kind, taker_org_id, amount_fen,"
            " floor_fen, consent_document_id, status, objection_until, proposed_by, proposed_at,"
            " lot_id, lot_round, accept_by)"
            " VALUES ($1, $2, 'acquisition', $3, 420000000, 420000000, $4, 'pending', $5, $6, $7,"
            " $8, $9, $10) RETURNING id",
            case_id,
            bank["org_id"],
            taker_org,
            consent.id,
            at + agreement.POLICY.objection_window,
            bank["id"],
            at,
            lot,
            lot_round,
            accept_by,
        )
    )
