"""The licence contracts' pages (docs/rules.md §Licence contracts, §Licensing royalties),
thin adapters over the commands the API runs (market/licensing/api_contracts.py).

A party (the bank, the licensee, the pledgor: READ_LICENCES) lists its contracts on
/licences and reads one on /licences/{id}: its parties and terms, its book as it stands
today, the recordal step and the termination. The page carries the forms the reader's
role may use: the licensee reports a period by form or by CSV file; the bank or the
licensee records the CNIPA recordal; the bank records an audit, terminates a contract in
arrears and records the recordal's cancellation. The operator lists every contract on
/operator/licences, reads any one, and on /operator/clearing imports the exchange
account's statement (market/exchange_account/statement.py: deposits, balances and
royalties by reference), records a royalty payment by hand, and decides each line left
waiting: matched by hand to a registration's deposit, or set aside with the reason.
Another organisation's contract: 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from market.accounts.models import Viewer
from market.accounts.permissions import (
    MANAGE_LICENCES,
    OPERATE,
    READ_LICENCES,
    RECORD_LICENCE,
    REPORT_ROYALTIES,
    allow,
    may,
)
from market.cases.api import download
from market.cases.services import china_today
from market.clock import Clock
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.errors import AppError, LineProblem, NotFound
from market.exchange_account import hand
from market.exchange_account import statement as exchange_statement
from market.licensing import enforcement, payments, recordal, reports
from market.licensing.contract_views import (
    ContractDetail,
    ContractStatus,
    Q,
    contract_detail,
    page_contracts,
    recordal_document,
)
from market.lots.forms import placed
from market.money import MAX_FEN
from market.pools import reconciliation as recon
from market.pools.reconciliation_web import rejected_lines
from market.pools.statement_csv import MAX_FILE_BYTES
from market.web import Form, language, page, parse_id

Out = TypeVar("Out")
PAGE_SIZE = 20
STATUSES: tuple[ContractStatus, ...] = ("awaiting_acceptance", "active", "terminated", "ended")
# A service's field → the form's (a refusal shows beside what the person typed into).
REPORT_FIELDS = {"net_sales_fen": "net_sales"}
RECORDAL_FIELDS = {"filename": "document", "content": "document"}
ADJUST_FIELDS = {"net_sales_fen": "net_sales"}
PAYMENT_FIELDS = {"amount_fen": "amount", "statement_line_id": "line", "contract_id": "contract"}
UPLOAD_FIELDS = {"data": "file", "filename": "file"}
# The fields each form shows; a refusal about anything else shows above the forms.
SHOWN = {
    "report": frozenset({"period", "net_sales", "units"}),
    "report_csv": frozenset({"file"}),
    "recordal": frozenset({"recordal_number", "recorded_on", "document"}),
    "adjust": frozenset({"period", "net_sales", "reason"}),
    "terminate": frozenset({"reason"}),
    "cancellation": frozenset({"cancellation_number", "cancelled_on"}),
    "import": frozenset({"file"}),
    "payment": frozenset({"contract", "period", "amount", "paid_on", "line", "note"}),
    "deposit_line": frozenset({"transfer_reference", "note"}),
    "set_aside": frozenset({"note"}),
}


def _role(d: ContractDetail, me: Viewer) -> str:
    c = d.contract
    if me.org_id == c.bank_org_id:
        return "bank"
    return "licensee" if me.org_id == c.licensee_org_id else "pledgor"


def _forms(d: ContractDetail, me: Viewer) -> dict[str, bool]:
    """Which forms the reader's role may use on the contract as it stands."""
    c, role = d.contract, _role(d, me)
    running = c.status == "active"
    manages = role == "bank" and may(me, MANAGE_LICENCES.name)
    return {
        "report": role == "licensee" and running and may(me, REPORT_ROYALTIES.name),
        "recordal": role in ("bank", "licensee")
        and c.recorded_on is None
        and c.status in ("active", "awaiting_acceptance")
        and may(me, RECORD_LICENCE.name),
        "adjust": manages
        and any(i.kind == "royalty" and i.net_sales_fen is not None for i in d.items),
        "terminate": manages and running,
        "cancellation": manages and c.status == "terminated" and d.cancellation_number is None,
    }


