"""The pool manager's pages and API: figures computed by hand from a scene,
the postings behind each figure, deciding claims (once, even when two managers click at
once), rule versions, and tenancy (another pool: 404; a bank or a buyer: 403)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.commands import Act, Actor, Context, UnitOfWork
from market.errors import Conflict
from market.pools import charts, services
from market.pools import dashboard as dash
from market.pools.rules import parse_rule
from tests.factories import csrf, make_org, make_token, sign_in, viewer
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    ZHONGSHAN,
    Loan,
    PoolOrg,
    as_exchange,
    claim_and_pay,
    decide,
    file_claim,
    make_loan,
    make_pool,
    mark_received,
    receive,
    reverse,
    write_off,
)

Client = AsyncTestClient[Any]

T1 = datetime(2025, 12, 10, 4, 0, tzinfo=UTC)  # claims paid: December 2025
T_NEW_YEAR = datetime(2025, 12, 31, 16, 30, tzinfo=UTC)  # 2026-01-01 00:30 in Shanghai
T2 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # today
NPL_SINCE = date(2025, 9, 1)

# Shanghai-style advance compensation (55 %), with an annual budget, an aggregate limit of
# 80 % of a bank's enrolled principal and the Jiangsu fuse (3 %, 30 %, renewals at 110 %).
RULE_P = {
    **SHANGHAI_ADVANCE,
    "annual_budget_fen": 10_000_000_00,
    "aggregate_limit_bp": 8000,
    "fuse": {},
}
PARKED = {
    "shares": [{"name": "fund", "weight": 80}, {"name": "bank", "weight": 20}],
    "timing": "parked",
    "wait_months": 2,
}


@dataclass
class Scene:
    p: PoolOrg  # the manager's first pool (advance compensation)
    q_id: int  # the same organisation's second pool (guarantee deposits)
    bank_a: tuple[int, int]
    bank_b: tuple[int, int]
    a1: Loan
    a2: Loan
    b1: Loan
    b2: Loan
    c1: Loan
    claim_a2: int  # filed, waiting
    claim_b1: int  # rejected
    claim_c1: int  # parked in pool Q


async def pool_payout(pool: asyncpg.Pool, receipt_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT id FROM payouts WHERE receipt_id = $1 AND payee_kind = 'pool'", receipt_id
        )
    )


async def file(pool: asyncpg.Pool, at: datetime, loan: Loan) -> int:
    return (await file_claim(pool, at, loan)).id


async def build(pool: asyncpg.Pool) -> Scene:
    """Pool P, banks A and B:
    A1 ¥1,000,000 paid 55 % = ¥550,000 (Dec); recovered ¥300,000 by auction → pool
       ¥165,000 received (Jan), then a ¥100,000 royalty → pool ¥55,000 still expected;
    A2 ¥400,000 claim filed (¥220,000), waiting; A3 ¥48,600,000 performing;
    B1 ¥600,000 claim rejected; B2 ¥200,000 paid ¥110,000 (Dec); a ¥50,000 fixed-price
       sale → pool ¥27,500 received at 00:30 on 1 January in Shanghai (still 31 Dec UTC).
    Pool Q (same organisation): C1 ¥500,000 (bank A), 80 % = ¥400,000 parked."""
    p = await make_pool(pool, T1, RULE_P)
    q = await as_exchange(
        pool,
        T1,
        services.create_pool,
        services.NewPool(
            org_id=p.org_id,
            code=p.code + "-Q",
            name="保证金资金池",
            name_en="Deposit pool",
            capital_fen=50_000_000_00,
            rule=parse_rule(PARKED),
            effective_from=date(2020, 1, 1),
        ),
    )
    a_org, a_user, _ = await make_org(pool, T1, kind="bank", name="甲银行")
    b_org, b_user, _ = await make_org(pool, T1, kind="bank", name="乙银行")
    a, b = (a_org, a_user), (b_org, b_user)
    a1 = await make_loan(
        pool, T1, principal_fen=1_000_000_00, default_date=NPL_SINCE, bank=a, enrol_in=p
    )
    a2 = await make_loan(
        pool, T1, principal_fen=400_000_00, default_date=NPL_SINCE, bank=a, enrol_in=p
    )
    await make_loan(pool, T1, principal_fen=48_600_000_00, default_date=None, bank=a, enrol_in=p)
    b1 = await make_loan(
        pool, T1, principal_fen=600_000_00, default_date=NPL_SINCE, bank=b, enrol_in=p
    )
    b2 = await make_loan(
        pool, T1, principal_fen=200_000_00, default_date=NPL_SINCE, bank=b, enrol_in=p
    )
    q_org = PoolOrg(p.org_id, p.user_id, p.email, q.id, q.code)
    c1 = await make_loan(
        pool, T1, principal_fen=500_000_00, default_date=NPL_SINCE, bank=a, enrol_in=q_org
    )

    await claim_and_pay(pool, T1, a1, p)
    await claim_and_pay(pool, T1, b2, p)
    sold_b2 = await receive(pool, T_NEW_YEAR, b2.case_id, 50_000_00, kind="fixed_price")
    await mark_received(pool, T_NEW_YEAR, await pool_payout(pool, sold_b2.id))
    sold_a1 = await receive(pool, T2, a1.case_id, 300_000_00, kind="auction")
    await mark_received(pool, T2, await pool_payout(pool, sold_a1.id))
    await receive(pool, T2, a1.case_id, 100_000_00, kind="royalty")

    claim_a2 = await file(pool, T2, a2)
    claim_b1 = await file(pool, T2, b1)
    await decide(pool, T2, p, claim_b1, reject="质押登记有瑕疵")
    claim_c1 = (await claim_and_pay(pool, T2, c1, q_org)).id
    return Scene(p, q.id, a, b, a1, a2, b1, b2, c1, claim_a2, claim_b1, claim_c1)


async def dashboard_of(pool: asyncpg.Pool, pool_id: int, at: datetime = T2) -> dash.Dashboard:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM pools WHERE id = $1", pool_id)
        return await dash.dashboard(conn, row, at)


async def drill(pool: asyncpg.Pool, pool_id: int, figure: str, **filt: Any) -> dash.PostingsOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM pools WHERE id = $1", pool_id)
        return await dash.postings(conn, row, figure, dash.DrillFilter(**filt))


# --- figures -----------------------------------------------------------------------------


async def test_figures_of_the_scene_to_the_fen(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    d = await dashboard_of(pool, s.p.pool_id)
    assert d.exposure == dash.Tally(count=5, amount_fen=50_800_000_00)
    assert d.claims.filed.count == 4
    assert d.claims.pending == dash.Tally(count=1, amount_fen=220_000_00)
    assert d.claims.paid == dash.Tally(count=2, amount_fen=660_000_00)
    assert d.claims.rejected.count == 1 and d.claims.parked.count == 0
    assert d.compensation_paid_fen == 550_000_00 + 110_000_00
    assert d.parked_fen == 0
    assert d.recoveries_received_fen == 165_000_00 + 27_500_00  # 55 % of 300,000 and of 50,000
    assert d.recoveries_outstanding_fen == 55_000_00  # 55 % of the 100,000 royalty
    assert d.recovery_rate_bp == 192_500_00 * 10_000 // 660_000_00 == 2916
    assert d.fund_balance_fen == 100_000_000_00 - 660_000_00 + 192_500_00
    # months in Asia/Shanghai: the B2 transfer at 16:30 UTC on 31 Dec is January's
    assert d.monthly[0].month == "2025-02" and d.monthly[-1].month == "2026-01"
    by_month = {m.month: (m.compensation_fen, m.recoveries_fen) for m in d.monthly}
    assert by_month["2025-12"] == (660_000_00, 0)
    assert by_month["2026-01"] == (0, 192_500_00)
    assert sum(c for c, _ in by_month.values()) == 660_000_00
    banks = {b.bank_org_id: b for b in d.by_bank}
    a, b = banks[s.bank_a[0]], banks[s.bank_b[0]]
    assert (a.loans, a.principal_fen, a.paid_fen, a.pending) == (3, 50_000_000_00, 550_000_00, 1)
    assert (a.received_fen, a.outstanding_fen) == (165_000_00, 55_000_00)
    assert (b.loans, b.principal_fen, b.paid_fen, b.pending) == (2, 800_000_00, 110_000_00, 0)
    assert (b.received_fen, b.outstanding_fen) == (27_500_00, 0)
    paths = {p.kind: (p.received_fen, p.outstanding_fen) for p in d.by_path}
    assert list(paths) == list(dash.RECEIPT_KINDS)
    assert paths["auction"] == (165_000_00, 0)
    assert paths["fixed_price"] == (27_500_00, 0)
    assert paths["royalty"] == (0, 55_000_00)
    assert paths["forfeit"] == paths["licence_fee"] == paths["other"] == (0, 0)
    # the budget is per calendar year: December's approvals do not count in 2026
    assert d.budget == dash.Budget(
        year=2026, annual_budget_fen=10_000_000_00, used_fen=0, remaining_fen=10_000_000_00
    )
    limits = {x.bank_org_id: x for x in d.limits}
    assert (limits[s.bank_a[0]].limit_fen, limits[s.bank_a[0]].remaining_fen) == (
        40_000_000_00,
        40_000_000_00 - 550_000_00,
    )
    assert (limits[s.bank_b[0]].limit_fen, limits[s.bank_b[0]].remaining_fen) == (
        640_000_00,
        530_000_00,
    )
    fuses = {f.bank_org_id: f for f in d.fuses}
    assert fuses[s.bank_a[0]].ratio_bp == 280 and not fuses[s.bank_a[0]].tripped  # 1.4 m / 50 m
    assert fuses[s.bank_b[0]].ratio_bp == 10_000 and fuses[s.bank_b[0]].tripped
    assert fuses[s.bank_b[0]].renewable_fen == 240_000_00  # 30 % of 800,000, none renewed

    # the second pool: a guarantee deposit is parked, not paid, until the write-off
    q = await dashboard_of(pool, s.q_id)
    assert (q.parked_fen, q.compensation_paid_fen, q.recovery_rate_bp) == (400_000_00, 0, None)
    assert q.budget is None and q.limits == [] and q.fuses == []
    await write_off(pool, T2, s.c1, date(2026, 1, 4))
    q = await dashboard_of(pool, s.q_id)
    assert (q.parked_fen, q.compensation_paid_fen) == (0, 400_000_00)
    parked = await drill(pool, s.q_id, "parked")
    assert (parked.total_fen, parked.entries) == (0, 2)  # parked, then released
    paid = await drill(pool, s.q_id, "compensation_paid")
    assert (paid.total_fen, [x.source_kind for x in paid.postings]) == (
        400_000_00,
        ["claim_released"],
    )


async def test_every_figure_is_the_sum_of_its_postings(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    pid = s.p.pool_id
    paid = await drill(pool, pid, "compensation_paid")
    assert paid.total_fen == 660_000_00 and paid.entries == 2
    assert sorted(x.focus_fen for x in paid.postings) == [110_000_00, 550_000_00]
    assert {x.source_kind for x in paid.postings} == {"claim_paid"}
    for x in paid.postings:  # each entry balances, and shows where the money went
        assert sum(leg.amount_fen for leg in x.legs) == 0
        assert {leg.account for leg in x.legs} == {f"pool:{pid}:recoverable", f"pool:{pid}:fund"}
    got = await drill(pool, pid, "recoveries_received")
    assert got.total_fen == 192_500_00 and got.entries == 2
    # the money left the exchange: one posting per transfer, whichever statement showed it
    assert {x.source_kind for x in got.postings} == {"payout_paid"}
    owed = await drill(pool, pid, "recoveries_outstanding")
    assert owed.total_fen == 55_000_00 and owed.entries == 5  # 3 receipts, 2 transfers received
    receipt = next(x for x in owed.postings if x.receipt_kind == "royalty")
    assert receipt.source_kind == "receipt" and receipt.focus_fen == 55_000_00
    # the receipt's other payees (the bank) are summed into one line; the entry balances
    assert sum(leg.amount_fen for leg in receipt.legs) == 0
    assert [leg.amount_fen for leg in receipt.legs if leg.account == "other"] == [-45_000_00]
    assert not any(leg.account.startswith("payable:org:") for leg in receipt.legs)
    fund = await drill(pool, pid, "fund")
    assert fund.total_fen == 100_000_000_00 - 660_000_00 + 192_500_00
    everything = await drill(pool, pid, "all")
    # capital, 2 claims, 3 receipts, 2 transfers paid out and 2 received back into the fund
    assert everything.total_fen is None and everything.entries == 1 + 2 + 3 + 2 + 2
    # filters: month (Asia/Shanghai), bank, disposal path — the chart bars' links
    assert (await drill(pool, pid, "compensation_paid", month="2025-12")).total_fen == 660_000_00
    assert (await drill(pool, pid, "compensation_paid", month="2026-01")).entries == 0
    jan = await drill(pool, pid, "recoveries_received", month="2026-01")
    assert (jan.total_fen, jan.entries) == (192_500_00, 2)
    assert (await drill(pool, pid, "recoveries_received", month="2025-12")).entries == 0
    by_b = await drill(pool, pid, "recoveries_received", bank_org_id=s.bank_b[0])
    assert (by_b.total_fen, by_b.entries) == (27_500_00, 1)
    by_a = await drill(pool, pid, "compensation_paid", bank_org_id=s.bank_a[0])
    assert by_a.total_fen == 550_000_00
    fixed = await drill(pool, pid, "recoveries_received", kind="fixed_price")
    assert fixed.total_fen == 27_500_00
    royalty = await drill(pool, pid, "recoveries_outstanding", kind="royalty")
    assert (royalty.total_fen, royalty.entries) == (55_000_00, 1)
    # nothing of pool Q leaks into P's postings, and the reverse
    q_all = await drill(pool, s.q_id, "all")
    assert all(
        leg.account.startswith(f"pool:{s.q_id}:")
        or leg.account == "other"
        or ":pool:" not in leg.account
        for x in q_all.postings
        for leg in x.legs
    )
    assert not {x.entry_id for x in q_all.postings} & {x.entry_id for x in everything.postings}


async def test_a_reversed_receipt_counts_nowhere(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    royalty = await pool.fetchval("SELECT id FROM receipts WHERE kind = 'royalty'")
    await reverse(pool, T2, royalty, "退票")
    d = await dashboard_of(pool, s.p.pool_id)
    assert d.recoveries_outstanding_fen == 0
    assert {p.kind: p.outstanding_fen for p in d.by_path}["royalty"] == 0
    owed = await drill(pool, s.p.pool_id, "recoveries_outstanding")
    assert owed.total_fen == 0 and "receipt_reversed" in {x.source_kind for x in owed.postings}


async def test_bad_drill_filters_name_the_field(pool: asyncpg.Pool) -> None:
    s = await build(pool)
    for figure, filt, field in (
        ("nope", {}, "figure"),
        ("fund", {"month": "2026-13"}, "month"),
        ("fund", {"month": "Jan"}, "month"),
        ("fund", {"kind": "barter"}, "kind"),
    ):
        with pytest.raises(dash.Invalid) as err:
            await drill(pool, s.p.pool_id, figure, **filt)
        assert err.value.field == field


def test_bar_chart_geometry() -> None:
    c = charts.bar_chart([("a", [100, 50], [None, None]), ("b", [0, 200], ["/x", "/y"])])
    heights = [bar.height for g in c.groups for bar in g.bars]
    plot = c.plot_bottom - c.plot_top
    assert heights == [plot / 2, plot / 4, 0, plot]
    assert all(bar.y + bar.height == c.plot_bottom for g in c.groups for bar in g.bars)
    assert [t.label for t in c.ticks] == ["¥0", "¥1", "¥2"]
    empty = charts.bar_chart([])
    assert empty.groups == []


# --- pages ---------------------------------------------------------------------------------


async def signed_in(client: Client, email: str) -> None:
    r = await sign_in(client, email)
    assert r.status_code in (302, 303), r.text


def text_of(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>([^<]*)<', html)
    assert m, testid
    return m.group(1).strip()


async def test_dashboard_page_selector_charts_and_links(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    await signed_in(client, s.p.email)
    home = await client.get("/pool")  # two pools: the selector, with each pool's headline
    assert home.status_code == 200 and 'data-testid="pools"' in home.text
    assert f'href="/pool/{s.p.pool_id}"' in home.text and f'href="/pool/{s.q_id}"' in home.text
    assert "29.16 %" in home.text
    r = await client.get(f"/pool/{s.p.pool_id}")
    assert r.status_code == 200
    html = r.text
    assert text_of(html, "fig-exposure") == "¥50,800,000.00"
    assert text_of(html, "fig-loans") == "5"
    assert text_of(html, "fig-compensation_paid") == "¥660,000.00"
    assert text_of(html, "fig-parked") == "¥0.00"
    assert text_of(html, "fig-recoveries_received") == "¥192,500.00"
    assert text_of(html, "fig-recoveries_outstanding") == "¥55,000.00"
    assert text_of(html, "fig-recovery_rate") == "29.16 %"
    assert text_of(html, "fig-claims-filed") == "4" and text_of(html, "fig-claims-pending") == "1"
    assert text_of(html, "fig-claims-paid") == "2" and text_of(html, "fig-claims-rejected") == "1"
    assert text_of(html, "budget-remaining") == "¥10,000,000.00"
    assert text_of(html, f"limit-remaining-{s.bank_b[0]}") == "¥530,000.00"
    assert 'data-testid="pool-select"' in html
    # charts: inline SVG with a title, and the same numbers in a table
    for chart in ("monthly", "by-bank", "by-path"):
        assert f'data-testid="chart-{chart}"' in html
    assert '<title id="monthly-title">近 12 个月补偿与回收</title>' in html
    assert (
        f'href="/pool/{s.p.pool_id}/postings?figure=recoveries_received&amp;month=2026-01"' in html
    )
    assert (
        f'href="/pool/{s.p.pool_id}/postings?figure=compensation_paid&amp;bank={s.bank_a[0]}"'
        in html
    )
    assert (
        f'href="/pool/{s.p.pool_id}/postings?figure=recoveries_outstanding&amp;kind=royalty"'
        in html
    )
    assert "已熔断" in html  # bank B's fuse
    # every figure links to what makes it
    drill_page = await client.get(f"/pool/{s.p.pool_id}/postings?figure=compensation_paid")
    assert drill_page.status_code == 200
    assert text_of(drill_page.text, "drill-total") == "¥660,000.00"
    assert text_of(drill_page.text, "drill-count") == "2"
    # accounts are named, in the page's language, with the pool's name — not by their code
    assert (
        f"风险补偿资金池{s.p.code} · 已补偿待回收" in drill_page.text
        and "支付补偿" in drill_page.text
    )
    assert f"pool:{s.p.pool_id}:recoverable<" not in drill_page.text
    assert f">pool:{s.p.pool_id}:" not in drill_page.text
    month = await client.get(
        f"/pool/{s.p.pool_id}/postings?figure=recoveries_received&month=2026-01"
    )
    assert text_of(month.text, "drill-total") == "¥192,500.00"
    assert 'data-testid="payouts"' in month.text and "已到账" in month.text
    bank = await client.get(
        f"/pool/{s.p.pool_id}/postings?figure=recoveries_outstanding&bank={s.bank_a[0]}"
    )
    assert text_of(bank.text, "drill-total") == "¥55,000.00"
    assert text_of(bank.text, "filter-bank") == "甲银行"
    # a receipt's legs: the pool's payable by name, the clearing account, the other payees
    assert f"应付风险补偿资金池{s.p.code}的回收款" in bank.text and "交易所结算账户" in bank.text
    shown = re.sub(r'data-account="[^"]*"', "", bank.text)  # codes stay in the markup only
    assert "其他收款方" in shown and "payable:" not in shown and "exchange:" not in shown
    exposure = await client.get(f"/pool/{s.p.pool_id}/enrolments")
    assert text_of(exposure.text, "enrolled-total") == "¥50,800,000.00"
    assert s.a1.loan_id and "ZS-" in exposure.text
    only_b = await client.get(f"/pool/{s.p.pool_id}/enrolments?bank={s.bank_b[0]}")
    assert text_of(only_b.text, "enrolled-total") == "¥800,000.00"
    bad = await client.get(f"/pool/{s.p.pool_id}/postings?figure=fund&month=2026-13")
    assert bad.status_code == 422
    client.cookies.set("ipx_lang", "en")
    en = await client.get(f"/pool/{s.p.pool_id}")
    assert "Compensation and recoveries, last 12 months" in en.text
    assert f"Pool {s.p.code}" in en.text  # the pool's English name
    assert "NPL ratio 100 % ≥ fuse 3 %" in en.text and "不良率" not in en.text
    en_drill = await client.get(f"/pool/{s.p.pool_id}/postings?figure=compensation_paid")
    assert f"Pool {s.p.code} · compensation recoverable" in en_drill.text


async def test_a_manager_of_one_pool_lands_on_its_dashboard(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    p = await make_pool(pool, clock.now(), ZHONGSHAN)
    await signed_in(client, p.email)
    r = await client.get("/pool")
    assert r.status_code == 200 and text_of(r.text, "fig-exposure") == "¥0.00"
    assert text_of(r.text, "fig-recovery_rate") == "—" and 'data-testid="pool-select"' not in r.text
    rules = await client.get("/pool/rules")
    assert rules.status_code == 200 and 'data-testid="version-1"' in rules.text


async def test_claims_page_decide_flow(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    await signed_in(client, s.p.email)
    r = await client.get("/pool/claims")
    assert r.status_code == 200
    html = r.text
    # the waiting claim first, with its bank, loan, amount and both languages' explanation
    assert html.index(f'id="claim-{s.claim_a2}"') < html.index('id="history"')
    assert text_of(html, f"claim-{s.claim_a2}-amount") == "¥220,000.00"
    assert "分担比例 资金池 55 : 银行 45：资金池承担 ¥220,000.00" in html
    assert "Shares" not in html and "fund 55" not in html  # one language, no party's code
    assert "甲银行" in html
    assert text_of(html, f"claim-{s.claim_b1}-status") == "已驳回"
    assert "质押登记有瑕疵" in html
    assert f'id="claim-{s.claim_c1}"' in html  # the second pool's claims too
    only_p = await client.get(f"/pool/claims?pool={s.p.pool_id}&status=filed")
    assert (
        f'id="claim-{s.claim_a2}"' in only_p.text and f'id="claim-{s.claim_c1}"' not in only_p.text
    )
    assert (await client.get("/pool/claims?status=lost")).status_code == 422

    token = await csrf(client)
    url = f"/pool/claims/{s.claim_a2}/decision"
    r = await client.post(url, data={"_csrf_token": token, "decision": "reject", "reason": "  "})
    assert r.status_code == 422
    assert f'data-testid="err-{s.claim_a2}-reason"' in r.text and "请填写驳回理由" in r.text
    r = await client.post(url, data={"_csrf_token": token, "decision": "maybe"})
    assert r.status_code == 422 and f'data-testid="err-{s.claim_a2}-decision"' in r.text
    r = await client.post(url, data={"decision": "approve"})  # no CSRF token
    assert r.status_code == 403
    assert (
        await pool.fetchval("SELECT status FROM compensation_claims WHERE id = $1", s.claim_a2)
        == "filed"
    )

    r = await client.post(
        url,
        data={"_csrf_token": token, "decision": "approve", "reason": "同意"},
        follow_redirects=False,
    )
    assert (
        r.status_code == 303
        and r.headers["location"] == f"/pool/claims?decided={s.claim_a2}#claim-{s.claim_a2}"
    )
    claim = await pool.fetchrow("SELECT * FROM compensation_claims WHERE id = $1", s.claim_a2)
    assert (claim["status"], claim["amount_fen"], claim["decided_by"]) == (
        "paid",
        220_000_00,
        s.p.user_id,
    )
    again = await client.post(url, data={"_csrf_token": token, "decision": "approve"})
    assert again.status_code == 409 and f'data-testid="err-{s.claim_a2}-form"' in again.text
    d = await dashboard_of(pool, s.p.pool_id)
    assert d.compensation_paid_fen == 880_000_00 and d.claims.pending.count == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'claim.decide' AND object_id = $1",
            str(s.claim_a2),
        )
        == 1
    )


async def test_two_managers_approving_at_once_approve_once(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    await signed_in(client, s.p.email)
    token = await csrf(client)
    url = f"/pool/claims/{s.claim_a2}/decision"
    first, second = await asyncio.gather(
        client.post(
            url, data={"_csrf_token": token, "decision": "approve"}, follow_redirects=False
        ),
        client.post(
            url, data={"_csrf_token": token, "decision": "approve"}, follow_redirects=False
        ),
    )
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE source_kind = 'claim_paid' AND source_id = $1",
            str(s.claim_a2),
        )
        == 1
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM claim_shares WHERE claim_id = $1", s.claim_a2)
        == 1
    )


async def test_the_second_approval_waits_for_the_first_and_is_refused(pool: asyncpg.Pool) -> None:
    """Deterministic: the first manager's transaction holds the pool lock; the second
    waits on it, then finds the claim decided."""
    s = await build(pool)
    manager = Actor.of(await viewer(pool, s.p.user_id))
    conn = await pool.acquire()
    try:
        tx = conn.transaction()
        await tx.start()
        first = UnitOfWork(conn=conn, at=T2, actor=manager)
        await dash.decide_claim(first, dash.DecideClaim(claim_id=s.claim_a2, decision="approve"))
        act = Act(Context(pool=pool, clock=FrozenClock(T2)), manager)
        second = asyncio.create_task(
            act(
                dash.decide_claim,
                dash.DecideClaim(claim_id=s.claim_a2, decision="reject", reason="重复"),
            )
        )
        await asyncio.sleep(0.3)
        assert not second.done()  # blocked on the pool row
        await tx.commit()
    finally:
        await pool.release(conn)
    with pytest.raises(Conflict) as err:
        await second
    assert (err.value.code, err.value.params) == ("claim_decided", {"status": "paid"})
    assert (
        await pool.fetchval("SELECT status FROM compensation_claims WHERE id = $1", s.claim_a2)
        == "paid"
    )


async def test_rules_page_versions_and_validation(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    await signed_in(client, s.p.email)
    url = f"/pool/{s.p.pool_id}/rules"
    r = await client.get(url)
    assert r.status_code == 200
    assert text_of(r.text, "version-1-loans") == "5" and 'data-testid="in-force"' in r.text
    assert (
        "前补偿：贷款不良满 90 天后，无需核销" in r.text and "年度补偿预算 ¥10,000,000.00" in r.text
    )
    assert "In advance" not in r.text
    assert "&#34;aggregate_limit_bp&#34;: 8000" in r.text or '"aggregate_limit_bp": 8000' in r.text
    token = await csrf(client)

    async def add(rule: str, effective_from: str = "2026-01-05", **extra: str) -> Any:
        return await client.post(
            url,
            data={"_csrf_token": token, "rule": rule, "effective_from": effective_from, **extra},
            follow_redirects=False,
        )

    bad = await add("{not json")
    assert bad.status_code == 422
    assert text_of(bad.text, "err-rule") == "不是有效的 JSON（第 1 行第 2 列）。"
    assert "{not json" in bad.text  # what was typed stays
    bad = await add(
        json.dumps({"shares": [{"name": "fund", "weight": -1}, {"name": "bank", "weight": 1}]})
    )
    assert text_of(bad.text, "err-rule") == "rule.shares[0].weight: 不小于 0。"
    bad = await add(json.dumps({"shares": [{"name": "fund", "weight": 1}]}))
    assert bad.status_code == 422 and text_of(bad.text, "err-rule").startswith("rule.shares: ")
    assert "bank（银行）" in text_of(bad.text, "err-rule")
    bad = await add(json.dumps({**SHANGHAI_ADVANCE, "colour": "red"}))
    assert bad.status_code == 422 and "colour" in text_of(bad.text, "err-rule")
    bad = await add(json.dumps(SHANGHAI_ADVANCE), effective_from="2026-01-04")
    assert bad.status_code == 422
    assert text_of(bad.text, "err-effective_from") == "新版本的生效日须为今天（2026-01-05）或以后。"
    bad = await add(json.dumps(SHANGHAI_ADVANCE), effective_from="soon")
    assert bad.status_code == 422 and 'data-testid="err-effective_from"' in bad.text
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pool_rule_versions WHERE pool_id = $1", s.p.pool_id
        )
        == 1
    )

    new_rule = {
        "shares": [{"name": "fund", "weight": 60}, {"name": "bank", "weight": 40}],
        "timing": "advance",
        "wait_days": 90,
    }
    ok = await add(json.dumps(new_rule), note="2026 年提高至 60 %")
    assert ok.status_code == 303 and ok.headers["location"] == f"{url}?saved=2"
    page = await client.get(ok.headers["location"])
    assert text_of(page.text, "saved") and text_of(page.text, "version-2-loans") == "0"
    assert text_of(page.text, "version-1-loans") == "5"
    assert page.text.index('data-testid="version-2"') < page.text.index('data-testid="in-force"')
    # loans keep their version; a loan enrolled now gets the new one
    await make_loan(
        pool, T2, principal_fen=100_000_00, default_date=None, bank=s.bank_a, enrol_in=s.p
    )
    page = await client.get(url)
    assert (
        text_of(page.text, "version-2-loans") == "1"
        and text_of(page.text, "version-1-loans") == "5"
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'pool.rule_version' AND object_id = $1",
            str(s.p.pool_id),
        )
        == 2
    )


# --- tenancy -------------------------------------------------------------------------------


async def test_another_pool_is_404_and_other_kinds_403(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    other = await make_pool(pool, T2, ZHONGSHAN)
    await signed_in(client, other.email)
    pid = s.p.pool_id
    for path in (
        f"/pool/{pid}",
        f"/pool/{pid}/postings?figure=all",
        f"/pool/{pid}/enrolments",
        f"/pool/{pid}/rules",
        f"/pool/claims?pool={pid}",
    ):
        r = await client.get(path)
        assert r.status_code == 404, path
    mine = await client.get("/pool/claims")
    assert mine.status_code == 200 and f'id="claim-{s.claim_a2}"' not in mine.text
    token = await csrf(client)
    r = await client.post(
        f"/pool/claims/{s.claim_a2}/decision", data={"_csrf_token": token, "decision": "approve"}
    )
    assert r.status_code == 404
    r = await client.post(
        f"/pool/{pid}/rules",
        data={"_csrf_token": token, "rule": json.dumps(ZHONGSHAN), "effective_from": "2026-01-05"},
    )
    assert r.status_code == 404
    assert (
        await pool.fetchval("SELECT status FROM compensation_claims WHERE id = $1", s.claim_a2)
        == "filed"
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM pool_rule_versions WHERE pool_id = $1", pid) == 1
    )

    for kind in ("bank", "buyer"):
        _, _, email = await make_org(pool, T2, kind=kind)
        client.cookies.clear()
        await signed_in(client, email)
        for path in (
            "/pool",
            f"/pool/{pid}",
            "/pool/claims",
            "/pool/rules",
            f"/pool/{pid}/postings",
        ):
            r = await client.get(path)
            assert r.status_code == 403, (kind, path)
    client.cookies.clear()
    r = await client.get("/pool", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


# --- API -----------------------------------------------------------------------------------


async def test_api_figures_claims_decision_and_rules(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    rw = {
        "Authorization": f"Bearer {await make_token(pool, T2, s.p.user_id, ['pools:read', 'pools:write'])}"
    }
    ro = {"Authorization": f"Bearer {await make_token(pool, T2, s.p.user_id, ['pools:read'])}"}
    r = await client.get("/api/v1/pools", headers=ro)
    assert r.status_code == 200 and [p["id"] for p in r.json()] == [s.p.pool_id, s.q_id]
    pid = s.p.pool_id
    d = (await client.get(f"/api/v1/pools/{pid}/dashboard", headers=ro)).json()
    assert d["exposure"] == {"count": 5, "amount_fen": 50_800_000_00}
    assert (d["compensation_paid_fen"], d["recoveries_received_fen"]) == (660_000_00, 192_500_00)
    assert (d["recoveries_outstanding_fen"], d["recovery_rate_bp"]) == (55_000_00, 2916)
    assert d["claims"]["pending"] == {"count": 1, "amount_fen": 220_000_00}
    assert d["monthly"][-1] == {
        "month": "2026-01",
        "compensation_fen": 0,
        "recoveries_fen": 192_500_00,
    }
    assert d["as_of"] == "2026-01-05"
    post = (
        await client.get(
            f"/api/v1/pools/{pid}/postings?figure=recoveries_received&month=2026-01", headers=ro
        )
    ).json()
    assert (post["total_fen"], post["entries"]) == (192_500_00, 2)
    r = await client.get(f"/api/v1/pools/{pid}/postings?figure=wrong", headers=ro)
    assert r.status_code == 422 and r.json()["field"] == "figure"

    claims = (await client.get(f"/api/v1/pools/{pid}/claims", headers=ro)).json()
    assert claims[0]["id"] == s.claim_a2 and len(claims) == 4
    assert claims[0]["explanation"][-1] == {
        "key": "pool.line.owed",
        "params": {"amount_fen": 220_000_00},
    }
    filed = (await client.get(f"/api/v1/pools/{pid}/claims?status=filed", headers=ro)).json()
    assert [c["id"] for c in filed] == [s.claim_a2]
    decision = f"/api/v1/pools/{pid}/claims/{s.claim_a2}/decision"
    r = await client.post(decision, json={"decision": "approve"}, headers=ro)
    assert r.status_code == 403  # pools:write needed
    r = await client.post(decision, json={"decision": "reject"}, headers=rw)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    assert r.json()["code"] == "rejection_reason_needed"
    r = await client.post(decision, json={"decision": "perhaps"}, headers=rw)
    assert r.status_code == 400 and r.json()["field"] == "decision"
    # a claim of the organisation's other pool, addressed through this one: 404
    r = await client.post(
        f"/api/v1/pools/{pid}/claims/{s.claim_c1}/decision",
        json={"decision": "approve"},
        headers=rw,
    )
    assert r.status_code == 404
    r = await client.post(decision, json={"decision": "reject", "reason": "材料不全"}, headers=rw)
    assert r.status_code == 200 and (r.json()["status"], r.json()["reason"]) == (
        "rejected",
        "材料不全",
    )
    r = await client.post(decision, json={"decision": "approve"}, headers=rw)
    assert r.status_code == 409 and r.json()["code"] == "claim_decided"

    rules = (await client.get(f"/api/v1/pools/{pid}/rules", headers=ro)).json()
    assert [(v["version"], v["loans"], v["in_force"]) for v in rules] == [(1, 5, True)]
    assert rules[0]["rule"]["aggregate_limit_bp"] == 8000
    bad = {
        "rule": {"shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": "x"}]},
        "effective_from": "2026-02-01",
    }
    r = await client.post(f"/api/v1/pools/{pid}/rules", json=bad, headers=rw)
    assert r.status_code == 422 and r.json()["field"] == "rule.shares[1].weight"
    assert r.json()["code"] == "whole_number"
    good = {"rule": ZHONGSHAN, "effective_from": "2026-02-01", "note": "v2"}
    r = await client.post(f"/api/v1/pools/{pid}/rules", json=good, headers=ro)
    assert r.status_code == 403
    r = await client.post(f"/api/v1/pools/{pid}/rules", json=good, headers=rw)
    assert r.status_code == 201 and (
        r.json()["version"],
        r.json()["in_force"],
        r.json()["loans"],
    ) == (2, False, 0)
    assert r.json()["effective_from"] == "2026-02-01"
    assert r.json()["description"][0] == {
        "key": "pool.rule.shared",
        "params": {
            "shares": [
                {"party": "fund", "weight": 54},
                {"party": "bank", "weight": 26},
                {"party": "insurer", "weight": 16},
                {"party": "evaluator", "weight": 4},
            ],
            "fund": 54,
            "total": 100,
        },
    }


async def test_api_tenancy(client: Client, pool: asyncpg.Pool, clock: FrozenClock) -> None:
    s = await build(pool)
    clock.set(T2)
    other = await make_pool(pool, T2, ZHONGSHAN)
    auth = {
        "Authorization": f"Bearer {await make_token(pool, T2, other.user_id, ['pools:read', 'pools:write'])}"
    }
    assert [p["id"] for p in (await client.get("/api/v1/pools", headers=auth)).json()] == [
        other.pool_id
    ]
    pid = s.p.pool_id
    for path in (
        f"/api/v1/pools/{pid}/dashboard",
        f"/api/v1/pools/{pid}/claims",
        f"/api/v1/pools/{pid}/rules",
        f"/api/v1/pools/{pid}/postings",
    ):
        assert (await client.get(path, headers=auth)).status_code == 404, path
    r = await client.post(
        f"/api/v1/pools/{pid}/claims/{s.claim_a2}/decision",
        json={"decision": "approve"},
        headers=auth,
    )
    assert r.status_code == 404
    # its own pool id with another pool's claim: 404 as well
    r = await client.post(
        f"/api/v1/pools/{other.pool_id}/claims/{s.claim_a2}/decision",
        json={"decision": "approve"},
        headers=auth,
    )
    assert r.status_code == 404
    r = await client.post(
        f"/api/v1/pools/{pid}/rules",
        json={"rule": ZHONGSHAN, "effective_from": "2026-02-01"},
        headers=auth,
    )
    assert r.status_code == 404
    assert (
        await pool.fetchval("SELECT status FROM compensation_claims WHERE id = $1", s.claim_a2)
        == "filed"
    )
    # a bank's token, even with pools:read, is not a pool manager's
    bank = {"Authorization": f"Bearer {await make_token(pool, T2, s.bank_a[1], ['pools:read'])}"}
    assert (await client.get("/api/v1/pools", headers=bank)).status_code == 403
    assert (await client.get(f"/api/v1/pools/{pid}/dashboard", headers=bank)).status_code == 403


async def test_api_lists_a_pools_enrolments_as_its_exposure_page_does(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    ro = {"Authorization": f"Bearer {await make_token(pool, T2, s.p.user_id, ['pools:read'])}"}
    pid = s.p.pool_id
    r = await client.get(f"/api/v1/pools/{pid}/enrolments", headers=ro)
    assert r.status_code == 200
    rows = r.json()
    # The exposure figure: five loans, CNY 50.8 m (the dashboard's and the page's).
    assert len(rows) == 5 and sum(e["enrolled_principal_fen"] for e in rows) == 50_800_000_00
    assert {e["loan_id"] for e in rows} >= {s.a1.loan_id, s.a2.loan_id, s.b1.loan_id}
    assert {e["bank_name"] for e in rows} == {"甲银行", "乙银行"}
    only_b = (
        await client.get(f"/api/v1/pools/{pid}/enrolments?bank={s.bank_b[0]}", headers=ro)
    ).json()
    assert sum(e["enrolled_principal_fen"] for e in only_b) == 800_000_00
    assert {e["bank_org_id"] for e in only_b} == {s.bank_b[0]}
    # Another manager's pool: 404; a bank's token, even with pools:read: 403.
    other = await make_pool(pool, T2, ZHONGSHAN)
    theirs = {
        "Authorization": f"Bearer {await make_token(pool, T2, other.user_id, ['pools:read'])}"
    }
    assert (await client.get(f"/api/v1/pools/{pid}/enrolments", headers=theirs)).status_code == 404
    bank = {"Authorization": f"Bearer {await make_token(pool, T2, s.bank_a[1], ['pools:read'])}"}
    assert (await client.get(f"/api/v1/pools/{pid}/enrolments", headers=bank)).status_code == 403


# --- input too deep to parse, a bank that is none of the pool's ---------------------------


async def test_deeply_nested_rule_is_named_not_500(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    p = await make_pool(pool, clock.now(), ZHONGSHAN)
    await signed_in(client, p.email)
    token = await csrf(client)
    r = await client.post(
        f"/pool/{p.pool_id}/rules",
        data={
            "_csrf_token": token,
            "rule": "[" * 100_000 + "]" * 100_000,
            "effective_from": clock.now().date().isoformat(),
        },
    )
    assert r.status_code == 422 and text_of(r.text, "err-rule") == "不是有效的 JSON：嵌套层级过深。"
    count = "SELECT count(*) FROM pool_rule_versions WHERE pool_id = $1"
    assert await pool.fetchval(count, p.pool_id) == 1


async def test_the_drill_down_names_only_a_bank_of_the_pool(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    stranger, _user, _email = await make_org(pool, T2, kind="bank", name="局外银行")
    await signed_in(client, s.p.email)
    url = f"/pool/{s.p.pool_id}/postings?figure=all&bank="
    assert text_of((await client.get(f"{url}{s.bank_a[0]}")).text, "filter-bank") == "甲银行"
    r = await client.get(f"{url}{stranger}")
    assert r.status_code == 200 and "局外银行" not in r.text
    assert text_of(r.text, "filter-bank") == str(stranger)


async def test_a_pool_organisation_not_approved_sees_nothing(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    p = await make_pool(pool, clock.now(), ZHONGSHAN)
    auth = {
        "Authorization": f"Bearer {await make_token(pool, clock.now(), p.user_id, ['pools:read'])}"
    }
    await signed_in(client, p.email)
    assert (await client.get("/pool")).status_code == 200
    for status in ("suspended", "pending", "rejected"):
        await pool.execute("UPDATE organisations SET status = $2 WHERE id = $1", p.org_id, status)
        for path in ("/pool", f"/pool/{p.pool_id}", "/pool/claims", "/pool/rules"):
            assert (await client.get(path)).status_code == 403, (status, path)
    # (the token was not used before: its caller is not cached as approved)
    assert (await client.get("/api/v1/pools", headers=auth)).status_code == 403
    r = await client.get(f"/api/v1/pools/{p.pool_id}/dashboard", headers=auth)
    assert r.status_code == 403


KEY_SHOWN = re.compile(r">[^<]*\b(?:pool|bankpool|problem)\.[a-z_]+(?:\.[a-z_]+)*")


async def test_every_pool_page_speaks_one_language_and_shows_no_key(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await build(pool)
    clock.set(T2)
    await signed_in(client, s.p.email)
    pid = s.p.pool_id
    paths = [
        "/pool",
        f"/pool/{pid}",
        f"/pool/{s.q_id}",
        f"/pool/{pid}/enrolments",
        "/pool/claims",
        f"/pool/{pid}/rules",
        *(f"/pool/{pid}/postings?figure={f}" for f in dash.FIGURES),
    ]
    for lang, other in (("zh", "The pool owes"), ("en", "资金池应补偿")):
        client.cookies.set("ipx_lang", lang)
        for path in paths:
            r = await client.get(path)
            assert r.status_code == 200, (lang, path)
            assert not KEY_SHOWN.search(r.text), (lang, path, KEY_SHOWN.search(r.text))
            assert other not in r.text, (lang, path)
