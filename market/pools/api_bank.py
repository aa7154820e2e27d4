"""The pools API for banks' systems (scopes pools:read / pools:write) and the operator's
manual receipts (operator:write). A bank's token sees only its own loans and cases:
another bank's answers 404. Each write is one transaction with its audit row, so a
refused request writes nothing."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from market.accounts.models import ApiCaller
from market.accounts.services import acting_org
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import Invalid
from market.pools import bank, services
from market.pools.bank import (
    CaseMoneyOut,
    ClaimOut,
    CostIn,
    CostOut,
    EnrolIn,
    EnrolledLoanOut,
    EnrolmentOut,
    PreviewOut,
    ReceiptIn,
    ReceiptOut,
    ReverseIn,
    WriteOffIn,
    WriteOffOut,
)


def bank_of(caller: ApiCaller, scope: str) -> int:
    """The bank organisation a token acts for, once it holds the scope."""
    return acting_org(
        caller, scope, "bank", "only approved banks enrol loans and claim compensation"
    )


def operator_of(caller: ApiCaller) -> int:
    return acting_org(
        caller, "operator:write", "operator", "only the exchange operator records receipts"
    )


class BankPoolsApi(Controller):
    path = "/api/v1/bank"
    tags = ["pools"]

    @get("/pools/loans", operation_id="bank_pool_loans")
    async def loans(self, caller: CallerDep, pool: PoolDep) -> list[EnrolledLoanOut]:
        """The bank's loans enrolled in guarantee pools: pool, rule version, enrolled
        principal, loan status and claims."""
        org = bank_of(caller, "pools:read")
        async with pool.acquire() as conn:
            return await bank.enrolled_loans(conn, org)

    @post("/pools/enrolments", operation_id="bank_pool_enrol", status_code=201)
    async def enrol(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, data: JSONBody[EnrolIn]
    ) -> EnrolmentOut:
        """Enrol a loan in a pool by the pool's code; it keeps the rule version in force
        today. A loan already enrolled: 409; an unknown code: 422 naming pool_code."""
        org = bank_of(caller, "pools:write")
        async with pool.acquire() as conn, conn.transaction():
            row = await services.enrol(
                conn,
                at=clock.now(),
                bank_org_id=org,
                user_id=caller.user_id,
                loan_id=data.loan_id,
                pool_code=data.pool_code.strip().upper(),
                renewal=data.renewal,
            )
            return await bank.enrolment(conn, row["id"])

    @get("/loans/{loan_id:int}/claim-preview", operation_id="bank_claim_preview")
    async def preview(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, loan_id: FromPath[int]
    ) -> PreviewOut:
        """What a claim filed now would be worth, with the explanation in both languages
        (rule, share or tier, cap, limit, budget) or the reason it is not due."""
        org = bank_of(caller, "pools:read")
        async with pool.acquire() as conn:
            return await bank.preview(conn, clock.now(), org, loan_id)

    @get("/loans/{loan_id:int}/claims", operation_id="bank_loan_claims")
    async def loan_claims(
        self, caller: CallerDep, pool: PoolDep, loan_id: FromPath[int]
    ) -> list[ClaimOut]:
        """The claims on one of the bank's loans with decisions and reasons."""
        org = bank_of(caller, "pools:read")
        async with pool.acquire() as conn:
            return await bank.loan_claims(conn, org, loan_id)

    @post("/loans/{loan_id:int}/claims", operation_id="bank_file_claim", status_code=201)
    async def file_claim(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, loan_id: FromPath[int]
    ) -> ClaimOut:
        """File a claim for compensation on a defaulted enrolled loan. Not due: 422 with
        code not_eligible and the explanation's reason; one already waiting: 409."""
        org = bank_of(caller, "pools:write")
        async with pool.acquire() as conn, conn.transaction():
            row = await services.file_claim(
                conn, at=clock.now(), bank_org_id=org, user_id=caller.user_id, loan_id=loan_id
            )
            return await bank.claim(conn, org, row["id"])

    @post("/loans/{loan_id:int}/write-off", operation_id="bank_write_off", status_code=200)
    async def write_off(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        loan_id: FromPath[int],
        data: JSONBody[WriteOffIn],
    ) -> WriteOffOut:
        """核销: record the write-off of a defaulted loan; guarantee deposits parked on it
        are paid out. Twice: 409."""
        org = bank_of(caller, "pools:write")
        async with pool.acquire() as conn, conn.transaction():
            released = await services.write_off(
                conn,
                at=clock.now(),
                bank_org_id=org,
                user_id=caller.user_id,
                loan_id=loan_id,
                on=data.written_off_on,
            )
        return WriteOffOut(
            loan_id=loan_id, written_off_on=data.written_off_on, released_claims=released
        )

    @get("/cases/{case_id:int}/receipts", operation_id="bank_case_receipts")
    async def receipts(
        self, caller: CallerDep, pool: PoolDep, case_id: FromPath[int]
    ) -> CaseMoneyOut:
        """The case's disposal costs and receipts, each with where its fen went (step,
        payee, fen) and the payouts made (reference, status)."""
        org = bank_of(caller, "pools:read")
        async with pool.acquire() as conn:
            return await bank.case_money(conn, org, case_id)

    @post("/cases/{case_id:int}/costs", operation_id="bank_case_cost", status_code=201)
    async def add_cost(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        data: JSONBody[CostIn],
    ) -> CostOut:
        """A disposal cost the bank advanced (appraisal, auction, other): repaid first."""
        org = bank_of(caller, "pools:write")
        async with pool.acquire() as conn, conn.transaction():
            row = await services.add_cost(
                conn,
                at=clock.now(),
                bank_org_id=org,
                user_id=caller.user_id,
                case_id=case_id,
                kind=data.kind,
                amount_fen=data.amount_fen,
                memo=data.memo.strip(),
            )
            [cost] = await bank.costs(conn, case_id, row["id"])
        return cost

    @post("/cases/{case_id:int}/close", operation_id="bank_close_case", status_code=200)
    async def close_case(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, case_id: FromPath[int]
    ) -> CaseMoneyOut:
        """处置终结: the disposal is over and the loss realised. A lot still selling: 409."""
        org = bank_of(caller, "pools:write")
        async with pool.acquire() as conn, conn.transaction():
            await services.close_case(
                conn, at=clock.now(), bank_org_id=org, user_id=caller.user_id, case_id=case_id
            )
            return await bank.case_money(conn, org, case_id)


