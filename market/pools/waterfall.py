"""The proceeds waterfall: where each fen of a receipt goes (docs/rules.md §The waterfall).

Pure: the service loads a case's `CaseState` (what is still owed to whom), calls `route()`
for one receipt and writes the slices as distributions and one balanced ledger entry.
Every receipt — auction price, fixed-price sale, forfeited deposit, licence fee, royalty —
goes through this one function, in this order:

1. the platform's commission on the receipt (already fixed by the sale's fee);
2. disposal costs someone advanced (appraisal, auction, other), oldest first;
3. the creditor's claim in the Civil Code's order (art. 561): costs, then interest, then
   principal. Each part is split among everyone who bore the loss in proportion to what
   each still bears — the bank, and every pool or party that paid it compensation — so a
   pool gets its share back and never more than it paid (`allocate_capped` caps each
   bearer at its unrecovered amount);
4. whatever is left, to the pledgor.

Ties in the split go to pools and parties before the bank (they are listed first): public
money is returned first when a fen has to be decided. Everything rounds through
`market.money.allocate`, so the slices always add up to the receipt.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from market.money import allocate_capped

Step = Literal["commission", "cost", "claim_costs", "claim_interest", "claim_principal", "surplus"]
PayeeKind = Literal["platform", "bank", "pool", "party", "pledgor"]


class Bearer(msgspec.Struct, frozen=True, kw_only=True):
    """A pool or party that paid compensation under one claim: what it bore and got back."""

    claim_id: int
    party: str  # 'fund' for the pool itself
    pool_id: int | None  # set for the fund
    org_id: int | None
    bore_fen: int
    recovered_fen: int


class CostDue(msgspec.Struct, frozen=True, kw_only=True):
    cost_id: int
    payee_org_id: int
    outstanding_fen: int


class CaseState(msgspec.Struct, frozen=True, kw_only=True):
    bank_org_id: int
    pledgor_id: int
    costs: tuple[CostDue, ...]
    # what is still owed on the creditor's claim, by Civil Code part
    claim_costs_fen: int
    claim_interest_fen: int
    claim_principal_fen: int
    bearers: tuple[Bearer, ...]


class Slice(msgspec.Struct, frozen=True, kw_only=True):
    step: Step
    payee_kind: PayeeKind
    amount_fen: int
    payee_org_id: int | None = None
    pool_id: int | None = None
    claim_id: int | None = None
    party: str | None = None
    cost_id: int | None = None
    pledgor_id: int | None = None


def claim_outstanding(state: CaseState) -> int:
    return state.claim_costs_fen + state.claim_interest_fen + state.claim_principal_fen


def route(amount_fen: int, commission_fen: int, state: CaseState) -> tuple[Slice, ...]:
    if amount_fen <= 0:
        raise ValueError("a receipt is a positive amount; a reversal is its own posting")
    if not 0 <= commission_fen <= amount_fen:
        raise ValueError("the commission cannot exceed the receipt")
    slices: list[Slice] = []
    rest = amount_fen

    def take(fen: int) -> int:
        nonlocal rest
        fen = min(fen, rest)
        rest -= fen
        return fen

    if commission_fen:
        slices.append(
            Slice(step="commission", payee_kind="platform", amount_fen=take(commission_fen))
        )

    for cost in state.costs:
        fen = take(cost.outstanding_fen)
        if fen:
            slices.append(
                Slice(
                    step="cost",
                    payee_kind="bank",
                    amount_fen=fen,
                    payee_org_id=cost.payee_org_id,
                    cost_id=cost.cost_id,
                )
            )

    # Unrecovered loss per bearer; the bank bears whatever of the outstanding claim the
    # others do not (their compensation already made part of the bank's loss good).
    others = [b.bore_fen - b.recovered_fen for b in state.bearers]
    bank_unrecovered = max(0, claim_outstanding(state) - sum(others))
    unrecovered = [*others, bank_unrecovered]
    parts: tuple[tuple[Step, int], ...] = (
        ("claim_costs", state.claim_costs_fen),
        ("claim_interest", state.claim_interest_fen),
        ("claim_principal", state.claim_principal_fen),
    )
    for step, owed in parts:
        fen = take(owed)
        if not fen:
            continue
        shares, left = allocate_capped(fen, unrecovered, unrecovered)
        if left:  # cannot happen while the claim is at least what the bearers bore
            rest += left
        for i, share in enumerate(shares):
            if not share:
                continue
            unrecovered[i] -= share
            if i < len(state.bearers):
                b = state.bearers[i]
                kind: PayeeKind = "pool" if b.pool_id is not None else "party"
                slices.append(
                    Slice(
                        step=step,
                        payee_kind=kind,
                        amount_fen=share,
                        payee_org_id=b.org_id,
                        pool_id=b.pool_id,
                        claim_id=b.claim_id,
                        party=b.party,
                    )
                )
            else:
                slices.append(
                    Slice(
                        step=step,
                        payee_kind="bank",
                        amount_fen=share,
                        payee_org_id=state.bank_org_id,
                    )
                )

    if rest:
        slices.append(
            Slice(
                step="surplus",
                payee_kind="pledgor",
                amount_fen=take(rest),
                pledgor_id=state.pledgor_id,
            )
        )
    assert sum(s.amount_fen for s in slices) == amount_fen
    return tuple(slices)
