"""What the branches of the exchange's statement import share (market/exchange_account/
statement.py): a `Branch` recognises its own kind of reference in a line's 附言 and
classifies the lines carrying one, under the locks it needs; each line's `Outcome` is
its status, its reason (market/pools/matching.Reason, in words where it is shown) and,
for a matched line, what settling it does once the line is recorded (its proof)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from market.commands import UnitOfWork
from market.exchange_account.proof import StatementProof
from market.pools.matching import LineStatus, Reason, reason, reference_tokens
from market.pools.statement_csv import StatementLine

# A matched line's act: run with the recorded line as proof; answers the reference settled.
Settle = Callable[[UnitOfWork, StatementLine, StatementProof], Awaitable[str]]
Named = tuple[StatementLine, Any]  # a line and the branch's reference in it


@dataclass(frozen=True)
class Outcome:
    status: LineStatus
    reason: Reason
    settle: Settle | None = None
    registration_id: int | None = None  # the deposit a matched line confirms
    sale_id: int | None = None  # the sale whose balance a matched line pays


@dataclass(frozen=True)
class Branch:
    kind: str  # what the import's answer lists the settled references under
    named: Callable[[str], Any | None]  # the branch's reference in a 附言, or None
    # The outcomes of the lines naming one, in their order; locks what it reads.
    classify: Callable[[UnitOfWork, Sequence[Named]], Awaitable[list[Outcome]]]


def first_named(text: str, accept: Callable[[str], str | None]) -> str | None:
    """The first word of a 附言 (market/pools/matching.reference_tokens) that `accept`
    takes for a reference of its kind, as it answers it."""
    for token in reference_tokens(text):
        if (ref := accept(token)) is not None:
            return ref
    return None


def quoted(text: str) -> str:
    """A 附言 as a reason quotes it."""
    return text if len(text) <= 40 else text[:39] + "…"


def amount_differs(code: str, ref: str, expected_fen: int, got_fen: int) -> Outcome:
    """A line naming a deposit or a sale whose amount is not what it owes: short or long."""
    return Outcome(
        "amount_mismatch",
        reason(
            code,
            reference=ref,
            expected_fen=expected_fen,
            got_fen=got_fen,
            difference_fen=got_fen - expected_fen,
        ),
    )
