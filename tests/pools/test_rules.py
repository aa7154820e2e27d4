"""Every pool of docs/rules.md §Guarantee pools, as data: tiers and the aggregate limit
(Dongguan), the principal-loss basis and annual budget (Guangzhou), the guarantee deposit
parked until write-off (Shanghai 保证金), the NPL fuse (Jiangsu), versions that loans keep,
and rules that are refused with the field named."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from market.clock import FrozenClock
from market.errors import Invalid
from market.ledger import balance
from market.pools import bank, dashboard
from market.pools.rule_text import describe_rule, say
from market.pools.rules import (
    ClaimFacts,
    Fuse,
    FuseLoan,
    assess,
    eligible_from,
    fuse_status,
    parse_rule,
)
from tests.pools.scene import (
    SHANGHAI_ADVANCE,
    as_user,
    claim_and_pay,
    make_loan,
    make_pool,
    write_off,
)

M = 100_000_000

DONGGUAN = {
    "shares": [{"name": "fund", "weight": 0}, {"name": "bank", "weight": 1}],
    # 分等级补偿 80 / 60 / 50 / 30 % by enrolled principal (the brackets are the pool's data)
    "tiers": [
        {"principal_up_to_fen": 5 * M, "rate_bp": 8000},
        {"principal_up_to_fen": 10 * M, "rate_bp": 6000},
        {"principal_up_to_fen": 20 * M, "rate_bp": 5000},
        {"principal_up_to_fen": None, "rate_bp": 3000},
    ],
    "aggregate_limit_bp": 400,  # 4 % of enrolled principal
}
GUANGZHOU = {
    "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
    "basis": "principal_loss",
    "annual_budget_fen": 50 * M,
}


def facts(**kw: object) -> ClaimFacts:
    base: dict[str, object] = {
        "today": date(2026, 6, 1),
        "npl_since": date(2026, 1, 1),
        "loss_realised": True,
        "enrolled_principal_fen": 3 * M,
        "claim_costs_fen": 0,
        "claim_interest_fen": 0,
        "claim_principal_fen": 3 * M,
        "recovered_fen": 0,
        "already_compensated_fen": 0,
        "bank_enrolled_principal_fen": 100 * M,
        "bank_compensated_fen": 0,
        "budget_used_fen": 0,
    }
    base.update(kw)
    return ClaimFacts(**base)  # type: ignore[arg-type]


def test_dongguan_tiers_and_the_4_percent_limit() -> None:
    rule = parse_rule(DONGGUAN)
    # A CNY 3 m loan is in the ≤ 5 m tier: 80 % of the 3 m loss.
    assert assess(rule, facts()).amount_fen == 240_000_000
    # A CNY 15 m loan: 50 %.
    big = facts(
        enrolled_principal_fen=15 * M,
        claim_principal_fen=15 * M,
        bank_enrolled_principal_fen=1000 * M,
    )
    assert assess(rule, big).amount_fen == 750_000_000
    # The limit: 4 % of the bank's enrolled CNY 100 m = 4 m, of which 3.5 m used: 500,000 left.
    limited = assess(rule, facts(bank_compensated_fen=350_000_000))
    assert limited.amount_fen == 50_000_000
    [limit] = [line for line in limited.lines if line.key == "pool.line.limit"]
    assert limit.params == {
        "enrolled_fen": 100 * M,
        "limit_bp": 400,
        "limit_fen": 4 * M,
        "used_fen": 350_000_000,
        "left_fen": 50_000_000,
    }
    assert say("en", limit) == (
        "Limit: enrolled principal ¥100,000,000.00 × 4 % = ¥4,000,000.00, "
        "used ¥3,500,000.00, ¥500,000.00 left"
    )
    assert say("zh", limit).startswith("补偿限额：登记本金 ¥100,000,000.00 × 4 %")


def test_guangzhou_principal_loss_and_annual_budget() -> None:
    rule = parse_rule(GUANGZHOU)
    # Claim: costs 100,000, interest 200,000, principal 3 m; CNY 500,000 recovered pays costs
    # and interest first, so the principal loss is 3,000,000 − 200,000 = 2,800,000; 50 %.
    f = facts(claim_costs_fen=10_000_000, claim_interest_fen=20_000_000, recovered_fen=50_000_000)
    a = assess(rule, f)
    assert (a.loss_fen, a.amount_fen) == (280_000_000, 140_000_000)
    # Only CNY 1 m of the year's CNY 50 m budget is left.
    a = assess(rule, facts(budget_used_fen=49 * M))
    assert a.amount_fen == 1 * M
    assert any(say("en", line).startswith("Annual budget ¥50,000,000.00") for line in a.lines)


def test_waiting_periods_count_months_and_days() -> None:
    deposit = parse_rule({**SHANGHAI_ADVANCE, "timing": "parked", "wait_days": 0, "wait_months": 2})
    assert eligible_from(deposit, date(2025, 12, 31)) == date(2026, 2, 28)
    assert eligible_from(parse_rule(SHANGHAI_ADVANCE), date(2026, 1, 5)) == date(2026, 4, 5)
    early = assess(deposit, facts(npl_since=date(2026, 4, 2), today=date(2026, 6, 1)))
    assert not early.eligible and early.refusal == "claim_deposit_waiting"
    assert early.lines[-1].params == {"from_date": "2026-06-02"}
    assert "2026-06-02" in say("zh", early.lines[-1]) and "2026-06-02" in say("en", early.lines[-1])


def test_jiangsu_fuse() -> None:
    fuse = Fuse()  # 3 %, 30 % renewable, renewals at 110 %
    healthy = fuse_status(
        fuse,
        [
            FuseLoan(balance_fen=98 * M, non_performing=False, renewal=False),
            FuseLoan(balance_fen=2 * M, non_performing=True, renewal=False),
        ],
    )
    assert (healthy.ratio_bp, healthy.tripped, healthy.renewable_fen) == (200, False, None)
    # 2.8 m bad of which renewed: 2.8 × 1.1 = 3.08 over 100.28 weighted → 3.07 %: tripped.
    loans = [
        FuseLoan(balance_fen=97_200_000_00, non_performing=False, renewal=False),
        FuseLoan(balance_fen=2_800_000_00, non_performing=True, renewal=True),
    ]
    status = fuse_status(fuse, loans)
    assert status.tripped and status.ratio_bp == 307
    # 30 % of the 100 m balance may be renewed; 2.8 m is: 27.2 m left.
    assert status.renewable_fen == 30 * M - 2_800_000_00
    assert say("en", status.lines[0]) == (
        "NPL ratio 3.07 % ≥ fuse 3 %: renewals limited to 30 % of the balance, ¥27,200,000.00 left"
    )


def test_a_rule_reads_aloud_in_one_language_with_the_parties_named() -> None:
    rule = parse_rule(
        {
            "shares": [
                {"name": "fund", "weight": 54},
                {"name": "bank", "weight": 26},
                {"name": "insurer", "weight": 16},
                {"name": "surveyor", "weight": 4, "label": "测绘公司"},
            ],
            "timing": "parked",
            "wait_months": 2,
            "wait_days": 10,
        }
    )
    zh = [say("zh", line) for line in describe_rule(rule)]
    en = [say("en", line) for line in describe_rule(rule)]
    assert zh[0] == "损失分担 资金池 54 : 银行 26 : 保险公司 16 : 测绘公司 4（资金池 54/100）"
    assert (
        en[0] == "Loss shared pool 54 : bank 26 : insurer 16 : 测绘公司 4 (the pool bears 54/100)"
    )
    assert "2 个月零 10 天" in zh[-1] and "2 months and 10 days" in en[-1]
    # no internal party name and no English in the Chinese reading
    assert not any("fund" in t or "insurer" in t or "Basis" in t for t in zh)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"shares": [{"name": "bank", "weight": 1}]}, "shares"),
        (
            {
                "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
                "cap_per_loan_fen": -1,
            },
            "cap_per_loan_fen",
        ),
        (
            {
                "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
                "timing": "advance",
            },
            "wait_days",
        ),
        ({**DONGGUAN, "tiers": [{"principal_up_to_fen": 5 * M, "rate_bp": 8000}]}, "tiers"),
        (
            {
                "shares": [{"name": "fund", "weight": 1}, {"name": "bank", "weight": 1}],
                "colour": "red",
            },
            "colour",
        ),
    ],
)
def test_bad_rules_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_rule(raw)
    assert info.value.field is not None and info.value.field.startswith(field)


async def test_loans_keep_the_rule_they_were_enrolled_under(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(
        pool,
        clock.now(),
        {
            **SHANGHAI_ADVANCE,
            "shares": [{"name": "fund", "weight": 25}, {"name": "bank", "weight": 75}],
        },
    )
    old = await make_loan(
        pool, clock.now(), principal_fen=1 * M, default_date=date(2025, 6, 1), enrol_in=sh
    )
    # Version 2 (55 %, as Shanghai from October 2024) takes effect today.
    v2 = await as_user(
        pool,
        clock.now(),
        sh.user_id,
        dashboard.add_rule_version,
        dashboard.AddRuleVersion(
            pool_id=sh.pool_id,
            rule=SHANGHAI_ADVANCE,
            effective_from=date(2026, 1, 5),
            note="2024年10月 提升至55%",
        ),
    )
    assert v2.version == 2
    # Enrolled today, under version 2; it defaults tomorrow (enrolment precedes the
    # default) and its claim waits the rule's 90 days.
    new = await make_loan(
        pool, clock.now(), principal_fen=1 * M, default_date=date(2026, 1, 6), enrol_in=sh
    )
    clock.advance(days=95)
    assert (await claim_and_pay(pool, clock.now(), old, sh)).amount_fen == 25_000_000
    assert (await claim_and_pay(pool, clock.now(), new, sh)).amount_fen == 55_000_000
    with pytest.raises(asyncpg.RaiseError, match="never edited"):
        await pool.execute("UPDATE pool_rule_versions SET note = 'x' WHERE id = $1", v2.id)


async def test_guarantee_deposit_is_parked_until_the_write_off(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    rule = {
        "shares": [{"name": "fund", "weight": 80}, {"name": "bank", "weight": 20}],
        "timing": "parked",
        "wait_months": 2,
    }
    p = await make_pool(pool, clock.now(), rule)
    loan = await make_loan(
        pool, clock.now(), principal_fen=1 * M, default_date=date(2025, 10, 1), enrol_in=p
    )
    claim = await claim_and_pay(pool, clock.now(), loan, p)
    assert (claim.status, claim.amount_fen) == ("parked", 80_000_000)
    assert await balance(pool, f"pool:{p.pool_id}:parked") == 80_000_000
    # Parked money is not yet borne: a receipt now goes to the bank alone.
    assert (
        await pool.fetchval("SELECT count(*) FROM claim_shares WHERE claim_id = $1", claim.id) == 1
    )
    released = await write_off(pool, clock.now(), loan, date(2026, 1, 4))
    assert released.released_claims == 1
    assert (
        await pool.fetchval("SELECT status FROM compensation_claims WHERE id = $1", claim.id)
        == "paid"
    )
    assert await balance(pool, f"pool:{p.pool_id}:parked") == 0
    assert await balance(pool, f"pool:{p.pool_id}:recoverable") == 80_000_000


async def test_a_rule_naming_an_unknown_organisation_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    rule = {
        "shares": [
            {"name": "fund", "weight": 50},
            {"name": "bank", "weight": 30},
            {"name": "insurer", "weight": 20, "org_id": 987654},
        ]
    }
    with pytest.raises(Invalid) as info:
        await as_user(
            pool,
            clock.now(),
            sh.user_id,
            dashboard.add_rule_version,
            dashboard.AddRuleVersion(
                pool_id=sh.pool_id, rule=rule, effective_from=date(2027, 1, 1)
            ),
        )
    assert info.value.field == "rule.shares[2].org_id"
    assert (info.value.code, info.value.params) == ("rule_org_unknown", {"org_id": 987654})
    assert await pool.fetchval("SELECT count(*) FROM pool_rule_versions") == 1


async def test_a_write_off_before_the_default_is_refused(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    loan = await make_loan(
        pool, clock.now(), principal_fen=1 * M, default_date=date(2025, 10, 1), enrol_in=sh
    )
    with pytest.raises(Invalid) as info:
        await write_off(pool, clock.now(), loan, date(1, 1, 1))
    assert info.value.field == "written_off_on"
    assert (info.value.code, info.value.params) == (
        "write_off_before_default",
        {"default_date": "2025-10-01"},
    )
    assert await pool.fetchval("SELECT written_off_on FROM loans WHERE id=$1", loan.loan_id) is None


def test_an_explanation_stored_as_words_reads_in_one_language() -> None:
    from market.pools.bank import lines_of

    lines = lines_of(
        [
            {"zh": "资金池应补偿 ¥1.00", "en": "The pool owes ¥1.00"},
            {"key": "pool.line.owed", "params": {"amount_fen": 100}},
        ]
    )
    assert [say("zh", line) for line in lines] == ["资金池应补偿 ¥1.00"] * 2
    assert [say("en", line) for line in lines] == ["The pool owes ¥1.00"] * 2


async def test_rule_enrolment_precedes_the_default(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    """A loan that defaulted (by its default date, or classified non-performing without
    one) cannot be enrolled in a pool: refused naming the loan, nothing written
    (docs/rules.md §Guarantee pools). A loan that defaults tomorrow still can be."""
    sh = await make_pool(pool, clock.now(), SHANGHAI_ADVANCE)
    late = await make_loan(pool, clock.now(), principal_fen=M, default_date=date(2025, 12, 1))
    npl = await make_loan(pool, clock.now(), principal_fen=M, default_date=None)
    await pool.execute("UPDATE loans SET npl_class = 'doubtful' WHERE id = $1", npl.loan_id)
    for loan in (late, npl):
        with pytest.raises(Invalid) as err:
            await as_user(
                pool,
                clock.now(),
                loan.bank_user,
                bank.enrol_loan,
                bank.EnrolIn(loan_id=loan.loan_id, pool_code=sh.code),
            )
        assert (err.value.code, err.value.field) == ("loan_defaulted_before_enrolment", "loan_id")
    assert await pool.fetchval("SELECT count(*) FROM pool_enrolments") == 0
    performing = await make_loan(
        pool, clock.now(), principal_fen=M, default_date=date(2026, 1, 6), enrol_in=sh
    )
    assert await pool.fetchval(
        "SELECT enrolled_on FROM pool_enrolments WHERE loan_id = $1", performing.loan_id
    ) == date(2026, 1, 5)
