"""Onboarding: the organisations the operator brings in, the buyers who sign up, the
documents an approval rests on, and the decision with its notice (docs/rules.md
§Onboarding).

Every kind of organisation enters the same way: pending, with its documents, until an
operator approves it; its first administrator is invited by e-mail (people.py) or, for a
buyer that signs itself up, is the person who signed up. An approval needs the documents
REQUIRED_DOCUMENTS names; a rejection needs a reason; both are told to the organisation's
users (event `organisation_decided`).

Concurrency: the unique keys (credit code, identity number, e-mail) decide races between
identical sign-ups, the pre-checks only give the friendlier message; a decision locks the
organisation row, so two operators deciding at once cannot both act.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg
import msgspec

from market.accounts import people
from market.accounts.models import (
    DocumentIn,
    DocumentKind,
    Onboard,
    OnboardedOut,
    OrganisationOut,
    OrgDocumentOut,
    PartyType,
    RegisterBuyer,
    RegisteredOut,
    UserOut,
)
from market.accounts.permissions import OPERATE, OWN_DOCUMENTS
from market.accounts.services import create_organisation, create_user, get_organisation
from market.cases import filetypes, storage
from market.cases.policy import DEFAULT_DOCUMENT_POLICY
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound

Q = Queries("onboarding")
QA = Queries("accounts")

# What an approval rests on (docs/rules.md §Onboarding): a company shows its business
# licence (营业执照); an institution the operator onboards also the letter authorising its
# administrator (授权委托书); a person bidding in their own name an identity document.
REQUIRED_DOCUMENTS: Final[dict[tuple[str, PartyType], tuple[DocumentKind, ...]]] = {
    ("buyer", "company"): ("business_licence",),
    ("buyer", "individual"): ("identity_document",),
    **{
        (kind, "company"): ("business_licence", "authorisation_letter")
        for kind in ("bank", "pool", "acquirer", "pledgor", "operator")
    },
}


def _document(row: asyncpg.Record) -> OrgDocumentOut:
    return OrgDocumentOut(
        id=row["id"],
        kind=row["kind"],
        filename=row["filename"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=bytes(row["sha256"]).hex(),
        uploaded_at=row["uploaded_at"].isoformat(),
    )


class CheckedDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A document whose bytes passed the checks: its clean name and judged type."""

    document: DocumentIn
    filename: str
    content_type: str


def check_documents(documents: Sequence[DocumentIn]) -> list[CheckedDocument]:
    """Each document checked by its bytes, the first refused naming `documents[n]`; run
    before anything is written, so a refused upload stores nothing (docs/rules.md
    §Security)."""
    out = []
    for n, doc in enumerate(documents):
        try:
            name, kind = filetypes.check(
                doc.filename, doc.content, max_bytes=DEFAULT_DOCUMENT_POLICY.max_bytes
            )
        except Invalid as exc:
            exc.field = f"documents[{n}]"
            raise
        out.append(CheckedDocument(document=doc, filename=name, content_type=kind.content_type))
    return out


async def store_documents(
    uow: UnitOfWork,
    org_id: int,
    documents: Sequence[CheckedDocument],
    *,
    uploaded_by: int | None = None,
) -> list[OrgDocumentOut]:
    """Keep the checked documents of `org_id`, audited, once they fit the organisation's
    storage quota (all of them, or none: a refusal names the first that does not fit,
    `documents[n]`); the bytes are stored once per content (market/cases/storage.py)."""
    # The quota is checked for all before any is stored, so a refusal writes nothing.
    uploads = [(f"documents[{n}]", len(c.document.content)) for n, c in enumerate(documents)]
    await storage.reserve(uow.conn, org_id, uploads)
    out = []
    for checked in documents:
        doc = checked.document
        digest = await storage.store(uow.conn, doc.content)
        row = returned(
            await uow.conn.fetchrow(
                Q.insert_org_document,
                org_id,
                doc.kind,
                checked.filename,
                checked.content_type,
                len(doc.content),
                digest,
                uploaded_by or uow.actor.user_id,
                uow.at,
            )
        )
        stored = _document(row)
        uow.audit(
            "organisation.document",
            "organisation_document",
            stored.id,
            chain_org_id=org_id,
            after={"kind": doc.kind, "filename": checked.filename, "sha256": stored.sha256},
        )
        out.append(stored)
    return out


@command(None)  # anyone may sign up; the operator's approval is what lets a buyer act
async def register_buyer(uow: UnitOfWork, data: RegisterBuyer) -> RegisteredOut:
    """A buyer — a company or a person — and its first (admin) user, pending an
    operator's approval, with the documents the approval rests on."""
    if data.party_type == "company":
        if not data.credit_code:
            raise Invalid("credit_code_required", field="credit_code")
        if data.id_number:
            raise Invalid("id_number_for_people_only", field="id_number")
    else:
        if not data.id_number:
            raise Invalid("id_number_required", field="id_number")
        if data.credit_code:
            raise Invalid("credit_code_for_companies_only", field="credit_code")
    documents = check_documents(data.documents)
    try:
        async with uow.conn.transaction():  # a savepoint: a lost race is refused cleanly
            org = await create_organisation(
                uow,
                kind="buyer",
                name=data.name,
                credit_code=data.credit_code,
                id_number=data.id_number,
                status="pending",
            )
            user_id = await create_user(
                uow,
                org_id=org.id,
                email=data.email,
                display_name=data.display_name,
                password=data.password,
                role="admin",
                language=data.language,
            )
            await store_documents(uow, org.id, documents, uploaded_by=user_id)
    except asyncpg.UniqueViolationError as exc:
        # Lost a race with an identical sign-up: the pre-checks passed for both.
        constraint = exc.constraint_name or ""
        if "credit_code" in constraint:
            raise Conflict("credit_code_taken", field="credit_code") from None
        if "id_number" in constraint:
            raise Conflict("id_number_taken", field="id_number") from None
        raise Conflict("email_taken", field="email") from None
    return RegisteredOut(organisation=org, user_id=user_id)


