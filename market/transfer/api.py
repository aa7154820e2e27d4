"""The transfer of title over the API (docs/integration.md): the bank's and the buyer's
transfers, their notices' uploads; the operator's queue, confirmation, rejection and
record of a failure. Thin adapters: each change is a command (market/transfer/*.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from market import api_docs
from market.accounts.permissions import (
    OPERATE,
    READ_TRANSFERS,
    RECORD_TRANSFER,
    RELEASE_PLEDGE,
    allow,
)
from market.cases.api import download
from market.deps import ActDep, CallerDep, PoolDep, SettingsDep
from market.transfer import checking, escrow, notices
from market.transfer.models import (
    ConfirmTransfer,
    FailureIn,
    NoticeIn,
    RecordFailure,
    RejectIn,
    RejectNotice,
    TransferOut,
    UploadNotice,
)

PDF_B64 = (
    "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZz4+ZW5kb2JqCnRyYWlsZXI8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)
RELEASE = api_docs.body(
    NoticeIn,
    {
        "kind": "pledge_release",
        "number": "ZX2027000123",
        "issued_on": "2027-02-10",
        "filename": "质押登记注销通知书.pdf",
        "content": PDF_B64,
    },
)
RECORDAL = api_docs.body(
    NoticeIn,
    {
        "kind": "patent_recordal",
        "number": "BG2027000456",
        "issued_on": "2027-03-20",
        "filename": "著录项目变更手续合格通知书.pdf",
        "content": PDF_B64,
    },
)
REJECT = api_docs.body(RejectIn, {"reason": "通知书所载专利号与拍品不符"})
FAILURE = api_docs.body(
    FailureIn,
    {"cause": "lapsed_right", "note": "专利权因未缴年费于 2027-03-01 终止"},
    {"cause": "buyer", "note": "买受人拒绝办理著录项目变更"},
)


def _upload(sale_id: int, data: NoticeIn) -> UploadNotice:
    return UploadNotice(sale_id=sale_id, **msgspec.structs.asdict(data))


class TransfersApi(Controller):
    path = "/api/v1/transfers"
    tags = ["transfers"]

    @get(
        "",
        operation_id="list_transfers",
        summary="List the transfers of the organisation's sales",
        guards=[allow(READ_TRANSFERS)],
    )
    async def transfers(
        self, caller: CallerDep, pool: PoolDep, in_escrow: FromQuery[bool] = False
    ) -> list[TransferOut]:
        """The transfers of title of the sales the caller bought or sold (as the bank),
        those held in escrow first, the earliest deadline first; `in_escrow=true`: only
        those."""
        async with pool.acquire() as conn:
            return await escrow.listing(conn, caller.org_id, in_escrow_only=in_escrow)

    @get(
        "/{sale_id:int}",
        operation_id="get_transfer",
        summary="A sale's transfer of title and its steps",
        guards=[allow(READ_TRANSFERS)],
    )
    async def transfer(
        self, caller: CallerDep, pool: PoolDep, sale_id: FromPath[int]
    ) -> TransferOut:
        """The step now due, each step's deadline, the notices needed, those uploaded and
        their status; how it ended. Another organisation's sale: 404."""
        async with pool.acquire() as conn:
            return await escrow.view(conn, sale_id, caller.org_id)

    @get(
        "/{sale_id:int}/notices/{notice_id:int}/document",
        operation_id="get_transfer_notice_document",
        summary="Download a transfer notice",
        guards=[allow(READ_TRANSFERS)],
    )
    async def document(
        self, caller: CallerDep, pool: PoolDep, sale_id: FromPath[int], notice_id: FromPath[int]
    ) -> Stream:
        """The notice's file as uploaded, with the type it was checked to be."""
        async with pool.acquire() as conn:
            found = await escrow.notice_document(conn, sale_id, notice_id, caller.org_id)
        return download(pool, found)

    @post(
        "/{sale_id:int}/release",
        operation_id="upload_pledge_release",
        summary="Upload the release of the pledge registration",
        status_code=200,
        guards=[allow(RELEASE_PLEDGE)],
    )
    async def release(
        self, act: ActDep, sale_id: FromPath[int], data: Annotated[NoticeIn, RELEASE]
    ) -> TransferOut:
        """The bank (pledgee) uploads 质押登记注销通知书: `kind` pledge_release, its number,
        its date (not before the sale, not in the future) and the file (base64; PDF or
        image). 4xx naming the field at fault, nothing written."""
        return await act(notices.upload_release, _upload(sale_id, data))

    @post(
        "/{sale_id:int}/recordal",
        operation_id="upload_transfer_recordal",
        summary="Upload the recordal of the transfer",
        status_code=200,
        guards=[allow(RECORD_TRANSFER)],
    )
    async def recordal(
        self, act: ActDep, sale_id: FromPath[int], data: Annotated[NoticeIn, RECORDAL]
    ) -> TransferOut:
        """The buyer uploads the recordal of the transfer, one per kind of asset in the
        lot (`needed`): patent_recordal (著录项目变更手续合格通知书), trademark_assignment
        (转让核准), software_registration (变更/转让登记); number, date, file (base64)."""
        return await act(notices.upload_recordal, _upload(sale_id, data))


