"""The reconciliation API for pools' and banks' systems: import a bank statement, read the
statements and open exceptions, match a line by hand or set it aside, export statements
of payouts (docs/rules.md §Reconciliation).

Permissions: WRITE_RECONCILIATION (token scope `pools:write`) to import, match and set
aside; READ_RECONCILIATION (`pools:read`) to read and export. A line's reason comes as its
`code` and `params` with a `detail` in the caller's language (Accept-Language, else the
token user's language)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from market import api_docs
from market.accounts import subjects
from market.accounts.permissions import READ_RECONCILIATION, WRITE_RECONCILIATION, allow
from market.deps import ActDep, CallerDep, PoolDep
from market.errors import AppError
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.pools import api_lists, shortfalls, statement_export
from market.pools import reconciliation as recon
from market.pools.reconciliation import (
    ImportOut,
    ImportStatement,
    LineOut,
    MatchIn,
    MatchLine,
    PayoutOut,
    SetAsideIn,
    SetAsideLine,
    StatementDetail,
    StatementOut,
)

MATCH = api_docs.body(MatchIn, {"reference": "PO-2026-000381", "note": "附言缺少一位数字"})
SET_ASIDE = api_docs.body(SetAsideIn, {"note": "银行结息，非追偿款"})
SETTLE = api_docs.body(shortfalls.SettleIn, {"line_id": 4127, "note": "付款行补汇手续费"})
WRITE_OFF = api_docs.body(shortfalls.WriteOffIn, {"note": "汇款手续费由本池承担"})

# What a statement upload may be sent as: CSV, and what browsers and Excel call it.
CSV_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "application/octet-stream",
        "application/vnd.ms-excel",
    }
)


class NotCsv(AppError):
    status = 415
    default_code = "statement_not_csv"


class ReconciliationApi(Controller):
    path = "/api/v1/reconciliation"
    tags = ["reconciliation"]

    @post(
        "/statements",
        operation_id="import_statement",
        summary="Import a bank statement CSV file",
        status_code=201,
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def import_statement(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        act: ActDep,
        pool: PoolDep,
        filename: FromQuery[str | None] = None,
    ) -> ImportOut:
        """Import a bank statement CSV (body: the file, `Content-Type: text/csv`).

        UTF-8 (with or without BOM) or GB18030; columns 交易日期/date, 金额/amount (yuan),
        附言/reference, optional 对方户名/counterparty and 流水号/bank txn id; other columns
        are ignored, outgoing payments skipped. Any bad line rejects the file: 422
        `statement_rejected` whose `errors` list each problem ({code, detail, line, field:
        the column's key, params: {column: the header as written, …}}), nothing written.
        The same file again: 409 `duplicate_statement`. Each line is classified matched,
        amount_mismatch, reference_typo or unknown, with its `reason`; matched lines mark
        their payouts received."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise NotCsv()
        data = ImportStatement(data=await request.body(), filename=filename)
        done = await act(recon.import_statement, data)
        async with pool.acquire() as conn:
            return await recon.import_out(conn, caller.org_id, done, subjects.language(request))

    @get(
        "/statements",
        operation_id="list_statements",
        summary="List the organisation's bank statements",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def statements(
        self,
        caller: CallerDep,
        pool: PoolDep,
        open_lines: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[StatementOut]:
        """The organisation's imported statements, newest first, a page at a time, with
        counts by outcome (matched, manual, set aside, open). Filter: `open_lines`
        (true: with lines still waiting for a person)."""
        return await api_lists.page_statements(
            pool, caller.org_id, open_lines=open_lines, cursor=cursor, limit=limit
        )

    @get(
        "/statements/{statement_id:int}",
        operation_id="get_statement",
        summary="Read one bank statement with its lines",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def statement(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        statement_id: FromPath[int],
    ) -> StatementDetail:
        """One statement with every line (another organisation's: 404)."""
        async with pool.acquire() as conn:
            return await recon.statement_detail(
                conn, caller.org_id, statement_id, subjects.language(request)
            )

    @get(
        "/exceptions",
        operation_id="list_statement_exceptions",
        summary="List the statement lines waiting for a person",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def exceptions(
        self, request: Request[Any, Any, State], caller: CallerDep, pool: PoolDep
    ) -> list[LineOut]:
        """Lines waiting for a person: amount mismatches, reference typos, unknowns."""
        async with pool.acquire() as conn:
            return await recon.open_lines(conn, caller.org_id, subjects.language(request))

    @post(
        "/lines/{line_id:int}/match",
        operation_id="match_statement_line",
        summary="Match a statement line by hand",
        status_code=200,
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def match(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        act: ActDep,
        pool: PoolDep,
        line_id: FromPath[int],
        data: Annotated[MatchIn, MATCH],
    ) -> LineOut:
        """Match an open (or set-aside) line by hand to an expected payout of the
        organisation (by `payout_id` or `reference`). The same amount, or a line short of
        the payout by no more than the tolerance (docs/rules.md §Reconciliation: ¥200.00
        and 5 % of the payout) with `short_reason` (`bank_charges`, `short_paid`, or
        `other` with `short_note`): the payout is received for the amount seen and the
        shortfall stays outstanding (422 `short_reason_needed` without a reason). More
        than the payout: 422 `amount_over_payout`; shorter than the tolerance: 422
        `short_beyond_tolerance`. A payout received already or a line settled already:
        409. Audited."""
        done = await act(
            recon.match_line,
            MatchLine(
                line_id=line_id,
                payout_id=data.payout_id,
                reference=data.reference,
                note=data.note,
                short_reason=data.short_reason or "",
                short_note=data.short_note,
            ),
        )
        async with pool.acquire() as conn:
            return await recon.line_out(conn, caller.org_id, done.id, subjects.language(request))

    @post(
        "/lines/{line_id:int}/set-aside",
        operation_id="set_aside_statement_line",
        summary="Set a statement line aside",
        status_code=200,
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def set_aside(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        act: ActDep,
        pool: PoolDep,
        line_id: FromPath[int],
        data: Annotated[SetAsideIn, SET_ASIDE],
    ) -> LineOut:
        """Take an open line out of the exceptions as no expected recovery (bank interest,
        a payment for something else, a duplicate sent back), saying why in `note`. No
        payout is touched; the line can still be matched by hand later. A line matched or
        set aside already: 409. Audited."""
        done = await act(recon.set_aside_line, SetAsideLine(line_id=line_id, note=data.note))
        async with pool.acquire() as conn:
            return await recon.line_out(conn, caller.org_id, done.id, subjects.language(request))

    @get(
        "/shortfalls",
        operation_id="list_shortfalls",
        summary="List what short receipts left outstanding",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def list_shortfalls(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[Literal["outstanding", "settled", "written_off"] | None] = None,
    ) -> list[shortfalls.ShortfallOut]:
        """The organisation's shortfalls (a payout received short: the amount expected,
        received and outstanding, the reason), outstanding first. Filter: `status`."""
        async with pool.acquire() as conn:
            return await shortfalls.list_shortfalls(
                conn, caller.org_id, subjects.language(request), status
            )

    @post(
        "/shortfalls/{shortfall_id:int}/settle",
        operation_id="settle_shortfall",
        summary="Settle a shortfall with a further statement line",
        status_code=200,
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def settle_shortfall(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        act: ActDep,
        pool: PoolDep,
        shortfall_id: FromPath[int],
        data: Annotated[shortfalls.SettleIn, SETTLE],
    ) -> shortfalls.ShortfallOut:
        """A further open (or set-aside) statement line of exactly the amount outstanding
        settles the shortfall (another amount: 422 `shortfall_amount_differs`); closed
        already: 409 `shortfall_closed_already`. Audited."""
        cmd = shortfalls.SettleShortfall(
            shortfall_id=shortfall_id, line_id=data.line_id, note=data.note
        )
        done = await act(shortfalls.settle_shortfall, cmd)
        async with pool.acquire() as conn:
            return await shortfalls.get_shortfall(
                conn, caller.org_id, done.id, subjects.language(request)
            )

    @post(
        "/shortfalls/{shortfall_id:int}/write-off",
        operation_id="write_off_shortfall",
        summary="Write a shortfall off",
        status_code=200,
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def write_off_shortfall(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        act: ActDep,
        pool: PoolDep,
        shortfall_id: FromPath[int],
        data: Annotated[shortfalls.WriteOffIn, WRITE_OFF],
    ) -> shortfalls.ShortfallOut:
        """Write an outstanding shortfall off, saying why in `note`; for a pool it is
        booked as an expense. Closed already: 409 `shortfall_closed_already`. Audited."""
        cmd = shortfalls.WriteOffShortfall(shortfall_id=shortfall_id, note=data.note)
        done = await act(shortfalls.write_off_shortfall, cmd)
        async with pool.acquire() as conn:
            return await shortfalls.get_shortfall(
                conn, caller.org_id, done.id, subjects.language(request)
            )

    @get(
        "/payouts",
        operation_id="list_reconciliation_payouts",
        summary="List the payouts owed to the organisation",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def payouts(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[Literal["expected", "received", "reversed"] | None] = None,
        case_id: FromQuery[int | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[PayoutOut]:
        """The organisation's payouts (what the waterfall owes it), oldest first, a page
        at a time: amount, reference, status, case, and the statement line that settled
        it. Filters: `status`, `case_id`."""
        return await api_lists.page_payouts(
            pool, caller.org_id, status=status, case_id=case_id, cursor=cursor, limit=limit
        )

    @get(
        "/exports/pools/{pool_id:int}",
        operation_id="export_pool_statement",
        summary="Export a pool's payout statement (CSV)",
        media_type=statement_export.CSV,
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_pool(
        self,
        caller: CallerDep,
        pool: PoolDep,
        pool_id: FromPath[int],
        lang: FromQuery[Literal["zh", "en"]] = "zh",
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> Response[bytes]:
        """CSV statement of the payouts to one of the manager's pools (UTF-8 with BOM):
        all of them, or those expected or received from `since` to `until` (days in
        China, both included)."""
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            code, rows = await recon.pool_statement(conn, caller.org_id, pool_id, within)
        body = statement_export.export_csv(rows, lang)
        name = f"statement-pool-{code}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)

    @get(
        "/exports/bank",
        operation_id="export_bank_statement",
        summary="Export the bank's payout statement (CSV)",
        media_type=statement_export.CSV,
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_bank(
        self,
        caller: CallerDep,
        pool: PoolDep,
        lang: FromQuery[Literal["zh", "en"]] = "zh",
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> Response[bytes]:
        """CSV statement of the payouts to the bank (UTF-8 with BOM), all or of a period
        as for a pool; for banks only (a pool: 403 `bank_statement_for_banks`)."""
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            rows = await recon.bank_statement(conn, caller.org_id, caller.org_kind, within)
        body = statement_export.export_csv(rows, lang)
        return statement_export.csv_response(body, f"statement-bank{within.filename_part()}.csv")

    @get(
        "/exports/cases/{case_id:int}",
        operation_id="export_case_statement",
        summary="Export a case's payout statement (CSV)",
        media_type=statement_export.CSV,
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_case(
        self,
        caller: CallerDep,
        pool: PoolDep,
        case_id: FromPath[int],
        lang: FromQuery[Literal["zh", "en"]] = "zh",
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> Response[bytes]:
        """CSV statement of a case's payouts: all of them for the bank owning the case,
        one's own for a pool (none there: 404); all or of a period as for a pool."""
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            reference, rows = await recon.case_statement(conn, caller.org_id, case_id, within)
        body = statement_export.export_csv(rows, lang)
        name = f"statement-case-{reference}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)
