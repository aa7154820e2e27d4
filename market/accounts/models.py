"""Types of the accounts area: who is calling, and what they may send."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

OrgKind = Literal["bank", "buyer", "pool", "operator", "acquirer"]
OrgStatus = Literal["pending", "approved", "rejected", "suspended"]
Role = Literal["admin", "member"]
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


class RegisterBuyer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A buyer organisation signs itself up; an operator approves it before it may bid."""

    name: Name
    credit_code: Annotated[str, Meta(min_length=1, max_length=40)]
    email: Email
    display_name: Annotated[str, Meta(min_length=1, max_length=100)]
    password: Password
    language: Language = "zh"


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
    credit_code: str | None
    status: OrgStatus


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
