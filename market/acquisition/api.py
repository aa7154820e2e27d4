"""Disposal by agreement's API (docs/rules.md §Acquisition and pledge-to-equity): the bank
proposes an acquisition at an agreed price or a pledge-to-equity on its case and may
withdraw it (PROPOSE_AGREEMENT); the bank, the organisations that bore the loss and a
taker read the attempts they are party to (READ_AGREEMENTS); a pool manager objects
(OBJECT_TO_AGREEMENT); the operator lists every attempt (OPERATE). The pages
(market/acquisition/web.py) run the same commands."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath

from market import api_docs
from market.accounts.permissions import (
    OBJECT_TO_AGREEMENT,
    OPERATE,
    PROPOSE_AGREEMENT,
    READ_AGREEMENTS,
    TAKE_AGREEMENT,
    allow,
)
from market.acquisition import agreement
from market.acquisition.agreement import (
    AcquisitionIn,
    Agreement,
    AnswerIn,
    CaseAgreements,
    EquityIn,
    ObjectionIn,
    Propose,
)
from market.deps import ActDep, CallerDep, PoolDep

ACQUISITION = api_docs.body(AcquisitionIn, {"amount_fen": 123_456_789, "consent_document_id": 311})
EQUITY = api_docs.body(
    EquityIn,
    {
        "amount_fen": 100_000_000,
        "consent_document_id": 311,
        "appraisal_document_id": 312,
        "appraiser": "中联资产评估集团有限公司",
        "report_no": "中联评报字[2026]第207号",
        "appraised_fen": 100_000_000,
        "valued_on": "2026-02-15",
        "equity_percent": "12.5",
        "equity_shares": 1_250_000,
    },
)
ANSWER = api_docs.body(AnswerIn, {"decision": "accept"})
OBJECTION = api_docs.body(ObjectionIn, {"reason": "协议价格明显低于同类专利近期成交价"})


class BankAgreementApi(Controller):
    path = "/api/v1/bank"
    tags = ["agreed disposals"]

    @post(
        "/cases/{case_id:int}/acquisitions",
        operation_id="propose_acquisition",
        summary="Propose taking the case's assets at an agreed price",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def acquisition(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[AcquisitionIn, ACQUISITION]
    ) -> Agreement:
        """The bank takes the case's assets itself at `amount_fen` (协议折价, Civil Code art.
        436): not below the last failed auction's start price or 70 % of the valuation,
        whichever is higher (422 naming `amount_fen`), with the pledgor's written consent
        (a case document of item `pledgor_consent`); the loss-bearing pools may object for
        10 days, then it completes. With `taker_org_id`, an approved acquisition institution
        (422 `agreement_taker_not_acquirer` / `agreement_taker_not_approved` naming it)
        buys the case's failed lot at that price once it accepted: a sale like any other."""
        return await act(agreement.propose, Propose(case_id=case_id, offer=data))

    @post(
        "/cases/{case_id:int}/equity-conversions",
        operation_id="propose_equity_conversion",
        summary="Propose converting the claim into equity of the borrower",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def equity(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[EquityIn, EQUITY]
    ) -> Agreement:
        """质权转股权: `amount_fen` of the claim becomes the equity the appraisal report (a
        case document of item `equity_appraisal`, valid, 422 `appraisal_expired` naming
        `valued_on` otherwise) values; the same consent and objection window as an
        acquisition."""
        return await act(agreement.propose, Propose(case_id=case_id, offer=data))

    @get(
        "/cases/{case_id:int}/agreed-disposals",
        operation_id="list_case_agreed_disposals",
        summary="A case's acquisitions and equity conversions",
        guards=[allow(PROPOSE_AGREEMENT)],
    )
    async def of_case(
        self, pool: PoolDep, caller: CallerDep, case_id: FromPath[int]
    ) -> CaseAgreements:
        """Every attempt on the bank's case (status, window, what the bank owes and the
        reference to pay it with) and the equity held."""
        async with pool.acquire() as conn:
            return await agreement.of_case(conn, caller.org_id, case_id)

    @post(
        "/agreed-disposals/{disposal_id:int}/withdrawal",
        operation_id="withdraw_agreed_disposal",
        summary="Withdraw a pending acquisition or equity conversion",
        guards=[allow(PROPOSE_AGREEMENT)],
        status_code=200,
    )
    async def withdraw(self, act: ActDep, disposal_id: FromPath[int]) -> Agreement:
        """While its objection window runs; 409 `agreement_ended` after."""
        return await act(agreement.withdraw, agreement.Withdraw(disposal_id=disposal_id))


class AgreementApi(Controller):
    path = "/api/v1/agreed-disposals"
    tags = ["agreed disposals"]

    @get(
        "/",
        operation_id="list_agreed_disposals",
        summary="The attempts the organisation is party to",
        guards=[allow(READ_AGREEMENTS)],
    )
    async def index(self, pool: PoolDep, caller: CallerDep) -> list[Agreement]:
        """A bank's own, those on loans whose loss a pool bore, newest first (200)."""
        async with pool.acquire() as conn:
            return await agreement.listed(conn, caller.org_id, caller.org_kind)

    @get(
        "/{disposal_id:int}",
        operation_id="get_agreed_disposal",
        summary="One acquisition or equity conversion",
        guards=[allow(READ_AGREEMENTS)],
    )
    async def show(self, act: ActDep, disposal_id: FromPath[int]) -> Agreement:
        """Its status and window; 404 for an organisation not party to it."""
        return await act(agreement.status_of, disposal_id)

    @post(
        "/{disposal_id:int}/objection",
        operation_id="object_to_agreed_disposal",
        summary="Object to an acquisition or equity conversion",
        guards=[allow(OBJECT_TO_AGREEMENT)],
        status_code=200,
    )
    async def objection(
        self, act: ActDep, disposal_id: FromPath[int], data: Annotated[ObjectionIn, OBJECTION]
    ) -> Agreement:
        """A pool that bore the loss, with a reason, within the window (422
        `objection_window_closed` naming `reason` after): the attempt stops."""
        data_in = agreement.Object(disposal_id=disposal_id, reason=data.reason)
        return await act(agreement.object_to, data_in)

    @post(
        "/{disposal_id:int}/answer",
        operation_id="answer_agreed_disposal",
        summary="Accept or decline being the taker of an acquisition",
        guards=[allow(TAKE_AGREEMENT)],
        status_code=200,
    )
    async def answer(
        self, act: ActDep, disposal_id: FromPath[int], data: Annotated[AnswerIn, ANSWER]
    ) -> Agreement:
        """The acquisition institution the bank named, by `accept_by` (422
        `agreement_acceptance_closed` naming `decision` after); another organisation's
        answer is 404. Accepted and not objected to, the attempt becomes a sale to it when
        the pools' window ends."""
        data_in = agreement.Answer(disposal_id=disposal_id, decision=data.decision)
        return await act(agreement.answer, data_in)


class OperatorAgreementApi(Controller):
    path = "/api/v1/operator/agreed-disposals"
    tags = ["agreed disposals"]
    guards = [allow(OPERATE)]

    @get("/", operation_id="list_operator_agreed_disposals", summary="Every attempt, newest first")
    async def index(self, pool: PoolDep) -> list[Agreement]:
        """Every acquisition and equity conversion on the exchange (the latest 200)."""
        async with pool.acquire() as conn:
            return await agreement.listed(conn, 0, "operator")
