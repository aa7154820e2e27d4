"""Shapes the pools area shares between its pages, its API and reconciliation: a line of
reasoning (a catalog key and its parameters), a pool, and a payout of the waterfall.

A `Line` carries no words: `market.pools.rule_text.say` renders it in the reader's language
(amounts in `*_fen` as ¥, rates in `*_bp` as percentages), and the API sends it as it is,
so a program gets the numbers without parsing a sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

import msgspec

PayeeKind = Literal["platform", "bank", "pool", "party", "pledgor"]
PayoutStatus = Literal["expected", "received", "reversed"]


# A line already in words, one parameter per language (an explanation stored so).
WORDS = "pool.line.words"


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One step of an explanation or one clause of a rule: `key` in the catalogs, with
    the numbers it names (`pool.line.owed` {"amount_fen": 162000000})."""

    key: str
    params: dict[str, Any] = {}


class PoolOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    code: str
    name: str
    name_en: str | None
    capital_fen: int


class PayoutOut(msgspec.Struct, frozen=True, kw_only=True):
    """One transfer the exchange owes a payee of the waterfall, found again on the payee's
    bank statement by its `reference`.

    `payee` is the payee's own name (the bank's or the organisation's, the pool's code, the
    pledgor's) and empty for a party of a rule with no organisation here: a page names it
    by `party` in the reader's language. The last four fields say how a statement settled
    it; they are filled where a statement line is known (reconciliation)."""

    id: int
    receipt_id: int
    case_id: int
    case_reference: str
    bank_org_id: int
    bank_name: str
    receipt_kind: str
    payee_kind: PayeeKind
    payee: str
    payee_org_id: int | None
    pool_id: int | None
    pool_code: str | None
    party: str | None
    amount_fen: int
    reference: str
    status: PayoutStatus
    created_at: datetime
    received_at: datetime | None
    statement_id: int | None = None
    line_no: int | None = None
    value_date: date | None = None
    matched: Literal["matched", "manual"] | None = None


def payee_name(row: Mapping[str, Any] | Any) -> str:
    """A payee's own name from a payout's or distribution's row (a mapping or a record;
    see PayoutOut.payee)."""
    kind = row["payee_kind"]
    if kind == "pool":
        return str(row["pool_code"] or row["payee_org_name"] or "")
    if kind == "pledgor":
        return str(row["pledgor_name"] or "")
    if kind == "platform":
        return ""
    return str(row["payee_org_name"] or "")


def payout_out(row: Mapping[str, Any] | Any) -> PayoutOut:
    """A payout from a row holding the payout, its receipt's kind, its case and bank, and
    the payee's names (`payee_org_name`, `pool_code`, `pledgor_name`)."""
    return PayoutOut(
        id=row["id"],
        receipt_id=row["receipt_id"],
        case_id=row["case_id"],
        case_reference=row["case_reference"],
        bank_org_id=row["bank_org_id"],
        bank_name=row["bank_name"],
        receipt_kind=row["receipt_kind"],
        payee_kind=row["payee_kind"],
        payee=payee_name(row),
        payee_org_id=row["payee_org_id"],
        pool_id=row["pool_id"],
        pool_code=row["pool_code"],
        party=row["party"],
        amount_fen=row["amount_fen"],
        reference=row["reference"],
        status=row["status"],
        created_at=row["created_at"],
        received_at=row["received_at"],
    )
