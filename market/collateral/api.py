"""The collateral API: CSV import of a bank's portfolio, imports, loans, assets and flags."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from market import problems
from market.accounts import subjects
from market.accounts.permissions import READ_COLLATERAL, WRITE_COLLATERAL, allow
from market.collateral import csv_import, services
from market.collateral.api_lists import ImportRow, page_imports
from market.collateral.models import (
    AssetDetail,
    Flag,
    ImportOut,
    ImportResult,
    ImportStatus,
    LoanDetail,
)
from market.deps import ActDep, CallerDep, PoolDep
from market.errors import AppError
from market.paging import DEFAULT_LIMIT, Cursor, Limit, Page
from market.problems import Problem

CSV_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "application/octet-stream",
        "application/vnd.ms-excel",
    }
)


class UnsupportedMediaType(AppError):
    status = 415
    default_code = "unsupported_media_type"


class CollateralImportApi(Controller):
    path = "/api/v1/collateral"
    tags = ["collateral"]

    @get(
        "/imports",
        operation_id="list_collateral_imports",
        summary="List the bank's portfolio imports",
        guards=[allow(READ_COLLATERAL)],
    )
    async def imports(
        self,
        caller: CallerDep,
        pool: PoolDep,
        status: FromQuery[ImportStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ImportRow]:
        """The bank's CSV uploads, newest first, by the web or the API: file, status,
        progress and counts. Filter: `status` (`queued`, `validating`, `writing`, `done`,
        `rejected`, `failed`)."""
        return await page_imports(pool, caller.org_id, status=status, cursor=cursor, limit=limit)

    @post(
        "/imports",
        operation_id="import_collateral_csv",
        summary="Import a portfolio CSV file",
        status_code=201,
        responses=problems.responses(Problem, 415),
        guards=[allow(WRITE_COLLATERAL)],
    )
    async def import_csv(
        self,
        request: Request[Any, Any, State],
        act: ActDep,
        filename: FromQuery[str | None] = None,
    ) -> ImportResult:
        """Import a portfolio CSV (body: the file, `Content-Type: text/csv`).

        UTF-8 (with or without BOM) or GB18030; one row per pledged asset; English or
        Chinese headers. Any bad row rejects the file: 422 `csv_rejected` whose `errors`
        list every problem as {code, detail, line, field, params} (header = line 1; `field`
        is the column's English key, `params.column` the header as the file wrote it) and
        nothing is written. Re-uploading updates by pledge registration number; nothing is
        duplicated.
        """
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise UnsupportedMediaType("csv_content_type")
        data = csv_import.StartImport(content=await request.body(), filename=filename, via="api")
        return await csv_import.import_now(act, data)


class CollateralApi(Controller):
    path = "/api/v1/collateral"
    tags = ["collateral"]
    guards = [allow(READ_COLLATERAL)]

    @get(
        "/imports/{import_id:int}",
        operation_id="get_collateral_import",
        summary="Read a collateral import's progress and result",
    )
    async def get_import(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        import_id: FromPath[int],
    ) -> ImportOut:
        """An import's status, progress, problems (each with its `detail` in the caller's
        language) and counts (another bank's: 404)."""
        async with pool.acquire() as conn:
            return await services.get_import(
                conn, caller.org_id, import_id, subjects.language(request)
            )

    @get(
        "/loans/{loan_id:int}",
        operation_id="get_collateral_loan",
        summary="Read one loan with its pledge",
    )
    async def get_loan(
        self, caller: CallerDep, pool: PoolDep, loan_id: FromPath[int]
    ) -> LoanDetail:
        """A loan with its pledgor, pledge and pledged assets (another bank's: 404)."""
        async with pool.acquire() as conn:
            return await services.loan_for_case(conn, caller.org_id, loan_id)

    @get(
        "/assets/{asset_id:int}",
        operation_id="get_collateral_asset",
        summary="Read one pledged asset",
    )
    async def get_asset(
        self, caller: CallerDep, pool: PoolDep, asset_id: FromPath[int]
    ) -> AssetDetail:
        """A pledged patent, trademark or software copyright with its numbers, term,
        annuities, owners, legal status, licences and encumbrances (another bank's: 404)."""
        async with pool.acquire() as conn:
            return await services.get_asset(conn, caller.org_id, asset_id)

    @get(
        "/assets/{asset_id:int}/flags",
        operation_id="list_collateral_asset_flags",
        summary="List an asset's open monitoring flags",
    )
    async def asset_flags(
        self, caller: CallerDep, pool: PoolDep, asset_id: FromPath[int]
    ) -> list[Flag]:
        """The asset's open monitoring flags (annuity due or in grace, lapsed, expiring…),
        each with the facts of the day it was raised in `detail`."""
        async with pool.acquire() as conn:
            await services.get_asset(conn, caller.org_id, asset_id)
            return await services.open_flags(conn, caller.org_id, [asset_id])
