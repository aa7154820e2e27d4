"""Reading the registry: what the cases and lots areas, the pages and the API call.

Writes come in through the commands of the CSV import (csv_import.py) and of the
monitoring run (monitoring.py). Every query names the bank: another bank's loan is simply
not found.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from market import i18n, problems
from market.collateral.models import (
    AssetDetail,
    Flag,
    ImportOut,
    LoanDetail,
    PledgeDetail,
    Pledgor,
)
from market.db import Conn, Queries
from market.errors import LineProblem, NotFound
from market.problems import ProblemLine

Q = Queries("collateral")

_ASSET_FIELDS = AssetDetail.__struct_fields__
PAGE_SIZE = 50


def _asset(row: asyncpg.Record) -> AssetDetail:
    return msgspec.convert({k: row[k] for k in _ASSET_FIELDS}, AssetDetail)


async def loan_for_case(conn: Conn, bank_org_id: int, loan_id: int) -> LoanDetail:
    """The loan with its pledgor, pledge and the pledge's assets; NotFound for another bank's."""
    row = await conn.fetchrow(Q.loan_with_pledgor, bank_org_id, loan_id)
    if row is None:
        raise NotFound(field="loan_id")
    pledge = None
    if row["pledge_id"] is not None:
        p = await conn.fetchrow(Q.pledge_by_id, bank_org_id, row["pledge_id"])
        if p is not None:
            assets = [_asset(a) for a in await conn.fetch(Q.pledge_assets, bank_org_id, p["id"])]
            pledge = PledgeDetail(
                id=p["id"],
                registration_no=p["registration_no"],
                registered_on=p["registered_on"],
                secured_amount_fen=p["secured_amount_fen"],
                pledgor_id=p["pledgor_id"],
                assets=assets,
            )
    return LoanDetail(
        id=row["id"],
        loan_no=row["loan_no"],
        principal_fen=row["principal_fen"],
        rate_bp=row["rate_bp"],
        outstanding_principal_fen=row["outstanding_principal_fen"],
        outstanding_interest_fen=row["outstanding_interest_fen"],
        disbursed_on=row["disbursed_on"],
        default_date=row["default_date"],
        npl_class=row["npl_class"],
        pool_code=row["pool_code"],
        pledgor=Pledgor(
            id=row["pledgor_id"],
            credit_code=row["credit_code"],
            name=row["pledgor_name"],
            region=row["region"],
        ),
        pledge=pledge,
    )


async def assets_by_ids(conn: Conn, bank_org_id: int, asset_ids: list[int]) -> list[AssetDetail]:
    """The bank's assets among `asset_ids`, in the order asked; others' ids are left out
    (compare the lengths to detect them)."""
    rows = await conn.fetch(Q.assets_by_ids, bank_org_id, asset_ids)
    by_id = {r["id"]: _asset(r) for r in rows}
    seen: set[int] = set()
    found: list[AssetDetail] = []
    for asset_id in asset_ids:
        if asset_id in by_id and asset_id not in seen:
            seen.add(asset_id)
            found.append(by_id[asset_id])
    return found


async def get_asset(conn: Conn, bank_org_id: int, asset_id: int) -> AssetDetail:
    found = await assets_by_ids(conn, bank_org_id, [asset_id])
    if not found:
        raise NotFound(field="asset_id")
    return found[0]


async def open_flags(conn: Conn, bank_org_id: int, asset_ids: list[int]) -> list[Flag]:
    """Unresolved monitoring flags of these assets (the bank's only), by asset."""
    rows = await conn.fetch(Q.open_flags, bank_org_id, asset_ids)
    return [
        Flag(
            id=r["id"],
            asset_id=r["asset_id"],
            kind=r["kind"],
            detail=r["detail"],
            raised_at=r["raised_at"],
        )
        for r in rows
    ]


async def flag_history(conn: Conn, bank_org_id: int, asset_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.asset_flag_history, bank_org_id, asset_id))


