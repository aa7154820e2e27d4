"""Types of the accounts area: who is calling, and what they may send."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

OrgKind = Literal["bank", "buyer", "pool", "operator", "acquirer", "pledgor"]
OrgStatus = Literal["pending", "approved", "rejected", "suspended"]
# admin: people, tokens and webhooks besides the work; officer: the organisation's work;
# read_only: sees, changes nothing (docs/permissions.md). Ordered by rank.
Role = Literal["admin", "officer", "read_only"]
ROLE_RANK: dict[str, int] = {"admin": 3, "officer": 2, "read_only": 1}
PartyType = Literal["company", "individual"]
DocumentKind = Literal["business_licence", "authorisation_letter", "identity_document", "other"]
Language = Literal["zh", "en"]


class Viewer(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in user of a web request, with their organisation."""

    user_id: int
    email: str
    display_name: str
    role: Role
    language: Language
    org_id: int
    org_kind: OrgKind
    org_name: str
    org_status: OrgStatus


class ApiCaller(msgspec.Struct, frozen=True, kw_only=True):
    """An API request authenticated by a token: acts for the token's organisation."""

    token_id: int
    org_id: int
    org_kind: OrgKind
    org_status: OrgStatus
    user_id: int  # the user who created the token answers for what it does
    scopes: frozenset[str]
    language: Language = "zh"  # that user's, for the words of an answer


Name = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[str, Meta(min_length=3, max_length=254)]
# At least 10 characters (NIST SP 800-63B asks 8; banks ask more); long passphrases welcome.
Password = Annotated[str, Meta(min_length=10, max_length=200)]


DisplayName = Annotated[str, Meta(min_length=1, max_length=100)]
CreditCode = Annotated[str, Meta(min_length=1, max_length=40)]
IdNumber = Annotated[str, Meta(min_length=1, max_length=40)]
# A document sent inside a JSON body; pages upload the same as multipart files.
DocumentBytes = Annotated[bytes, Meta(max_length=20 * 1024 * 1024)]


class DocumentIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A document an approval rests on, its bytes base64-encoded in JSON."""

    kind: DocumentKind
    filename: Annotated[str, Meta(min_length=1, max_length=200)]
    content: DocumentBytes


class RegisterBuyer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A buyer signs itself up — a company by its credit code, a person by the resident
    identity number — with the documents the operator approves it on."""

    name: Name
    party_type: PartyType = "company"
    credit_code: CreditCode | None = None
    id_number: IdNumber | None = None
    email: Email
    display_name: DisplayName
    password: Password
    language: Language = "zh"
    documents: list[DocumentIn] = msgspec.field(default_factory=list)


OnboardKind = Literal["bank", "pool", "acquirer", "pledgor", "operator", "buyer"]


class Onboard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The operator onboards an organisation: its particulars, the documents its approval
    rests on, and the first administrator, who is invited by e-mail."""

    kind: OnboardKind
    name: Name
    name_en: Annotated[str, Meta(max_length=200)] | None = None
    credit_code: CreditCode
    admin_email: Email
    admin_language: Language = "zh"
    documents: list[DocumentIn] = msgspec.field(default_factory=list)


class Invite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    role: Role
    language: Language = "zh"


class AcceptInvitation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    token: Annotated[str, Meta(min_length=1, max_length=200)]
    display_name: DisplayName
    password: Password


class RoleChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    email: str
    display_name: str
    role: Role
    language: Language
    created_at: str
    disabled_at: str | None


class InvitationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    org_id: int
    email: str
    role: Role
    created_at: str
    expires_at: str
    status: Literal["open", "accepted", "revoked", "expired"]


class OrgDocumentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: DocumentKind
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_at: str


class NewToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[str], Meta(min_length=1)]
    expires_in_days: Annotated[int, Meta(ge=1, le=730)] | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    approve: bool
    reason: Annotated[str, Meta(max_length=500)] = ""


class OrganisationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: OrgKind
    name: str
    party_type: PartyType = "company"
    credit_code: str | None
    status: OrgStatus
    status_reason: str | None = None


class OnboardedOut(msgspec.Struct, frozen=True, kw_only=True):
    organisation: OrganisationOut
    invitation: InvitationOut
    documents: list[OrgDocumentOut]


class RegisteredOut(msgspec.Struct, frozen=True, kw_only=True):
    organisation: OrganisationOut
    user_id: int


class TokenOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    scopes: list[str]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    secret: str | None = None  # only in the answer that created it
