"""The reconciliation pages of pools and banks: import a statement, the statements, open
exceptions with their reasons, matching by hand, setting a line aside, and CSV
statements of payouts (docs/rules.md §Reconciliation). Every page speaks the reader's
language: reasons, problems and statuses in its words."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market import i18n, problems
from market.accounts.models import Viewer
from market.accounts.permissions import READ_RECONCILIATION, WRITE_RECONCILIATION, allow
from market.deps import ActDep, MeDep, PoolDep
from market.errors import AppError, LineProblem, NotFound
from market.pools import dashboard, shortfalls, statement_csv, statement_export
from market.pools import reconciliation as recon
from market.web import Form, language, page


def rejected_lines(lang: i18n.Lang, found: list[LineProblem]) -> list[dict[str, Any]]:
    """The problems of a refused file as the page lists them: line, column, words."""
    return [
        {
            "line": p.line,
            "column": p.params.get("column", ""),
            "detail": problems.describe(lang, p.code, p.params),
        }
        for p in found
    ]


async def _index(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    *,
    errors: dict[str, str] | None = None,
    rejected: list[LineProblem] | None = None,
    values: dict[str, str] | None = None,
    matched: int | None = None,
    set_aside: int | None = None,
    shortfall: str | None = None,
    within: recon.Period = recon.ALL_TIME,
    status_code: int = 200,
) -> Template:
    lang = language(request, me)
    async with pool.acquire() as conn:
        statements = await recon.list_statements(conn, me.org_id, limit=50)
        exceptions = await recon.open_lines(conn, me.org_id, lang)
        set_aside_lines = await recon.set_aside_lines(conn, me.org_id, lang)
        expected = await recon.org_payouts(conn, me.org_id, "expected", limit=500)
        cases = await recon.cases_with_payouts(conn, me.org_id)
        pools = await dashboard.pools_of(conn, me.org_id) if me.org_kind == "pool" else []
        outstanding = await shortfalls.list_shortfalls(conn, me.org_id, lang, "outstanding")
    return page(
        request,
        "pools/reconciliation_index.html",
        me,
        status_code=status_code,
        statements=statements,
        exceptions=exceptions,
        set_aside_lines=set_aside_lines,
        expected=expected,
        payee=lambda p: recon.payee_text(lang, p),
        cases=cases,
        pools=pools,
        errors=errors or {},
        rejected=rejected_lines(lang, rejected or []),
        values=values or {},
        matched=matched,
        set_aside=set_aside,
        shortfall_done=shortfall,
        within=within,
        bank_export=me.org_kind == "bank",
        max_mb=statement_csv.MAX_FILE_BYTES // (1024 * 1024),
        **_actions(expected, outstanding, exceptions + set_aside_lines),
    )


def _actions(
    expected: list[recon.PayoutOut],
    outstanding: list[shortfalls.ShortfallOut],
    lines: list[recon.LineOut],
) -> dict[str, Any]:
    """What the forms of a line's actions need (pools/_recon_actions.html): the payouts a
    line may pay (the same amount, or a little more: a short receipt), the outstanding
    shortfalls a line of their amount settles, and the lines that could settle each."""
    policy = shortfalls.DEFAULT_POLICY
    return {
        "payouts_for": lambda amount: [
            p for p in expected if 0 <= p.amount_fen - amount <= policy.tolerance_fen(p.amount_fen)
        ],
        "shortfalls_for": lambda amount: [s for s in outstanding if s.shortfall_fen == amount],
        "lines_for": lambda amount: [ln for ln in lines if ln.amount_fen == amount],
        "outstanding": outstanding,
        "short_reasons": shortfalls.SHORT_REASONS,
        "policy": policy,
        "max_reference": recon.MAX_MATCH_REFERENCE,
        "max_note": recon.MAX_NOTE,
    }


async def _statement(
    request: Request[Any, Any, State],
    pool: asyncpg.Pool,
    me: Viewer,
    statement_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Template:
    """A statement line by line, each line waiting for a person with its actions."""
    lang = language(request, me)
    async with pool.acquire() as conn:
        detail = await recon.statement_detail(conn, me.org_id, statement_id, lang)
        expected = await recon.org_payouts(conn, me.org_id, "expected", limit=500)
        outstanding = await shortfalls.list_shortfalls(conn, me.org_id, lang, "outstanding")
        every = await shortfalls.list_shortfalls(conn, me.org_id, lang)
    open_lines = [ln for ln in detail.lines if ln.status in recon.MATCHABLE_STATUSES]
    return page(
        request,
        "pools/reconciliation_statement.html",
        me,
        status_code=status_code,
        detail=detail,
        open_statuses=recon.MATCHABLE_STATUSES,
        short_of_line={s.line_no: s for s in every if s.statement_id == statement_id},
        errors=errors or {},
        values=values or {},
        done=done,
        back=statement_id,
        **_actions(expected, outstanding, open_lines),
    )


def _back(form: Form) -> int | None:
    """The statement whose page a line's form was sent from (else the reconciliation
    page)."""
    text = form.text("back")
    return int(text) if text.isdigit() else None


def _lang(request: Request[Any, Any, State], me: Viewer, lang: str | None) -> i18n.Lang:
    """An export's language: the one its link names, else the page's."""
    return i18n.pick(lang) if lang in i18n.LANGS else language(request, me)


def _one_error(form: Form, key: str) -> dict[str, str]:
    """A line's form shows one problem, whichever field it concerns."""
    return {key: next(iter(form.errors.values()))} if form.errors else {}


