"""Types of the collateral registry: what other areas and the API read."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

from market.collateral.rules import PatentType
from market.problems import ProblemLine

AssetKind = Literal["patent", "trademark", "software_copyright"]
LegalStatus = Literal["pending", "valid", "lapsed", "invalidated", "expired"]
NplClass = Literal["substandard", "doubtful", "loss"]
FlagKind = Literal["annuity_due", "annuity_grace", "lapsed", "expiring", "expired", "invalidated"]
ImportStatus = Literal["queued", "validating", "writing", "done", "rejected", "failed"]
# "form": one asset entered on the page (market/collateral/single.py).
ImportVia = Literal["web", "api", "demo", "form"]

ASSET_KINDS: tuple[AssetKind, ...] = ("patent", "trademark", "software_copyright")
LEGAL_STATUSES: tuple[LegalStatus, ...] = ("pending", "valid", "lapsed", "invalidated", "expired")
NPL_CLASSES: tuple[NplClass, ...] = ("substandard", "doubtful", "loss")
PATENT_TYPES: tuple[PatentType, ...] = ("invention", "utility_model", "design")
FINISHED: frozenset[str] = frozenset({"done", "rejected", "failed"})


class Pledgor(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    credit_code: str
    name: str
    region: str


class AssetDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One pledged IP right with everything a case or lot page shows about it."""

    id: int
    pledgor_id: int
    kind: AssetKind
    number: str  # normalised application / registration number
    title: str
    abstract: str
    patent_type: PatentType | None
    filing_date: date | None
    term_ends_on: date | None  # patents: last day of protection
    ipc_codes: list[str]
    annuity_paid_through: date | None
    nice_classes: list[int]
    valid_until: date | None  # trademarks
    registered_on: date | None  # software copyrights
    owners: list[str]  # the owner first, then co-owners
    legal_status: LegalStatus
    licences: str
    encumbrances: str


class PledgeDetail(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    registration_no: str
    registered_on: date | None
    secured_amount_fen: int
    pledgor_id: int
    assets: list[AssetDetail]


class LoanDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A loan with its pledgor and the pledge securing it (what a disposal case starts from)."""

    id: int
    loan_no: str
    principal_fen: int
    rate_bp: int  # annual rate in basis points: 4.35 % is 435
    outstanding_principal_fen: int
    outstanding_interest_fen: int
    disbursed_on: date | None
    default_date: date | None
    npl_class: NplClass | None
    pool_code: str | None  # the guarantee pool it is enrolled in (docs/rules.md §Guarantee pools)
    pledgor: Pledgor
    pledge: PledgeDetail | None


class Flag(msgspec.Struct, frozen=True, kw_only=True):
    """An open monitoring signal on an asset (大数据监测, docs/rules.md §Collateral and
    monitoring). `detail` holds the facts of the day it was raised (monitoring.flag_detail),
    not words: a page or a message renders them in its reader's language."""

    id: int
    asset_id: int
    kind: FlagKind
    detail: dict[str, Any]
    raised_at: datetime


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    import_id: int
    filename: str
    encoding: str
    rows: int
    pledgors_created: int
    pledgors_updated: int
    assets_created: int
    assets_updated: int
    pledges_created: int
    pledges_updated: int
    loans_created: int
    loans_updated: int
    links_removed: int  # assets no longer listed under a re-uploaded pledge
    flags_raised: int  # monitoring flags the new data raised (monitoring.assess)
    flags_resolved: int
    # The ids of the loans and assets the file named: new ones, and existing ones (updated
    # where the file changed them), so a bank's system can map its rows to the exchange's.
    loan_ids_created: list[int] = []
    loan_ids_updated: list[int] = []
    asset_ids_created: list[int] = []
    asset_ids_updated: list[int] = []


class ImportOut(msgspec.Struct, frozen=True, kw_only=True):
    """An upload and its fate, as the API and the progress page show it. `errors` are the
    file's problems (line, column key, code, params), each with its `detail` in the
    reader's language; the import keeps only the codes and params."""

    id: int
    filename: str
    encoding: str | None
    status: ImportStatus
    via: ImportVia
    total_rows: int
    processed_rows: int
    written_rows: int
    error_count: int
    errors: list[ProblemLine]
    summary: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
