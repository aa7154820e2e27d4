"""The licence contracts' API (docs/integration.md): each party's contracts and one
contract's schedule; the licensee's sales reports (JSON or CSV); the recordal; the bank's
audit, termination and recordal cancellation; the operator's clearing statement and hand
record of a payment. Thin adapters: each change is a command (market/licensing/*.py)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from market import api_docs
from market.accounts import subjects
from market.accounts.permissions import (
    MANAGE_LICENCES,
    OPERATE,
    READ_LICENCES,
    RECORD_LICENCE,
    REPORT_ROYALTIES,
    allow,
)
from market.cases.api import download
from market.cases.services import china_today
from market.deps import ActDep, CallerDep, ClockDep, PoolDep
from market.exchange_account import hand
from market.exchange_account import statement as exchange_statement
from market.licensing import contract_views, enforcement, payments, recordal, reports
from market.licensing.contract_views import (
    ContractDetail,
    ContractStatus,
    ContractSummary,
    Role,
    contract_detail,
    page_contracts,
)
from market.licensing.contracts import ContractOut
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.pools import reconciliation as recon
from market.pools.reconciliation_api import CSV_TYPES, NotCsv

PDF_B64 = (
    "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZz4+ZW5kb2JqCnRyYWlsZXI8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)
SALES = api_docs.body(
    reports.SalesIn,
    {"period": "2027Q1", "net_sales_fen": 125_000_000, "units": 0},
    {"period": "2027年第二季度", "net_sales_fen": 98_765_43, "units": 1_200},
)
RECORDAL = api_docs.body(
    recordal.RecordalIn,
    {
        "recordal_number": "2027990000042",
        "recorded_on": "2027-03-15",
        "filename": "专利实施许可合同备案证明.pdf",
        "content": PDF_B64,
    },
)
ADJUST = api_docs.body(
    enforcement.AdjustIn,
    {"period": "2027Q1", "net_sales_fen": 150_000_000, "reason": "审计发现经销商渠道销售未计入"},
)
TERMINATE = api_docs.body(
    enforcement.TerminateIn, {"reason": "2027Q2 许可费逾期 45 天未付，催告无果"}
)
CANCEL = api_docs.body(
    enforcement.CancellationIn,
    {"cancellation_number": "2027990000042-ZX", "cancelled_on": "2027-09-01"},
)
PAYMENT = api_docs.body(
    payments.RecordPaymentIn,
    {"period": "2027Q1", "amount_fen": 7_500_000, "paid_on": "2027-04-28"},
    {
        "period": "UPFRONT",
        "amount_fen": 20_000_000,
        "paid_on": "2027-01-03",
        "statement_line_id": 17,
        "note": "附言写错，按合同号核对",
    },
)
DEPOSIT_LINE = api_docs.body(
    hand.DepositLineIn,
    {"transfer_reference": "BZJ7K3M9PQ2RX", "note": "附言漏写一位，按对方户名与金额核对"},
)
SET_ASIDE = api_docs.body(recon.SetAsideIn, {"note": "非保证金：对方误转，已安排退回"})


class LicenceContractsApi(Controller):
    path = "/api/v1/licences"
    tags = ["licensing"]

    @get(
        "",
        operation_id="list_licence_contracts",
        summary="List the organisation's licence contracts",
        guards=[allow(READ_LICENCES)],
    )
    async def contracts(
        self,
        caller: CallerDep,
        pool: PoolDep,
        role: FromQuery[Role | None] = None,
        status: FromQuery[ContractStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ContractSummary]:
        """The contracts the caller is a party to, newest first: as the bank, the licensee
        or the pledgor (`role`; none: any), by `status`. The operator sees every one."""
        org = None if caller.org_kind == "operator" else caller.org_id
        return await page_contracts(pool, org, role=role, status=status, cursor=cursor, limit=limit)

    @get(
        "/{contract_id:int}",
        operation_id="get_licence_contract",
        summary="A licence contract and its schedule",
        guards=[allow(READ_LICENCES)],
    )
    async def contract(
        self, caller: CallerDep, pool: PoolDep, clock: ClockDep, contract_id: FromPath[int]
    ) -> ContractDetail:
        """The contract, its recordal step (overdue or not), and every amount it makes due
        as it stands today: the upfront fee, each period (report and payment dates, net
        sales, royalty, paid, interest on arrears, what settles it today and the payment
        reference to write on the transfer), each audit's difference; payments, audits,
        the licensee's credit, and whether the bank may terminate. Another organisation's
        contract: 404."""
        async with pool.acquire() as conn:
            return await contract_detail(conn, caller.org_id, contract_id, china_today(clock.now()))

    @get(
        "/{contract_id:int}/recordal/document",
        operation_id="get_licence_recordal_document",
        summary="Download the licence's recordal notice",
        guards=[allow(READ_LICENCES)],
    )
    async def recordal_document(
        self, caller: CallerDep, pool: PoolDep, contract_id: FromPath[int]
    ) -> Stream:
        """CNIPA's recordal notice as uploaded, with the type it was checked to be (404
        before the recordal, or for another organisation's contract)."""
        async with pool.acquire() as conn:
            found = await contract_views.recordal_document(conn, caller.org_id, contract_id)
        return download(pool, found)

    @post(
        "/{contract_id:int}/reports",
        operation_id="report_royalty_sales",
        summary="Report a period's net sales",
        status_code=201,
        guards=[allow(REPORT_ROYALTIES)],
    )
    async def report(
        self, act: ActDep, contract_id: FromPath[int], data: Annotated[reports.SalesIn, SALES]
    ) -> list[reports.ReportOut]:
        """The licensee reports one ended period (2027Q1, 2027H2, 2027 — or 2027年第一季度);
        the answer is what it makes due and when. A period is reported once (409
        `royalty_period_reported`); a period not yet ended: 422 naming `period`."""
        return await act(
            reports.report_sales, reports.ReportSales(contract_id=contract_id, lines=(data,))
        )

    @post(
        "/{contract_id:int}/reports.csv",
        operation_id="upload_royalty_report",
        summary="Report net sales by CSV file",
        status_code=201,
        guards=[allow(REPORT_ROYALTIES)],
    )
    async def report_csv(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        caller: CallerDep,
        pool: PoolDep,
        contract_id: FromPath[int],
    ) -> list[reports.ReportOut]:
        """The licensee's CSV file (body: the file, `Content-Type: text/csv`): columns
        期间/period, 净销售额(元)/net_sales (yuan), 数量/units; UTF-8 or GB18030. All or
        nothing: any bad line, 422 `royalty_report_rejected` listing each problem by CSV
        line and column, and nothing recorded."""
        async with pool.acquire() as conn:  # another's contract is 404, whatever the body
            await reports.licensee_contract(conn, caller.org_id, contract_id)
        _csv_only(request)
        return await act(
            reports.report_sales_csv,
            reports.ReportCsv(contract_id=contract_id, data=await request.body()),
        )

    @post(
        "/{contract_id:int}/recordal",
        operation_id="record_licence_recordal",
        summary="Record the licence's CNIPA recordal",
        status_code=200,
        guards=[allow(RECORD_LICENCE)],
    )
    async def record_recordal(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[recordal.RecordalIn, RECORDAL],
    ) -> ContractOut:
        """The bank or the licensee records 专利实施许可合同备案: CNIPA's number, its date and
        the notice (base64; PDF or image). Once (409 after)."""
        return await act(
            recordal.record_recordal,
            recordal.Recordal(contract_id=contract_id, **_fields(data)),
        )

    @post(
        "/{contract_id:int}/adjustments",
        operation_id="adjust_royalty",
        summary="Record a royalty audit",
        status_code=201,
        guards=[allow(MANAGE_LICENCES)],
    )
    async def adjust(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[enforcement.AdjustIn, ADJUST],
    ) -> enforcement.AdjustmentOut:
        """The bank's audit found other net sales for a reported period: the difference
        becomes due (ADJ<id>, on a period already paid) or the licensee's credit."""
        return await act(
            enforcement.adjust_royalty,
            enforcement.Adjust(contract_id=contract_id, **_fields(data)),
        )

    @post(
        "/{contract_id:int}/termination",
        operation_id="terminate_licence_contract",
        summary="Terminate a licence in arrears",
        status_code=200,
        guards=[allow(MANAGE_LICENCES)],
    )
    async def terminate(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[enforcement.TerminateIn, TERMINATE],
    ) -> ContractOut:
        """Once an amount is unpaid longer than the grace period (30 days unless the
        contract says otherwise), the bank ends the licence, giving its reason (409
        `licence_not_in_arrears` before). The licensee is told; the case stays open."""
        return await act(
            enforcement.terminate_contract,
            enforcement.Terminate(contract_id=contract_id, reason=data.reason),
        )

    @post(
        "/{contract_id:int}/recordal-cancellation",
        operation_id="record_recordal_cancellation",
        summary="Record the recordal's cancellation",
        status_code=200,
        guards=[allow(MANAGE_LICENCES)],
    )
    async def cancellation(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[enforcement.CancellationIn, CANCEL],
    ) -> ContractOut:
        """After a termination, CNIPA's number and date of the recordal's cancellation."""
        return await act(
            enforcement.record_cancellation,
            enforcement.Cancellation(contract_id=contract_id, **_fields(data)),
        )


