"""Licence streams on the pool manager's dashboard (docs/rules.md §Licence streams on the
dashboard): a contract on an enrolled loan's case, two reported quarters, one paid and
routed through the waterfall, one late; the page and the API show expected, received and
the pool's share to the fen; the recovery curve rises once the pool's statement shows the
transfer; scheduled royalties never enter the recovery rate; another pool's manager sees
nothing of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.licensing.contracts import NewContract, create_contract
from market.licensing.royalties import RoyaltyTerms
from market.pools import dashboard as dash
from market.pools import streams
from tests.factories import make_org, make_token, sign_in
from tests.pools.scene import (
    ZHONGSHAN,
    Loan,
    PoolOrg,
    claim_and_pay,
    make_loan,
    make_pool,
    mark_received,
    receive,
    reverse,
    write_off,
)

Client = AsyncTestClient[Any]

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # the claim is paid
T_PAID = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)  # the licensee pays 2026Q2
T_TRANSFER = datetime(2026, 8, 5, 2, 0, tzinfo=UTC)  # the pool's statement shows its share
TODAY = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)

PRINCIPAL = 100_000_000  # ¥1,000,000.00, all lost
TERMS = RoyaltyTerms(
    start=date(2026, 4, 1),
    end=date(2028, 12, 31),
    royalty_rate_bp=600,
    minimum_annual_fen=25_000_000,
)
Q2_DUE = 6_000_000  # 6 % of ¥1,000,000.00 net sales
Q3_DUE = 3_000_000  # 6 % of ¥500,000.00
# 2026's minimum pro-rated for 1 April – 31 December: 25,000,000 × 275 / 365 = 18,835,616.4
MIN_2026 = 18_835_616
Q4_GUARANTEED = MIN_2026 - Q2_DUE - Q3_DUE  # 9,835,616: owed whatever Q4 reports
EXPECTED = Q2_DUE + Q3_DUE + Q4_GUARANTEED + 2 * 25_000_000  # 2027 and 2028 minimums in full
# Zhongshan 54:26:16:4: the fund paid 54 % of the loss and gets 54 % of each recovery.
COMPENSATION = PRINCIPAL * 54 // 100
POOL_SHARE = Q2_DUE * 54 // 100  # 3,240,000


@dataclass
class Scene:
    p: PoolOrg
    loan: Loan
    contract_id: int
    receipt_id: int
    payout_id: int


async def _contract(pool: asyncpg.Pool, loan: Loan) -> int:
    """An open licence on the case's patent taken by a firm: a contract (create_contract)."""
    licensee, _, _ = await make_org(pool, T0, kind="buyer")
    async with pool.acquire() as conn:
        asset = await conn.fetchval(
            "INSERT INTO ip_assets (bank_org_id, pledgor_id, kind, number, title, patent_type,"
            " filing_date, owners, legal_status, created_at, updated_at) VALUES ($1, $2, 'patent',"
            " 'CN202010012345.6', '一种光电转换装置', 'invention', '2020-03-01',"
            " ARRAY['中山光电科技有限公司'], 'valid', $3, $3) RETURNING id",
            loan.bank_org,
            loan.pledgor_id,
            T0,
        )
        await conn.execute("INSERT INTO case_assets VALUES ($1, $2)", loan.case_id, asset)
        open_id = await conn.fetchval(
            "INSERT INTO open_licences (case_id, asset_id, bank_org_id, pledgor_org_id, terms,"
            " status, created_at) VALUES ($1, $2, $3, $4, '{}', 'declared', $5) RETURNING id",
            loan.case_id,
            asset,
            loan.bank_org,
            licensee,
            T0,
        )
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(T0)), SYSTEM) as uow:
        contract = await create_contract(
            uow,
            NewContract(
                case_id=loan.case_id,
                bank_org_id=loan.bank_org,
                licensee_org_id=licensee,
                pledgor_org_id=None,
                kind="non_exclusive",
                terms=TERMS,
                open_licence_id=open_id,
            ),
        )
    return contract.id


async def _report(pool: asyncpg.Pool, contract_id: int, period: str, sales: int, due: int) -> None:
    await pool.execute(
        "INSERT INTO royalty_reports (contract_id, period, net_sales_fen, due_fen, due_on,"
        " reported_at) VALUES ($1, $2, $3, $4, $5, $6)",
        contract_id,
        period,
        sales,
        due,
        date(2026, 7, 30) if period == "2026Q2" else date(2026, 10, 30),
        T_PAID,
    )


