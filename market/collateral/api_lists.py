"""The bank's registry as lists for its systems: loans and pledged assets, a page at a
time with filters (market/paging.py). READ_COLLATERAL: the bank's own rows only. Beside
the list of assets, one asset added (WRITE_COLLATERAL, market/collateral/single.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, get, post
from litestar.params import FromQuery

from market import api_docs
from market.accounts.permissions import READ_COLLATERAL, WRITE_COLLATERAL, allow
from market.collateral import single
from market.collateral.models import (
    AssetKind,
    FlagKind,
    ImportResult,
    ImportStatus,
    ImportVia,
    LegalStatus,
    NplClass,
)
from market.collateral.rules import PatentType
from market.db import Queries
from market.deps import ActDep, CallerDep, PoolDep
from market.paging import DEFAULT_LIMIT, Cursor, Keyset, Limit, Page, rows_as

Q = Queries("api")
LOANS: Keyset[tuple[str, int]] = Keyset("loans", tuple[str, int], "loan_no", "id")
ASSETS: Keyset[tuple[str, int]] = Keyset("assets", tuple[str, int], "number", "id")
IMPORTS: Keyset[tuple[datetime, int]] = Keyset("imports", tuple[datetime, int], "created_at", "id")


class LoanRow(msgspec.Struct, frozen=True, kw_only=True):
    """A loan as the list shows it; `GET /api/v1/collateral/loans/{id}` has its pledge."""

    id: int
    loan_no: str
    pledgor_id: int
    pledgor_name: str
    pledge_id: int | None
    principal_fen: int
    rate_bp: int
    outstanding_principal_fen: int
    outstanding_interest_fen: int
    disbursed_on: date | None
    default_date: date | None
    npl_class: NplClass | None
    pool_code: str | None
    open_case_id: int | None  # its open disposal case, if any


class AssetRow(msgspec.Struct, frozen=True, kw_only=True):
    """A pledged right as the list shows it, with the kinds of its open monitoring flags."""

    id: int
    kind: AssetKind
    number: str
    title: str
    patent_type: PatentType | None
    legal_status: LegalStatus
    term_ends_on: date | None
    annuity_paid_through: date | None
    valid_until: date | None
    pledgor_id: int
    pledgor_name: str
    flags: list[FlagKind]


class ImportRow(msgspec.Struct, frozen=True, kw_only=True):
    """An upload as the list shows it; `GET /api/v1/collateral/imports/{id}` has its
    problems, each in the reader's language."""

    id: int
    filename: str
    encoding: str | None
    status: ImportStatus
    via: ImportVia
    total_rows: int
    processed_rows: int
    written_rows: int
    error_count: int
    summary: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


async def page_loans(
    pool: asyncpg.Pool,
    bank_org_id: int,
    *,
    defaulted: bool | None = None,
    npl_class: str | None = None,
    pool_code: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[LoanRow]:
    return await LOANS.read(
        pool,
        Q.page_loans,
        bank_org_id,
        defaulted,
        npl_class,
        pool_code,
        cursor=cursor,
        limit=limit,
        item=rows_as(LoanRow),
    )


async def page_assets(
    pool: asyncpg.Pool,
    bank_org_id: int,
    *,
    kind: str | None = None,
    legal_status: str | None = None,
    flagged: bool | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[AssetRow]:
    return await ASSETS.read(
        pool,
        Q.page_assets,
        bank_org_id,
        kind,
        legal_status,
        flagged,
        cursor=cursor,
        limit=limit,
        item=rows_as(AssetRow),
    )


class CollateralListsApi(Controller):
    path = "/api/v1/collateral"
    tags = ["collateral"]

    @get(
        "/loans",
        operation_id="list_collateral_loans",
        summary="List the bank's loans",
        guards=[allow(READ_COLLATERAL)],
    )
    async def loans(
        self,
        caller: CallerDep,
        pool: PoolDep,
        defaulted: FromQuery[bool | None] = None,
        npl_class: FromQuery[NplClass | None] = None,
        pool_code: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[LoanRow]:
        """The bank's loans in loan-number order, with the pledgor, the amounts owed and
        the open disposal case. Filters: `defaulted` (true: with a default date),
        `npl_class`, `pool_code` (the guarantee pool it is enrolled in)."""
        return await page_loans(
            pool,
            caller.org_id,
            defaulted=defaulted,
            npl_class=npl_class,
            pool_code=pool_code,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/assets",
        operation_id="list_collateral_assets",
        summary="List the bank's pledged IP",
        guards=[allow(READ_COLLATERAL)],
    )
    async def assets(
        self,
        caller: CallerDep,
        pool: PoolDep,
        kind: FromQuery[AssetKind | None] = None,
        legal_status: FromQuery[LegalStatus | None] = None,
        flagged: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[AssetRow]:
        """The bank's pledged patents, trademarks and software copyrights in number order,
        each with its legal status, term and the kinds of its open monitoring flags.
        Filters: `kind`, `legal_status`, `flagged` (true: with an open flag)."""
        return await page_assets(
            pool,
            caller.org_id,
            kind=kind,
            legal_status=legal_status,
            flagged=flagged,
            cursor=cursor,
            limit=limit,
        )

    @post(
        "/assets",
        operation_id="add_collateral_asset",
        summary="Add one pledged asset to a pledge",
        status_code=201,
        guards=[allow(WRITE_COLLATERAL)],
    )
    async def add_asset(
        self,
        act: ActDep,
        data: Annotated[single.AssetLine, api_docs.body(single.AssetLine, single.EXAMPLE)],
    ) -> ImportResult:
        """One line of the portfolio CSV as a JSON object, by the columns' English keys
        (`pledge_registration_no`, `asset_number` …), each the cell's text (amounts in
        yuan, dates YYYY-MM-DD). Checked by the same rules as a line of the file: 422
        naming the first field at fault, `errors` listing every problem, nothing written.
        The asset is added to its pledge (made if new) and the pledge's other assets stay;
        a later CSV import replaces only the assets files brought. `asset_ids_created`
        names the asset when it is new."""
        return await single.add_asset(act, msgspec.structs.asdict(data))


async def page_imports(
    pool: asyncpg.Pool,
    bank_org_id: int,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[ImportRow]:
    return await IMPORTS.read(
        pool,
        Q.page_imports,
        bank_org_id,
        status,
        cursor=cursor,
        limit=limit,
        item=rows_as(ImportRow),
    )
