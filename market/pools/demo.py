"""Demo guarantee pools for `market seed-demo`.

Five pools of docs/rules.md §Guarantee pools, their rules as data, run by four pool
organisations:

* ZS-RCF Zhongshan (pool@ipx.demo): fund : bank : insurer : evaluator = 54 : 26 : 16 : 4,
  after the loss;
* SZ-RCF Shenzhen (pool-sz@ipx.demo): fund 1 : bank 1, at most CNY 2 m per bad loan;
* DG-RCF Dongguan (pool-dg@ipx.demo): tiers 80 / 60 / 50 / 30 % by enrolled principal,
  compensation limited to 4 % of the bank's enrolled principal;
* SH-QBC Shanghai 前补偿 (pool-sh@ipx.demo): in advance, 90 days after non-performing;
  version 1 at 25 : 75 from 2019, version 2 at 55 : 45 from 2024-10-01 — a loan enrolled
  in 2021 keeps version 1, one enrolled today gets version 2;
* SH-BZJ Shanghai 保证金 (pool-sh@ipx.demo): 80 % parked two months after
  non-performing, paid out once the bank writes the loan off.

The demo bank's defaulted loans are enrolled and claimed on, so every claim state shows:
paid (Zhongshan, Shenzhen at its cap, Shanghai 25 %), rejected and filed again (Dongguan),
parked (保证金). Recoveries — licence fees, royalties, a settlement — are recorded as the
operator records them (market.pools.bank.record_receipt) and routed through the
waterfall, producing payouts; some are marked received, one receipt is reversed. A bank
statement CSV for the Zhongshan pool is written to reconcile, with one line matching, one
amount mismatch, one reference typo and one unknown transfer; its references come from
the payouts generated here, so it is written at seed time.

Every step is the command the person would run — the pool manager, the bank, the
operator — at an instant in the past, so the history reads like a real one. Seeding again
finds ZS-RCF and adds nothing (the statement is written again only if its file is missing).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from market.accounts.services import load_viewer
from market.cases.policy import CHINA
from market.cases.services import china_today
from market.clock import FrozenClock
from market.commands import SYSTEM, Actor, Command, Context, run
from market.db import Conn
from market.money import format_cny
from market.pools import bank, dashboard, services
from market.pools.rules import parse_rule

In = TypeVar("In")
Out = TypeVar("Out")

STATEMENT_NAME = "demo-statement.csv"
BANK_EMAIL = "bank@ipx.demo"
OPERATOR_EMAIL = "operator@ipx.demo"
M = 100_000_000  # CNY 1 m in fen

ZHONGSHAN: dict[str, Any] = {
    "shares": [
        {"name": "fund", "weight": 54},
        {"name": "bank", "weight": 26},
        {"name": "insurer", "weight": 16},
        {"name": "evaluator", "weight": 4},
    ],
    "timing": "after_loss",
}
SHENZHEN: dict[str, Any] = {
    "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
    "cap_per_loan_fen": 2 * M,
}
DONGGUAN: dict[str, Any] = {
    "shares": [{"name": "fund", "weight": 0}, {"name": "bank", "weight": 1}],
    "tiers": [
        {"principal_up_to_fen": 1 * M, "rate_bp": 8000},
        {"principal_up_to_fen": 3 * M, "rate_bp": 6000},
        {"principal_up_to_fen": 5 * M, "rate_bp": 5000},
        {"principal_up_to_fen": None, "rate_bp": 3000},
    ],
    "aggregate_limit_bp": 400,
}
SHANGHAI_V1: dict[str, Any] = {
    "shares": [{"name": "fund", "weight": 25}, {"name": "bank", "weight": 75}],
    "timing": "advance",
    "wait_days": 90,
}
SHANGHAI_V2: dict[str, Any] = {
    "shares": [{"name": "fund", "weight": 55}, {"name": "bank", "weight": 45}],
    "timing": "advance",
    "wait_days": 90,
}
SHANGHAI_DEPOSIT: dict[str, Any] = {
    "shares": [{"name": "fund", "weight": 80}, {"name": "bank", "weight": 20}],
    "timing": "parked",
    "wait_months": 2,
}

# (code, manager's e-mail, name, name_en, capital fen, [(effective from, rule, note)])
POOLS: list[tuple[str, str, str, str, int, list[tuple[date, dict[str, Any], str]]]] = [
    (
        "ZS-RCF",
        "pool@ipx.demo",
        "中山市知识产权质押融资风险补偿资金池",
        "Zhongshan IP pledge risk compensation pool",
        50 * M,
        [(date(2020, 1, 1), ZHONGSHAN, "基金 54%、银行 26%、保险 16%、评估 4%")],
    ),
    (
        "SZ-RCF",
        "pool-sz@ipx.demo",
        "深圳市知识产权质押融资风险补偿资金池",
        "Shenzhen IP pledge risk compensation pool",
        100 * M,
        [(date(2019, 1, 1), SHENZHEN, "基金与银行 1:1，单笔最高 200 万元")],
    ),
    (
        "DG-RCF",
        "pool-dg@ipx.demo",
        "东莞市知识产权质押融资风险补偿基金",
        "Dongguan IP pledge risk compensation fund",
        200 * M,
        [(date(2019, 1, 1), DONGGUAN, "分级补偿 80/60/50/30%，限额为备案本金的 4%")],
    ),
    (
        "SH-QBC",
        "pool-sh@ipx.demo",
        "上海市知识产权质押融资前补偿资金池",
        "Shanghai IP pledge advance compensation pool",
        300 * M,
        [
            (date(2019, 1, 1), SHANGHAI_V1, "不良满 90 天前补偿净损失的 25%"),
            (date(2024, 10, 1), SHANGHAI_V2, "2024 年 10 月起提高至 55%，取消不良率门槛"),
        ],
    ),
    (
        "SH-BZJ",
        "pool-sh@ipx.demo",
        "上海市知识产权质押融资保证金",
        "Shanghai IP pledge guarantee deposit",
        100 * M,
        [(date(2019, 1, 1), SHANGHAI_DEPOSIT, "不良满 2 个月存入净损失的 80%，核销后兑付")],
    ),
]

# (loan no, pool code, enrolled on (None: today), renewal)
ENROLMENTS: list[tuple[str, str, date | None, bool]] = [
    ("ZS-ZGC-2022-1205", "ZS-RCF", date(2022, 12, 6), False),
    ("SZ-ZGC-2021-0912", "SZ-RCF", date(2021, 9, 13), False),
    ("DG-ZGC-2023-0089", "DG-RCF", date(2023, 1, 10), False),
    ("WH-ZGC-2021-0316", "SH-QBC", date(2021, 3, 17), False),  # keeps version 1 (25 %)
    ("HZ-ZGC-2022-0561", "SH-QBC", None, True),  # enrolled today: version 2 (55 %)
    ("BJ-ZGC-2021-0433", "SH-BZJ", date(2021, 5, 1), False),
]


@dataclass
class DemoPools:
    pools: int
    claims: int
    receipts: int
    statement: Path | None


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), CHINA)


async def _user(conn: Conn, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.id AS user_id, u.org_id FROM users u WHERE u.email = $1", email
    )


async def seed_demo_pools(pool: asyncpg.Pool, now: datetime, data_dir: Path) -> DemoPools | None:
    """Seed the pools demo once; returns what it made (None when the demo bank, its
    loans or the pool organisations are missing)."""
    path = data_dir / "demo" / STATEMENT_NAME
    async with pool.acquire() as conn:
        if await conn.fetchval("SELECT 1 FROM pools WHERE code = 'ZS-RCF'"):
            if not path.exists():
                await _write_statement(conn, now, path)
            return DemoPools(pools=0, claims=0, receipts=0, statement=path)
        people = {
            email: await _user(conn, email)
            for email in {BANK_EMAIL, OPERATOR_EMAIL} | {p[1] for p in POOLS}
        }
        if any(v is None for v in people.values()):
            return None
        the_bank = people[BANK_EMAIL]
        assert the_bank is not None
        loans = {
            r["loan_no"]: r
            for r in await conn.fetch(
                "SELECT l.id, l.loan_no, c.id AS case_id FROM loans l"
                " LEFT JOIN disposal_cases c ON c.loan_id = l.id AND c.status = 'open'"
                " WHERE l.bank_org_id = $1",
                the_bank["org_id"],
            )
        }
        if any(e[0] not in loans for e in ENROLMENTS):
            return None
    actors = {}
    for email, row in people.items():
        assert row is not None
        viewer = await load_viewer(pool, row["user_id"])
        assert viewer is not None
        actors[email] = Actor.of(viewer)
    made = await _seed(pool, now, actors, loans)
    async with pool.acquire() as conn:
        await _write_statement(conn, now, path)
    made.statement = path
    return made


async def _seed(
    db: asyncpg.Pool,
    now: datetime,
    actors: dict[str, Actor],
    loans: dict[str, asyncpg.Record],
) -> DemoPools:
    today = china_today(now)

    def ago(days: int, hour: int = 10) -> datetime:
        return _at(today - timedelta(days=days), hour)

    async def do(cmd: Command[In, Out], data: In, at: datetime, actor: Actor) -> Out:
        return await run(cmd, data, ctx=Context(pool=db, clock=FrozenClock(at)), actor=actor)

    the_bank, op = actors[BANK_EMAIL], actors[OPERATOR_EMAIL]
    pools: dict[str, tuple[int, Actor]] = {}
    for code, email, name, name_en, capital, versions in POOLS:
        manager = actors[email]
        first_from, first_rule, _note = versions[0]
        made = await do(
            services.create_pool,
            services.NewPool(
                org_id=manager.org,
                code=code,
                name=name,
                name_en=name_en,
                capital_fen=capital,
                rule=parse_rule(first_rule),
                effective_from=first_from,
            ),
            _at(first_from - timedelta(days=1)),
            SYSTEM,
        )
        for effective_from, rule, note in versions[1:]:
            await do(
                dashboard.add_rule_version,
                dashboard.AddRuleVersion(
                    pool_id=made.id, rule=rule, effective_from=effective_from, note=note
                ),
                _at(effective_from - timedelta(days=14)),
                manager,
            )
        pools[code] = (made.id, manager)
    for loan_no, code, on, renewal in ENROLMENTS:
        await do(
            bank.enrol_loan,
            bank.EnrolIn(loan_id=loans[loan_no]["id"], pool_code=code, renewal=renewal),
            _at(on) if on else now,
            the_bank,
        )

    async def write_off(loan_no: str, at: datetime) -> None:
        data = bank.WriteOff(loan_id=loans[loan_no]["id"], written_off_on=china_today(at))
        await do(bank.write_off, data, at, the_bank)

    async def claim(loan_no: str, at: datetime) -> int:
        return (await do(bank.file_claim, loans[loan_no]["id"], at, the_bank)).id

    async def decide(code: str, claim_id: int, at: datetime, reason: str = "") -> None:
        data = dashboard.DecideClaim(
            claim_id=claim_id, decision="reject" if reason else "approve", reason=reason
        )
        await do(dashboard.decide_claim, data, at, pools[code][1])

    async def receive(
        loan_no: str,
        kind: bank.ManualKind,
        reference: str,
        fen: int,
        at: datetime,
        commission: int = 0,
    ) -> bank.ReceiptOut | None:
        case_id = loans[loan_no]["case_id"]
        if case_id is None:
            return None
        data = bank.ManualReceipt(
            case_id=case_id,
            kind=kind,
            reference=reference,
            amount_fen=fen,
            commission_fen=commission,
        )
        return (await do(bank.record_receipt, data, at, op)).receipt

    async def settle(receipt: bank.ReceiptOut | None, at: datetime) -> None:
        """The bank's and the pool's transfers of a receipt arrived."""
        if receipt is None:
            return
        for payout in receipt.payouts:
            if payout.payee_kind in ("bank", "pool"):
                async with db.acquire() as conn, conn.transaction():
                    await services.mark_payout_received(conn, at=at, payout_id=payout.id)

    # Zhongshan: written off, claim paid (54 % fund, 16 % insurer, 4 % evaluator); then the
    # IP is licensed back to the pledgor (反向许可): a licence fee and quarterly royalties.
    zs_case = loans["ZS-ZGC-2022-1205"]["case_id"]
    await write_off("ZS-ZGC-2022-1205", ago(62))
    await decide("ZS-RCF", await claim("ZS-ZGC-2022-1205", ago(60)), ago(57))
    if zs_case is not None:
        cost = bank.CaseCost(
            case_id=zs_case,
            kind="appraisal",
            amount_fen=3_000_000,
            memo="中和资产评估 反向许可评估费",
        )
        await do(bank.record_case_cost, cost, ago(56), the_bank)
    fee = await receive(
        "ZS-ZGC-2022-1205", "licence_fee", "LIC-ZS-2025-001", 60_000_000, ago(45), 3_000_000
    )
    await settle(fee, ago(43))
    await receive("ZS-ZGC-2022-1205", "royalty", "ROY-ZS-2025Q3", 8_000_000, ago(30))
    await receive("ZS-ZGC-2022-1205", "royalty", "ROY-ZS-2025Q4", 9_500_000, ago(20))
    await receive("ZS-ZGC-2022-1205", "royalty", "ROY-ZS-2026Q1", 12_000_000, ago(8))

    # Shenzhen: written off, 50 % of the net loss capped at CNY 2 m; a settlement arrives
    # and is paid out; a second transfer bounced and is reversed.
    await write_off("SZ-ZGC-2021-0912", ago(85))
    await decide("SZ-RCF", await claim("SZ-ZGC-2021-0912", ago(80)), ago(76))
    settlement = await receive("SZ-ZGC-2021-0912", "other", "SET-SZ-2025-001", 150_000_000, ago(35))
    await settle(settlement, ago(32))
    bounced = await receive("SZ-ZGC-2021-0912", "other", "SET-SZ-2025-002", 5_000_000, ago(15))
    if bounced is not None:
        await do(
            bank.reverse_receipt,
            bank.ReverseReceipt(receipt_id=bounced.id, reason="退票：付款行退回"),
            ago(13),
            op,
        )

    # Dongguan: tier 30 % for a CNY 7 m loan, limited to 4 % of enrolled principal;
    # the first claim is rejected for missing papers, the second waits for a decision.
    await write_off("DG-ZGC-2023-0089", ago(50))
    await decide(
        "DG-RCF",
        await claim("DG-ZGC-2023-0089", ago(48)),
        ago(40),
        reason="核销证明材料不全：缺少董事会核销决议",
    )
    await claim("DG-ZGC-2023-0089", ago(3))

    # Shanghai 前补偿: version 1 (25 %) in advance, before any write-off; a royalty later
    # returns part of it to the pool.
    await decide("SH-QBC", await claim("WH-ZGC-2021-0316", ago(95)), ago(92))
    await receive("WH-ZGC-2021-0316", "royalty", "ROY-WH-2025-001", 20_000_000, ago(12))

    # Shanghai 保证金: 80 % parked until the bank writes the loan off.
    await decide("SH-BZJ", await claim("BJ-ZGC-2021-0433", ago(28)), ago(25))

    async with db.acquire() as conn:
        claims = await conn.fetchval("SELECT count(*) FROM compensation_claims")
        receipts = await conn.fetchval("SELECT count(*) FROM receipts")
    return DemoPools(pools=len(POOLS), claims=claims, receipts=receipts, statement=None)


# --- the statement to reconcile -------------------------------------------------------------


def _typo(reference: str) -> str:
    """One character mistyped, as a clerk would: a look-alike in place of one letter."""
    swaps = {"8": "B", "B": "8", "5": "S", "2": "Z", "Z": "2", "0": "O", "6": "G", "G": "6"}
    chars = list(reference)
    for i in range(len(chars) - 1, 1, -1):
        if chars[i] in swaps:
            chars[i] = swaps[chars[i]]
            return "".join(chars)
    chars[-1] = "X" if chars[-1] != "X" else "Y"
    return "".join(chars)


async def _write_statement(conn: Conn, now: datetime, path: Path) -> None:
    """The Zhongshan pool's bank statement: the transfers its account received. Lines:
    matched, amount mismatch, reference typo, unknown."""
    expected = await conn.fetch(
        "SELECT po.reference, po.amount_fen, po.created_at FROM payouts po"
        " JOIN pools p ON p.id = po.pool_id"
        " WHERE p.code = 'ZS-RCF' AND po.payee_kind = 'pool' AND po.status = 'expected'"
        " ORDER BY po.id"
    )
    if len(expected) < 3:
        return
    today = china_today(now)

    def day(at: datetime) -> str:
        return min(china_today(at) + timedelta(days=1), today).isoformat()

    payer = "成都知识产权交易中心"
    m, short, typo = expected[0], expected[1], expected[2]
    rows = [
        (
            day(m["created_at"]),
            format_cny(m["amount_fen"], symbol=False),
            f"{m['reference']} 处置回款",
            payer,
        ),
        (
            day(short["created_at"]),
            format_cny(short["amount_fen"] - 2_000, symbol=False),  # CNY 20 bank charge taken off
            f"{short['reference']} 处置回款",
            payer,
        ),
        (
            day(typo["created_at"]),
            format_cny(typo["amount_fen"], symbol=False),
            f"{_typo(typo['reference'])} 回款",
            payer,
        ),
        (
            (today - timedelta(days=2)).isoformat(),
            "1000000.00",
            f"{today.year}年市级风险补偿资金拨付",
            "中山市财政局",
        ),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["账户名称", "中山市知识产权质押融资风险补偿资金池"])
    writer.writerow(["账号", "44050166012300001234"])
    writer.writerow(["交易日期", "金额", "附言", "对方户名", "流水号"])
    for n, (value_date, amount, reference, counterparty) in enumerate(rows, start=1):
        txn = value_date.replace("-", "") + f"{n:04d}"
        writer.writerow([value_date, amount, reference, counterparty, txn])
    _save(path, ("\ufeff" + out.getvalue()).encode("utf-8"))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
