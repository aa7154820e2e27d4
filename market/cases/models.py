"""Types of the cases area: what the API accepts and answers, and what the lots area reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar.datastructures import UploadFile
from msgspec import Meta

from market.cases.checklist import DisclosureStatus
from market.cases.policy import (
    CLAIM_PART_MAX_FEN,
    DEFAULT_DOCUMENT_POLICY,
    DEFAULT_VALUATION_POLICY,
    DocumentPolicy,
    ValuationPolicy,
)
from market.cases.valuation import Line

ClaimFen = Annotated[int, Meta(ge=0, le=CLAIM_PART_MAX_FEN)]
Score = Annotated[int, Meta(ge=0, le=100)]
CaseStatus = Literal["open", "closed"]


# --- input ------------------------------------------------------------------------------


class OpenCase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Open a disposal case on a defaulted loan. The claim's principal and interest
    default to what the loan still owes; the collateral to every asset of its pledge."""

    loan_id: int
    costs_fen: ClaimFen = 0
    principal_fen: ClaimFen | None = None
    interest_fen: ClaimFen | None = None
    asset_ids: Annotated[list[int], Meta(min_length=1, max_length=500)] | None = None
    notes: Annotated[str, Meta(max_length=2000)] = ""


class ClaimChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Edit the claim while no lot of the case is published; omitted parts stay."""

    principal_fen: ClaimFen | None = None
    interest_fen: ClaimFen | None = None
    costs_fen: ClaimFen | None = None
    notes: Annotated[str, Meta(max_length=2000)] | None = None


class AppraisalIn(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="method",
    tag="appraisal",
):
    """A paid appraisal (评估报告): valid one year from its valuation date."""

    appraiser: Annotated[str, Meta(min_length=1, max_length=200)]
    report_no: Annotated[str, Meta(min_length=1, max_length=100)]
    value_fen: Annotated[int, Meta(gt=0, le=CLAIM_PART_MAX_FEN)]
    valued_on: date
    # The report's value of each of the case's assets (分项评估值), asset id → fen, adding
    # up to value_fen; a lot of some of the assets answers to theirs (docs/rules.md §Lot
    # terms). Without it the value is split equally over the assets.
    asset_values: dict[int, Annotated[int, Meta(gt=0, le=CLAIM_PART_MAX_FEN)]] | None = None


class Scores(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Indicator scores 0–100, higher is better (market/cases/valuation.py INDICATORS)."""

    legal_stability: Score
    remaining_term: Score
    ownership_clarity: Score
    encumbrance: Score  # 100: free of encumbrances
    advancement: Score
    maturity: Score
    substitutability: Score  # 100: hard to substitute
    claim_breadth: Score
    market_size: Score
    profitability: Score
    licence_history: Score


class InternalIn(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="method",
    tag="internal",
):
    """An internal valuation after GB/T 42748-2023 (market/cases/valuation.py).

    scores: indicator → 0–100. Weights default to the exchange's; send both maps to use
    your own (each group must sum to 1)."""

    base_value_fen: Annotated[int, Meta(ge=100, le=CLAIM_PART_MAX_FEN)]
    basis: Annotated[str, Meta(min_length=1, max_length=2000)]
    scores: Scores
    dimension_weights: dict[str, Decimal] | None = None
    indicator_weights: dict[str, Decimal] | None = None


ValuationIn = AppraisalIn | InternalIn


@dataclass
class DocumentUpload:
    """multipart/form-data: the checklist item and the file."""

    item: str
    file: UploadFile


# --- command inputs: what a page or the API decoded, with the case it is about ---------


class ChangeClaim(ClaimChange, frozen=True, kw_only=True):
    case_id: int


class RecordValuation(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    valuation: ValuationIn
    # The numbers behind the rules (market/cases/policy.py); a test may pass others.
    policy: ValuationPolicy = DEFAULT_VALUATION_POLICY


class UploadDocument(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    item: str  # a key of the case's disclosure checklist
    filename: str  # as the browser or the program sent it
    content: bytes
    policy: DocumentPolicy = DEFAULT_DOCUMENT_POLICY


class RemoveDocument(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    document_id: int


# --- output -----------------------------------------------------------------------------


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    principal_fen: int
    interest_fen: int
    costs_fen: int
    total_fen: int


class FlagOut(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    detail: dict[str, Any]
    raised_at: datetime


class CaseAssetOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    number: str
    title: str
    legal_status: str
    patent_type: str | None
    term_ends_on: date | None
    annuity_paid_through: date | None
    flags: list[FlagOut]


class ValuationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    method: str
    value_fen: int
    valued_on: date
    valid_until: date
    objection_until: date | None
    appraiser: str | None
    report_no: str | None
    inputs: dict[str, Any]
    # An internal valuation's explanation: catalog keys (`cases.explain.*`) with their
    # parameters, in order; empty for an appraisal (its report is the document).
    explanation: list[Line]
    created_at: datetime
    superseded_at: datetime | None


class DocumentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    item: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str  # hex
    uploaded_at: datetime


class LotRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    title: str
    status: str


class CaseOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    status: CaseStatus
    loan_id: int
    loan_no: str
    pledgor_name: str
    claim: Claim
    notes: str
    editable: bool  # no lot published: claim and documents may change
    assets: list[CaseAssetOut]
    valuation: ValuationOut | None
    valuation_history: list[ValuationOut]
    documents: list[DocumentOut]
    disclosure: DisclosureStatus
    lots: list[LotRef]
    opened_at: datetime
    updated_at: datetime | None
    # The pledgor's consent to licensing the case's rights (民法典 art. 444), if given.
    licensing_consented_at: datetime | None = None


class CaseSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reference: str
    status: CaseStatus
    loan_id: int
    loan_no: str
    pledgor_name: str
    claim_total_fen: int
    valuation_fen: int | None
    valuation_method: str | None
    valuation_valid_until: date | None
    missing_items: list[str]
    opened_at: datetime


class CaseForLot(msgspec.Struct, frozen=True, kw_only=True):
    """What the lots area needs of a case to create and publish lots."""

    case_id: int
    reference: str
    status: str  # open | closed
    asset_ids: list[int]
    valuation_fen: int | None  # current valuation, None if none
    valuation_method: str | None
    valuation_valid_until: date | None
    objection_until: date | None  # appraisal objection window end
    missing_items: list[str]  # disclosure checklist keys still missing
    # Each asset's part of the current valuation (market/cases/valuation.asset_shares).
    asset_shares: dict[int, int] = {}
