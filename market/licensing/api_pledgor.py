"""The API of the pledgor (its cases, its consent, its answer to a licence back, its open
licences), of the bank's consent to an open licence, and of the public list of open
licences with the taking of one (docs/rules.md §The pledgor, §Open licence)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts.permissions import (
    READ_OWN_CASES,
    SIGN_AS_PLEDGOR,
    TAKE_OPEN_LICENCE,
    WRITE_COLLATERAL,
    allow,
)
from market.cases.services import china_today
from market.deps import ActDep, CallerDep, ClockDep, PoolDep
from market.licensing import open_licence as ol
from market.licensing import pledgor
from market.licensing.contracts import ContractOut
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page

PROPOSAL = api_docs.body(
    ol.Proposal,
    {
        "asset_id": 318,
        "terms": {
            "ends_on": "2034-12-31",
            "period": "yearly",
            "royalty_rate_bp": 300,
            "minimum_annual_fen": 5_000_000,
        },
    },
    {"asset_id": 318, "terms": {"ends_on": "2030-06-30", "per_unit_fen": 150}},
)
DECLARATION = api_docs.body(
    ol.Declaration, {"cnipa_number": "KF2026-000123", "declared_on": "2026-03-02"}
)
WITHDRAWAL = api_docs.body(ol.Withdrawal, {"withdrawn_on": "2027-01-15"})
ANSWER = api_docs.body(
    pledgor.Answer,
    {"accept": True},
    {"accept": False, "reason": "许可费率高于我司可承受水平"},
)


class PledgorApi(Controller):
    path = "/api/v1/pledgor"
    tags = ["pledgor"]

    @get(
        "/cases",
        operation_id="list_pledgor_cases",
        guards=[allow(READ_OWN_CASES)],
        summary="List the pledgor's cases",
    )
    async def cases(
        self, caller: CallerDep, pool: PoolDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[pledgor.PledgorCaseSummary]:
        """The disposal cases of the loans the pledgor borrowed (by its unified social
        credit code, at every bank), newest first: bank, status, lots, outcome, the surplus
        the waterfall owes it, and whether it consented to licensing."""
        return await pledgor.page_cases(pool, caller.org_id, cursor=cursor, limit=limit)

    @get(
        "/cases/{case_id:int}",
        operation_id="get_pledgor_case",
        guards=[allow(READ_OWN_CASES)],
        summary="Read one of the pledgor's cases",
    )
    async def case(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, case_id: FromPath[int]
    ) -> pledgor.PledgorCase:
        """A case with its patents, lots, outcome, surplus payouts, consent, open licences
        and the licence contracts naming the pledgor. Another's case: 404."""
        return await pledgor.get_case(pool, caller.org_id, case_id, china_today(clock.now()))

    @post(
        "/cases/{case_id:int}/licensing-consent",
        operation_id="give_licensing_consent",
        status_code=201,
        guards=[allow(SIGN_AS_PLEDGOR)],
        summary="Consent to licensing the case's rights",
    )
    async def consent(self, act: ActDep, case_id: FromPath[int]) -> pledgor.ConsentOut:
        """The pledgor's consent to licensing the pledged rights (民法典 art. 444), once per
        case (a second: 409); the bank is told. No body."""
        return await act(pledgor.give_licensing_consent, pledgor.CaseRef(case_id=case_id))

    @post(
        "/licence-contracts/{contract_id:int}/answer",
        operation_id="answer_licence_back",
        status_code=200,
        guards=[allow(SIGN_AS_PLEDGOR)],
        summary="Accept or decline a licence back",
    )
    async def answer(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[pledgor.Answer, ANSWER],
    ) -> ContractOut:
        """Accept a licence back awaiting the pledgor (it is in force from now) or decline
        it with a reason (the contract ends terminated); the bank is told."""
        return await act(
            pledgor.answer_licence_back,
            pledgor.AnswerContract(contract_id=contract_id, accept=data.accept, reason=data.reason),
        )

    @post(
        "/cases/{case_id:int}/open-licences",
        operation_id="propose_open_licence",
        status_code=201,
        guards=[allow(SIGN_AS_PLEDGOR)],
        summary="Propose an open licence of a patent",
    )
    async def propose(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[ol.Proposal, PROPOSAL]
    ) -> ol.OpenLicenceOut:
        """An open licence (开放许可) of one patent of the case on published terms:
        non-exclusive, a royalty rate (basis points of net sales) and/or a fee per unit
        and/or a minimum a year, the payment period, the last day (not after the patent's
        expiry). The bank must consent before it is declared."""
        return await act(
            ol.propose_open_licence,
            ol.ProposeOpenLicence(case_id=case_id, asset_id=data.asset_id, terms=data.terms),
        )

    @post(
        "/open-licences/{open_licence_id:int}/declaration",
        operation_id="declare_open_licence",
        status_code=200,
        guards=[allow(SIGN_AS_PLEDGOR)],
        summary="Record CNIPA's announcement of an open licence",
    )
    async def declare(
        self,
        act: ActDep,
        open_licence_id: FromPath[int],
        data: Annotated[ol.Declaration, DECLARATION],
    ) -> ol.OpenLicenceOut:
        """Once the bank consented: CNIPA's announcement number and date. The open licence
        is then listed publicly and may be taken."""
        return await act(
            ol.declare_open_licence,
            ol.DeclareOpenLicence(
                open_licence_id=open_licence_id,
                cnipa_number=data.cnipa_number,
                declared_on=data.declared_on,
            ),
        )

    @post(
        "/open-licences/{open_licence_id:int}/withdrawal",
        operation_id="withdraw_open_licence",
        status_code=200,
        guards=[allow(SIGN_AS_PLEDGOR)],
        summary="Withdraw an open licence",
    )
    async def withdraw(
        self,
        act: ActDep,
        open_licence_id: FromPath[int],
        data: Annotated[ol.Withdrawal, WITHDRAWAL],
    ) -> ol.OpenLicenceOut:
        """The withdrawal's date: no new takers; contracts already made run on (专利法
        art. 50)."""
        return await act(
            ol.withdraw_open_licence,
            ol.WithdrawOpenLicence(open_licence_id=open_licence_id, withdrawn_on=data.withdrawn_on),
        )


