"""The onboarding API: the operator brings in organisations and pools; an organisation's
admins invite, give roles and deactivate; an invitee joins (docs/integration.md)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from market import api_docs
from market.accounts import onboarding, people, services
from market.accounts.models import (
    AcceptInvitation,
    Decision,
    InvitationOut,
    Invite,
    Onboard,
    OnboardedOut,
    OrganisationOut,
    OrgDocumentOut,
    OrgStatus,
    RegisterBuyer,
    RegisteredOut,
    RoleChange,
    UserOut,
)
from market.accounts.permissions import (
    INVITE_USERS,
    MANAGE_USERS,
    OPERATE,
    OWN_ACCOUNT,
    OWN_DOCUMENTS,
    allow,
)
from market.cases.api import download
from market.deps import ActDep, CallerDep, ClockDep, PoolDep, SettingsDep
from market.pools.models import PoolOut
from market.pools.services import NewPool, create_pool

PDF_B64 = (
    "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZz4+ZW5kb2JqCnRyYWlsZXI8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)
NEW_BUYER = api_docs.body(
    RegisterBuyer,
    {
        "name": "成都蓉知科技有限公司",
        "credit_code": "91510100MA6C8XY41N",
        "email": "it@rongzhi.example.cn",
        "display_name": "王敏",
        "password": "correct horse battery",
        "documents": [{"kind": "business_licence", "filename": "营业执照.pdf", "content": PDF_B64}],
    },
    {
        "name": "王小明",
        "party_type": "individual",
        "id_number": "11010519491231002X",
        "email": "wxm@example.cn",
        "display_name": "王小明",
        "password": "correct horse battery",
        "documents": [{"kind": "identity_document", "filename": "身份证.pdf", "content": PDF_B64}],
    },
)
ACCEPT = api_docs.body(
    AcceptInvitation,
    {"token": "42.mF3kQ…", "display_name": "李经办", "password": "correct horse battery"},
)
INVITE = api_docs.body(
    Invite,
    {"email": "li@bank.example.cn", "role": "officer"},
    {"email": "x@bank.cn", "role": "read_only", "language": "en"},
)
ROLE = api_docs.body(RoleChange, {"role": "read_only"})
DOCUMENTS = api_docs.body(
    onboarding.OwnDocuments,
    {
        "documents": [
            {"kind": "authorisation_letter", "filename": "授权委托书.pdf", "content": PDF_B64}
        ]
    },
)
ONBOARD = api_docs.body(
    Onboard,
    {
        "kind": "bank",
        "name": "招商银行深圳科技园支行",
        "name_en": "CMB Shenzhen Science Park",
        "credit_code": "91440300MA5G7K2P3M",
        "admin_email": "it-admin@cmb.example.cn",
        "documents": [
            {"kind": "business_licence", "filename": "营业执照.pdf", "content": PDF_B64},
            {"kind": "authorisation_letter", "filename": "授权委托书.pdf", "content": PDF_B64},
        ],
    },
)
DECISION = api_docs.body(
    Decision, {"approve": True}, {"approve": False, "reason": "营业执照与统一社会信用代码不符"}
)
NEW_POOL = api_docs.body(
    NewPool,
    {
        "org_id": 7,
        "code": "FS-IP",
        "name": "佛山知识产权风险补偿资金池",
        "capital_fen": 5_000_000_000,
        "rule": {
            "shares": [{"name": "fund", "weight": 50}, {"name": "bank", "weight": 50}],
            "cap_per_loan_fen": 300_000_000,
        },
        "effective_from": "2026-01-01",
    },
)


class JoinApi(Controller):
    path = "/api/v1"
    tags = ["onboarding"]

    @post("/buyers", operation_id="register_buyer", status_code=201, summary="Sign up a buyer")
    async def register_buyer(
        self, data: Annotated[RegisterBuyer, NEW_BUYER], act: ActDep
    ) -> RegisteredOut:
        """A buyer signs itself up: a company by its unified social credit code, a person
        by the resident identity number (GB 11643 check character), with the documents the
        operator approves it on (business licence or identity document, base64). It may
        take part once an operator approves it; it is told the decision either way."""
        return await act(onboarding.register_buyer, data)

    @post(
        "/invitations/accept",
        operation_id="accept_invitation",
        status_code=201,
        summary="Join an organisation by invitation",
    )
    async def accept(
        self, data: Annotated[AcceptInvitation, ACCEPT], act: ActDep, settings: SettingsDep
    ) -> people.Joined:
        """Use the link's token from the invitation e-mail to become a user of the
        organisation that invited you, with the role it names. The link works once and
        expires (7 days by default)."""
        return await act(
            people.accept_invitation,
            people.Accept(
                token=data.token,
                display_name=data.display_name,
                password=data.password,
                secret_key=settings.secret_key,
            ),
        )


class PeopleApi(Controller):
    path = "/api/v1/organisation"
    tags = ["onboarding"]

    @get(
        "/users",
        operation_id="list_own_users",
        guards=[allow(OWN_ACCOUNT)],
        summary="List the organisation's users",
    )
    async def users(self, caller: CallerDep, pool: PoolDep) -> list[UserOut]:
        """The users of the caller's organisation, deactivated ones included."""
        return await people.users_of(pool, caller.org_id)

    @get(
        "/invitations",
        operation_id="list_own_invitations",
        guards=[allow(INVITE_USERS)],
        summary="List the organisation's invitations",
    )
    async def invitations(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep
    ) -> list[InvitationOut]:
        """The organisation's invitations, newest first, with their status."""
        return await people.invitations_of(pool, caller.org_id, clock.now())

    @post(
        "/invitations",
        operation_id="invite_user",
        status_code=201,
        guards=[allow(INVITE_USERS)],
        summary="Invite a colleague",
    )
    async def invite(self, data: Annotated[Invite, INVITE], act: ActDep) -> InvitationOut:
        """Send an invitation by e-mail to join the organisation with a role no higher
        than the inviter's (admin > officer > read_only)."""
        return await act(people.invite_user, data)

    @delete(
        "/invitations/{invitation_id:int}",
        operation_id="revoke_invitation",
        guards=[allow(MANAGE_USERS)],
        summary="Revoke an invitation",
    )
    async def revoke(self, act: ActDep, invitation_id: FromPath[int]) -> None:
        """An open invitation stops working (an admin)."""
        await act(people.revoke_invitation, invitation_id)

    @put(
        "/users/{user_id:int}/role",
        operation_id="set_user_role",
        guards=[allow(MANAGE_USERS)],
        summary="Give a user a role",
    )
    async def set_role(
        self, act: ActDep, user_id: FromPath[int], data: Annotated[RoleChange, ROLE]
    ) -> UserOut:
        """Change a user's role (an admin); the organisation keeps at least one admin."""
        return await act(people.set_user_role, people.SetRole(user_id=user_id, role=data.role))

    @post(
        "/users/{user_id:int}/deactivation",
        operation_id="deactivate_user",
        status_code=200,
        guards=[allow(MANAGE_USERS)],
        summary="Deactivate a user",
    )
    async def deactivate(self, act: ActDep, user_id: FromPath[int]) -> UserOut:
        """A user who left: they can no longer sign in, their sessions end and the API
        tokens they made are revoked. The record stays."""
        return await act(people.deactivate_user, user_id)

    @get(
        "/documents",
        operation_id="list_own_documents",
        guards=[allow(OWN_ACCOUNT)],
        summary="List the approval documents",
    )
    async def documents(self, caller: CallerDep, pool: PoolDep) -> list[OrgDocumentOut]:
        """The documents the organisation's approval rests on."""
        async with pool.acquire() as conn:
            return await onboarding.documents_of(conn, caller.org_id)

    @post(
        "/documents",
        operation_id="upload_own_documents",
        status_code=201,
        guards=[allow(OWN_DOCUMENTS)],
        summary="Add approval documents",
    )
    async def upload(
        self, act: ActDep, data: Annotated[onboarding.OwnDocuments, DOCUMENTS]
    ) -> list[OrgDocumentOut]:
        """Add documents (business licence, authorisation letter, identity document), each
        checked by its bytes (PDF, PNG, JPEG …)."""
        return await act(onboarding.upload_own_documents, data)