@command(OPERATE)
async def onboard_organisation(uow: UnitOfWork, data: Onboard) -> OnboardedOut:
    """The operator brings in an organisation of any kind: pending, with its documents,
    and its first administrator invited by e-mail (the invitation outlives the approval).
    The documents are stored last, once nothing else can refuse the request."""
    checked = check_documents(data.documents)
    try:
        async with uow.conn.transaction():
            org = await create_organisation(
                uow,
                kind=data.kind,
                name=data.name,
                name_en=data.name_en,
                credit_code=data.credit_code,
                status="pending",
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("credit_code_taken", field="credit_code") from None
    invitation = await people.create_invitation(
        uow,
        org_id=org.id,
        email=data.admin_email,
        role="admin",
        language=data.admin_language,
        field="admin_email",
    )
    documents = await store_documents(uow, org.id, checked)
    return OnboardedOut(organisation=org, invitation=invitation, documents=documents)


class OwnDocuments(msgspec.Struct, frozen=True, kw_only=True):
    documents: list[DocumentIn]


@command(OWN_DOCUMENTS)
async def upload_own_documents(uow: UnitOfWork, data: OwnDocuments) -> list[OrgDocumentOut]:
    """An organisation adds documents for its approval (a pending one, typically)."""
    return await store_documents(uow, uow.actor.org, check_documents(data.documents))


class DocumentsFor(msgspec.Struct, frozen=True, kw_only=True):
    org_id: int
    documents: list[DocumentIn]


@command(OPERATE)
async def upload_documents_for(uow: UnitOfWork, data: DocumentsFor) -> list[OrgDocumentOut]:
    """The operator files documents an organisation handed in on paper."""
    if await uow.conn.fetchrow(Q.org_for_decision, data.org_id) is None:
        raise NotFound("no_such_organisation")
    return await store_documents(uow, data.org_id, check_documents(data.documents))


async def documents_of(conn: Conn, org_id: int) -> list[OrgDocumentOut]:
    return [_document(r) for r in await conn.fetch(Q.org_documents, org_id)]


async def document_of(pool: asyncpg.Pool, org_id: int, document_id: int) -> OrgDocumentOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.org_document, document_id, org_id)
    if row is None:
        raise NotFound("no_such_document")
    return _document(row)


class DecideOrganisation(msgspec.Struct, frozen=True, kw_only=True):
    org_id: int
    approve: bool
    reason: str = ""


@command(OPERATE)
async def decide_organisation(uow: UnitOfWork, data: DecideOrganisation) -> OrganisationOut:
    """The operator approves or rejects a pending organisation (its row locked); an
    approval needs the documents REQUIRED_DOCUMENTS names, a rejection a reason. The
    organisation's users are told either way, with the reason."""
    reason = data.reason.strip()
    if not data.approve and not reason:
        raise Invalid("rejection_reason_needed", field="reason")
    row = await uow.conn.fetchrow(Q.org_for_decision, data.org_id)
    if row is None:
        raise NotFound("no_such_organisation")
    if row["status"] != "pending":
        raise Conflict("organisation_decided", status=row["status"])
    if data.approve:
        have = {r["kind"] for r in await uow.conn.fetch(Q.org_document_kinds, data.org_id)}
        needed = REQUIRED_DOCUMENTS.get((row["kind"], row["party_type"]), ())
        missing = [k for k in needed if k not in have]
        if missing:
            raise Conflict("documents_missing", field="approve", missing=", ".join(missing))
    status = "approved" if data.approve else "rejected"
    new = await uow.conn.fetchrow(
        QA.decide_org, data.org_id, status, reason or None, uow.actor.user, uow.at
    )
    uow.audit(
        f"organisation.{status}",
        "organisation",
        data.org_id,
        chain_org_id=data.org_id,
        before={"status": row["status"]},
        after={"status": status, "reason": reason},
    )
    await uow.emit(Q.insert_organisation_decided, data.org_id, row["name"], status, reason, uow.at)
    return msgspec.convert(dict(returned(new)), OrganisationOut)


class FirstOperator(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    credit_code: str
    admin_email: str


@command(None)  # run from the server's command line (`market bootstrap-operator`)
async def bootstrap_operator(uow: UnitOfWork, data: FirstOperator) -> OnboardedOut:
    """The exchange's first operator, whom no operator could onboard: approved at once,
    its administrator invited. Refused once any operator exists: the rest are onboarded."""
    await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtext('bootstrap_operator'))")
    if await uow.conn.fetchval(Q.operator_exists):
        raise Conflict("operator_exists")
    org = await create_organisation(
        uow,
        kind="operator",
        name=data.name,
        credit_code=data.credit_code,
        status="approved",
    )
    invitation = await people.create_invitation(
        uow, org_id=org.id, email=data.admin_email, role="admin", language="zh", field="admin_email"
    )
    return OnboardedOut(organisation=org, invitation=invitation, documents=[])


class OrganisationDetail(OrganisationOut, frozen=True, kw_only=True):
    """What an approval looks at: the particulars, the documents and the users."""

    documents: list[OrgDocumentOut]
    users: list[UserOut]


async def organisation_detail(pool: asyncpg.Pool, org_id: int) -> OrganisationDetail:
    org = await get_organisation(pool, org_id)
    async with pool.acquire() as conn:
        documents = await documents_of(conn, org_id)
    return OrganisationDetail(
        **msgspec.structs.asdict(org),
        documents=documents,
        users=await people.users_of(pool, org_id),
    )