class ClearingApi(Controller):
    path = "/api/v1/operator"
    tags = ["licensing"]
    guards = [allow(OPERATE)]

    @get(
        "/licences",
        operation_id="operator_list_licence_contracts",
        summary="List every licence contract",
    )
    async def contracts(
        self,
        pool: PoolDep,
        status: FromQuery[ContractStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ContractSummary]:
        """Every licence contract of the exchange, newest first, by `status`."""
        return await page_contracts(
            pool, None, role=None, status=status, cursor=cursor, limit=limit
        )

    @get(
        "/licences/{contract_id:int}",
        operation_id="operator_get_licence_contract",
        summary="Any licence contract and its schedule",
    )
    async def contract(
        self, pool: PoolDep, clock: ClockDep, contract_id: FromPath[int]
    ) -> ContractDetail:
        """As get_licence_contract, for any contract (the operator matches payments)."""
        async with pool.acquire() as conn:
            return await contract_detail(conn, None, contract_id, china_today(clock.now()))

    @get(
        "/clearing/exceptions",
        operation_id="list_clearing_exceptions",
        summary="List the exchange account's statement lines waiting for a person",
    )
    async def exceptions(
        self, request: Request[Any, Any, State], caller: CallerDep, pool: PoolDep
    ) -> list[recon.LineOut]:
        """The exchange statement's lines nothing took (a wrong amount, no or an unknown
        reference, a deposit confirmed already or of a round that is over, a second line
        for one deposit), with their reasons in words: what match_clearing_line_to_deposit,
        record_royalty_payment or set_aside_clearing_line decide."""
        async with pool.acquire() as conn:
            return await recon.open_lines(conn, caller.org_id, subjects.language(request))

    @post(
        "/clearing/statements",
        operation_id="import_clearing_statement",
        summary="Import the exchange account's statement",
        status_code=201,
    )
    async def import_statement(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        filename: FromQuery[str | None] = None,
    ) -> exchange_statement.ExchangeStatementImported:
        """The exchange's account statement (body: the CSV, as for import_statement). Each
        incoming line is settled by the reference in its 附言: a registration's transfer
        reference (BZJ…) with the deposit exactly confirms the deposit; a sale's payment
        reference (JK…) with the balance due exactly records the payment; a royalty
        payment reference (XK-2027-000001-2027Q1) with the amount that settles it on its
        value date pays it. The others wait as exceptions. A bad file: 422 with every
        problem by line and column, nothing written."""
        _csv_only(request)
        return await act(
            exchange_statement.import_exchange_statement,
            exchange_statement.ImportExchangeStatement(
                data=await request.body(), filename=filename
            ),
        )

    @post(
        "/clearing/lines/{line_id:int}/deposit",
        operation_id="match_clearing_line_to_deposit",
        summary="Match a statement line to a registration's deposit by hand",
        status_code=200,
    )
    async def match_deposit(
        self,
        act: ActDep,
        line_id: FromPath[int],
        data: Annotated[hand.DepositLineIn, DEPOSIT_LINE],
    ) -> hand.DepositLineMatched:
        """The line is the deposit of the registration with this transfer reference: the
        deposit is confirmed (released at once if its round is over), audited naming the
        line. 422 for another amount, 409 for a deposit confirmed already or a line
        decided already."""
        return await act(
            hand.match_line_to_deposit, hand.MatchDepositLine(line_id=line_id, **_fields(data))
        )

    @post(
        "/clearing/lines/{line_id:int}/set-aside",
        operation_id="set_aside_clearing_line",
        summary="Set a statement line aside, saying why",
        status_code=200,
    )
    async def set_aside(
        self,
        act: ActDep,
        line_id: FromPath[int],
        data: Annotated[recon.SetAsideIn, SET_ASIDE],
    ) -> recon.LineDone:
        """No deposit, balance or royalty: the reason is kept (a transfer to send back,
        bank interest…); audited, no money moved."""
        return await act(
            hand.set_aside_exchange_line, recon.SetAsideLine(line_id=line_id, note=data.note)
        )

    @post(
        "/licences/{contract_id:int}/payments",
        operation_id="record_royalty_payment",
        summary="Record a royalty payment by hand",
        status_code=201,
    )
    async def record_payment(
        self,
        act: ActDep,
        contract_id: FromPath[int],
        data: Annotated[payments.RecordPaymentIn, PAYMENT],
    ) -> payments.PaymentOut:
        """A transfer into the clearing account the operator saw (optionally an exception
        line of its statement): the amount must settle the item on its day (royalty and
        interest, less credit: 422 `royalty_amount_differs` names what would); once only
        (409 `royalty_paid_already`)."""
        return await act(
            payments.record_royalty_payment,
            payments.RecordPayment(contract_id=contract_id, **_fields(data)),
        )


def _csv_only(request: Request[Any, Any, State]) -> None:
    """A CSV file's body: 415 for anything else (as the reconciliation's import)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in CSV_TYPES:
        raise NotCsv()


def _fields(data: Any) -> dict[str, Any]:
    """A body's fields, to build the command's input (the body and the path's id)."""
    return {name: getattr(data, name) for name in data.__struct_fields__}
