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


# A deposit or a sale is settled by one line: the lines of a file that have taken one
# (its id → line number), and the lines of earlier statements that did.
Taken = dict[int, int]
OnLine = dict[int, tuple[int, int]]


def second_in_file(kind: str, ref: str, key: int, taken: Taken) -> Outcome | None:
    """A second line of this file for the deposit or sale `key` (`<kind>_second_in_file`)."""
    if key not in taken:
        return None
    return Outcome("unknown", reason(f"{kind}_second_in_file", reference=ref, line=taken[key]))


def settled_before(code: str, ref: str, key: int, on_line: OnLine) -> Outcome:
    """The deposit or sale `key` was settled before: on an earlier statement's line
    (`<code>_on_line`, naming it) or by hand without one (`<code>_already`)."""
    if key in on_line:
        s, n = on_line[key]
        return Outcome("unknown", reason(f"{code}_on_line", reference=ref, statement_id=s, line=n))
    return Outcome("unknown", reason(f"{code}_already", reference=ref))


def fits(
    kind: str, ref: str, line: StatementLine, key: int, taken: Taken, settle: Settle, **link: int
) -> Outcome:
    """The line settles `key` (`<kind>_fits`), the file's only line to do so."""
    taken[key] = line.line_no
    return Outcome(
        "matched",
        reason(f"{kind}_fits", reference=ref, amount_fen=line.amount_fen),
        settle=settle,
        **link,
    )
