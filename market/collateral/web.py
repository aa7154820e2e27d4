"""The bank's collateral pages: the registry, CSV upload with live progress, loan and asset."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market import i18n
from market.accounts.models import Viewer
from market.accounts.permissions import READ_COLLATERAL, WRITE_COLLATERAL, allow, refusal
from market.collateral import csv_format, csv_import, services, single
from market.collateral.jobs import import_job_id
from market.collateral.monitoring import business_day
from market.deps import ActDep, ClockDep, MeDep, PoolDep
from market.web import Form, content_disposition, language, page

log = logging.getLogger("market.collateral.web")


async def _index(
    request: Request[Any, Any, State],
    pool: PoolDep,
    me: Viewer,
    *,
    page_no: int = 1,
    assets_page_no: int = 1,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    lang = language(request, me)
    async with pool.acquire() as conn:
        counts = await services.overview(conn, me.org_id)
        by_form = await services.form_asset_count(conn, me.org_id)
        pledges = await services.pledge_page(conn, me.org_id, page_no)
        assets = await services.asset_page(conn, me.org_id, assets_page_no)
        imports = await services.recent_imports(conn, me.org_id, lang)
    return page(
        request,
        "collateral/index.html",
        me,
        status_code=status_code,
        counts=counts,
        pledges=pledges,
        assets=assets,
        imports=imports,
        by_form=by_form,
        errors=errors or {},
        can_import=refusal(WRITE_COLLATERAL, me.org_kind, me.org_status, me.role) is None,
        max_mb=csv_import.MAX_FILE_BYTES // (1024 * 1024),
    )


class CollateralUploadPages(Controller):
    include_in_schema = False
    guards = [allow(WRITE_COLLATERAL)]

    @post("/bank/collateral/imports", operation_id="web_collateral_upload")
    async def upload(
        self, request: Request[Any, Any, State], pool: PoolDep, act: ActDep, me: MeDep
    ) -> Template | Redirect:
        """Keep the file, queue its import for the worker, show its progress page."""
        form = await Form.read(request, me)
        upload = (await request.form()).get("file")
        data = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = csv_import.StartImport(content=await upload.read(), filename=upload.filename)
        else:
            form.fail("file", "csv_file_missing")

        async def start() -> csv_import.Started:
            assert data is not None  # submit runs it only when the form has no errors
            return await act(csv_import.start_import, data)

        started = await form.submit(start)
        if started is None:
            return await _index(request, pool, me, errors=form.errors, status_code=form.status)
        try:
            await request.app.state.redis.enqueue_job(
                "run_collateral_import",
                started.import_id,
                _job_id=import_job_id(started.import_id),
            )
        except Exception:
            # The upload is kept as queued; the sweeper enqueues it within a minute.
            log.warning("could not enqueue collateral import %s", started.import_id, exc_info=True)
        return Redirect(f"/bank/collateral/imports/{started.import_id}", status_code=303)


def _asset_form(
    request: Request[Any, Any, State],
    me: Viewer,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    lang = language(request, me)
    columns = [
        {
            "key": c.key,
            "label": c.header if lang == "zh" else c.key.replace("_", " ").capitalize(),
            "required": c.required,
            "example": csv_format.EXAMPLE.get(c.key, ""),
        }
        for c in csv_format.COLUMNS
    ]
    return page(
        request,
        "collateral/asset_new.html",
        me,
        status_code=status_code,
        pledge_columns=[c for c in columns if c["key"] in csv_format.PLEDGE_KEYS],
        asset_columns=[c for c in columns if c["key"] in csv_format.ASSET_KEYS],
        values=values,
        errors=errors,
    )


class CollateralAssetForm(Controller):
    """One asset by form (market/collateral/single.py): the CSV's line, checked by the
    import's validator and written by the import, adding the asset to its pledge."""

    include_in_schema = False
    guards = [allow(WRITE_COLLATERAL)]

    @get("/bank/collateral/assets/new", operation_id="web_collateral_asset_new")
    async def new(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        pledge: FromQuery[int | None] = None,
    ) -> Template:
        values = dict(single.DEFAULTS)
        if pledge is not None:
            async with pool.acquire() as conn:
                values |= await single.pledge_values(conn, me.org_id, pledge)
        return _asset_form(request, me, values, {})

    @post("/bank/collateral/assets/new", operation_id="web_collateral_asset_add")
    async def add(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        clock: ClockDep,
        me: MeDep,
    ) -> Template | Redirect:
        form = await Form.read(request, me, fields={"file": "form"})
        values = {key: form.values.get(key, "") for key in single.FIELDS}
        for problem in await single.problems(values, business_day(clock.now())):
            form.fail(problem.field, problem.code, **problem.params)

        result = await form.submit(lambda: single.add_asset(act, values))
        if result is None:
            return _asset_form(request, me, form.values, form.errors, form.status)
        if result.asset_ids_created:
            return Redirect(
                f"/bank/collateral/assets/{result.asset_ids_created[0]}", status_code=303
            )
        return Redirect("/bank/collateral?saved=asset", status_code=303)