class OnboardingApi(Controller):
    path = "/api/v1/operator"
    tags = ["onboarding"]
    guards = [allow(OPERATE)]

    @post(
        "/organisations",
        operation_id="onboard_organisation",
        status_code=201,
        summary="Onboard an organisation",
    )
    async def onboard(self, data: Annotated[Onboard, ONBOARD], act: ActDep) -> OnboardedOut:
        """Bring in a bank, guarantee pool manager, acquisition institution, pledgor,
        buyer or operator: pending, with its documents, its first admin invited by e-mail.
        Approve it with the decision once the documents are in."""
        return await act(onboarding.onboard_organisation, data)

    @get("/organisations", operation_id="list_organisations", summary="Organisations by status")
    async def organisations(
        self, pool: PoolDep, status: FromQuery[OrgStatus] = "pending"
    ) -> list[OrganisationOut]:
        """Organisations in one status, oldest first (the review queue by default)."""
        return await services.organisations_by_status(pool, [status])

    @get(
        "/organisations/{org_id:int}",
        operation_id="get_organisation",
        summary="An organisation with its documents",
    )
    async def organisation(
        self, pool: PoolDep, org_id: FromPath[int]
    ) -> onboarding.OrganisationDetail:
        """What an approval looks at: the particulars, the documents and the users."""
        return await onboarding.organisation_detail(pool, org_id)

    @get(
        "/organisations/{org_id:int}/documents/{document_id:int}",
        operation_id="get_organisation_document",
        summary="Download an approval document",
        media_type="application/octet-stream",
    )
    async def document(
        self, pool: PoolDep, org_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        """The document's bytes as uploaded, with their checked type."""
        return download(pool, await onboarding.document_of(pool, org_id, document_id))

    @post(
        "/organisations/{org_id:int}/documents",
        operation_id="upload_organisation_documents",
        status_code=201,
        summary="File documents for an organisation",
    )
    async def upload(
        self,
        act: ActDep,
        org_id: FromPath[int],
        data: Annotated[onboarding.OwnDocuments, DOCUMENTS],
    ) -> list[OrgDocumentOut]:
        """The operator files documents an organisation handed in on paper."""
        return await act(
            onboarding.upload_documents_for,
            onboarding.DocumentsFor(org_id=org_id, documents=data.documents),
        )

    @post(
        "/organisations/{org_id:int}/decision",
        operation_id="decide_organisation",
        status_code=200,
        summary="Approve or reject an organisation",
    )
    async def decide(
        self, act: ActDep, org_id: FromPath[int], data: Annotated[Decision, DECISION]
    ) -> OrganisationOut:
        """Approve a pending organisation whose documents are in, or reject it with a
        reason; its users are told either way."""
        return await act(
            onboarding.decide_organisation,
            onboarding.DecideOrganisation(org_id=org_id, approve=data.approve, reason=data.reason),
        )

    @post("/pools", operation_id="create_pool", status_code=201, summary="Set up a pool")
    async def create_pool(self, data: Annotated[NewPool, NEW_POOL], act: ActDep) -> PoolOut:
        """A guarantee pool for an onboarded pool manager organisation, with its first
        rule version (shares, caps, deadlines) and its capital."""
        return await act(create_pool, data)
