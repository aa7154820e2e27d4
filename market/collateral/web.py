"""The bank's collateral pages: the registry, CSV upload with live progress, loan and asset."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from market.accounts.models import Viewer
from market.collateral import csv_format, csv_import, services
from market.collateral.jobs import import_job_id
from market.deps import ClockDep, PoolDep, ViewerDep
from market.errors import Invalid
from market.web import page, require_org

log = logging.getLogger("market.collateral.web")


def _bank(viewer: Viewer | None) -> Viewer:
    return require_org(viewer, "bank", "only an approved bank keeps a collateral registry")


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
    async with pool.acquire() as conn:
        counts = await services.overview(conn, me.org_id)
        pledges = await services.pledge_page(conn, me.org_id, page_no)
        assets = await services.asset_page(conn, me.org_id, assets_page_no)
        imports = await services.recent_imports(conn, me.org_id)
    return page(
        request,
        "collateral/index.html",
        me,
        status_code=status_code,
        counts=counts,
        pledges=pledges,
        assets=assets,
        imports=imports,
        errors=errors or {},
        max_mb=csv_import.MAX_FILE_BYTES // (1024 * 1024),
    )


class CollateralPages(Controller):
    include_in_schema = False

    @get("/bank/collateral", operation_id="web_collateral")
    async def index(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        page: FromQuery[int] = 1,
        assets_page: FromQuery[int] = 1,
    ) -> Template:
        me = _bank(viewer)
        return await _index(request, pool, me, page_no=page, assets_page_no=assets_page)

    @post("/bank/collateral/imports", operation_id="web_collateral_upload")
    async def upload(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        clock: ClockDep,
        viewer: ViewerDep,
    ) -> Template | Redirect:
        """Keep the file, queue its import for the worker, show its progress page."""
        me = _bank(viewer)
        form = await request.form()
        upload = form.get("file")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise Invalid("请选择要上传的 CSV 文件 / choose a CSV file to upload", field="file")
            data = await upload.read()
            import_id = await csv_import.record_upload(
                pool,
                clock.now(),
                bank_org_id=me.org_id,
                user_id=me.user_id,
                filename=upload.filename,
                data=data,
            )
        except Invalid as exc:
            return await _index(
                request, pool, me, errors={"file": exc.message}, status_code=exc.status
            )
        try:
            await request.app.state.redis.enqueue_job(
                "run_collateral_import", import_id, _job_id=import_job_id(import_id)
            )
        except Exception:
            # The upload is kept as queued; the sweeper enqueues it within a minute.
            log.warning("could not enqueue collateral import %s", import_id, exc_info=True)
        return Redirect(f"/bank/collateral/imports/{import_id}", status_code=303)

    @get("/bank/collateral/imports/{import_id:int}", operation_id="web_collateral_import")
    async def import_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        import_id: FromPath[int],
    ) -> Template:
        me = _bank(viewer)
        async with pool.acquire() as conn:
            imp = await services.get_import(conn, me.org_id, import_id)
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
        viewer: ViewerDep,
        import_id: FromPath[int],
    ) -> Template:
        """The progress fragment htmx polls every 500 ms until the import is finished."""
        me = _bank(viewer)
        async with pool.acquire() as conn:
            imp = await services.get_import(conn, me.org_id, import_id)
        return page(request, "collateral/_progress.html", me, imp=imp)

    @get("/bank/collateral/template.csv", operation_id="web_collateral_csv_template")
    async def csv_template(self, viewer: ViewerDep, lang: FromQuery[str] = "zh") -> Response[bytes]:
        """A blank CSV with the headers, UTF-8 with BOM so that Excel opens it correctly."""
        _bank(viewer)
        names = csv_format.header_names("en" if lang == "en" else "zh")
        body = ("\ufeff" + ",".join(names) + "\r\n").encode("utf-8")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="collateral-template.csv"'},
        )

    @get("/bank/collateral/loans/{loan_id:int}", operation_id="web_collateral_loan")
    async def loan_page(
        self,
        request: Request[Any, Any, State],
        pool: PoolDep,
        viewer: ViewerDep,
        loan_id: FromPath[int],
    ) -> Template:
        me = _bank(viewer)
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
        viewer: ViewerDep,
        asset_id: FromPath[int],
    ) -> Template:
        me = _bank(viewer)
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