class ReconciliationPages(Controller):
    path = "/reconciliation"
    include_in_schema = False

    @get("/", operation_id="web_reconciliation", guards=[allow(READ_RECONCILIATION)])
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        matched: FromQuery[int | None] = None,
        set_aside: FromQuery[int | None] = None,
        shortfall: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Template:
        """The page; `since`/`until` (the exports' period form) go into its export links."""
        try:
            within = recon.period(since, until)
        except AppError as exc:
            return await _index(
                request,
                pool,
                me,
                errors={exc.field or "period": problems.text(exc, language(request, me))},
                values={"since": since or "", "until": until or ""},
                status_code=exc.status,
            )
        return await _index(
            request,
            pool,
            me,
            matched=matched,
            set_aside=set_aside,
            shortfall=shortfall if shortfall in ("settled", "written_off") else None,
            within=within,
        )

    @post(
        "/statements",
        operation_id="web_reconciliation_upload",
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def upload(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template | Redirect:
        """Import the statement now (one transaction), then show it line by line."""
        form = await Form.read(request, me)
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            form.fail("file", "required")
            return await _index(request, pool, me, errors=form.errors, status_code=form.status)
        rejected: list[LineProblem] = []
        data = recon.ImportStatement(data=await upload.read(), filename=upload.filename)

        async def run() -> recon.Imported:
            try:
                return await act(recon.import_statement, data)
            except AppError as exc:
                rejected.extend(exc.problems or [])
                raise

        done = await form.submit(run)
        if done is None:
            return await _index(
                request,
                pool,
                me,
                errors={"file": next(iter(form.errors.values()))},
                rejected=rejected,
                status_code=form.status,
            )
        return Redirect(f"/reconciliation/statements/{done.statement_id}", status_code=303)

    @get(
        "/statements/{statement_id:int}",
        operation_id="web_reconciliation_statement",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def statement(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        statement_id: FromPath[int],
        done: FromQuery[str | None] = None,
    ) -> Template:
        shown = done if done in ("matched", "set_aside", "settled", "written_off") else None
        return await _statement(request, pool, me, statement_id, done=shown)

    @post(
        "/lines/{line_id:int}/match",
        operation_id="web_reconciliation_match",
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def match(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        line_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        reference, note = form.values.get("reference", ""), form.values.get("note", "")
        data = recon.MatchLine(
            line_id=line_id,
            reference=reference,
            note=note,
            short_reason=form.text("short_reason"),
            short_note=form.values.get("short_note", ""),
        )
        back = _back(form)

        async def run() -> recon.LineDone | None:
            try:
                return await act(recon.match_line, data)
            except NotFound as exc:
                if exc.field is None:  # the line itself: gone or another's
                    raise
                form.refuse(exc)  # no such transfer: said beside what was typed
                return None

        done = await form.submit(run)
        if done is None:
            values = {
                f"line-{line_id}": reference,
                f"note-{line_id}": note,
                f"short_reason-{line_id}": form.values.get("short_reason", ""),
                f"short_note-{line_id}": form.values.get("short_note", ""),
            }
            errors = _one_error(form, f"line-{line_id}")
            if back is not None:
                return await _statement(
                    request, pool, me, back, errors=errors, values=values, status_code=form.status
                )
            return await _index(
                request, pool, me, errors=errors, values=values, status_code=form.status
            )
        if back is not None:
            return Redirect(
                f"/reconciliation/statements/{back}?done=matched#line-{done.line_no}",
                status_code=303,
            )
        return Redirect(f"/reconciliation?matched={done.line_no}", status_code=303)

    @post(
        "/lines/{line_id:int}/set-aside",
        operation_id="web_reconciliation_set_aside",
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def set_aside(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        line_id: FromPath[int],
    ) -> Template | Redirect:
        form = await Form.read(request, me)
        note = form.values.get("note", "")
        back = _back(form)
        done = await form.submit(
            lambda: act(recon.set_aside_line, recon.SetAsideLine(line_id=line_id, note=note))
        )
        if done is None:
            errors = _one_error(form, f"aside-{line_id}")
            values = {f"aside-{line_id}": note}
            if back is not None:
                return await _statement(
                    request, pool, me, back, errors=errors, values=values, status_code=form.status
                )
            return await _index(
                request, pool, me, errors=errors, values=values, status_code=form.status
            )
        if back is not None:
            return Redirect(
                f"/reconciliation/statements/{back}?done=set_aside#line-{done.line_no}",
                status_code=303,
            )
        return Redirect(f"/reconciliation?set_aside={done.line_no}", status_code=303)

    @post(
        "/shortfalls/{shortfall_id:int}/settle",
        operation_id="web_reconciliation_settle_shortfall",
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def settle_shortfall(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        shortfall_id: FromPath[int],
    ) -> Template | Redirect:
        """A further line brings what a short receipt left outstanding."""
        form = await Form.read(request, me)
        back = _back(form)
        line_id = form.id("line_id")
        if line_id is None:  # another's shortfall is 404 all the same
            async with pool.acquire() as conn:
                await shortfalls.get_shortfall(conn, me.org_id, shortfall_id, form.lang)
        note = form.values.get("note", "")
        done = await form.submit(
            lambda: act(
                shortfalls.settle_shortfall,
                shortfalls.SettleShortfall(
                    shortfall_id=shortfall_id, line_id=line_id or 0, note=note
                ),
            )
        )
        key = f"settle-{shortfall_id}"
        if done is None:
            errors = _one_error(form, key)
            if back is not None:
                return await _statement(
                    request, pool, me, back, errors=errors, status_code=form.status
                )
            return await _index(request, pool, me, errors=errors, status_code=form.status)
        if back is not None:
            return Redirect(f"/reconciliation/statements/{back}?done=settled", status_code=303)
        return Redirect("/reconciliation?shortfall=settled#shortfalls", status_code=303)

    @post(
        "/shortfalls/{shortfall_id:int}/write-off",
        operation_id="web_reconciliation_write_off_shortfall",
        guards=[allow(WRITE_RECONCILIATION)],
    )
    async def write_off_shortfall(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        act: ActDep,
        me: MeDep,
        shortfall_id: FromPath[int],
    ) -> Template | Redirect:
        """What a short receipt left outstanding will not come: written off, with why."""
        form = await Form.read(request, me)
        back = _back(form)
        note = form.values.get("note", "")
        cmd = shortfalls.WriteOffShortfall(shortfall_id=shortfall_id, note=note)
        done = await form.submit(lambda: act(shortfalls.write_off_shortfall, cmd))
        key = f"write-off-{shortfall_id}"
        if done is None:
            errors = _one_error(form, key)
            values = {key: note}
            if back is not None:
                return await _statement(
                    request, pool, me, back, errors=errors, values=values, status_code=form.status
                )
            return await _index(
                request, pool, me, errors=errors, values=values, status_code=form.status
            )
        if back is not None:
            return Redirect(f"/reconciliation/statements/{back}?done=written_off", status_code=303)
        return Redirect("/reconciliation?shortfall=written_off#shortfalls", status_code=303)

    @get(
        "/template.csv",
        operation_id="web_reconciliation_template",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def template(
        self,
        request: Request[Any, Any, State],
        me: MeDep,
        lang: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        return statement_export.csv_response(
            statement_export.template_csv(_lang(request, me, lang)), "statement-example.csv"
        )

    @get(
        "/exports/pool/{pool_id:int}",
        operation_id="web_reconciliation_export_pool",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_pool(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        pool_id: FromPath[int],
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """The payouts to one of the manager's pools, all or of a period (another's
        pool: 404)."""
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            code, rows = await recon.pool_statement(conn, me.org_id, pool_id, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        name = f"statement-pool-{code}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)

    @get(
        "/exports/bank",
        operation_id="web_reconciliation_export_bank",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_bank(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            rows = await recon.bank_statement(conn, me.org_id, me.org_kind, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        return statement_export.csv_response(body, f"statement-bank{within.filename_part()}.csv")

    @get(
        "/exports/case/{case_id:int}",
        operation_id="web_reconciliation_export_case",
        guards=[allow(READ_RECONCILIATION)],
    )
    async def export_case(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        case_id: FromPath[int],
        lang: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        within = recon.period(since, until)
        async with pool.acquire() as conn:
            reference, rows = await recon.case_statement(conn, me.org_id, case_id, within)
        body = statement_export.export_csv(rows, _lang(request, me, lang))
        name = f"statement-case-{reference}{within.filename_part()}.csv"
        return statement_export.csv_response(body, name)
