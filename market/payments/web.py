"""The pages of payments out (docs/rules.md §Payments out): an organisation's refunds and
payouts with its settlement account, and the operator's instructions, payment files and
value dates. Thin adapters: each form runs the API's command."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from market.accounts.models import Viewer
from market.accounts.permissions import MANAGE_SETTLEMENT_ACCOUNT, OPERATE, READ_PAYMENTS, allow
from market.commands import Act
from market.deps import ActDep, MeDep, PoolDep
from market.payments import accounts, files, views
from market.payments.api import file_response
from market.payments.instructions import Status
from market.web import Form, page

PAGE_SIZE = 50
STATUSES = ("pending", "in_file", "paid", "cancelled")


async def _owed_page(
    request: Request[Any, Any, State],
    pool: Any,
    me: Viewer,
    *,
    cursor: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Template:
    found = await views.page_owed(
        pool, me.org_id, purpose=None, status=None, cursor=cursor, limit=PAGE_SIZE
    )
    async with pool.acquire() as conn:
        account = await accounts.account_of(conn, "org", me.org_id)
    return page(
        request,
        "payments/owed.html",
        me,
        status_code=status_code,
        owed=found,
        account=account,
        form="account",  # the page's one form: where a field's refusal is shown
        values=values or {},
        errors=errors or {},
        saved=saved,
    )


class PaymentsPages(Controller):
    path = "/payments"
    include_in_schema = False

    @get("/", operation_id="web_payments", guards=[allow(READ_PAYMENTS)])
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """The refunds and payouts owed to the organisation, and its settlement account."""
        return await _owed_page(request, pool, me, cursor=cursor)

    @post(
        "/account",
        operation_id="web_set_settlement_account",
        guards=[allow(MANAGE_SETTLEMENT_ACCOUNT)],
    )
    async def set_account(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        """The admin sets the account; a bad one is shown beside its field, nothing saved."""
        form = await Form.read(request, me)
        data = accounts.AccountIn(
            account_name=form.values.get("account_name", ""),
            account_number=form.values.get("account_number", ""),
            bank_name=form.values.get("bank_name", ""),
        )
        done = await form.submit(lambda: act(accounts.set_own_account, data))
        if done is None:
            return await _owed_page(
                request,
                pool,
                me,
                values=form.values,
                errors=form.errors,
                status_code=form.status,
            )
        return await _owed_page(request, pool, me, saved=True)


async def _operator_page(
    request: Request[Any, Any, State],
    pool: Any,
    me: Viewer,
    *,
    status: Status | None = None,
    cursor: str | None = None,
    exported: files.FileOut | None = None,
    closed: files.PeriodOut | None = None,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    found = await views.page_instructions(pool, status=status, cursor=cursor, limit=PAGE_SIZE)
    async with pool.acquire() as conn:
        made = await files.list_files(conn, limit=50)
    return page(
        request,
        "payments/operator.html",
        me,
        status_code=status_code,
        instructions=found,
        files=made,
        status=status,
        statuses=STATUSES,
        exported=exported,
        closed=closed,
        form=form,
        values=values or {},
        errors=errors or {},
    )


async def _dated_form(
    request: Request[Any, Any, State], pool: Any, act: Act, me: Viewer, which: str
) -> Template:
    """The operator's two forms of one field, `value_date`: export a file, or close the
    date. A refusal is shown beside the field of the form that was sent."""
    form = await Form.read(request, me)
    day = form.date("value_date")

    async def run() -> files.FileOut | files.PeriodOut:
        assert day is not None  # Form.submit runs this only when the date was read
        if which == "export":
            return await act(files.export_payment_file, files.ExportIn(value_date=day))
        return await act(files.close_payment_period, files.CloseIn(value_date=day))

    done = await form.submit(run)
    if done is None:
        return await _operator_page(
            request,
            pool,
            me,
            form=which,
            values=form.values,
            errors=form.errors,
            status_code=form.status,
        )
    if isinstance(done, files.FileOut):
        return await _operator_page(request, pool, me, exported=done)
    return await _operator_page(request, pool, me, closed=done)


class OperatorPaymentsPages(Controller):
    path = "/operator/payments-out"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/", operation_id="web_operator_payments_out")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        status: FromQuery[Status | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """The instructions (held ones with their reason), the files, export and close."""
        return await _operator_page(request, pool, me, status=status, cursor=cursor)

    @post("/export", operation_id="web_operator_export_payment_file")
    async def export(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        """Export the instructions due by the value date typed (export_payment_file)."""
        return await _dated_form(request, pool, act, me, "export")

    @post("/close", operation_id="web_operator_close_payment_period")
    async def close(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        """Close the value date typed (close_payment_period)."""
        return await _dated_form(request, pool, act, me, "close")

    @get("/files/{file_id:int}", operation_id="web_operator_payment_file")
    async def download(self, pool: PoolDep, file_id: FromPath[int]) -> Response[bytes]:
        """The file as handed to the bank, as the API gives it."""
        return await file_response(pool, file_id)
