"""What a pool rule would pay on sample loans, before it is saved: three defaulted loans
of different sizes and losses, each assessed by the rule's own pure function
(`rules.assess`) as if its waiting period had passed and its loss were realised, the bank
having no other claim. Pure: no database, the day passed in.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import msgspec

from market.pools.rules import BANK, FUND, Assessment, ClaimFacts, PoolRule, assess


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """A defaulted loan: what the bank's claim is made of and what came back already."""

    key: str  # catalog: pool.preview.sample.<key>
    principal_fen: int
    interest_fen: int
    costs_fen: int
    recovered_fen: int


SAMPLES: Final = (
    # a small loan mostly recovered; interest with odd fen, so rounding shows
    Sample(
        key="small",
        principal_fen=50_000_000,
        interest_fen=3_123_457,
        costs_fen=500_000,
        recovered_fen=20_000_000,
    ),
    # a CNY 3 m loan, a third recovered
    Sample(
        key="medium",
        principal_fen=300_000_000,
        interest_fen=18_000_000,
        costs_fen=2_000_000,
        recovered_fen=100_000_000,
    ),
    # a CNY 12 m loan, little recovered
    Sample(
        key="large",
        principal_fen=1_200_000_000,
        interest_fen=90_000_000,
        costs_fen=10_000_000,
        recovered_fen=200_000_000,
    ),
)
# Long enough ago for any waiting period a rule may set (at most 120 months + 3650 days).
_LONG_AGO: Final = timedelta(days=366 * 21)


class SampleOut(msgspec.Struct, frozen=True, kw_only=True):
    sample: Sample
    assessment: Assessment
    enrollable: bool  # within the rule's largest loan (Ningbo: ≤ CNY 3 m)
    pool_fen: int
    others_fen: int  # the other parties that bear the loss (insurer, evaluator…)
    bank_fen: int  # what the bank is left bearing


def facts(sample: Sample, today: date) -> ClaimFacts:
    """The sample as `assess` reads it: the bank's enrolled principal is the three
    samples' together, nothing granted before."""
    return ClaimFacts(
        today=today,
        npl_since=today - _LONG_AGO,
        loss_realised=True,
        enrolled_principal_fen=sample.principal_fen,
        claim_costs_fen=sample.costs_fen,
        claim_interest_fen=sample.interest_fen,
        claim_principal_fen=sample.principal_fen,
        recovered_fen=sample.recovered_fen,
        already_compensated_fen=0,
        bank_enrolled_principal_fen=sum(s.principal_fen for s in SAMPLES),
        bank_compensated_fen=0,
        budget_used_fen=0,
    )


def preview(rule: PoolRule, today: date) -> list[SampleOut]:
    out = []
    for sample in SAMPLES:
        a = assess(rule, facts(sample, today))
        others = sum(fen for name, _, fen in a.parties if name not in (FUND, BANK))
        out.append(
            SampleOut(
                sample=sample,
                assessment=a,
                enrollable=rule.max_loan_fen is None or sample.principal_fen <= rule.max_loan_fen,
                pool_fen=a.amount_fen,
                others_fen=others,
                bank_fen=a.loss_fen - a.amount_fen - others,
            )
        )
    return out
