"""The reconciliation pages of pools and banks: import a statement, the statements, open
exceptions with their reasons, matching by hand, and CSV statements of payouts."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.collateral.csv_import import ImportRejected
from market.collateral.models import RowError
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import AppError, Invalid
from market.pools import dashboard, statement_csv, statement_export
from market.pools import reconciliation as recon
from market.web import language, page, require


def _reconciler(viewer: Viewer | None) -> Viewer:
    me = require(viewer)
    recon.require_reconciler(me.org_kind, me.org_status)
    return me


async def _index(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    errors: dict[str, str] | None = None,
    rejected: list[RowError] | None = None,
    values: dict[str, str] | None = None,
    matched: int | None = None,
    set_aside: int | None = None,
    within: recon.Period = recon.ALL_TIME,
    status_code: int = 200,
) -> Template:
    async with pool.acquire() as conn:
        statements = await recon.list_statements(conn, me.org_id, limit=50)
        exceptions = await recon.open_lines(conn, me.org_id)
        set_aside_lines = await recon.set_aside_lines(conn, me.org_id)
        expected = await recon.org_payouts(conn, me.org_id, "expected", limit=500)
        cases = await recon.cases_with_payouts(conn, me.org_id)
        pools = await dashboard.pools_of(conn, me.org_id) if me.org_kind == "pool" else []
    by_amount: dict[int, list[recon.PayoutOut]] = {}
    for p in expected:
        by_amount.setdefault(p.amount_fen, []).append(p)
    return page(
        request,
        "pools/reconciliation_index.html",
        me,
        status_code=status_code,
        statements=statements,
        exceptions=exceptions,
        set_aside_lines=set_aside_lines,
        expected=expected,
        by_amount=by_amount,
        cases=cases,
        pools=pools,
        errors=errors or {},
        rejected=rejected or [],
        values=values or {},
        matched=matched,
        set_aside=set_aside,
        within=within,
        max_mb=statement_csv.MAX_FILE_BYTES // (1024 * 1024),
        max_reference=recon.MAX_MATCH_REFERENCE,
        max_note=recon.MAX_NOTE,
    )


def _lang(request: Request[Any, Any, State], me: Viewer, lang: str | None) -> str:
    return lang if lang in ("zh", "en") else language(request, me)


class ReconciliationPages(Controller):
    path = "/reconciliation"
    include_in_schema = False

    @get("/", operation_id="web_reconciliation")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        matched: FromQuery[int | None] = None,
        set_aside: FromQuery[int | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Template:
        """The page; `since`/`until` (the exports' period form) go into its export links."""
        me = _reconciler(viewer)
        try:
            within = recon.period(since, until)
        except AppError as exc:
            return await _index(
                request,
                pool,
                me,
                errors={exc.field or "period": exc.message},
                values={"since": since or "", "until": until or ""},
                status_code=exc.status,
            )
        return await _index(request, pool, me, matched=matched, set_aside=set_aside, within=within)

    @post("/statements", operation_id="web_reconciliation_upload")
    async def upload(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
    ) -> Template | Redirect:
        """Import the statement now (one transaction), then show it line by line."""
        me = _reconciler(viewer)
        form = await request.form()
        upload = form.get("file")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise Invalid("请选择要上传的 CSV 文件 / choose a CSV file to upload", field="file")
            data = await upload.read()
            async with pool.acquire() as conn, conn.transaction():
                out = await recon.import_statement(
                    conn,
                    at=clock.now(),
                    org_id=me.org_id,
                    user_id=me.user_id,
                    filename=upload.filename,
                    data=data,
                )
        except ImportRejected as exc:
            return await _index(
                request,
                pool,
                me,
                errors={"file": exc.message},
                rejected=exc.errors,
                status_code=exc.status,
            )
        except AppError as exc:
            if exc.status in (401, 403):
                raise
            return await _index(
                request, pool, me, errors={"file": exc.message}, status_code=exc.status
            )
        return Redirect(f"/reconciliation/statements/{out.statement.id}", status_code=303)

    @get("/statements/{statement_id:int}", operation_id="web_reconciliation_statement")
    async def statement(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        statement_id: FromPath[int],
    ) -> Template:
        me = _reconciler(viewer)
        async with pool.acquire() as conn:
            detail = await recon.statement_detail(conn, me.org_id, statement_id)
        return page(request, "pools/reconciliation_statement.html", me, detail=detail)

    @post("/lines/{line_id:int}/match", operation_id="web_reconciliation_match")
    async def match(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        line_id: FromPath[int],
    ) -> Template | Redirect:
        me = _reconciler(viewer)
        form = await request.form()
        reference = str(form.get("reference") or "")
        note = str(form.get("note") or "")
        try:
            async with pool.acquire() as conn, conn.transaction():
                line = await recon.match_line(
                    conn,
                    at=clock.now(),
                    org_id=me.org_id,
                    user_id=me.user_id,
                    line_id=line_id,
                    reference=reference,
                    note=note,
                )
        except AppError as exc:
            if exc.status in (401, 403) or (exc.status == 404 and exc.field != "reference"):
                raise
            return await _index(
                request,
                pool,
                me,
                errors={f"line-{line_id}": exc.message},
                values={f"line-{line_id}": reference, f"note-{line_id}": note},
                status_code=exc.status,
            )
        return Redirect(f"/reconciliation?matched={line.line_no}", status_code=303)

    @post("/lines/{line_id:int}/set-aside", operation_id="web_reconciliation_set_aside")
    async def set_aside(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
        line_id: FromPath[int],
    ) -> Template | Redirect:
        me = _reconciler(viewer)
        form = await request.form()
        note = str(form.get("note") or "")
        try:
            async with pool.acquire() as conn, conn.transaction():
                line = await recon.set_aside_line(
                    conn,
                    at=clock.now(),
                    org_id=me.org_id,
                    user_id=me.user_id,
                    line_id=line_id,
                    note=note,
                )
        except AppError as exc:
            if exc.status in (401, 403, 404):
                raise
            return await _index(
                request,
                pool,
                me,
                errors={f"aside-{line_id}": exc.message},
                values={f"aside-{line_id}": note},
                status_code=exc.status,
            )
        return Redirect(f"/reconciliation?set_aside={line.line_no}", status_code=303)

    @get("/template.csv", operation_id="web_reconciliation_template")
    async def template(
        self,
        request: Request[Any, Any, State],
        viewer: ViewerDep,
        lang: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        me = _reconciler(viewer)
        return statement_export.csv_response(
            statement_export.template_csv(_lang(request, me, lang)), "statement-example.csv"
        )

    @get("/exports/pool/{pool_id:int}", operation_id="web_reconciliation_export_pool")
    async def export_pool(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        pool_id: FromPath[int],
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """The payouts to one of the manager's pools, all or of a period (another's
        pool: 404)."""
        me = _reconciler(viewer)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            code, rows = await recon.pool_statement(conn, me.org_id, pool_id, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        name = f"statement-pool-{code}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)

    @get("/exports/bank", operation_id="web_reconciliation_export_bank")
    async def export_bank(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        me = _reconciler(viewer)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            rows = await recon.bank_statement(conn, me.org_id, me.org_kind, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        return statement_export.csv_response(body, f"statement-bank{within.filename_part()}.csv")

    @get("/exports/case/{case_id:int}", operation_id="web_reconciliation_export_case")
    async def export_case(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        case_id: FromPath[int],
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        me = _reconciler(viewer)
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            reference, rows = await recon.case_statement(conn, me.org_id, case_id, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        name = f"statement-case-{reference}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)