class OperatorReceiptsApi(Controller):
    path = "/api/v1/operator"
    tags = ["pools"]

    @post("/cases/{case_id:int}/receipts", operation_id="operator_record_receipt", status_code=201)
    async def record(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        case_id: FromPath[int],
        data: JSONBody[ReceiptIn],
    ) -> ReceiptOut:
        """Money received on a case other than by a sale (licence fee, royalty, other),
        routed through the waterfall. The same reference and amount again: the same
        receipt; the same reference with another amount or case: 409."""
        org = operator_of(caller)
        async with pool.acquire() as conn, conn.transaction():
            receipt, _created = await bank.record_manual_receipt(
                conn,
                at=clock.now(),
                operator_org_id=org,
                operator_user_id=caller.user_id,
                case_id=case_id,
                case_reference=None,
                data=data,
            )
            return await bank.receipt_out(conn, receipt)

    @post(
        "/receipts/{receipt_id:int}/reverse",
        operation_id="operator_reverse_receipt",
        status_code=200,
    )
    async def reverse(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        receipt_id: FromPath[int],
        data: JSONBody[ReverseIn],
    ) -> ReceiptOut:
        """Reverse a receipt that did not really arrive: a new negating posting. Refused
        (409) once a payout of it was received."""
        operator_of(caller)
        reason = data.reason.strip()
        if not reason:
            raise Invalid("请说明冲正原因 / say why the receipt is reversed", field="reason")
        async with pool.acquire() as conn, conn.transaction():
            receipt = await services.reverse_receipt(
                conn,
                at=clock.now(),
                receipt_id=receipt_id,
                actor_user_id=caller.user_id,
                reason=reason,
            )
            return await bank.receipt_out(conn, receipt)