class OperatorTransfersApi(Controller):
    path = "/api/v1/operator/transfers"
    tags = ["transfers"]
    guards = [allow(OPERATE)]

    @get("", operation_id="list_escrow_transfers", summary="The queue of sales held in escrow")
    async def queue(self, pool: PoolDep, in_escrow: FromQuery[bool] = True) -> list[TransferOut]:
        """Every sale held in escrow with the step now due (`check`: notices to check),
        the earliest deadline first; `in_escrow=false`: ended ones too."""
        async with pool.acquire() as conn:
            return await escrow.listing(conn, None, in_escrow_only=in_escrow)

    @get("/{sale_id:int}", operation_id="get_escrow_transfer", summary="A sale's transfer")
    async def transfer(self, pool: PoolDep, sale_id: FromPath[int]) -> TransferOut:
        """The transfer as its parties see it, for the operator's check."""
        async with pool.acquire() as conn:
            return await escrow.view(conn, sale_id)

    @get(
        "/{sale_id:int}/notices/{notice_id:int}/document",
        operation_id="get_escrow_notice_document",
        summary="Download a transfer notice to check it",
    )
    async def document(
        self, pool: PoolDep, sale_id: FromPath[int], notice_id: FromPath[int]
    ) -> Stream:
        """The notice's file as uploaded, for the operator's check."""
        async with pool.acquire() as conn:
            found = await escrow.notice_document(conn, sale_id, notice_id)
        return download(pool, found)

    @post(
        "/{sale_id:int}/confirm",
        operation_id="confirm_transfer",
        summary="Confirm the notices: the title has moved",
        status_code=200,
    )
    async def confirm(self, act: ActDep, sale_id: FromPath[int]) -> TransferOut:
        """Every notice needed is in and checked: the sale is completed and its price
        routed through the waterfall. Once: a second confirmation answers the completed
        transfer; an unwound one is 409."""
        return await act(checking.confirm_transfer, ConfirmTransfer(sale_id=sale_id))

    @post(
        "/{sale_id:int}/notices/{notice_id:int}/reject",
        operation_id="reject_transfer_notice",
        summary="Reject a transfer notice",
        status_code=200,
    )
    async def reject(
        self,
        act: ActDep,
        pool: PoolDep,
        sale_id: FromPath[int],
        notice_id: FromPath[int],
        data: Annotated[RejectIn, REJECT],
    ) -> TransferOut:
        """The notice does not show what it must: rejected with the reason; its party may
        upload another before the step's deadline (moved to leave it time)."""
        async with pool.acquire() as conn:
            await escrow.notice_document(conn, sale_id, notice_id)  # another sale's: 404
        return await act(
            checking.reject_notice, RejectNotice(notice_id=notice_id, reason=data.reason)
        )

    @post(
        "/{sale_id:int}/failure",
        operation_id="record_transfer_failure",
        summary="Record that the transfer failed",
        status_code=200,
    )
    async def failure(
        self,
        act: ActDep,
        settings: SettingsDep,
        sale_id: FromPath[int],
        data: Annotated[FailureIn, FAILURE],
    ) -> TransferOut:
        """A step failed and who caused it (`cause`): the sale unwinds — the buyer refunded
        in full, or less its deposit when it caused the failure — and the lot returns to
        disposal."""
        failure = RecordFailure(sale_id=sale_id, cause=data.cause, note=data.note)
        return await act(checking.record_failure, checking.with_policy(failure, settings))
