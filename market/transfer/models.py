"""What a transfer looks like to its parties, the operator and the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from market.licensing.enforcement import NUMBER_MAX

NoticeKind = Literal[
    "pledge_release", "patent_recordal", "trademark_assignment", "software_registration"
]
Step = Literal["release", "recordal", "check"]
Cause = Literal["pledgor_dispute", "lapsed_right", "bank", "buyer"]
TransferStatus = Literal["in_escrow", "completed", "unwound"]
NoticeStatus = Literal["pending", "accepted", "rejected"]

# The notice that records the transfer of each kind of asset (docs/rules.md §Transfer of
# title): CNIPA's 著录项目变更手续合格通知书 (专利法 art. 10), the trademark office's
# approval of the assignment (商标法 art. 42), the copyright centre's change registration
# (计算机软件著作权登记办法).
RECORDAL_OF_ASSET: dict[str, NoticeKind] = {
    "patent": "patent_recordal",
    "trademark": "trademark_assignment",
    "software_copyright": "software_registration",
}
RELEASE: NoticeKind = "pledge_release"


def step_of(kind: str) -> Step:
    return "release" if kind == RELEASE else "recordal"


class NoticeIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A notice as its party uploads it: which, its number and date, and the file (a PDF
    or an image, base64 in the API)."""

    kind: NoticeKind
    number: Annotated[str, Meta(min_length=1, max_length=NUMBER_MAX)]
    issued_on: date
    filename: Annotated[str, Meta(min_length=1, max_length=200)]
    content: bytes


class UploadNotice(NoticeIn, frozen=True, kw_only=True):
    sale_id: int


class RejectIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class RejectNotice(RejectIn, frozen=True, kw_only=True):
    notice_id: int


class ConfirmTransfer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sale_id: int


class FailureIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why the transfer failed and who caused it (docs/rules.md §Transfer of title)."""

    cause: Cause
    note: Annotated[str, Meta(max_length=1000)] = ""


class RecordFailure(FailureIn, frozen=True, kw_only=True):
    sale_id: int


class NoticeOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: NoticeKind
    number: str
    issued_on: date
    status: NoticeStatus
    filename: str
    size_bytes: int
    uploaded_at: datetime
    decided_at: datetime | None
    reason: str


class TransferOut(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: int
    status: TransferStatus
    step: Step | None  # the step now due; None once the transfer has ended
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    bank_org_id: int
    bank_name: str
    buyer_org_id: int
    buyer_name: str
    price_fen: int
    fee_kind: str
    fee_fen: int
    deposit_fen: int
    balance_due_fen: int
    paid_at: datetime | None
    closed_at: datetime
    opened_at: datetime
    release_due_at: datetime
    recordal_due_at: datetime
    check_due_at: datetime | None
    ended_at: datetime | None
    cause: Cause | None
    buyer_at_fault: bool | None
    note: str
    needed: list[NoticeKind]  # the notices the transfer needs
    missing: list[NoticeKind]  # those with no standing notice
    notices: list[NoticeOut]
