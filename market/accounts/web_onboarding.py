"""The onboarding pages: the operator's queue, onboarding form and review of one
organisation with its documents; an organisation's people; the invitation link."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from market.accounts import onboarding, people, services
from market.accounts.models import (
    DocumentIn,
    DocumentKind,
    Invite,
    Onboard,
    OnboardedOut,
    RegisterBuyer,
    RegisteredOut,
)
from market.accounts.permissions import INVITE_USERS, MANAGE_USERS, OPERATE, OWN_ACCOUNT, allow
from market.cases.api import download
from market.db import Queries
from market.deps import ActDep, ClockDep, MeDep, PoolDep, SettingsDep, ViewerDep
from market.money import MAX_FEN
from market.pools.rules import BANK, FUND
from market.pools.services import NewPool, create_pool
from market.web import Form, page

Q = Queries("onboarding")

DOCUMENT_KINDS: tuple[DocumentKind, ...] = (
    "business_licence",
    "authorisation_letter",
    "identity_document",
)
ONBOARD_KINDS = ("bank", "pool", "acquirer", "pledgor", "buyer", "operator")


async def uploaded_documents(request: Request[Any, Any, Any]) -> list[DocumentIn]:
    """The documents a form sent, one file field per kind (`doc_business_licence` …)."""
    form = await request.form()
    out = []
    for kind in DOCUMENT_KINDS:
        file = form.get(f"doc_{kind}")
        if isinstance(file, UploadFile) and file.filename:
            out.append(DocumentIn(kind=kind, filename=file.filename, content=await file.read()))
    return out


# Where a command's refusal about a document shows: beside the file fields.
DOCUMENT_FIELDS = {f"documents[{n}]": "documents" for n in range(len(DOCUMENT_KINDS))}


class RegisterPages(Controller):
    include_in_schema = False

    @get("/register", operation_id="web_register_form")
    async def register_form(self, request: Request[Any, Any, State], viewer: ViewerDep) -> Template:
        return page(request, "accounts/register.html", viewer, errors={}, values={}, done=False)

    @post("/register", operation_id="web_register")
    async def register(
        self, request: Request[Any, Any, State], act: ActDep, viewer: ViewerDep
    ) -> Template:
        form = await Form.read(request, viewer, fields=DOCUMENT_FIELDS)
        party = form.text("party_type") or "company"
        documents = await uploaded_documents(request)

        async def send() -> RegisteredOut:
            individual = party == "individual"
            data = msgspec.convert(
                {
                    "name": form.text("name"),
                    "party_type": "individual" if individual else "company",
                    "credit_code": None if individual else form.text("credit_code") or None,
                    "id_number": form.text("id_number") or None if individual else None,
                    "email": form.text("email"),
                    "display_name": form.text("display_name"),
                    "password": form.values.get("password", ""),
                    "language": form.lang,
                },
                RegisterBuyer,
            )
            return await act(
                onboarding.register_buyer, msgspec.structs.replace(data, documents=documents)
            )

        for name in ("name", "email", "display_name", "password"):
            if not form.text(name):
                form.fail(name, "required")
        done = await form.submit(send)
        form.values.pop("password", None)
        return page(
            request,
            "accounts/register.html",
            viewer,
            status_code=200 if done else form.status,
            errors=form.errors,
            values=form.values if not done else {},
            done=done is not None,
        )


class InvitationPages(Controller):
    path = "/invitations"
    include_in_schema = False

    @get("/{token:str}", operation_id="web_invitation_form")
    async def form(self, request: Request[Any, Any, State], token: FromPath[str]) -> Template:
        return page(request, "accounts/invitation.html", None, token=token, errors={}, values={})

    @post("/{token:str}", operation_id="web_invitation_accept")
    async def accept(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        settings: SettingsDep,
        token: FromPath[str],
    ) -> Template | Redirect:
        form = await Form.read(request, None)
        done = await form.submit(
            lambda: act(
                people.accept_invitation,
                people.Accept(
                    token=token,
                    display_name=form.text("display_name"),
                    password=form.values.get("password", ""),
                    secret_key=settings.secret_key,
                ),
            )
        )
        if done is not None:
            return Redirect(f"/login?joined=1&email={done.email}", status_code=303)
        form.values.pop("password", None)
        return page(
            request,
            "accounts/invitation.html",
            None,
            status_code=form.status,
            token=token,
            errors=form.errors,
            values=form.values,
        )


class PeoplePages(Controller):
    path = "/account/people"
    include_in_schema = False

    async def _render(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        return page(
            request,
            "accounts/people.html",
            me,
            status_code=status,
            users=await people.users_of(pool, me.org_id),
            invitations=await people.invitations_of(pool, me.org_id, clock.now()),
            errors=errors or {},
            values=values or {},
        )

    async def _then_render(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        form: Form,
        done: object,
        saved: str,
        keep_values: bool = False,
    ) -> Template | Redirect:
        """Back to the page once the form's command `done`, or the page with its refusal."""
        if done is not None:
            return Redirect(f"/account/people?saved={saved}", status_code=303)
        values = form.values if keep_values else None
        return await self._render(
            request, pool, me, clock, errors=form.errors, values=values, status=form.status
        )

    @get("/", operation_id="web_people", guards=[allow(OWN_ACCOUNT)])
    async def index(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep, clock: ClockDep
    ) -> Template:
        return await self._render(request, pool, me, clock)

    @post("/invitations", operation_id="web_invite_user", guards=[allow(INVITE_USERS)])
    async def invite(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        act: ActDep,
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        done = await form.submit(
            lambda: act(
                people.invite_user,
                msgspec.convert(
                    {
                        "email": form.text("email"),
                        "role": form.text("role"),
                        "language": "en" if form.text("language") == "en" else "zh",
                    },
                    Invite,
                ),
            )
        )
        return await self._then_render(request, pool, me, clock, form, done, "invited", True)

    @post(
        "/invitations/{invitation_id:int}/revoke",
        operation_id="web_revoke_invitation",
        guards=[allow(MANAGE_USERS)],
    )
    async def revoke(self, act: ActDep, invitation_id: FromPath[int]) -> Redirect:
        await act(people.revoke_invitation, invitation_id)
        return Redirect("/account/people?saved=revoked", status_code=303)

    @post("/{user_id:int}/role", operation_id="web_set_user_role", guards=[allow(MANAGE_USERS)])
    async def set_role(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        act: ActDep,
        user_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        done = await form.submit(
            lambda: act(
                people.set_user_role,
                msgspec.convert({"user_id": user_id, "role": form.text("role")}, people.SetRole),
            )
        )
        return await self._then_render(request, pool, me, clock, form, done, "role")

    @post(
        "/{user_id:int}/deactivate",
        operation_id="web_deactivate_user",
        guards=[allow(MANAGE_USERS)],
    )
    async def deactivate(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        clock: ClockDep,
        act: ActDep,
        user_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        done = await form.submit(lambda: act(people.deactivate_user, user_id))
        return await self._then_render(request, pool, me, clock, form, done, "deactivated")


class OperatorPages(Controller):
    path = "/operator/organisations"
    include_in_schema = False
    guards = [allow(OPERATE)]

    async def _queue(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        return page(
            request,
            "operator/organisations.html",
            me,
            status_code=status,
            pending=await services.organisations_by_status(pool, ["pending"]),
            kinds=ONBOARD_KINDS,
            errors=errors or {},
            values=values or {},
        )

    @get("/", operation_id="web_operator_orgs")
    async def queue(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        return await self._queue(request, pool, me)

    @post("/", operation_id="web_operator_onboard")
    async def onboard(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep, act: ActDep
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=DOCUMENT_FIELDS)
        documents = await uploaded_documents(request)

        async def send() -> OnboardedOut:
            data = msgspec.convert(
                {
                    "kind": form.text("kind"),
                    "name": form.text("name"),
                    "name_en": form.text("name_en") or None,
                    "credit_code": form.text("credit_code"),
                    "admin_email": form.text("admin_email"),
                    "admin_language": "en" if form.text("admin_language") == "en" else "zh",
                },
                Onboard,
            )
            return await act(
                onboarding.onboard_organisation,
                msgspec.structs.replace(data, documents=documents),
            )

        done = await form.submit(send)
        if done is not None:
            return Redirect(f"/operator/organisations/{done.organisation.id}", status_code=303)
        return await self._queue(
            request, pool, me, errors=form.errors, values=form.values, status=form.status
        )

    async def _show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        org_id: int,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        org = await onboarding.organisation_detail(pool, org_id)
        async with pool.acquire() as conn:
            pools = await conn.fetch(Q.org_pools, org_id)
        return page(
            request,
            "operator/organisation.html",
            me,
            status_code=status,
            org=org,
            documents=org.documents,
            users=org.users,
            pools=pools,
            required=onboarding.REQUIRED_DOCUMENTS.get((org.kind, org.party_type), ()),
            errors=errors or {},
            values=values or {},
        )

    async def _then_show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        org_id: int,
        form: Form,
        call: Callable[[], Awaitable[Any]],
    ) -> Template | Redirect:
        """Run the form's command; back to the organisation, or its page with the refusal."""
        if await form.submit(call) is not None:
            return Redirect(f"/operator/organisations/{org_id}?saved=1", status_code=303)
        return await self._show(
            request, pool, me, org_id, errors=form.errors, values=form.values, status=form.status
        )

    @get("/{org_id:int}", operation_id="web_operator_org")
    async def show(
        self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep, org_id: FromPath[int]
    ) -> Template:
        return await self._show(request, pool, me, org_id)

    @get("/{org_id:int}/documents/{document_id:int}", operation_id="web_operator_org_document")
    async def document(
        self, pool: PoolDep, org_id: FromPath[int], document_id: FromPath[int]
    ) -> Stream:
        return download(pool, await onboarding.document_of(pool, org_id, document_id))

    @post("/{org_id:int}/documents", operation_id="web_operator_org_documents")
    async def upload(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        act: ActDep,
        org_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields=DOCUMENT_FIELDS)
        documents = await uploaded_documents(request)
        if not documents:
            form.fail("documents", "required")
        return await self._then_show(
            request,
            pool,
            me,
            org_id,
            form,
            lambda: act(
                onboarding.upload_documents_for,
                onboarding.DocumentsFor(org_id=org_id, documents=documents),
            ),
        )

    @post("/{org_id:int}/decision", operation_id="web_operator_decide")
    async def decide(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        act: ActDep,
        org_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        return await self._then_show(
            request,
            pool,
            me,
            org_id,
            form,
            lambda: act(
                onboarding.decide_organisation,
                onboarding.DecideOrganisation(
                    org_id=org_id,
                    approve=form.text("decision") == "approve",
                    reason=form.text("reason"),
                ),
            ),
        )

    @post("/{org_id:int}/pools", operation_id="web_operator_create_pool")
    async def create_pool(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        act: ActDep,
        org_id: FromPath[int],
    ) -> Template | Redirect:
        """A pool with a simple first rule: the fund's share of the loss, the bank bearing
        the rest (the API takes every rule field)."""
        form = await Form.read(request, me)
        capital = form.yuan("capital", max_fen=MAX_FEN, required=False) or 0
        cap = form.yuan("cap_per_loan", max_fen=MAX_FEN, required=False)
        effective = form.date("effective_from")
        share = form.text("fund_share_pct")
        if not share.isdigit() or not 1 <= int(share) <= 100:
            form.fail("fund_share_pct", "percent_1_100")
        fund = int(share) if share.isdigit() else 0

        async def send() -> Any:
            shares = [{"name": FUND, "weight": fund}, {"name": BANK, "weight": 100 - fund}]
            data = msgspec.convert(
                {
                    "org_id": org_id,
                    "code": form.text("code"),
                    "name": form.text("pool_name"),
                    "name_en": form.text("pool_name_en") or None,
                    "capital_fen": capital,
                    "rule": {"shares": shares, "cap_per_loan_fen": cap},
                    "effective_from": effective,
                },
                NewPool,
            )
            return await act(create_pool, data)

        return await self._then_show(request, pool, me, org_id, form, send)
