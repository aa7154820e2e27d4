"""The transfer of title's pages (docs/rules.md §Transfer of title), thin adapters over
the commands the API runs (market/transfer/api.py).

The bank and the buyer (READ_TRANSFERS) list the transfers of their sales on /transfers
and read one on /transfers/{sale}: the steps with their deadlines, the notices needed and
those uploaded; the page carries the upload form of the reader's own step (the bank: the
pledge's release; the buyer: each recordal). The operator's queue of sales held in escrow
is /operator/transfers; on /operator/transfers/{sale} the operator downloads and checks
the notices, confirms (the price is routed), rejects one with a reason, or records a
failure and who caused it (the sale unwinds). Another organisation's sale: 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from market.accounts.models import Viewer
from market.accounts.permissions import (
    OPERATE,
    READ_TRANSFERS,
    RECORD_TRANSFER,
    RELEASE_PLEDGE,
    allow,
    may,
)
from market.cases.api import download
from market.cases.policy import DEFAULT_DOCUMENT_POLICY
from market.deps import ActDep, MeDep, PoolDep, SettingsDep
from market.lots.forms import placed
from market.transfer import checking, escrow, notices
from market.transfer.models import (
    RELEASE,
    ConfirmTransfer,
    RecordFailure,
    RejectNotice,
    TransferOut,
    UploadNotice,
)
from market.web import Form, page

# A service's field → the form's (a refusal shows beside what the person typed into).
NOTICE_FIELDS = {"filename": "document", "content": "document", "file": "document"}
SHOWN = {
    "notice": frozenset({"kind", "number", "issued_on", "document"}),
    "reject": frozenset({"reason"}),
    "failure": frozenset({"cause", "note"}),
}
CAUSES = ("pledgor_dispute", "lapsed_right", "bank", "buyer")


def _uploadable(t: TransferOut, me: Viewer) -> list[str]:
    """The notices the reader's organisation may upload now: its own, not yet standing."""
    if t.status != "in_escrow":
        return []
    if me.org_id == t.bank_org_id and may(me, RELEASE_PLEDGE.name):
        return [k for k in t.missing if k == RELEASE]
    if me.org_id == t.buyer_org_id and may(me, RECORD_TRANSFER.name):
        return [k for k in t.missing if k != RELEASE]
    return []


async def _transfer_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    sale_id: int,
    *,
    operator: bool = False,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        t = await escrow.view(conn, sale_id, None if operator else me.org_id)
    return page(
        request,
        "transfer/transfer.html",
        me,
        status_code=status_code,
        t=t,
        operator=operator,
        uploadable=[] if operator else _uploadable(t, me),
        role="operator" if operator else ("bank" if me.org_id == t.bank_org_id else "buyer"),
        causes=CAUSES,
        form=form,
        values=values or {},
        errors=placed(errors or {}, SHOWN.get(form or "", frozenset())),
        done=done,
        max_mb=DEFAULT_DOCUMENT_POLICY.max_bytes // (1024 * 1024),
        base="/operator/transfers" if operator else "/transfers",
    )


async def _list_page(
    request: Request[Any, Any, State], pool: asyncpg.Pool, me: Viewer, *, operator: bool
) -> Template:
    async with pool.acquire() as conn:
        found = await escrow.listing(conn, None if operator else me.org_id)
    return page(
        request,
        "transfer/transfers.html",
        me,
        transfers=found,
        operator=operator,
        base="/operator/transfers" if operator else "/transfers",
    )


async def _answer(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    sale_id: int,
    form: Form,
    name: str,
    call: Callable[[], Awaitable[Any]],
    *,
    operator: bool,
) -> Template | Redirect:
    """Run the command; a refusal shows the page again with the error beside its field,
    else back to the page."""
    done = await form.submit(call)
    if done is None:
        return await _transfer_page(
            request,
            pool,
            me,
            sale_id,
            operator=operator,
            form=name,
            values=form.values,
            errors=form.errors,
            status_code=form.status,
        )
    base = "/operator/transfers" if operator else "/transfers"
    return Redirect(f"{base}/{sale_id}?done={name}", status_code=303)


async def _notice(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    act: ActDep,
    me: Viewer,
    sale_id: int,
    command: Any,
) -> Template | Redirect:
    form = await Form.read(request, me, fields=NOTICE_FIELDS)
    issued_on = form.date("issued_on")
    if not form.text("number"):
        form.fail("number", "required")
    if not form.text("kind"):
        form.fail("kind", "required")
    upload = (await request.form()).get("document")
    if not (isinstance(upload, UploadFile) and upload.filename):
        form.fail("document", "required")

    async def run() -> Any:
        assert isinstance(upload, UploadFile) and issued_on is not None
        data = UploadNotice(
            sale_id=sale_id,
            kind=form.text("kind"),  # type: ignore[arg-type]  # checked by the command
            number=form.text("number"),
            issued_on=issued_on,
            filename=upload.filename,
            content=await upload.read(),
        )
        return await act(command, data)

    return await _answer(request, pool, me, sale_id, form, "notice", run, operator=False)


