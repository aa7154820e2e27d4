"""The numbers behind disposal cases, as data with defaults (docs/rules.md §Disposal cases
and valuation).

Commands take a policy in their input, defaulting to these, so a test or a future
exchange-wide setting can change a number without touching a rule.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

# Business dates (valuation date, validity, objection window) are dates in China: the
# exchange's clock is UTC, so "today" is taken in Asia/Shanghai (the people are in China).
CHINA = ZoneInfo("Asia/Shanghai")

# Each claim part is capped so that their sum stays far inside PostgreSQL's bigint.
CLAIM_PART_MAX_FEN = 10**17


class ValuationPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # An appraisal is valid for one year from its valuation date.
    appraisal_validity_months: Annotated[int, Meta(ge=1, le=60)] = 12
    # A 5-day objection window (异议期) once the appraisal is recorded.
    objection_days: Annotated[int, Meta(ge=0, le=60)] = 5
    # An internal valuation is the bank's own and ages like an appraisal.
    internal_validity_months: Annotated[int, Meta(ge=1, le=60)] = 12
    # Loans under CNY 10 m may use an internal valuation instead of a paid appraisal (the
    # Ganzhou practice); a claim of 10 m or more may not.
    internal_max_claim_fen: Annotated[int, Meta(ge=1)] = 10_000_000_00


class DocumentPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # Disclosure documents are checked for size and type: 20 MB each.
    max_bytes: Annotated[int, Meta(ge=1)] = 20 * 1024 * 1024
    # Chunk size of a download read from PostgreSQL; the response streams chunk by chunk.
    chunk_bytes: Annotated[int, Meta(ge=1024)] = 1024 * 1024
    # What one organisation may store in all (docs/rules.md §Security): 5 GiB, some 250
    # documents of the largest size.
    org_quota_bytes: Annotated[int, Meta(ge=1)] = 5 * 1024 * 1024 * 1024


# Lot states in which a lot does not count as published: the claim and the documents of
# its case can still change (editable while no lot is published). A withdrawn lot or one
# returned to the bank is off the market again.
UNPUBLISHED_LOT_STATES = frozenset({"draft", "withdrawn", "returned"})

DEFAULT_VALUATION_POLICY = ValuationPolicy()
DEFAULT_DOCUMENT_POLICY = DocumentPolicy()


class MovesPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long a failed round leaves its next paths open (docs/rules.md §Moving between
    paths): counted from the instant the round failed (no bid at the close, no intent at a
    listing's end, a lapsed transfer, a winner's default, an unwound sale)."""

    # A failed first round is tried again within 30 days: the 2016 rules, art. 26
    # (流拍后应当在三十日内再次拍卖). The exchange applies the same window to every next try
    # of a failed first round: relisted as an auction or as a listing, or a listing's
    # period extended.
    retry_within_days: Annotated[int, Meta(ge=1, le=366)] = 30
    # A failed second round goes to the fixed-price sale (变卖, the 2016 rules art. 27,
    # which sets no period): the exchange keeps the same 30 days.
    fixed_price_within_days: Annotated[int, Meta(ge=1, le=366)] = 30


DEFAULT_MOVES_POLICY = MovesPolicy()
