"""Pool rules as data, and what a claim under them is worth (issue 6; DOMAIN.md "Pools").

Pure: no database, no clock. A `PoolRule` is the JSON document stored per rule version;
every real pool DOMAIN.md lists is one of these documents, not code:

* Zhongshan: shares fund 54 : bank 26 : insurer 16 : evaluator 4;
* Zhuhai: bank 60 : fund 40;
* Shenzhen: fund 1 : bank 1, `cap_per_loan_fen` CNY 2 m;
* Dongguan: `tiers` 80 / 60 / 50 / 30 % by enrolled principal, `aggregate_limit_bp` 4 %
  of the bank's enrolled principal;
* Guangzhou: fund 50 : bank 50 of the *principal* loss (`basis`), `annual_budget_fen`
  CNY 50 m;
* Shanghai 前补偿: `timing` advance, 90 days after non-performing, fund 25 : bank 75
  (version 1) then 55 : 45 (version 2, October 2024);
* Shanghai 保证金: `timing` parked, 2 months after non-performing, fund 80 : bank 20, paid
  out once the write-off completes;
* Jiangsu 苏知贷: fund 80 : bank 20 and an NPL-ratio `fuse` (3 %, 30 % renewable, renewals
  at 110 %).

`assess()` computes what the pool owes on one claim, with one explanation line per step
(basis, share or tier, cap, aggregate limit, annual budget) in both languages, so a bank
and a pool manager read the same reasoning. `fuse_status()` evaluates a bank's NPL fuse.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.collateral.rules import add_months
from market.errors import Invalid
from market.money import MAX_FEN, allocate
from market.money import format_cny as cny

BP = 10_000  # basis points in 100 %
FUND = "fund"  # the pool itself among a rule's parties
BANK = "bank"  # the lending bank

Fen = Annotated[int, Meta(ge=0, le=MAX_FEN)]
Rate = Annotated[int, Meta(ge=0, le=BP)]
PartyName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,29}$")]


class Party(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One bearer of the loss and its weight (Zhongshan's insurer: weight 16)."""

    name: PartyName
    weight: Annotated[int, Meta(ge=0, le=1_000_000)]
    org_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None  # an organisation here
    label: str = ""  # shown to people, e.g. "保险公司 insurer"


class Tier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Loans with enrolled principal up to `principal_up_to_fen` get `rate_bp` (Dongguan)."""

    principal_up_to_fen: Fen | None
    rate_bp: Rate


class Fuse(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Jiangsu 苏知贷: at an NPL ratio of 3 % only 30 % of the balance may be renewed, and
    renewed loans count at 110 % in the ratio (DOMAIN.md)."""

    npl_threshold_bp: Rate = 300
    renewable_share_bp: Rate = 3000
    renewal_weight_bp: Annotated[int, Meta(ge=BP, le=3 * BP)] = 11_000


class PoolRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    shares: tuple[Party, ...]
    tiers: tuple[Tier, ...] = ()
    # net_loss: the whole outstanding claim less recoveries; principal_loss: its principal
    # part only (Guangzhou: "≤ 50 % of principal loss").
    basis: Literal["net_loss", "principal_loss"] = "net_loss"
    cap_per_loan_fen: Fen | None = None
    aggregate_limit_bp: Rate | None = None
    annual_budget_fen: Fen | None = None
    # after_loss: once the loss is realised (case closed or loan written off);
    # advance: paid before write-off, `wait_*` after the loan turned non-performing;
    # parked: like advance, but held in a guarantee deposit until the write-off.
    timing: Literal["after_loss", "advance", "parked"] = "after_loss"
    wait_days: Annotated[int, Meta(ge=0, le=3650)] = 0
    wait_months: Annotated[int, Meta(ge=0, le=120)] = 0
    max_loan_fen: Fen | None = None  # Ningbo: a single loan ≤ CNY 3 m may be enrolled
    fuse: Fuse | None = None


def parse_rule(raw: object) -> PoolRule:
    """Turn stored or submitted JSON into a validated rule; Invalid names the field."""
    try:
        rule = msgspec.convert(raw, PoolRule)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.split("at `$.", 1)[1].rstrip("`") if "at `$." in text else "rule"
        raise Invalid(
            f"资金池补偿规则无效（字段 {field}） / the pool rule is not valid: {text}", field=field
        ) from exc
    validate(rule)
    return rule


