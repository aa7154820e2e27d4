"""The pools API for banks' systems and the operator's manual receipts. A bank's token sees
only its own loans and cases: another bank's answers 404. Each write is one command, with
its audit row, so a refused request writes nothing."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath

from market import api_docs
from market.accounts.permissions import (
    OPERATE,
    READ_BANK_POOLS,
    WRITE_BANK_POOLS,
    allow,
)
from market.deps import ActDep, CallerDep, ClockDep, PoolDep
from market.pools import bank
from market.pools.bank import (
    CaseCost,
    CaseMoneyOut,
    ClaimOut,
    CostIn,
    CostOut,
    EnrolIn,
    EnrolledLoanOut,
    EnrolmentOut,
    ManualReceipt,
    PreviewOut,
    ReceiptIn,
    ReceiptOut,
    RecentReceipt,
    ReverseIn,
    ReverseReceipt,
    WriteOff,
    WriteOffIn,
    WriteOffOut,
)

ENROL = api_docs.body(EnrolIn, {"loan_id": 1042, "pool_code": "SZ-2025", "renewal": False})
WRITE_OFF = api_docs.body(WriteOffIn, {"written_off_on": "2026-03-31"})
COST = api_docs.body(CostIn, {"kind": "appraisal", "amount_fen": 1_200_000, "memo": "评估费"})
RECEIPT = api_docs.body(
    ReceiptIn, {"kind": "licence_fee", "reference": "LIC-2026Q1-0007", "amount_fen": 15_000_000}
)
REVERSE = api_docs.body(ReverseIn, {"reason": "银行退汇，款项未实际到账"})


class BankPoolsApi(Controller):
    path = "/api/v1/bank"
    tags = ["pools"]

    @get(
        "/pools/loans",
        operation_id="bank_pool_loans",
        summary="List the bank's loans enrolled in pools",
        guards=[allow(READ_BANK_POOLS)],
    )
    async def loans(self, caller: CallerDep, pool: PoolDep) -> list[EnrolledLoanOut]:
        """The bank's loans enrolled in guarantee pools: pool, rule version, enrolled
        principal, loan status and claims."""
        async with pool.acquire() as conn:
            return await bank.enrolled_loans(conn, caller.org_id)

    @post(
        "/pools/enrolments",
        operation_id="bank_pool_enrol",
        summary="Enrol a loan in a guarantee pool",
        status_code=201,
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def enrol(self, act: ActDep, data: Annotated[EnrolIn, ENROL]) -> EnrolmentOut:
        """Enrol a loan in a pool by the pool's code; it keeps the rule version in force
        today. A loan already enrolled: 409 `loan_already_enrolled`; an unknown code: 422
        `no_pool_with_code` naming pool_code."""
        return await act(bank.enrol_loan, data)

    @get(
        "/loans/{loan_id:int}/claim-preview",
        operation_id="bank_claim_preview",
        summary="Preview a compensation claim on a loan",
        guards=[allow(READ_BANK_POOLS)],
    )
    async def preview(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, loan_id: FromPath[int]
    ) -> PreviewOut:
        """What a claim filed now would be worth, with the explanation (rule, share or
        tier, cap, limit, budget) as catalog keys and numbers, or the reason it is not
        due."""
        async with pool.acquire() as conn:
            return await bank.preview(conn, clock.now(), caller.org_id, loan_id)

    @get(
        "/loans/{loan_id:int}/claims",
        operation_id="bank_loan_claims",
        summary="List the claims on one loan",
        guards=[allow(READ_BANK_POOLS)],
    )
    async def loan_claims(
        self, caller: CallerDep, pool: PoolDep, loan_id: FromPath[int]
    ) -> list[ClaimOut]:
        """The claims on one of the bank's loans with decisions and reasons."""
        async with pool.acquire() as conn:
            return await bank.loan_claims(conn, caller.org_id, loan_id)

    @post(
        "/loans/{loan_id:int}/claims",
        operation_id="bank_file_claim",
        summary="File a compensation claim on a loan",
        status_code=201,
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def file_claim(self, act: ActDep, loan_id: FromPath[int]) -> ClaimOut:
        """File a claim for compensation on a defaulted enrolled loan. Not due: 422 with
        the reason's code (`claim_loss_not_realised`, `claim_advance_waiting` …); one
        already waiting: 409 `claim_already_waiting`."""
        return await act(bank.file_claim, loan_id)

    @post(
        "/loans/{loan_id:int}/write-off",
        operation_id="bank_write_off",
        summary="Record a loan's write-off",
        status_code=200,
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def write_off(
        self, act: ActDep, loan_id: FromPath[int], data: Annotated[WriteOffIn, WRITE_OFF]
    ) -> WriteOffOut:
        """核销: record the write-off of a defaulted loan; guarantee deposits parked on it
        are paid out. Twice: 409."""
        return await act(
            bank.write_off, WriteOff(loan_id=loan_id, written_off_on=data.written_off_on)
        )

    @get(
        "/cases/{case_id:int}/receipts",
        operation_id="bank_case_receipts",
        summary="Read a case's costs, receipts and payouts",
        guards=[allow(READ_BANK_POOLS)],
    )
    async def receipts(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, case_id: FromPath[int]
    ) -> CaseMoneyOut:
        """The case's disposal costs and receipts, each with where its fen went (step,
        payee, fen) and the payouts made (reference, status); and each licence contract's
        stream: expected, due, received, outstanding and late by period."""
        async with pool.acquire() as conn:
            return await bank.case_money(conn, caller.org_id, case_id, clock.now())

    @post(
        "/cases/{case_id:int}/costs",
        operation_id="bank_case_cost",
        summary="Record a disposal cost of a case",
        status_code=201,
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def add_cost(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[CostIn, COST]
    ) -> CostOut:
        """A disposal cost the bank advanced (appraisal, auction, other): repaid first."""
        return await act(
            bank.record_case_cost,
            CaseCost(case_id=case_id, kind=data.kind, amount_fen=data.amount_fen, memo=data.memo),
        )

    @post(
        "/cases/{case_id:int}/close",
        operation_id="bank_close_case",
        summary="Close a case's disposal",
        status_code=200,
        guards=[allow(WRITE_BANK_POOLS)],
    )
    async def close_case(self, act: ActDep, case_id: FromPath[int]) -> CaseMoneyOut:
        """处置终结: the disposal is over and the loss realised. A lot still selling: 409
        `case_lots_still_selling`."""
        return await act(bank.close_case, case_id)


class OperatorReceiptsApi(Controller):
    path = "/api/v1/operator"
    tags = ["pools"]
    guards = [allow(OPERATE)]

    @get(
        "/receipts",
        operation_id="operator_list_receipts",
        summary="List the latest receipts of every case",
        cache=False,
    )
    async def receipts(self, pool: PoolDep) -> list[RecentReceipt]:
        """Every bank's receipts, newest first (the latest 200): case, bank, kind,
        source, amount, commission, status, and how many of its payouts the payees
        received (a receipt with none can still be reversed)."""
        async with pool.acquire() as conn:
            return await bank.recent_receipts(conn)

    @post(
        "/cases/{case_id:int}/receipts",
        operation_id="operator_record_receipt",
        summary="Record money received on a case",
        status_code=201,
    )
    async def record(
        self, act: ActDep, case_id: FromPath[int], data: Annotated[ReceiptIn, RECEIPT]
    ) -> ReceiptOut:
        """Money received on a case other than by a sale (licence fee, royalty, other),
        routed through the waterfall. The same reference and amount again: the same
        receipt; the same reference with another amount or case: 409
        `receipt_reference_taken`."""
        recorded = await act(
            bank.record_receipt,
            ManualReceipt(
                case_id=case_id,
                kind=data.kind,
                reference=data.reference,
                amount_fen=data.amount_fen,
                commission_fen=data.commission_fen,
            ),
        )
        return recorded.receipt

    @post(
        "/receipts/{receipt_id:int}/reverse",
        operation_id="operator_reverse_receipt",
        summary="Reverse a receipt",
        status_code=200,
    )
    async def reverse(
        self, act: ActDep, receipt_id: FromPath[int], data: Annotated[ReverseIn, REVERSE]
    ) -> ReceiptOut:
        """Reverse a receipt that did not really arrive: a new negating posting. Refused
        (409 `receipt_paid_out`) once a payout of it was received."""
        return await act(
            bank.reverse_receipt, ReverseReceipt(receipt_id=receipt_id, reason=data.reason)
        )
