"""Pool rules as data, and what a claim under them is worth (docs/rules.md §Guarantee
pools).

Pure: no database, no clock. A `PoolRule` is the JSON document stored per rule version;
every real pool the rules name is one of these documents, not code:

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
(basis, share or tier, cap, aggregate limit, annual budget) as catalog keys and numbers, so
a bank and a pool manager read the same reasoning, each in their language. When nothing
can be claimed, `refusal` is the problem code a filing is refused with, and the last line
says why in the same words. `fuse_status()` evaluates a bank's NPL fuse.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from market.collateral.rules import add_months
from market.errors import Invalid
from market.money import MAX_FEN, allocate
from market.pools.models import Line

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
    # What people call a party the catalog has no word for (`pool.party.<name>`).
    label: str = ""


class Tier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Loans with enrolled principal up to `principal_up_to_fen` get `rate_bp` (Dongguan)."""

    principal_up_to_fen: Fen | None
    rate_bp: Rate


class Fuse(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Jiangsu 苏知贷: at an NPL ratio of 3 % only 30 % of the balance may be renewed, and
    renewed loans count at 110 % in the ratio (docs/rules.md §Guarantee pools)."""

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
    """Turn stored or submitted JSON into a validated rule; Invalid names the field by its
    path in the rule (`shares[0].weight`; `rule` for the document as a whole)."""
    from market.problems import validation

    try:
        rule = msgspec.convert(raw, PoolRule)
    except msgspec.ValidationError as exc:
        field, code, params = validation(str(exc))
        raise Invalid(code, field=field or "rule", **params) from exc
    validate(rule)
    return rule


def validate(rule: PoolRule) -> None:
    names = [p.name for p in rule.shares]
    if len(set(names)) != len(names):
        raise Invalid("rule_party_twice", field="shares")
    if names.count(FUND) != 1 or names.count(BANK) != 1:
        raise Invalid("rule_needs_fund_and_bank", field="shares")
    if not rule.tiers and sum(p.weight for p in rule.shares) == 0:
        raise Invalid("rule_weights_all_zero", field="shares")
    if rule.tiers:
        limits = [t.principal_up_to_fen for t in rule.tiers]
        if limits[-1] is not None or any(x is None for x in limits[:-1]):
            raise Invalid("rule_tiers_last_open", field="tiers")
        bounded = [x for x in limits if x is not None]
        if bounded != sorted(set(bounded)):
            raise Invalid("rule_tiers_not_ascending", field="tiers")
    if rule.timing != "after_loss" and rule.wait_days == 0 and rule.wait_months == 0:
        raise Invalid("rule_needs_waiting_period", field="wait_days", timing=rule.timing)


def dump_rule(rule: PoolRule) -> dict[str, object]:
    out: dict[str, object] = msgspec.to_builtins(rule)
    return out


def shares_param(rule: PoolRule) -> list[dict[str, Any]]:
    """A rule's parties and weights as a line's `shares` parameter (rendered as a ratio)."""
    return [
        {"party": p.name, "weight": p.weight, **({"label": p.label} if p.label else {})}
        for p in rule.shares
    ]


# --- a claim's worth ---------------------------------------------------------------------


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
    # Why nothing can be claimed now: a problem code (the last line says it in words).
    refusal: str | None = None


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


def assess(rule: PoolRule, facts: ClaimFacts) -> Assessment:
    lines: list[Line] = []

    def refuse(code: str, **params: Any) -> Assessment:
        lines.append(Line(key=f"problem.{code}", params=params))
        return Assessment(
            eligible=False,
            loss_fen=0,
            amount_fen=0,
            parties=(),
            lines=tuple(lines),
            refusal=code,
        )

    if facts.npl_since is None:
        return refuse("claim_loan_not_defaulted")
    if rule.timing == "after_loss":
        if not facts.loss_realised:
            return refuse("claim_loss_not_realised")
    else:
        ready = eligible_from(rule, facts.npl_since)
        if facts.today < ready:
            code = "claim_advance_waiting" if rule.timing == "advance" else "claim_deposit_waiting"
            return refuse(code, from_date=ready.isoformat())

    loss = loss_basis(rule, facts)
    basis = "pool.line.net_loss" if rule.basis == "net_loss" else "pool.line.principal_loss"
    lines.append(Line(key=basis, params={"loss_fen": loss}))

    fund_index = next(i for i, p in enumerate(rule.shares) if p.name == FUND)
    if rule.tiers:
        tier = next(
            t
            for t in rule.tiers
            if t.principal_up_to_fen is None
            or facts.enrolled_principal_fen <= t.principal_up_to_fen
        )
        fund_part, others_part = allocate(loss, [tier.rate_bp, BP - tier.rate_bp])
        step = {
            "principal_fen": facts.enrolled_principal_fen,
            "rate_bp": tier.rate_bp,
            "amount_fen": fund_part,
        }
        if tier.principal_up_to_fen is None:
            lines.append(Line(key="pool.line.tier_top", params=step))
        else:
            step["up_to_fen"] = tier.principal_up_to_fen
            lines.append(Line(key="pool.line.tier", params=step))
        rest = [(i, p) for i, p in enumerate(rule.shares) if i != fund_index]
        weights = [p.weight for _, p in rest]
        split = allocate(others_part, weights) if sum(weights) else [0] * len(rest)
        parts = {i: fen for (i, _), fen in zip(rest, split, strict=True)}
        parts[fund_index] = fund_part
    else:
        split = allocate(loss, [p.weight for p in rule.shares])
        parts = dict(enumerate(split))
        lines.append(
            Line(
                key="pool.line.shares",
                params={"shares": shares_param(rule), "amount_fen": parts[fund_index]},
            )
        )

    amount = parts[fund_index]
    if facts.already_compensated_fen:
        amount = max(0, amount - facts.already_compensated_fen)
        lines.append(
            Line(
                key="pool.line.less_paid",
                params={"paid_fen": facts.already_compensated_fen, "amount_fen": amount},
            )
        )
    if rule.cap_per_loan_fen is not None:
        room = max(0, rule.cap_per_loan_fen - facts.already_compensated_fen)
        if amount > room:
            amount = room
            lines.append(
                Line(
                    key="pool.line.cap",
                    params={"cap_fen": rule.cap_per_loan_fen, "amount_fen": amount},
                )
            )
    if rule.aggregate_limit_bp is not None:
        limit = facts.bank_enrolled_principal_fen * rule.aggregate_limit_bp // BP
        room = max(0, limit - facts.bank_compensated_fen)
        lines.append(
            Line(
                key="pool.line.limit",
                params={
                    "enrolled_fen": facts.bank_enrolled_principal_fen,
                    "limit_bp": rule.aggregate_limit_bp,
                    "limit_fen": limit,
                    "used_fen": facts.bank_compensated_fen,
                    "left_fen": room,
                },
            )
        )
        amount = min(amount, room)
    if rule.annual_budget_fen is not None:
        room = max(0, rule.annual_budget_fen - facts.budget_used_fen)
        lines.append(
            Line(
                key="pool.line.budget",
                params={
                    "budget_fen": rule.annual_budget_fen,
                    "used_fen": facts.budget_used_fen,
                    "left_fen": room,
                },
            )
        )
        amount = min(amount, room)
    if rule.timing == "parked":
        lines.append(Line(key="pool.line.parked", params={"amount_fen": amount}))
    lines.append(Line(key="pool.line.owed", params={"amount_fen": amount}))
    others = tuple(
        (p.name, p.org_id, parts[i])
        for i, p in enumerate(rule.shares)
        if p.name not in (FUND, BANK) and parts[i] > 0
    )
    return Assessment(
        eligible=amount > 0,
        loss_fen=loss,
        amount_fen=amount,
        parties=others,
        lines=tuple(lines),
        refusal=None if amount > 0 else "claim_nothing_due",
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
    room: int | None
    if tripped:
        room = max(0, balance * fuse.renewable_share_bp // BP - renewed)
        line = Line(
            key="pool.line.fuse_tripped",
            params={
                "ratio_bp": ratio,
                "threshold_bp": fuse.npl_threshold_bp,
                "share_bp": fuse.renewable_share_bp,
                "left_fen": room,
            },
        )
    else:
        room = None
        line = Line(
            key="pool.line.fuse_ok",
            params={"ratio_bp": ratio, "threshold_bp": fuse.npl_threshold_bp},
        )
    return FuseStatus(
        ratio_bp=ratio, tripped=tripped, renewed_fen=renewed, renewable_fen=room, lines=(line,)
    )
