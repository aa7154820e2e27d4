"""The reconciliation API for pools' and banks' systems: import a bank statement, read the
statements and open exceptions, match a line by hand, export statements of payouts.

Scopes: `pools:write` to import and match, `pools:read` to read and export."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from market.accounts.models import ApiCaller
from market.accounts.services import require_scope
from market.collateral.api import CSV_TYPES, UnsupportedMediaType
from market.deps import CallerDep, ClockDep, PoolDep
from market.pools import reconciliation as recon
from market.pools import statement_export
from market.pools.reconciliation import (
    ImportOut,
    LineOut,
    MatchIn,
    PayoutOut,
    SetAsideIn,
    StatementDetail,
    StatementOut,
)

READ = "pools:read"
WRITE = "pools:write"


def _org(caller: ApiCaller, scope: str) -> int:
    require_scope(caller, scope)
    recon.require_reconciler(caller.org_kind, caller.org_status)
    return caller.org_id


class ReconciliationApi(Controller):
    path = "/api/v1/reconciliation"
    tags = ["reconciliation"]

    @post("/statements", operation_id="import_statement", status_code=201)
    async def import_statement(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        filename: FromQuery[str | None] = None,
    ) -> ImportOut:
        """Import a bank statement CSV (body: the file, `Content-Type: text/csv`).

        UTF-8 (with or without BOM) or GB18030; columns 交易日期/date, 金额/amount (yuan),
        附言/reference, optional 对方户名/counterparty and 流水号/bank txn id; other columns
        are ignored, outgoing payments skipped. Any bad line rejects the file: 422 with
        `details` [{line, column, key, reason}] and nothing written. The same file again:
        409. Each line is classified matched, amount_mismatch, reference_typo or unknown;
        matched lines mark their payouts received."""
        org = _org(caller, WRITE)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise UnsupportedMediaType(
                "send the CSV file as the request body with 'Content-Type: text/csv'"
            )
        data = await request.body()
        async with pool.acquire() as conn, conn.transaction():
            return await recon.import_statement(
                conn,
                at=clock.now(),
                org_id=org,
                user_id=caller.user_id,
                filename=filename,
                data=data,
            )

    @get("/statements", operation_id="list_statements")
    async def statements(self, caller: CallerDep, pool: PoolDep) -> list[StatementOut]:
        """The organisation's statements, newest first, with counts by outcome."""
        org = _org(caller, READ)
        async with pool.acquire() as conn:
            return await recon.list_statements(conn, org)

    @get("/statements/{statement_id:int}", operation_id="get_statement")
    async def statement(
        self, caller: CallerDep, pool: PoolDep, statement_id: FromPath[int]
    ) -> StatementDetail:
        """One statement with every line (another organisation's: 404)."""
        org = _org(caller, READ)
        async with pool.acquire() as conn:
            return await recon.statement_detail(conn, org, statement_id)

    @get("/exceptions", operation_id="list_statement_exceptions")
    async def exceptions(self, caller: CallerDep, pool: PoolDep) -> list[LineOut]:
        """Lines waiting for a person: amount mismatches, reference typos, unknowns."""
        org = _org(caller, READ)
        async with pool.acquire() as conn:
            return await recon.open_lines(conn, org)

    @post("/lines/{line_id:int}/match", operation_id="match_statement_line", status_code=200)
    async def match(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        line_id: FromPath[int],
        data: JSONBody[MatchIn],
    ) -> LineOut:
        """Match an open (or set-aside) line by hand to an expected payout of the
        organisation (by `payout_id` or `reference`). Amounts must be equal (422); a payout
        received already or a line settled already: 409. Audited."""
        org = _org(caller, WRITE)
        async with pool.acquire() as conn, conn.transaction():
            return await recon.match_line(
                conn,
                at=clock.now(),
                org_id=org,
                user_id=caller.user_id,
                line_id=line_id,
                payout_id=data.payout_id,
                reference=data.reference,
                note=data.note,
            )

    @post(
        "/lines/{line_id:int}/set-aside", operation_id="set_aside_statement_line", status_code=200
    )
    async def set_aside(
        self,
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        line_id: FromPath[int],
        data: JSONBody[SetAsideIn],
    ) -> LineOut:
        """Take an open line out of the exceptions as no expected recovery (bank interest,
        a payment for something else, a duplicate sent back), saying why in `note`. No
        payout is touched; the line can still be matched by hand later. A line matched or
        set aside already: 409. Audited."""
        org = _org(caller, WRITE)
        async with pool.acquire() as conn, conn.transaction():
            return await recon.set_aside_line(
                conn,
                at=clock.now(),
                org_id=org,
                user_id=caller.user_id,
                line_id=line_id,
                note=data.note,
            )

    @get("/payouts", operation_id="list_reconciliation_payouts")
    async def payouts(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[Literal["expected", "received", "reversed"] | None] = None,
    ) -> list[PayoutOut]:
        """The organisation's payouts (what the waterfall owes it), oldest first."""
        org = _org(caller, READ)
        async with pool.acquire() as conn:
            return await recon.org_payouts(conn, org, status)

    @get("/exports/pools/{pool_id:int}", operation_id="export_pool_statement")
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
        org = _org(caller, READ)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            code, rows = await recon.pool_statement(conn, org, pool_id, within)
        body = statement_export.export_csv(rows, lang)
        name = f"statement-pool-{code}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)

    @get("/exports/bank", operation_id="export_bank_statement")
    async def export_bank(
        self,
        caller: CallerDep,
        pool: PoolDep,
        lang: FromQuery[Literal["zh", "en"]] = "zh",
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> Response[bytes]:
        """CSV statement of the payouts to the bank (UTF-8 with BOM), all or of a period
        as for a pool."""
        org = _org(caller, READ)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            rows = await recon.bank_statement(conn, org, caller.org_kind, within)
        body = statement_export.export_csv(rows, lang)
        return statement_export.csv_response(body, f"statement-bank{within.filename_part()}.csv")

    @get("/exports/cases/{case_id:int}", operation_id="export_case_statement")
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
        org = _org(caller, READ)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            reference, rows = await recon.case_statement(conn, org, case_id, within)
        body = statement_export.export_csv(rows, lang)
        name = f"statement-case-{reference}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)
