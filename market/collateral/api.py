"""The collateral API: CSV import of a bank's portfolio, imports, loans, assets and flags."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from market.accounts.models import ApiCaller
from market.accounts.services import acting_org
from market.collateral import csv_import, services
from market.collateral.models import AssetDetail, Flag, ImportOut, ImportResult, LoanDetail
from market.deps import CallerDep, ClockDep, PoolDep
from market.errors import AppError

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
    code = "unsupported_media_type"


def _bank(caller: ApiCaller, scope: str) -> int:
    return acting_org(caller, scope, "bank", "only an approved bank keeps a collateral registry")


class CollateralApi(Controller):
    path = "/api/v1/collateral"
    tags = ["collateral"]

    @post("/imports", operation_id="import_collateral_csv", status_code=201)
    async def import_csv(
        self,
        request: Request[Any, Any, State],
        caller: CallerDep,
        pool: PoolDep,
        clock: ClockDep,
        filename: FromQuery[str | None] = None,
    ) -> ImportResult:
        """Import a portfolio CSV (body: the file, `Content-Type: text/csv`).

        UTF-8 (with or without BOM) or GB18030; one row per pledged asset; English or
        Chinese headers. Any bad row rejects the file: 422 with `details` listing every
        problem as {line, column, key, reason} (header = line 1) and nothing written.
        Re-uploading updates by pledge registration number; nothing is duplicated.
        """
        bank = _bank(caller, "collateral:write")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise UnsupportedMediaType(
                "send the CSV file as the request body with 'Content-Type: text/csv'"
            )
        data = await request.body()
        return await csv_import.import_csv(
            pool,
            clock.now(),
            bank_org_id=bank,
            user_id=caller.user_id,
            filename=filename,
            data=data,
        )

    @get("/imports/{import_id:int}", operation_id="get_collateral_import")
    async def get_import(
        self, caller: CallerDep, pool: PoolDep, import_id: FromPath[int]
    ) -> ImportOut:
        """An import's status, progress, errors and counts (another bank's: 404)."""
        bank = _bank(caller, "collateral:read")
        async with pool.acquire() as conn:
            return await services.get_import(conn, bank, import_id)

    @get("/loans/{loan_id:int}", operation_id="get_collateral_loan")
    async def get_loan(
        self, caller: CallerDep, pool: PoolDep, loan_id: FromPath[int]
    ) -> LoanDetail:
        """A loan with its pledgor, pledge and pledged assets (another bank's: 404)."""
        bank = _bank(caller, "collateral:read")
        async with pool.acquire() as conn:
            return await services.loan_for_case(conn, bank, loan_id)

    @get("/assets/{asset_id:int}", operation_id="get_collateral_asset")
    async def get_asset(
        self, caller: CallerDep, pool: PoolDep, asset_id: FromPath[int]
    ) -> AssetDetail:
        bank = _bank(caller, "collateral:read")
        async with pool.acquire() as conn:
            return await services.get_asset(conn, bank, asset_id)

    @get("/assets/{asset_id:int}/flags", operation_id="list_collateral_asset_flags")
    async def asset_flags(
        self, caller: CallerDep, pool: PoolDep, asset_id: FromPath[int]
    ) -> list[Flag]:
        """The asset's open monitoring flags (annuity due or in grace, lapsed, expiring…)."""
        bank = _bank(caller, "collateral:read")
        async with pool.acquire() as conn:
            await services.get_asset(conn, bank, asset_id)
            return await services.open_flags(conn, bank, [asset_id])
