"""A pool's compensation rule read aloud: `describe_rule` renders a `PoolRule` one line
per clause, each a `Text` in both languages (the rule-version pages and API show it).
Pure: no database.
"""

from __future__ import annotations

import msgspec

from market.money import format_cny
from market.pools.rules import FUND, PoolRule


class Text(msgspec.Struct, frozen=True):
    zh: str
    en: str


def _pct(bp: int) -> str:
    return f"{bp / 100:g} %"


def describe_rule(rule: PoolRule) -> list[Text]:
    """The rule read aloud, one line per clause, in both languages."""
    out: list[Text] = []
    ratio = " : ".join(f"{p.label or p.name} {p.weight}" for p in rule.shares)
    if rule.tiers:
        tiers = ", ".join(
            (
                f"≤ {format_cny(t.principal_up_to_fen)}"
                if t.principal_up_to_fen is not None
                else "以上"
            )
            + f" {_pct(t.rate_bp)}"
            for t in rule.tiers
        )
        tiers_en = ", ".join(
            (
                f"up to {format_cny(t.principal_up_to_fen)}"
                if t.principal_up_to_fen is not None
                else "above"
            )
            + f" {_pct(t.rate_bp)}"
            for t in rule.tiers
        )
        out.append(
            Text(
                f"按登记本金分级补偿：{tiers}；其余按 {ratio} 分担",
                f"Tiered by enrolled principal: {tiers_en}; the rest shared {ratio}",
            )
        )
    else:
        fund = next(p for p in rule.shares if p.name == FUND)
        total = sum(p.weight for p in rule.shares)
        out.append(
            Text(
                f"损失分担 {ratio}（资金池 {fund.weight}/{total}）",
                f"Loss shared {ratio} (the pool bears {fund.weight}/{total})",
            )
        )
    if rule.basis == "principal_loss":
        out.append(Text("补偿基数：本金损失", "Basis: the principal loss"))
    else:
        out.append(
            Text("补偿基数：净损失（债权减回收）", "Basis: the net loss (claim less recoveries)")
        )
    if rule.cap_per_loan_fen is not None:
        c = format_cny(rule.cap_per_loan_fen)
        out.append(Text(f"单笔贷款补偿上限 {c}", f"At most {c} per loan"))
    if rule.aggregate_limit_bp is not None:
        p = _pct(rule.aggregate_limit_bp)
        out.append(
            Text(
                f"补偿总额不超过该银行登记本金的 {p}",
                f"Compensation to a bank at most {p} of its enrolled principal",
            )
        )
    if rule.annual_budget_fen is not None:
        b = format_cny(rule.annual_budget_fen)
        out.append(Text(f"年度补偿预算 {b}", f"Annual budget {b}"))
    wait = []
    if rule.wait_months:
        wait.append((f"{rule.wait_months} 个月", f"{rule.wait_months} months"))
    if rule.wait_days:
        wait.append((f"{rule.wait_days} 天", f"{rule.wait_days} days"))
    wait_zh = " ".join(w[0] for w in wait)
    wait_en = " and ".join(w[1] for w in wait)
    if rule.timing == "after_loss":
        out.append(
            Text(
                "损失确定（处置结案或核销）后补偿",
                "Paid once the loss is realised (case closed or written off)",
            )
        )
    elif rule.timing == "advance":
        out.append(
            Text(
                f"前补偿：贷款不良满 {wait_zh} 后，无需核销",
                f"In advance: {wait_en} after the loan turned non-performing, no write-off needed",
            )
        )
    else:
        out.append(
            Text(
                f"保证金：贷款不良满 {wait_zh} 后存入保证金账户，核销完成后兑付",
                f"Guarantee deposit: parked {wait_en} after the loan turned non-performing, "
                "paid out once the write-off completes",
            )
        )
    if rule.max_loan_fen is not None:
        m = format_cny(rule.max_loan_fen)
        out.append(Text(f"单笔贷款不超过 {m} 方可登记", f"Loans up to {m} may be enrolled"))
    if rule.fuse is not None:
        f = rule.fuse
        out.append(
            Text(
                f"熔断：不良率达 {_pct(f.npl_threshold_bp)} 时，续贷不超过余额的 "
                f"{_pct(f.renewable_share_bp)}，续贷按 {_pct(f.renewal_weight_bp)} 计入不良率",
                f"Fuse: at an NPL ratio of {_pct(f.npl_threshold_bp)}, renewals at most "
                f"{_pct(f.renewable_share_bp)} of the balance, renewals counted at "
                f"{_pct(f.renewal_weight_bp)}",
            )
        )
    return out
