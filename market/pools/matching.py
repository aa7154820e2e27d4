"""Classifying the lines of a bank statement against the payouts an organisation expects
(docs/rules.md §Reconciliation). Pure: no database — market.pools.reconciliation loads
and locks the payouts, then records each line's outcome. A line is:

* matched — the 附言 (reference) carries the reference of one of the organisation's
  expected payouts (case- and space-insensitive), the amount is the same and the value
  date is not before the day the payout was created (Asia/Shanghai);
* amount_mismatch — the reference is found but the amount differs (the reason says
  expected vs got);
* reference_typo — no reference found, but an open payout's reference is within edit
  distance 2 (insert, delete, substitute, swap two neighbours) of a word of the 附言, or,
  failing that, exactly one open payout has the same amount: that payout is the line's
  candidate, named in the reason;
* unknown — nothing fits (or the reference is of a payout received or cancelled already,
  or of one another line of the same file just settled: a second transfer).

A line's reason is a code and its parameters (`Reason`), stored as JSON with the line and
put into words in the reader's language where it is shown (`reason_text`: the catalog's
`reconciliation.reason.<code>`); the API sends the code and parameters beside the words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

import msgspec

from market import i18n
from market.money import format_cny
from market.pools.statement_csv import StatementLine

LineStatus = Literal[
    "matched", "amount_mismatch", "reference_typo", "unknown", "manual", "set_aside"
]
MAX_TYPO_DISTANCE: Final = 2
REASON_PREFIX: Final = "reconciliation.reason."


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """Why a line was classified as it was: `code` names the catalog text
    (`reconciliation.reason.<code>`); parameters ending `_fen` are amounts, days are
    ISO dates (YYYY-MM-DD), as the API sends them."""

    code: str
    params: dict[str, Any] = {}


def reason(code: str, **params: Any) -> Reason:
    return Reason(code=code, params=params)


def encode_reason(r: Reason) -> str:
    """The reason as the line stores it (JSON text)."""
    return msgspec.json.encode(r).decode()


def decode_reason(text: str) -> Reason | None:
    """A stored reason; None for a line that has none (or none the exchange can read)."""
    if not text.startswith("{"):
        return None
    try:
        return msgspec.json.decode(text, type=Reason)
    except msgspec.DecodeError:
        return None


def reason_text(lang: i18n.Lang, r: Reason) -> str:
    """The reason in words, in `lang`: amounts as ¥1,234.00."""
    shown = {
        name: format_cny(value)
        if name.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool)
        else value
        for name, value in r.params.items()
    }
    return i18n.gettext(lang, REASON_PREFIX + r.code, **shown)


@dataclass(frozen=True)
class Expected:
    """A payout as classification sees it."""

    id: int
    reference: str
    amount_fen: int
    status: str  # expected | received | reversed
    created_on: date  # Asia/Shanghai
    received_on: date | None = None


@dataclass(frozen=True)
class Outcome:
    status: LineStatus
    reason: Reason
    payout_id: int | None = None
    candidate_id: int | None = None


_TOKEN: Final = re.compile(r"[A-Z0-9]+")


def reference_tokens(text: str) -> list[str]:
    """The words of a 附言 that may be a transfer reference: upper-cased, full-width folded,
    also with spaces and dashes removed ("hk7k x3m9-pq2r" → HK7KX3M9PQ2R)."""
    folded = unicodedata.normalize("NFKC", text).upper()
    out: list[str] = []
    for variant in (folded, re.sub(r"[\s\-_/]+", "", folded)):
        for token in _TOKEN.findall(variant):
            if token not in out:
                out.append(token)
    return out


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours),
    or limit + 1 as soon as it must exceed the limit (a row's minimum never decreases)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            cur[j] = value
        if min(cur) > limit:
            return limit + 1
        before, prev = prev, cur
    return min(prev[-1], limit + 1)


def _quote(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


def classify(
    lines: Sequence[StatementLine],
    payouts: Sequence[Expected],
    received_where: Mapping[int, tuple[int, int]] | None = None,
) -> list[Outcome]:
    """Classify each line against the organisation's payouts: those whose reference the
    file mentions (any status) and every open one. `received_where` says on which
    (statement, line) a received payout was settled, for the reason. Exact references
    are matched first, in file order; typo and amount candidates are then sought among
    the payouts still open."""
    received_where = received_where or {}
    by_ref = {p.reference.upper(): p for p in payouts}
    taken: dict[int, int] = {}  # payout id → line of this file that settled it
    out: list[Outcome | None] = [None] * len(lines)
    pending: list[int] = []
    for i, line in enumerate(lines):
        hits = [by_ref[t] for t in reference_tokens(line.reference) if t in by_ref]
        if not hits:
            pending.append(i)
            continue
        hit = min(
            hits,
            key=lambda p: (
                p.status != "expected" or p.id in taken,
                p.amount_fen != line.amount_fen,
                p.id,
            ),
        )
        out[i] = _exact(line, hit, taken, received_where)
    still_open = [p for p in payouts if p.status == "expected" and p.id not in taken]
    masks = [char_mask(p.reference.upper()) for p in still_open] if pending else []
    for i in pending:
        out[i] = _inexact(lines[i], still_open, masks)
    return [o for o in out if o is not None]


def _exact(
    line: StatementLine,
    p: Expected,
    taken: dict[int, int],
    received_where: Mapping[int, tuple[int, int]],
) -> Outcome:
    ref = p.reference
    if p.id in taken:
        return Outcome("unknown", reason("second_in_file", reference=ref, line=taken[p.id]))
    if p.status == "received":
        on = p.received_on.isoformat() if p.received_on else ""
        if p.id in received_where:
            s, n = received_where[p.id]
            why = reason(
                "received_already_on_line", reference=ref, received_on=on, statement_id=s, line=n
            )
        else:
            why = reason("received_already", reference=ref, received_on=on)
        return Outcome("unknown", why)
    if p.status != "expected":
        return Outcome("unknown", reason("reversed", reference=ref))
    if p.amount_fen != line.amount_fen:
        return Outcome(
            "amount_mismatch",
            reason(
                "amount_differs",
                reference=ref,
                expected_fen=p.amount_fen,
                got_fen=line.amount_fen,
                difference_fen=line.amount_fen - p.amount_fen,
            ),
            candidate_id=p.id,
        )
    if line.value_date < p.created_on:
        return Outcome(
            "unknown",
            reason(
                "before_due",
                reference=ref,
                value_date=line.value_date.isoformat(),
                due_on=p.created_on.isoformat(),
            ),
            candidate_id=p.id,
        )
    taken[p.id] = line.line_no
    return Outcome(
        "matched", reason("fits", reference=ref, amount_fen=line.amount_fen), payout_id=p.id
    )


def char_mask(text: str) -> int:
    """The set of characters of a reference as bits (6 bits of each code point: two
    characters may share a bit, which only lets more pairs through to the real check)."""
    mask = 0
    for ch in text:
        mask |= 1 << (ord(ch) & 63)
    return mask


def _inexact(line: StatementLine, still_open: Sequence[Expected], masks: Sequence[int]) -> Outcome:
    said = _quote(line.reference)
    best: tuple[bool, int, int, Expected] | None = None
    tokens = [(t, char_mask(t)) for t in reference_tokens(line.reference)]
    for p, mask in zip(still_open, masks, strict=True):
        ref = p.reference.upper()
        for token, token_mask in tokens:
            # Each edit brings in at most one character the other side lacks: a cheap
            # filter before the distance itself.
            if (
                abs(len(token) - len(ref)) > MAX_TYPO_DISTANCE
                or (token_mask & ~mask).bit_count() > MAX_TYPO_DISTANCE
                or (mask & ~token_mask).bit_count() > MAX_TYPO_DISTANCE
            ):
                continue
            d = edit_distance(token, ref, MAX_TYPO_DISTANCE)
            if d <= MAX_TYPO_DISTANCE:
                key = (p.amount_fen != line.amount_fen, d, p.id, p)
                if best is None or key[:3] < best[:3]:
                    best = key
    if best is not None:
        differs, d, _, p = best
        if differs:
            why = reason(
                "typo_amount_differs",
                text=said,
                reference=p.reference,
                distance=d,
                expected_fen=p.amount_fen,
            )
        else:
            why = reason(
                "typo_same_amount",
                text=said,
                reference=p.reference,
                distance=d,
                amount_fen=line.amount_fen,
            )
        return Outcome("reference_typo", why, candidate_id=p.id)
    same = [
        p for p in still_open if p.amount_fen == line.amount_fen and p.created_on <= line.value_date
    ]
    if len(same) == 1:
        p = same[0]
        return Outcome(
            "reference_typo",
            reason(
                "only_open_of_amount", text=said, amount_fen=line.amount_fen, reference=p.reference
            ),
            candidate_id=p.id,
        )
    if same:
        return Outcome(
            "unknown",
            reason(
                "several_open_of_amount", text=said, amount_fen=line.amount_fen, count=len(same)
            ),
        )
    return Outcome("unknown", reason("nothing_fits", text=said, amount_fen=line.amount_fen))