def validate(rule: PoolRule) -> None:
    names = [p.name for p in rule.shares]
    if len(set(names)) != len(names):
        raise Invalid(
            "各分担方在分担比例（shares）中只能出现一次 / each party may appear once in shares",
            field="shares",
        )
    if names.count(FUND) != 1 or names.count(BANK) != 1:
        raise Invalid(
            "分担比例（shares）须有且只有一个 'fund'（资金池）和一个 'bank'（银行） / "
            "shares must name exactly one 'fund' and one 'bank'",
            field="shares",
        )
    if not rule.tiers and sum(p.weight for p in rule.shares) == 0:
        raise Invalid(
            "至少一个分担方的分担比例须大于零 / at least one share weight must be positive",
            field="shares",
        )
    if rule.tiers:
        limits = [t.principal_up_to_fen for t in rule.tiers]
        if limits[-1] is not None or any(x is None for x in limits[:-1]):
            raise Invalid(
                "分档（tiers）的本金上限须递增，最后一档不设上限（null） / "
                "tiers need ascending principal limits, the last one open (null)",
                field="tiers",
            )
        bounded = [x for x in limits if x is not None]
        if bounded != sorted(set(bounded)):
            raise Invalid(
                "分档本金上限须严格递增 / tier limits must be strictly ascending", field="tiers"
            )
    if rule.timing != "after_loss" and rule.wait_days == 0 and rule.wait_months == 0:
        raise Invalid(
            "前补偿或保证金方式的补偿须设等待期（wait_days 或 wait_months） / "
            "an advance or parked compensation needs a waiting period (wait_days or wait_months)",
            field="wait_days",
        )


def dump_rule(rule: PoolRule) -> dict[str, object]:
    out: dict[str, object] = msgspec.to_builtins(rule)
    return out


# --- a claim's worth ---------------------------------------------------------------------


class Line(msgspec.Struct, frozen=True):
    zh: str
    en: str


class ClaimFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What `assess()` needs to know about one enrolled loan, loaded by the service."""

    today: date  # Asia/Shanghai
    npl_since: date | None  # when the loan turned non-performing (its default date)
    loss_realised: bool  # the disposal case is closed or the loan is written off
    enrolled_principal_fen: int
    claim_costs_fen: int  # the creditor's claim, Civil Code order: costs, interest, principal
    claim_interest_fen: int
    claim_principal_fen: int
    recovered_fen: int  # applied to the claim so far (the waterfall's claim steps)
    already_compensated_fen: int  # by this pool on this loan
    bank_enrolled_principal_fen: int  # all of this bank's loans in this pool
    bank_compensated_fen: int  # all compensation this pool granted this bank
    budget_used_fen: int  # granted by this pool in the current calendar year


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    eligible: bool
    loss_fen: int
    amount_fen: int  # the pool's part
    parties: tuple[tuple[str, int | None, int], ...]  # (party, org_id, fen) bearing alongside
    lines: tuple[Line, ...]


def eligible_from(rule: PoolRule, npl_since: date) -> date:
    return add_months(npl_since, rule.wait_months) + timedelta(days=rule.wait_days)


def loss_basis(rule: PoolRule, facts: ClaimFacts) -> int:
    """The loss the rule applies to. Recoveries pay the claim in the Civil Code's order —
    costs, then interest, then principal — so the principal loss is what recoveries have
    not reached yet."""
    total = facts.claim_costs_fen + facts.claim_interest_fen + facts.claim_principal_fen
    net = max(0, total - facts.recovered_fen)
    if rule.basis == "net_loss":
        return net
    return min(net, facts.claim_principal_fen)


def _pct(bp: int) -> str:
    return f"{bp / 100:g} %"


def assess(rule: PoolRule, facts: ClaimFacts) -> Assessment:
    lines: list[Line] = []

    def refuse(zh: str, en: str) -> Assessment:
        lines.append(Line(zh, en))
        return Assessment(eligible=False, loss_fen=0, amount_fen=0, parties=(), lines=tuple(lines))

    if facts.npl_since is None:
        return refuse("贷款尚未违约，不能申请补偿。", "The loan has not defaulted: no claim yet.")
    if rule.timing == "after_loss":
        if not facts.loss_realised:
            return refuse(
                "损失尚未确定：处置结案或核销后方可申请。",
                "The loss is not realised yet: close the disposal case or write the loan off"
                " first.",
            )
    else:
        ready = eligible_from(rule, facts.npl_since)
        if facts.today < ready:
            kind = (
                ("前补偿", "advance compensation")
                if rule.timing == "advance"
                else ("保证金", "guarantee deposit")
            )
            return refuse(
                f"{kind[0]}须在贷款不良满等待期后申请：最早 {ready.isoformat()}。",
                f"A {kind[1]} can be claimed once the waiting period after the loan turned "
                f"non-performing has passed: from {ready.isoformat()}.",
            )

    loss = loss_basis(rule, facts)
    if rule.basis == "net_loss":
        lines.append(
            Line(
                f"净损失 {cny(loss)}（债权减已回收）",
                f"Net loss {cny(loss)} (claim less recoveries)",
            )
        )
    else:
        lines.append(Line(f"本金损失 {cny(loss)}", f"Principal loss {cny(loss)}"))

    fund_index = next(i for i, p in enumerate(rule.shares) if p.name == FUND)
    if rule.tiers:
        tier = next(
            t
            for t in rule.tiers
            if t.principal_up_to_fen is None
            or facts.enrolled_principal_fen <= t.principal_up_to_fen
        )
        fund_part, others_part = allocate(loss, [tier.rate_bp, BP - tier.rate_bp])
        bound = "以上" if tier.principal_up_to_fen is None else f"≤ {cny(tier.principal_up_to_fen)}"
        bound_en = (
            "any amount"
            if tier.principal_up_to_fen is None
            else f"up to {cny(tier.principal_up_to_fen)}"
        )
        lines.append(
            Line(
                f"分级补偿：登记本金 {cny(facts.enrolled_principal_fen)}（档位 {bound}）"
                f"补偿 {_pct(tier.rate_bp)} = {cny(fund_part)}",
                f"Tier: enrolled principal {cny(facts.enrolled_principal_fen)} ({bound_en}) → "
                f"{_pct(tier.rate_bp)} = {cny(fund_part)}",
            )
        )
        rest = [(i, p) for i, p in enumerate(rule.shares) if i != fund_index]
        weights = [p.weight for _, p in rest]
        split = allocate(others_part, weights) if sum(weights) else [0] * len(rest)
        parts = {i: fen for (i, _), fen in zip(rest, split, strict=True)}
        parts[fund_index] = fund_part
    else:
        split = allocate(loss, [p.weight for p in rule.shares])
        parts = dict(enumerate(split))
        ratio = " : ".join(f"{p.name} {p.weight}" for p in rule.shares)
        lines.append(
            Line(
                f"分担比例 {ratio}：资金池承担 {cny(parts[fund_index])}",
                f"Shares {ratio}: the pool's part is {cny(parts[fund_index])}",
            )
        )

    amount = parts[fund_index]
    if facts.already_compensated_fen:
        amount = max(0, amount - facts.already_compensated_fen)
        lines.append(
            Line(
                f"扣除本笔贷款已补偿 {cny(facts.already_compensated_fen)} 后为 {cny(amount)}",
                f"Less {cny(facts.already_compensated_fen)} already paid on this loan: "
                f"{cny(amount)}",
            )
        )
    if rule.cap_per_loan_fen is not None:
        room = max(0, rule.cap_per_loan_fen - facts.already_compensated_fen)
        if amount > room:
            amount = room
            lines.append(
                Line(
                    f"单笔上限 {cny(rule.cap_per_loan_fen)}：补偿 {cny(amount)}",
                    f"Cap per loan {cny(rule.cap_per_loan_fen)}: {cny(amount)}",
                )
            )
    if rule.aggregate_limit_bp is not None:
        limit = facts.bank_enrolled_principal_fen * rule.aggregate_limit_bp // BP
        room = max(0, limit - facts.bank_compensated_fen)
        lines.append(
            Line(
                f"补偿限额：登记本金 {cny(facts.bank_enrolled_principal_fen)} × "
                f"{_pct(rule.aggregate_limit_bp)} = "
                f"{cny(limit)}，已用 {cny(facts.bank_compensated_fen)}，尚余 {cny(room)}",
                f"Limit: enrolled principal {cny(facts.bank_enrolled_principal_fen)} × "
                f"{_pct(rule.aggregate_limit_bp)} = {cny(limit)}, "
                f"used {cny(facts.bank_compensated_fen)}, "
                f"{cny(room)} left",
            )
        )
        amount = min(amount, room)
    if rule.annual_budget_fen is not None:
        room = max(0, rule.annual_budget_fen - facts.budget_used_fen)
        lines.append(
            Line(
                f"年度预算 {cny(rule.annual_budget_fen)}，本年已用 {cny(facts.budget_used_fen)}，"
                f"尚余 {cny(room)}",
                f"Annual budget {cny(rule.annual_budget_fen)}, used this year "
                f"{cny(facts.budget_used_fen)}, {cny(room)} left",
            )
        )
        amount = min(amount, room)
    if rule.timing == "parked":
        lines.append(
            Line(
                f"保证金：{cny(amount)} 存入保证金账户，核销完成后兑付",
                f"Guarantee deposit: {cny(amount)} is parked and paid out once the write-off"
                " completes",
            )
        )
    lines.append(Line(f"资金池应补偿 {cny(amount)}", f"The pool owes {cny(amount)}"))
    others = tuple(
        (p.name, p.org_id, parts[i])
        for i, p in enumerate(rule.shares)
        if p.name not in (FUND, BANK) and parts[i] > 0
    )
    return Assessment(
        eligible=amount > 0, loss_fen=loss, amount_fen=amount, parties=others, lines=tuple(lines)
    )


# --- the NPL fuse ---------------------------------------------------------------------------


class FuseLoan(msgspec.Struct, frozen=True, kw_only=True):
    balance_fen: int
    non_performing: bool
    renewal: bool


class FuseStatus(msgspec.Struct, frozen=True, kw_only=True):
    ratio_bp: int  # NPL ratio, renewals weighted
    tripped: bool
    renewed_fen: int
    renewable_fen: int | None  # how much more may be renewed; None: no limit (not tripped)
    lines: tuple[Line, ...]


def fuse_status(fuse: Fuse, loans: list[FuseLoan]) -> FuseStatus:
    """Jiangsu's fuse for one bank: renewed loans weigh `renewal_weight_bp` in both the
    non-performing balance and the total, so renewing bad loans cannot dilute the ratio."""

    def weighted(loan: FuseLoan) -> int:
        return loan.balance_fen * (fuse.renewal_weight_bp if loan.renewal else BP)

    total = sum(weighted(x) for x in loans)
    bad = sum(weighted(x) for x in loans if x.non_performing)
    ratio = bad * BP // total if total else 0
    tripped = ratio >= fuse.npl_threshold_bp
    balance = sum(x.balance_fen for x in loans)
    renewed = sum(x.balance_fen for x in loans if x.renewal)
    if tripped:
        room = max(0, balance * fuse.renewable_share_bp // BP - renewed)
        lines = (
            Line(
                f"不良率 {_pct(ratio)} ≥ 熔断线 {_pct(fuse.npl_threshold_bp)}：续贷不得超过余额的 "
                f"{_pct(fuse.renewable_share_bp)}，尚可续贷 {cny(room)}",
                f"NPL ratio {_pct(ratio)} ≥ fuse {_pct(fuse.npl_threshold_bp)}: renewals "
                "limited to "
                f"{_pct(fuse.renewable_share_bp)} of the balance, {cny(room)} left",
            ),
        )
    else:
        room = None
        lines = (
            Line(
                f"不良率 {_pct(ratio)} 低于熔断线 {_pct(fuse.npl_threshold_bp)}",
                f"NPL ratio {_pct(ratio)} is below the fuse of {_pct(fuse.npl_threshold_bp)}",
            ),
        )
    return FuseStatus(
        ratio_bp=ratio, tripped=tripped, renewed_fen=renewed, renewable_fen=room, lines=lines
    )