class TransferPages(Controller):
    path = "/transfers"
    include_in_schema = False

    @get("/", operation_id="web_transfers", guards=[allow(READ_TRANSFERS)])
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        """权利转移: the transfers of the sales the organisation bought or sold."""
        return await _list_page(request, pool, me, operator=False)

    @get("/{sale_id:int}", operation_id="web_transfer", guards=[allow(READ_TRANSFERS)])
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        sale_id: FromPath[int],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _transfer_page(request, pool, me, sale_id, done=done)

    @get(
        "/{sale_id:int}/notices/{notice_id:int}/document",
        operation_id="web_transfer_notice_document",
        guards=[allow(READ_TRANSFERS)],
    )
    async def document(
        self, pool: PoolDep, me: MeDep, sale_id: FromPath[int], notice_id: FromPath[int]
    ) -> Stream:
        async with pool.acquire() as conn:
            found = await escrow.notice_document(conn, sale_id, notice_id, me.org_id)
        return download(pool, found)

    @post(
        "/{sale_id:int}/release", operation_id="web_upload_release", guards=[allow(RELEASE_PLEDGE)]
    )
    async def release(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        sale_id: FromPath[int],
    ) -> Template | Redirect:
        """The bank's release of the pledge registration: number, date, file."""
        return await _notice(request, pool, act, me, sale_id, notices.upload_release)

    @post(
        "/{sale_id:int}/recordal",
        operation_id="web_upload_recordal",
        guards=[allow(RECORD_TRANSFER)],
    )
    async def recordal(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        sale_id: FromPath[int],
    ) -> Template | Redirect:
        """The buyer's recordal of the transfer: which, number, date, file."""
        return await _notice(request, pool, act, me, sale_id, notices.upload_recordal)


class OperatorTransferPages(Controller):
    path = "/operator/transfers"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/", operation_id="web_operator_transfers")
    async def index(self, request: Request[Any, Any, State], pool: PoolDep, me: MeDep) -> Template:
        """价款代管: the sales held in escrow, the step each waits for."""
        return await _list_page(request, pool, me, operator=True)

    @get("/{sale_id:int}", operation_id="web_operator_transfer")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        sale_id: FromPath[int],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _transfer_page(request, pool, me, sale_id, operator=True, done=done)

    @get(
        "/{sale_id:int}/notices/{notice_id:int}/document",
        operation_id="web_operator_transfer_document",
    )
    async def document(
        self, pool: PoolDep, sale_id: FromPath[int], notice_id: FromPath[int]
    ) -> Stream:
        async with pool.acquire() as conn:
            found = await escrow.notice_document(conn, sale_id, notice_id)
        return download(pool, found)

    @post("/{sale_id:int}/confirm", operation_id="web_operator_confirm_transfer")
    async def confirm(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        sale_id: FromPath[int],
    ) -> Template | Redirect:
        """The notices are checked: the title has moved, the price is routed."""
        form = await Form.read(request, me)
        call = lambda: act(checking.confirm_transfer, ConfirmTransfer(sale_id=sale_id))  # noqa: E731
        return await _answer(request, pool, me, sale_id, form, "confirm", call, operator=True)

    @post(
        "/{sale_id:int}/notices/{notice_id:int}/reject", operation_id="web_operator_reject_notice"
    )
    async def reject(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        sale_id: FromPath[int],
        notice_id: FromPath[int],
    ) -> Template | Redirect:
        """A notice rejected with the reason."""
        form = await Form.read(request, me)
        if not form.text("reason"):
            form.fail("reason", "required")
        async with pool.acquire() as conn:
            await escrow.notice_document(conn, sale_id, notice_id)  # another sale's: 404
        data = RejectNotice(notice_id=notice_id, reason=form.text("reason"))
        call = lambda: act(checking.reject_notice, data)  # noqa: E731
        return await _answer(request, pool, me, sale_id, form, "reject", call, operator=True)

    @post("/{sale_id:int}/failure", operation_id="web_operator_transfer_failure")
    async def failure(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        settings: SettingsDep,
        sale_id: FromPath[int],
    ) -> Template | Redirect:
        """A step failed, and who caused it: the sale unwinds."""
        form = await Form.read(request, me)
        cause = form.text("cause")
        if cause not in CAUSES:
            form.fail("cause", "required")

        async def run() -> Any:
            failure = RecordFailure(sale_id=sale_id, cause=cause, note=form.text("note"))  # type: ignore[arg-type]
            return await act(checking.record_failure, checking.with_policy(failure, settings))

        return await _answer(request, pool, me, sale_id, form, "failure", run, operator=True)