async def asset_pledges(conn: Conn, bank_org_id: int, asset_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q.asset_pledges, bank_org_id, asset_id))


async def pledgor(conn: Conn, bank_org_id: int, pledgor_id: int) -> Pledgor:
    row = await conn.fetchrow(Q.pledgor_by_id, bank_org_id, pledgor_id)
    if row is None:
        raise NotFound(field="pledgor_id")
    return Pledgor(
        id=row["id"], credit_code=row["credit_code"], name=row["name"], region=row["region"]
    )


def _stored_problem(item: dict[str, Any]) -> LineProblem:
    """A problem kept with an import: a code and params. Problems stored as sentences
    ({line, column, key, reason}, the shape of older imports) are shown as written."""
    if "code" in item:
        return msgspec.convert(item, LineProblem)
    params = {"reason": str(item.get("reason", ""))}
    if item.get("column"):
        params["column"] = str(item["column"])
    return LineProblem(
        code="csv_problem_as_written",
        line=item.get("line") or None,
        field=item.get("key") or None,
        params=params,
    )


def problem_lines(lang: i18n.Lang, stored: list[dict[str, Any]]) -> list[ProblemLine]:
    """An import's problems with their words in `lang`."""
    lines = []
    for item in stored:
        p = _stored_problem(item)
        detail = problems.describe(lang, p.code, p.params)
        lines.append(
            ProblemLine(code=p.code, detail=detail, line=p.line, field=p.field, params=p.params)
        )
    return lines


def _import(row: asyncpg.Record, lang: i18n.Lang) -> ImportOut:
    return msgspec.convert(
        {**dict(row), "errors": problem_lines(lang, row["errors"] or [])}, ImportOut
    )


async def get_import(conn: Conn, bank_org_id: int, import_id: int, lang: i18n.Lang) -> ImportOut:
    """An import with its problems in `lang`; NotFound for another bank's."""
    row = await conn.fetchrow(Q.get_import, bank_org_id, import_id)
    if row is None:
        raise NotFound(field="import_id")
    return _import(row, lang)


async def recent_imports(
    conn: Conn, bank_org_id: int, lang: i18n.Lang, limit: int = 10
) -> list[ImportOut]:
    return [_import(r, lang) for r in await conn.fetch(Q.recent_imports, bank_org_id, limit)]


class Page(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # 1-based
    size: int
    total: int
    rows: list[dict[str, Any]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _page_number(number: int) -> int:
    # Beyond any real portfolio; keeps OFFSET inside bigint whatever the query string says.
    return min(max(1, number), 1_000_000)


async def overview(conn: Conn, bank_org_id: int) -> dict[str, int]:
    row = await conn.fetchrow(Q.overview_counts, bank_org_id)
    return dict(row) if row is not None else {}


async def pledge_page(conn: Conn, bank_org_id: int, number: int, size: int = PAGE_SIZE) -> Page:
    number = _page_number(number)
    total = await conn.fetchval(Q.count_pledge_rows, bank_org_id)
    rows = await conn.fetch(Q.pledge_page, bank_org_id, size, (number - 1) * size)
    return Page(number=number, size=size, total=total, rows=[dict(r) for r in rows])


async def asset_page(conn: Conn, bank_org_id: int, number: int, size: int = PAGE_SIZE) -> Page:
    number = _page_number(number)
    total = await conn.fetchval(Q.count_assets, bank_org_id)
    rows = await conn.fetch(Q.asset_page, bank_org_id, size, (number - 1) * size)
    return Page(number=number, size=size, total=total, rows=[dict(r) for r in rows])


async def form_asset_count(conn: Conn, bank_org_id: int) -> int:
    """Assets of the bank's pledges added by the single-asset form: a CSV file keeps them."""
    return int(await conn.fetchval(Q.form_assets_of_pledges, bank_org_id))