async def _pay(pool: asyncpg.Pool, contract_id: int, case_id: int, period: str, fen: int) -> int:
    """The licensee's payment, routed through the waterfall with its royalty_payments row."""
    receipt = await receive(
        pool, T_PAID, case_id, fen, kind="royalty", source=f"royalty:{contract_id}:{period}"
    )
    await pool.execute(
        "INSERT INTO royalty_payments (contract_id, period, amount_fen, paid_on, receipt_id,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        contract_id,
        period,
        fen,
        T_PAID.date(),
        receipt.id,
        T_PAID,
    )
    return receipt.id


async def build(pool: asyncpg.Pool) -> Scene:
    p = await make_pool(pool, T0, ZHONGSHAN)
    loan = await make_loan(pool, T0, principal_fen=PRINCIPAL, enrol_in=p)
    await write_off(pool, T0, loan, date(2026, 3, 1))
    claim = await claim_and_pay(pool, T0, loan, p)
    assert claim.status == "paid" and claim.amount_fen == COMPENSATION
    contract_id = await _contract(pool, loan)
    await _report(pool, contract_id, "2026Q2", 100_000_000, Q2_DUE)
    receipt_id = await _pay(pool, contract_id, loan.case_id, "2026Q2", Q2_DUE)
    await _report(pool, contract_id, "2026Q3", 50_000_000, Q3_DUE)
    payout_id = await pool.fetchval(
        "SELECT id FROM payouts WHERE receipt_id = $1 AND pool_id = $2", receipt_id, p.pool_id
    )
    return Scene(p, loan, contract_id, receipt_id, payout_id)


async def _pool_row(pool: asyncpg.Pool, s: Scene) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM pools WHERE id = $1", s.p.pool_id)
    assert row is not None
    return row


async def test_the_stream_to_the_fen_and_the_rate_counts_only_what_was_received(
    pool: asyncpg.Pool,
) -> None:
    s = await build(pool)
    row = await _pool_row(pool, s)
    async with pool.acquire() as conn:
        page = await streams.pool_streams(conn, row, TODAY, limit=10)
        before = await dash.summary(conn, row)
    (one,) = page.items
    assert one.contract_id == s.contract_id and page.next_cursor is None
    assert one.expected_fen == EXPECTED
    assert one.due_fen == Q2_DUE + Q3_DUE  # Q4's payment date (30 January) is ahead
    assert one.received_fen == Q2_DUE
    assert one.outstanding_fen == Q3_DUE
    q2, q3, q4 = one.periods[:3]
    assert (q2.label, q2.paid_fen, q2.outstanding_fen, q2.late) == ("2026Q2", Q2_DUE, 0, False)
    assert (q3.label, q3.outstanding_fen, q3.late, q3.days_late) == ("2026Q3", Q3_DUE, True, 16)
    assert (q4.label, q4.reported, q4.expected_fen) == ("2026Q4", False, Q4_GUARANTEED)
    assert one.pool_share == streams.PoolShare(
        routed_fen=POOL_SHARE, received_fen=0, awaiting_fen=POOL_SHARE
    )
    # Routed but not yet on the pool's statement: outstanding, not in the rate.
    assert before.recoveries_received_fen == 0 and before.recovery_rate_bp == 0
    assert before.recoveries_outstanding_fen == POOL_SHARE

    await mark_received(pool, T_TRANSFER, s.payout_id)
    async with pool.acquire() as conn:
        after = await dash.summary(conn, row)
        over = await streams.overview(conn, row, TODAY)
    assert after.recoveries_received_fen == POOL_SHARE
    assert after.recovery_rate_bp == POOL_SHARE * 10_000 // COMPENSATION == 600
    assert over.totals.pool_received_fen == POOL_SHARE and over.totals.pool_awaiting_fen == 0
    assert over.totals.outstanding_fen == Q3_DUE and over.totals.expected_fen == EXPECTED
    assert over.curve == [
        streams.CurvePoint(day=date(2026, 8, 5), all_fen=POOL_SHARE, licence_fen=POOL_SHARE)
    ]

    # A scheduled royalty, however large, never enters the rate: Q4 reported at ¥10 m due.
    await _report(pool, s.contract_id, "2026Q4", 10_000_000_000, 600_000_000)
    async with pool.acquire() as conn:
        scheduled = await dash.summary(conn, row)
        page = await streams.pool_streams(conn, row, TODAY, limit=10)
    assert page.items[0].expected_fen == EXPECTED - Q4_GUARANTEED + 600_000_000
    assert scheduled.recovery_rate_bp == 600
    assert scheduled.recoveries_received_fen == POOL_SHARE
    assert scheduled.recoveries_outstanding_fen == 0