def _reportable(d: ContractDetail) -> list[str]:
    """The periods ended and not yet reported: the report form offers them."""
    return [
        i.key
        for i in d.items
        if i.kind == "royalty" and i.report_missing and i.end is not None and i.end < d.today
    ]


async def _contract_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    clock: Any,
    me: Viewer,
    contract_id: int,
    *,
    operator: bool = False,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    rejected: list[LineProblem] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        d = await contract_detail(
            conn, None if operator else me.org_id, contract_id, china_today(clock.now())
        )
    return page(
        request,
        "licensing/contract.html",
        me,
        status_code=status_code,
        d=d,
        c=d.contract,
        operator=operator,
        role=None if operator else _role(d, me),
        may_form={} if operator else _forms(d, me),
        reportable=_reportable(d),
        form=form,
        values=values or {},
        errors=placed(errors or {}, SHOWN.get(form or "", frozenset())),
        rejected=rejected_lines(language(request, me), rejected or []),
        done=done,
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
    )


def _units(form: Form) -> int | None:
    """Units sold: a whole number ≥ 0; empty is none."""
    text = form.text("units")
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        form.fail("units", "whole_number")
        return None
    return int(text)


def _required(form: Form, name: str) -> str:
    """A text field that must not be empty (an error beside it when it is)."""
    if not form.text(name):
        form.fail(name, "required")
    return form.text(name)


async def _upload(request: Request[Any, Any, State], form: Form, name: str) -> UploadFile | None:
    """The form's file field `name`, or an error beside it."""
    upload = (await request.form()).get(name)
    if isinstance(upload, UploadFile) and upload.filename:
        return upload
    form.fail(name, "required")
    return None


async def _list_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    org_id: int | None,
    status: ContractStatus | None,
    cursor: str | None,
    base: str,
) -> Template:
    """A page of contracts, newest first (`org_id` None: every contract)."""
    found = await page_contracts(
        pool, org_id, role=None, status=status, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "licensing/contracts.html",
        me,
        contracts=found,
        status=status,
        statuses=STATUSES,
        base=base,
    )


@dataclass(frozen=True)
class _Posted:
    """A form posted on a contract's page, and how the page answers it."""

    request: Request[Any, Any, State]
    pool: asyncpg.Pool
    clock: Clock
    me: Viewer
    contract_id: int

    async def answer(
        self,
        form: Form,
        name: str,
        call: Callable[[], Awaitable[Any]],
        *,
        anchor: str,
        rejected: list[LineProblem] | None = None,
    ) -> Template | Redirect:
        """Run the command; a refusal shows the page again with the error beside its
        field (a refused file: with its problems line by line), else back to the page."""
        done = await form.submit(call)
        if done is None:
            errors = form.errors
            if rejected is not None:
                errors = {"file": next(iter(form.errors.values()))}
            return await _contract_page(
                self.request,
                self.pool,
                self.clock,
                self.me,
                self.contract_id,
                form=name,
                values=form.values,
                errors=errors,
                rejected=rejected,
                status_code=form.status,
            )
        return Redirect(f"/licences/{self.contract_id}?done={name}#{anchor}", status_code=303)


def _caught(
    call: Callable[[], Awaitable[Out]], rejected: list[LineProblem]
) -> Callable[[], Awaitable[Out]]:
    """`call`, keeping a refused file's problems (line and column) for the page."""

    async def run() -> Out:
        try:
            return await call()
        except AppError as exc:
            rejected.extend(exc.problems or [])
            raise

    return run