class CollateralPages(Controller):
    include_in_schema = False
    guards = [allow(READ_COLLATERAL)]

    @get("/bank/collateral", operation_id="web_collateral")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        page: FromQuery[int] = 1,
        assets_page: FromQuery[int] = 1,
    ) -> Template:
        return await _index(request, pool, me, page_no=page, assets_page_no=assets_page)

    @get("/bank/collateral/imports/{import_id:int}", operation_id="web_collateral_import")
    async def import_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        import_id: FromPath[int],
    ) -> Template:
        async with pool.acquire() as conn:
            imp = await services.get_import(conn, me.org_id, import_id, language(request, me))
        return page(request, "collateral/import.html", me, imp=imp)

    @get(
        "/bank/collateral/imports/{import_id:int}/progress",
        operation_id="web_collateral_import_progress",
        cache=False,
    )
    async def import_progress(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        import_id: FromPath[int],
    ) -> Template:
        """The progress fragment htmx polls every 500 ms until the import is finished."""
        async with pool.acquire() as conn:
            imp = await services.get_import(conn, me.org_id, import_id, language(request, me))
        return page(request, "collateral/_progress.html", me, imp=imp)

    @get("/bank/collateral/template.csv", operation_id="web_collateral_csv_template")
    async def csv_template(self, me: MeDep, lang: FromQuery[str] = "zh") -> Response[bytes]:
        """The headers and one example row (to replace: uploaded as it is, it is refused),
        UTF-8 with BOM so that Excel opens it correctly."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(csv_format.header_names(i18n.pick(lang)))
        writer.writerow(csv_format.example_row())
        body = ("\ufeff" + out.getvalue()).encode("utf-8")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": content_disposition("collateral-template.csv")},
        )

    @get("/bank/collateral/loans/{loan_id:int}", operation_id="web_collateral_loan")
    async def loan_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        loan_id: FromPath[int],
    ) -> Template:
        async with pool.acquire() as conn:
            loan = await services.loan_for_case(conn, me.org_id, loan_id)
            asset_ids = [a.id for a in loan.pledge.assets] if loan.pledge else []
            flags = await services.open_flags(conn, me.org_id, asset_ids)
        by_asset: dict[int, list[str]] = {}
        for f in flags:
            by_asset.setdefault(f.asset_id, []).append(f.kind)
        return page(request, "collateral/loan.html", me, loan=loan, flags=by_asset)

    @get("/bank/collateral/assets/{asset_id:int}", operation_id="web_collateral_asset")
    async def asset_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        me: MeDep,
        asset_id: FromPath[int],
    ) -> Template:
        async with pool.acquire() as conn:
            asset = await services.get_asset(conn, me.org_id, asset_id)
            owner = await services.pledgor(conn, me.org_id, asset.pledgor_id)
            pledges = await services.asset_pledges(conn, me.org_id, asset_id)
            history = await services.flag_history(conn, me.org_id, asset_id)
        return page(
            request,
            "collateral/asset.html",
            me,
            asset=asset,
            pledgor=owner,
            pledges=pledges,
            history=history,
        )