class BankOpenLicenceApi(Controller):
    path = "/api/v1/bank/open-licences"
    tags = ["pledgor"]

    @post(
        "/{open_licence_id:int}/consent",
        operation_id="consent_open_licence",
        status_code=200,
        guards=[allow(WRITE_COLLATERAL)],
        summary="Consent, as pledgee, to an open licence",
    )
    async def consent(self, act: ActDep, open_licence_id: FromPath[int]) -> ol.OpenLicenceOut:
        """The bank consents to the pledgor's proposed open licence of a pledged patent
        (民法典 art. 444). No body."""
        return await act(
            ol.consent_open_licence, ol.OpenLicenceRef(open_licence_id=open_licence_id)
        )


class OpenLicencesApi(Controller):
    path = "/api/v1/open-licences"
    tags = ["open licences"]

    @get("/", operation_id="list_open_licences", summary="List open licences")
    async def list(
        self,
        pool: PoolDep,
        clock: ClockDep,
        status: FromQuery[Literal["declared", "withdrawn"]] = "declared",
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ol.OpenLicenceOut]:
        """Patents anyone may license on published terms (开放许可), newest declaration
        first; `status=withdrawn` lists the withdrawn ones. Public."""
        return await ol.page_public(
            pool, china_today(clock.now()), status=status, cursor=cursor, limit=limit
        )

    @get("/{open_licence_id:int}", operation_id="get_open_licence", summary="Read an open licence")
    async def get(
        self, pool: PoolDep, clock: ClockDep, open_licence_id: FromPath[int]
    ) -> ol.OpenLicenceOut:
        """A declared or withdrawn open licence with its terms. Public."""
        return await ol.get_public(pool, open_licence_id, china_today(clock.now()))

    @post(
        "/{open_licence_id:int}/takers",
        operation_id="take_open_licence",
        status_code=201,
        guards=[allow(TAKE_OPEN_LICENCE)],
        summary="Take an open licence",
    )
    async def take(self, act: ActDep, open_licence_id: FromPath[int]) -> ContractOut:
        """Notice that the caller takes the open licence (专利法 art. 51): a non-exclusive
        contract on the published terms from today; one per firm (a second: 409). No
        body."""
        return await act(ol.take_open_licence, ol.OpenLicenceRef(open_licence_id=open_licence_id))