class LicencePages(Controller):
    path = "/licences"
    include_in_schema = False

    @get("/", operation_id="web_licences", guards=[allow(READ_LICENCES)])
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        status: FromQuery[ContractStatus | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """许可合同: the organisation's contracts as bank, licensee or pledgor, newest
        first, a page at a time, by status."""
        return await _list_page(request, pool, me, me.org_id, status, cursor, "/licences")

    @get("/{contract_id:int}", operation_id="web_licence", guards=[allow(READ_LICENCES)])
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _contract_page(request, pool, clock, me, contract_id, done=done)

    @get(
        "/{contract_id:int}/recordal/document",
        operation_id="web_licence_recordal_document",
        guards=[allow(READ_LICENCES)],
    )
    async def document(self, pool: PoolDep, me: MeDep, contract_id: FromPath[int]) -> Stream:
        async with pool.acquire() as conn:
            found = await recordal_document(conn, me.org_id, contract_id)
        return download(pool, found)

    @post(
        "/{contract_id:int}/reports",
        operation_id="web_licence_report",
        guards=[allow(REPORT_ROYALTIES)],
    )
    async def report(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """One period's net sales (yuan) and units."""
        form = await Form.read(request, me, fields=REPORT_FIELDS)
        _required(form, "period")
        line = {
            "period": form.text("period"),
            "net_sales_fen": form.yuan("net_sales", max_fen=MAX_FEN),
            "units": _units(form),
        }
        return await _Posted(request, pool, clock, me, contract_id).answer(
            form,
            "report",
            lambda: act(
                reports.report_sales,
                reports.ReportSales(
                    contract_id=contract_id, lines=(msgspec.convert(line, reports.SalesIn),)
                ),
            ),
            anchor="book",
        )

    @post(
        "/{contract_id:int}/reports.csv",
        operation_id="web_licence_report_csv",
        guards=[allow(REPORT_ROYALTIES)],
    )
    async def report_csv(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """The CSV file: all or nothing; a refused file lists each problem by line and
        column."""
        form = await Form.read(request, me, fields=UPLOAD_FIELDS)
        upload = await _upload(request, form, "file")
        rejected: list[LineProblem] = []

        async def run() -> list[reports.ReportOut]:
            assert upload is not None  # submit runs it only when the form has no errors
            data = reports.ReportCsv(contract_id=contract_id, data=await upload.read())
            return await act(reports.report_sales_csv, data)

        return await _Posted(request, pool, clock, me, contract_id).answer(
            form, "report_csv", _caught(run, rejected), anchor="book", rejected=rejected
        )

    @post(
        "/{contract_id:int}/recordal",
        operation_id="web_licence_recordal",
        guards=[allow(RECORD_LICENCE)],
    )
    async def record_recordal(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """CNIPA's recordal number and date, and its notice (PDF or image)."""
        form = await Form.read(request, me, fields=RECORDAL_FIELDS)
        recorded_on = form.date("recorded_on")
        _required(form, "recordal_number")
        upload = await _upload(request, form, "document")

        async def run() -> Any:
            assert upload is not None
            data = {
                "contract_id": contract_id,
                "recordal_number": form.text("recordal_number"),
                "recorded_on": recorded_on,
                "filename": upload.filename,
                "content": await upload.read(),
            }
            return await act(recordal.record_recordal, msgspec.convert(data, recordal.Recordal))

        return await _Posted(request, pool, clock, me, contract_id).answer(
            form, "recordal", run, anchor="recordal"
        )

    @post(
        "/{contract_id:int}/adjustments",
        operation_id="web_licence_adjust",
        guards=[allow(MANAGE_LICENCES)],
    )
    async def adjust(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """The net sales the bank's royalty audit found for a reported period, and why."""
        form = await Form.read(request, me, fields=ADJUST_FIELDS)
        data = {
            "contract_id": contract_id,
            "period": _required(form, "period"),
            "net_sales_fen": form.yuan("net_sales", max_fen=MAX_FEN),
            "reason": _required(form, "reason"),
        }
        return await _Posted(request, pool, clock, me, contract_id).answer(
            form,
            "adjust",
            lambda: act(enforcement.adjust_royalty, msgspec.convert(data, enforcement.Adjust)),
            anchor="book",
        )

    @post(
        "/{contract_id:int}/termination",
        operation_id="web_licence_terminate",
        guards=[allow(MANAGE_LICENCES)],
    )
    async def terminate(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """Terminate a contract in arrears past the grace period, giving the reason."""
        form = await Form.read(request, me)
        data = {"contract_id": contract_id, "reason": _required(form, "reason")}
        return await _Posted(request, pool, clock, me, contract_id).answer(
            form,
            "terminate",
            lambda: act(
                enforcement.terminate_contract, msgspec.convert(data, enforcement.Terminate)
            ),
            anchor="termination",
        )

    @post(
        "/{contract_id:int}/recordal-cancellation",
        operation_id="web_licence_cancellation",
        guards=[allow(MANAGE_LICENCES)],
    )
    async def cancellation(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template | Redirect:
        """CNIPA's number and date of the recordal's cancellation, after a termination."""
        form = await Form.read(request, me)
        data = {
            "contract_id": contract_id,
            "cancellation_number": _required(form, "cancellation_number"),
            "cancelled_on": form.date("cancelled_on"),
        }
        return await _Posted(request, pool, clock, me, contract_id).answer(
            form,
            "cancellation",
            lambda: act(
                enforcement.record_cancellation, msgspec.convert(data, enforcement.Cancellation)
            ),
            anchor="termination",
        )


# --- the operator: every contract, the clearing account ----------------------------------


async def _clearing_page(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    imported: exchange_statement.ExchangeStatementImported | None = None,
    paid: payments.PaymentOut | None = None,
    decided: str | None = None,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    rejected: list[LineProblem] | None = None,
    status_code: int = 200,
) -> Template:
    lang = language(request, me)
    async with pool.acquire() as conn:
        exceptions = await recon.open_lines(conn, me.org_id, lang, limit=200)
    return page(
        request,
        "licensing/clearing.html",
        me,
        status_code=status_code,
        imported=imported,
        paid=paid,
        decided=decided,
        exceptions=exceptions,
        form=form,
        values=values or {},
        errors=placed(errors or {}, SHOWN.get(form or "", frozenset())),
        rejected=rejected_lines(lang, rejected or []),
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
    )


async def _contract_id(pool: asyncpg.Pool, form: Form) -> int | None:
    """The contract the operator names by its reference (XK-2027-000001) or its id."""
    text = form.text("contract")
    if not text:
        form.fail("contract", "required")
        return None
    found = await pool.fetchval(Q.contract_by_reference, text.upper()) or parse_id(text)
    if found is None:
        form.fail("contract", "not_found")
    return None if found is None else int(found)


class OperatorLicencePages(Controller):
    path = "/operator"
    include_in_schema = False
    guards = [allow(OPERATE)]

    @get("/licences", operation_id="web_operator_licences")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        status: FromQuery[ContractStatus | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """Every licence contract of the exchange, newest first, by status."""
        return await _list_page(request, pool, me, None, status, cursor, "/operator/licences")

    @get("/licences/{contract_id:int}", operation_id="web_operator_licence")
    async def show(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        me: MeDep,
        contract_id: FromPath[int],
    ) -> Template:
        """Any contract and its book, read-only: what the operator matches payments to."""
        return await _contract_page(request, pool, clock, me, contract_id, operator=True)

    @get("/clearing", operation_id="web_operator_clearing")
    async def clearing_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        contract: FromQuery[str | None] = None,
    ) -> Template:
        """Import the clearing account's statement; record a royalty payment by hand
        (`contract`: the reference a contract's page fills in)."""
        return await _clearing_page(request, pool, me, values={"contract": contract or ""})

    @post("/clearing/statements", operation_id="web_operator_clearing_import")
    async def import_statement(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        """Import now (one transaction) and show what it matched and what it left."""
        form = await Form.read(request, me, fields=UPLOAD_FIELDS)
        upload = await _upload(request, form, "file")
        rejected: list[LineProblem] = []

        async def run() -> exchange_statement.ExchangeStatementImported:
            assert upload is not None
            data = exchange_statement.ImportExchangeStatement(
                data=await upload.read(), filename=upload.filename
            )
            return await act(exchange_statement.import_exchange_statement, data)

        done = await form.submit(_caught(run, rejected))
        if done is None:
            return await _clearing_page(
                request,
                pool,
                me,
                form="import",
                errors={"file": next(iter(form.errors.values()))},
                rejected=rejected,
                status_code=form.status,
            )
        return await _clearing_page(request, pool, me, imported=done)

    @post("/clearing/payments", operation_id="web_operator_record_royalty_payment")
    async def record_payment(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template:
        """A transfer the operator saw: the contract, its item, the amount, its value
        date, and the exception line of the statement it came on, if any."""
        form = await Form.read(request, me, fields=PAYMENT_FIELDS)
        contract_id = await _contract_id(pool, form)
        amount = form.yuan("amount", max_fen=MAX_FEN)
        paid_on = form.date("paid_on")
        line = form.id("line", required=False)
        if not form.text("period"):
            form.fail("period", "required")

        async def run() -> payments.PaymentOut | None:
            data: dict[str, Any] = {
                "contract_id": contract_id,
                "period": form.text("period").upper(),
                "amount_fen": amount,
                "paid_on": paid_on,
                "statement_line_id": line,
                "note": form.text("note"),
            }
            try:
                return await act(
                    payments.record_royalty_payment,
                    msgspec.convert(data, payments.RecordPayment),
                )
            except NotFound as exc:  # no such contract or item: said beside what was typed
                form.refuse(exc)
                return None

        done = await form.submit(run)
        if done is None:
            return await _clearing_page(
                request,
                pool,
                me,
                form="payment",
                values=form.values,
                errors=form.errors,
                status_code=form.status,
            )
        return await _clearing_page(request, pool, me, paid=done)

    @post("/clearing/lines/{line_id:int}/deposit", operation_id="web_operator_clearing_deposit")
    async def match_deposit(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        line_id: FromPath[int],
    ) -> Template:
        """A waiting line is the deposit of the registration with this transfer reference."""
        form = await Form.read(request, me)
        data = {
            "line_id": line_id,
            "transfer_reference": form.text("transfer_reference"),
            "note": form.text("note"),
        }

        async def run() -> hand.DepositLineMatched | None:
            try:
                return await act(
                    hand.match_line_to_deposit, msgspec.convert(data, hand.MatchDepositLine)
                )
            except NotFound as exc:  # no such transfer reference: said beside what was typed
                form.refuse(exc)
                return None

        done = await form.submit(run)
        return await _decided(request, pool, me, form, "deposit_line", done.line if done else None)

    @post("/clearing/lines/{line_id:int}/set-aside", operation_id="web_operator_clearing_set_aside")
    async def set_aside(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        line_id: FromPath[int],
    ) -> Template:
        """A waiting line is nothing the exchange expects: set aside, with the reason."""
        form = await Form.read(request, me)
        data = recon.SetAsideLine(line_id=line_id, note=form.text("note"))
        done = await form.submit(lambda: act(hand.set_aside_exchange_line, data))
        return await _decided(request, pool, me, form, "set_aside", done)


async def _decided(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    form: Form,
    name: str,
    done: recon.LineDone | None,
) -> Template:
    """The clearing page after a hand decision on a line: what was done, or why not."""
    if done is None:
        return await _clearing_page(
            request,
            pool,
            me,
            form=name,
            values=form.values,
            errors=form.errors,
            status_code=form.status,
        )
    return await _clearing_page(request, pool, me, decided=f"{done.statement_id}:{done.line_no}")