async def test_a_reversed_royalty_counts_nowhere(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    bounced = await _pay(pool, s.contract_id, s.loan.case_id, "2026Q3", Q3_DUE)
    await reverse(pool, T_PAID, bounced, "退票")
    row = await _pool_row(pool, s)
    async with pool.acquire() as conn:
        (one,) = (await streams.pool_streams(conn, row, TODAY, limit=10)).items
        head = await dash.summary(conn, row)
    assert one.received_fen == Q2_DUE and one.outstanding_fen == Q3_DUE
    assert one.pool_share is not None and one.pool_share.routed_fen == POOL_SHARE
    assert head.recoveries_outstanding_fen == POOL_SHARE


async def test_the_page_and_the_api_show_the_stream_and_the_curve(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    await mark_received(pool, T_TRANSFER, s.payout_id)
    clock.set(TODAY)
    await sign_in(client, s.p.email)
    pid = s.p.pool_id
    r = await client.get(f"/pool/{pid}/streams")
    assert r.status_code == 200, r.text
    html = r.text
    assert f'data-testid="stream-expected-{s.contract_id}">¥688,356.16<' in html
    assert f'data-testid="stream-received-{s.contract_id}">¥60,000.00<' in html
    assert f'data-testid="stream-outstanding-{s.contract_id}">¥30,000.00' in html
    assert f'data-testid="stream-pool-received-{s.contract_id}">¥32,400.00<' in html
    assert 'data-testid="chart-recovery-curve"' in html
    assert 'data-day="2026-08-05" data-fen="3240000"' in html
    dashboard = await client.get(f"/pool/{pid}")
    assert 'data-testid="fig-streams-received">¥32,400.00<' in dashboard.text
    assert 'data-testid="fig-streams-outstanding">¥30,000.00<' in dashboard.text
    assert "许可收益流" in html and "Licence streams" not in html
    client.cookies.set("ipx_lang", "en")
    en = await client.get(f"/pool/{pid}/streams")
    assert "Licence streams" in en.text and "许可收益流" not in en.text
    assert "pools.streams." not in en.text and "pools.streams." not in html
    client.cookies.set("ipx_lang", "zh")
    by_case = await client.get(f"/pool/{pid}/streams?case={s.loan.case_id}")
    assert f'data-testid="stream-{s.contract_id}"' in by_case.text

    token = await make_token(pool, TODAY, s.p.user_id, ["pools:read"])
    auth = {"Authorization": f"Bearer {token}"}
    api = await client.get(f"/api/v1/pools/{pid}/streams?limit=1", headers=auth)
    assert api.status_code == 200, api.text
    (item,) = api.json()["items"]
    assert item["expected_fen"] == EXPECTED and item["received_fen"] == Q2_DUE
    assert item["pool_share"] == {
        "routed_fen": POOL_SHARE,
        "received_fen": POOL_SHARE,
        "awaiting_fen": 0,
    }
    over = await client.get(f"/api/v1/pools/{pid}/streams/overview", headers=auth)
    assert over.status_code == 200
    assert over.json()["curve"] == [
        {"day": "2026-08-05", "all_fen": POOL_SHARE, "licence_fen": POOL_SHARE}
    ]
    assert over.json()["totals"]["outstanding_fen"] == Q3_DUE


async def test_another_pools_manager_sees_nothing_of_it(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    other = await make_pool(pool, T0, ZHONGSHAN)
    own_loan = await make_loan(pool, T0, principal_fen=PRINCIPAL, enrol_in=other)
    clock.set(TODAY)
    await sign_in(client, other.email)
    for path in (
        f"/pool/{s.p.pool_id}/streams",
        f"/pool/{other.pool_id}/streams?case={s.loan.case_id}",
    ):
        assert (await client.get(path)).status_code == 404, path
    mine = await client.get(f"/pool/{other.pool_id}/streams")
    assert mine.status_code == 200 and f"stream-{s.contract_id}" not in mine.text
    assert 'data-testid="streams-none"' in mine.text
    assert (
        await client.get(f"/pool/{other.pool_id}/streams?case={own_loan.case_id}")
    ).status_code == 200

    token = await make_token(pool, TODAY, other.user_id, ["pools:read"])
    auth = {"Authorization": f"Bearer {token}"}
    for path in (
        f"/api/v1/pools/{s.p.pool_id}/streams",
        f"/api/v1/pools/{s.p.pool_id}/streams/overview",
        f"/api/v1/pools/{other.pool_id}/streams?case={s.loan.case_id}",
    ):
        r = await client.get(path, headers=auth)
        assert r.status_code == 404, path
    listed = await client.get(f"/api/v1/pools/{other.pool_id}/streams", headers=auth)
    assert listed.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", [0, 201])
async def test_a_bad_limit_or_cursor_names_the_field(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock, limit: int
) -> None:
    s = await build(pool)
    clock.set(TODAY)
    token = await make_token(pool, TODAY, s.p.user_id, ["pools:read"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.get(f"/api/v1/pools/{s.p.pool_id}/streams?limit={limit}", headers=auth)
    assert r.status_code == 400 and "limit" in r.text
    r = await client.get(f"/api/v1/pools/{s.p.pool_id}/streams?cursor=xyz", headers=auth)
    assert r.status_code == 400 and "cursor" in r.text


async def test_the_bank_sees_the_same_stream_on_its_case(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(TODAY)
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", s.loan.bank_user)
    await sign_in(client, email)
    r = await client.get(f"/bank/pools/cases/{s.loan.case_id}")
    assert r.status_code == 200, r.text
    assert f'data-testid="bank-stream-received-{s.contract_id}">¥60,000.00<' in r.text
    assert f'data-testid="bank-stream-outstanding-{s.contract_id}">¥30,000.00' in r.text
    token = await make_token(pool, TODAY, s.loan.bank_user, ["pools:read"])
    api = await client.get(
        f"/api/v1/bank/cases/{s.loan.case_id}/receipts",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 200, api.text
    (one,) = api.json()["licence_streams"]
    assert (one["expected_fen"], one["received_fen"], one["outstanding_fen"]) == (
        EXPECTED,
        Q2_DUE,
        Q3_DUE,
    )
    assert one["pool_share"] is None


async def test_an_upfront_fee_is_expected_at_signature_and_received_apart(
    pool: asyncpg.Pool,
) -> None:
    s = await build(pool)
    await pool.execute(
        "UPDATE licence_contracts SET upfront_fen = 20000000 WHERE id = $1", s.contract_id
    )
    row = await _pool_row(pool, s)
    async with pool.acquire() as conn:
        (before,) = (await streams.pool_streams(conn, row, TODAY, limit=10)).items
    assert before.expected_fen == EXPECTED + 20_000_000
    assert before.outstanding_fen == Q3_DUE + 20_000_000
    await receive(
        pool,
        T_PAID,
        s.loan.case_id,
        20_000_000,
        kind="licence_fee",
        source=f"royalty:{s.contract_id}:upfront",
    )
    async with pool.acquire() as conn:
        (after,) = (await streams.pool_streams(conn, row, TODAY, limit=10)).items
    assert after.upfront_received_fen == 20_000_000
    assert after.received_fen == Q2_DUE + 20_000_000
    assert after.outstanding_fen == Q3_DUE
    assert after.periods == before.periods  # the fee pays no royalty period
    assert after.pool_share is not None
    assert after.pool_share.awaiting_fen == POOL_SHARE + 20_000_000 * 54 // 100


def test_the_step_chart_rises_by_date() -> None:
    from market.pools import charts

    c = charts.step_chart(["2026-01-01", "2026-01-11"], [[100, 300], [0, 200]], until="2026-01-21")
    first, second = c.lines
    assert [(p.label, p.value_fen) for p in first.points] == [
        ("2026-01-01", 100),
        ("2026-01-11", 300),
    ]
    assert [(p.label, p.value_fen) for p in second.points] == [("2026-01-11", 200)]
    # Ten days of twenty: the second step stands halfway along the axis.
    assert second.points[0].x == round(charts.LEFT + (charts.CHART_W - charts.LEFT - 10) / 2, 1)
    assert first.points[1].y == c.plot_top  # the top of the axis is the largest total
    assert [t.label for t in c.x_labels] == ["2026-01-01", "2026-01-21"]
    assert charts.step_chart([], [[], []]).lines[0].points == []
