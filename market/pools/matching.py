"""Classifying the lines of a bank statement against the payouts an organisation expects
(reconciliation, issue 6 item 4). Pure: no database — market.pools.reconciliation loads
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

A reason is stored in both languages, Chinese first (`reason`); `reason_in` picks one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from market.money import format_cny
from market.pools.statement_csv import StatementLine

LineStatus = Literal[
    "matched", "amount_mismatch", "reference_typo", "unknown", "manual", "set_aside"
]
MAX_TYPO_DISTANCE: Final = 2


# A stored reason holds both languages, Chinese first. A newline parts them: the reasons
# quote a statement's cells, which may contain " / " but never a line break.
_LANGUAGES = "\n"


def reason(zh: str, en: str) -> str:
    """A stored reason: Chinese, then English (`reason_parts` splits it)."""
    return f"{zh}{_LANGUAGES}{en}"


def reason_parts(text: str) -> tuple[str, str]:
    """(Chinese, English) of a stored reason."""
    zh, sep, en = text.partition(_LANGUAGES)
    return (zh, en) if sep else (text, text)


def reason_in(text: str, lang: str) -> str:
    zh, en = reason_parts(text)
    return en if lang == "en" else zh


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
    reason: str
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
    ref, got = p.reference, format_cny(line.amount_fen)
    if p.id in taken:
        return Outcome(
            "unknown",
            reason(
                f"{ref} 已由本对账单第 {taken[p.id]} 行匹配，本行可能是重复转账",
                f"{ref} was matched by line {taken[p.id]} of this statement: a second transfer?",
            ),
        )
    if p.status == "received":
        where_zh = where_en = ""
        if p.id in received_where:
            s, n = received_where[p.id]
            where_zh, where_en = f"（对账单 {s} 第 {n} 行）", f" (statement {s}, line {n})"
        on = p.received_on.isoformat() if p.received_on else ""
        return Outcome(
            "unknown",
            reason(
                f"{ref} 已于 {on} 到账{where_zh}，本行可能是重复转账",
                f"{ref} was received already on {on}{where_en}: a second transfer?",
            ),
        )
    if p.status != "expected":
        return Outcome(
            "unknown",
            reason(
                f"{ref} 对应的回款已冲销，不再应收",
                f"{ref} is no longer expected: its receipt was reversed",
            ),
        )
    if p.amount_fen != line.amount_fen:
        want = format_cny(p.amount_fen)
        diff = format_cny(line.amount_fen - p.amount_fen)
        return Outcome(
            "amount_mismatch",
            reason(
                f"{ref} 应收 {want}，实收 {got}（差额 {diff}）",
                f"{ref} expects {want}, got {got} (difference {diff})",
            ),
            candidate_id=p.id,
        )
    if line.value_date < p.created_on:
        day, since = line.value_date.isoformat(), p.created_on.isoformat()
        return Outcome(
            "unknown",
            reason(
                f"入账日期 {day} 早于 {ref} 产生之日 {since}，请人工核对",
                f"value date {day} is before {ref} was due ({since}); check it by hand",
            ),
            candidate_id=p.id,
        )
    taken[p.id] = line.line_no
    return Outcome(
        "matched",
        reason(
            f"与 {ref} 的附言、金额 {got} 和日期一致", f"reference, amount {got} and date fit {ref}"
        ),
        payout_id=p.id,
    )


def char_mask(text: str) -> int:
    """The set of characters of a reference as bits (6 bits of each code point: two
    characters may share a bit, which only lets more pairs through to the real check)."""
    mask = 0
    for ch in text:
        mask |= 1 << (ord(ch) & 63)
    return mask


def _inexact(line: StatementLine, still_open: Sequence[Expected], masks: Sequence[int]) -> Outcome:
    got, said = format_cny(line.amount_fen), _quote(line.reference)
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
        amount_zh = f"金额不符：应收 {format_cny(p.amount_fen)}" if differs else f"金额 {got} 一致"
        amount_en = (
            f"amount differs: it expects {format_cny(p.amount_fen)}"
            if differs
            else f"same amount {got}"
        )
        return Outcome(
            "reference_typo",
            reason(
                f"附言「{said}」没有对应的应收款；最接近的是 {p.reference}"
                f"（相差 {d} 个字符，{amount_zh}）",
                f"reference '{said}' fits no transfer; the closest open one is {p.reference} "
                f"({d} character{'s' if d > 1 else ''} off, {amount_en})",
            ),
            candidate_id=p.id,
        )
    same = [
        p for p in still_open if p.amount_fen == line.amount_fen and p.created_on <= line.value_date
    ]
    if len(same) == 1:
        p = same[0]
        return Outcome(
            "reference_typo",
            reason(
                f"附言「{said}」中没有应收款编号；金额 {got} 与唯一一笔未到账的 {p.reference} 相同",
                f"no transfer reference in '{said}'; the amount {got} is that of the only "
                f"open transfer {p.reference}",
            ),
            candidate_id=p.id,
        )
    if same:
        return Outcome(
            "unknown",
            reason(
                f"附言「{said}」中没有应收款编号；金额 {got} 与 {len(same)} 笔未到账应收款相同，"
                "请人工匹配",
                f"no transfer reference in '{said}'; the amount {got} fits {len(same)} open "
                "transfers: match it by hand",
            ),
        )
    return Outcome(
        "unknown",
        reason(
            f"附言「{said}」和金额 {got} 都对应不上任何未到账应收款",
            f"neither the reference '{said}' nor the amount {got} fits an open transfer",
        ),
    )
