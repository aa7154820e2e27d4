"""The API of payments out (docs/rules.md §Payments out): an organisation's settlement
account and the refunds and payouts owed to it; a pool's and a pledgor's accounts; the
operator's instructions, payment files and value dates.

Permissions: READ_PAYMENTS (`account:read`) to read one's own, MANAGE_SETTLEMENT_ACCOUNT
(`account:write`, admins) to set the organisation's account, WRITE_POOL / WRITE_COLLATERAL
for a pool's / a pledgor's, OPERATE (`operator:write`) for the operator's."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts.permissions import (
    MANAGE_SETTLEMENT_ACCOUNT,
    OPERATE,
    READ_PAYMENTS,
    WRITE_COLLATERAL,
    WRITE_POOL,
    allow,
)
from market.deps import ActDep, CallerDep, PoolDep
from market.errors import NotFound
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.payments import accounts, files, views
from market.payments.instructions import Purpose, Status

ACCOUNT = api_docs.body(
    accounts.AccountIn,
    {
        "account_name": "成都锂电材料有限公司",
        "account_number": "6222021234567890123",
        "bank_name": "中国工商银行成都高新支行",
    },
)
EXPORT = api_docs.body(files.ExportIn, {"value_date": "2026-03-02"})
CLOSE = api_docs.body(files.CloseIn, {"value_date": "2026-03-02"})


async def file_response(pool: asyncpg.Pool, file_id: int) -> Response[bytes]:
    """A payment file as handed to the bank, for download (the API and the page)."""
    async with pool.acquire() as conn:
        value_date, data = await files.file_content(conn, file_id)
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="payments-{value_date}-{file_id}.csv"'
        },
    )


class PaymentsApi(Controller):
    path = "/api/v1"
    tags = ["payments"]

    @get(
        "/settlement-account",
        operation_id="get_settlement_account",
        summary="Read the organisation's settlement account",
        guards=[allow(READ_PAYMENTS)],
    )
    async def account(self, caller: CallerDep, pool: PoolDep) -> accounts.AccountOut:
        """The account refunds and payouts are sent to (404 until the admin sets one)."""
        async with pool.acquire() as conn:
            found = await accounts.account_of(conn, "org", caller.org_id)
        if found is None:
            raise NotFound("no_settlement_account")
        return found

    @put(
        "/settlement-account",
        operation_id="set_settlement_account",
        summary="Set the organisation's settlement account",
        guards=[allow(MANAGE_SETTLEMENT_ACCOUNT)],
    )
    async def set_account(
        self, act: ActDep, data: Annotated[accounts.AccountIn, ACCOUNT]
    ) -> accounts.AccountOut:
        """户名, 账号 (8 to 32 digits, spaces ignored) and 开户行; a bad one is 422 naming
        the field, nothing written. Replaces the previous account; audited."""
        return await act(accounts.set_own_account, data)

    @put(
        "/pools/{pool_id:int}/settlement-account",
        operation_id="set_pool_settlement_account",
        summary="Give a pool a settlement account of its own",
        guards=[allow(WRITE_POOL)],
    )
    async def set_pool_account(
        self, act: ActDep, pool_id: FromPath[int], data: Annotated[accounts.AccountIn, ACCOUNT]
    ) -> accounts.AccountOut:
        """The pool's payouts go here instead of the manager organisation's account."""
        return await act(
            accounts.set_pool_account, accounts.SetPoolAccount(pool_id=pool_id, account=data)
        )

    @put(
        "/collateral/pledgors/{pledgor_id:int}/settlement-account",
        operation_id="set_pledgor_settlement_account",
        summary="Record a pledgor's settlement account",
        guards=[allow(WRITE_COLLATERAL)],
    )
    async def set_pledgor_account(
        self,
        act: ActDep,
        pledgor_id: FromPath[int],
        data: Annotated[accounts.AccountIn, ACCOUNT],
    ) -> accounts.AccountOut:
        """The account a pledgor's surplus is paid to while it has no organisation here."""
        return await act(
            accounts.set_pledgor_account,
            accounts.SetPledgorAccount(pledgor_id=pledgor_id, account=data),
        )

    @get(
        "/payments-owed",
        operation_id="list_payments_owed",
        summary="List the refunds and payouts the exchange owes the organisation",
        guards=[allow(READ_PAYMENTS)],
    )
    async def owed(
        self,
        caller: CallerDep,
        pool: PoolDep,
        purpose: FromQuery[Purpose | None] = None,
        status: FromQuery[Status | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[views.OwedOut]:
        """Newest first: each refund (a released deposit, a refunded sale) and payout owed
        to the organisation, its pools or the pledgor it is, with the reference written on
        the transfer, the due date and the status (pending, in_file, paid, cancelled).
        Filters: `purpose`, `status`."""
        return await views.page_owed(
            pool, caller.org_id, purpose=purpose, status=status, cursor=cursor, limit=limit
        )


class OperatorPaymentsApi(Controller):
    path = "/api/v1/operator"
    tags = ["payments"]
    guards = [allow(OPERATE)]

    @get(
        "/payment-instructions",
        operation_id="list_payment_instructions_out",
        summary="List the exchange's payment instructions",
    )
    async def instructions(
        self,
        pool: PoolDep,
        status: FromQuery[Status | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[views.InstructionOut]:
        """Soonest due first, with the payee's account or why it is `held` back from a
        payment file, the file it went out in and the statement line that proved it paid."""
        return await views.page_instructions(pool, status=status, cursor=cursor, limit=limit)

    @get(
        "/payment-files",
        operation_id="list_payment_files",
        summary="List the payment files exported",
    )
    async def payment_files(self, pool: PoolDep) -> list[files.FileOut]:
        """The latest 100 files, newest first, and whether their value date is closed."""
        async with pool.acquire() as conn:
            return await files.list_files(conn)

    @post(
        "/payment-files",
        operation_id="export_payment_file",
        summary="Export the instructions due by a value date as a payment file",
        status_code=201,
    )
    async def export(self, act: ActDep, data: Annotated[files.ExportIn, EXPORT]) -> files.FileOut:
        """The pending instructions due by the end of `value_date` (China) whose payee has
        an account go into one file (read it at /payment-files/{id}/content); the others
        are listed as `held`. A closed value date: 409; a past one, or nothing to pay: 422
        — naming `value_date`, nothing written."""
        return await act(files.export_payment_file, data)

    @get(
        "/payment-files/{file_id:int}/content",
        operation_id="download_payment_file",
        summary="Download a payment file (CSV for the exchange's bank)",
        media_type="text/csv",
    )
    async def content(self, pool: PoolDep, file_id: FromPath[int]) -> Response[bytes]:
        """UTF-8 with BOM, CRLF; columns 序号, 收款户名, 收款账号, 开户行, 金额(元), 用途/附言
        (docs/payment_file.md)."""
        return await file_response(pool, file_id)

    @post(
        "/payment-periods/close",
        operation_id="close_payment_period",
        summary="Close a value date once its payment files were sent",
        status_code=200,
    )
    async def close(self, act: ActDep, data: Annotated[files.CloseIn, CLOSE]) -> files.PeriodOut:
        """No more files are exported for `value_date`; closed before: 409. Audited."""
        return await act(files.close_payment_period, data)
