"""The licensee's sales reports (docs/rules.md §Licensing royalties): a period's net sales
(净销售额) and units, by the page's form, the API or a CSV file, and what they make due
(market/licensing/royalties.py `schedule`: rate × sales + units × per-unit fee, topped up
to the year's minimum in the period that closes it).

Rules: only the contract's licensee reports (anyone else: 404); a period is reported once
(a second report is 409); a period not yet ended is refused; the period closing a royalty
year waits for the year's earlier periods (its top-up depends on them). A CSV file is all
or nothing (`parse_sales_report_csv`): one bad line, and no line is recorded, every
problem named by CSV line and column.

Concurrency: the contract row is locked first (FOR UPDATE), so two reports of one contract
take turns and the second sees the first's periods (409); the primary key (contract,
period) decides besides. Lock order: contract, then the audit chain head at the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Final

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import REPORT_ROYALTIES
from market.cases.services import china_today
from market.commands import UnitOfWork, command
from market.db import Conn, Queries
from market.errors import Conflict, Invalid, LineProblem, NotFound
from market.licensing.book import Q as QB
from market.licensing.contracts import contract_out
from market.licensing.royalties import (
    MAX_UNITS,
    Fen,
    RoyaltyTerms,
    SalesLine,
    parse_period_label,
    parse_sales_report_csv,
    periods,
    schedule,
)

Q = Queries("licensing_royalties")
PERIOD_MAX: Final = 20


class SalesIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One period's report: its label (2027Q1, 2027H2, 2027), net sales in fen, units."""

    period: Annotated[str, Meta(min_length=4, max_length=PERIOD_MAX)]
    net_sales_fen: Fen
    units: Annotated[int, Meta(ge=0, le=MAX_UNITS)] = 0


class ReportSales(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    lines: tuple[SalesIn, ...]


class ReportCsv(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    data: bytes


class ReportOut(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    period: str
    net_sales_fen: int
    units: int
    due_fen: int  # what the report makes due (with the year's top-up where it closes it)
    due_on: date  # the payment date


async def licensee_contract(conn: Conn, org_id: int, contract_id: int) -> None:
    """404 unless the contract is the licensee's (read without a lock)."""
    row = await conn.fetchrow(QB.contract_for_party, contract_id, org_id)
    if row is None or row["licensee_org_id"] != org_id:
        raise NotFound("not_found", field="contract_id")


async def lock_for_licensee(
    conn: Conn, org_id: int, contract_id: int
) -> tuple[asyncpg.Record, RoyaltyTerms]:
    """The licensee's running contract, locked; another's is 404."""
    row = await conn.fetchrow(Q.contract_locked, contract_id)
    if row is None or row["licensee_org_id"] != org_id:
        raise NotFound("not_found", field="contract_id")
    if row["status"] != "active":
        raise Conflict("licence_not_active", field="contract_id", status=row["status"])
    return row, contract_out(row).terms


def _check(
    lines: Sequence[SalesLine],
    terms: RoyaltyTerms,
    reported: dict[str, tuple[int, int]],
    today: date,
) -> tuple[list[LineProblem], dict[str, tuple[int, date]]]:
    """Each line's problems (line None: a form's or the API's one line), and the due and
    payment date of each period reported."""
    by_label = {p.label: p for p in periods(terms)}
    problems: list[LineProblem] = []
    fresh: dict[str, tuple[int, int]] = {}
    first: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        period = by_label.get(line.period)
        params: dict[str, Any]
        if period is None:
            code, params = "royalty_period_not_in_contract", {"period": line.period}
        elif line.period in reported:
            code, params = "royalty_period_reported", {"period": line.period}
        elif period.end >= today:
            code, params = (
                "royalty_period_not_ended",
                {
                    "period": line.period,
                    "ends_on": period.end.isoformat(),
                },
            )
        elif line.period in fresh:
            code = "royalty_period_twice"
            params = {"period": line.period, "first_line": first[line.period]}
        else:
            fresh[line.period] = (line.net_sales_fen, line.units)
            first[line.period] = line.line or n
            continue
        problems.append(LineProblem(code=code, line=line.line, field="period", params=params))
    if problems:
        return problems, {}
    sales = {**reported, **fresh}
    items = schedule(
        terms,
        [SalesLine(period=k, net_sales_fen=s, units=u) for k, (s, u) in sales.items()],
    )
    dues: dict[str, tuple[int, date]] = {}
    for item in items:
        label = item.period.label
        if label not in fresh:
            continue
        if item.due is None:
            problems.append(
                LineProblem(
                    code="royalty_earlier_period_missing",
                    line=next(ln.line for ln in lines if ln.period == label),
                    field="period",
                    params={"period": label, "year": item.period.royalty_year},
                )
            )
        else:
            dues[label] = (item.due.total_fen, item.period.payment_due)
    return problems, dues


async def _record(
    uow: UnitOfWork, contract_id: int, lines: Sequence[SalesLine], *, csv: bool
) -> list[ReportOut]:
    conn = uow.conn
    row, terms = await lock_for_licensee(conn, uow.actor.org, contract_id)
    reported = {
        r["period"]: (r["net_sales_fen"], r["units"])
        for r in await conn.fetch(QB.reports_of, contract_id)
    }
    problems, dues = _check(lines, terms, reported, china_today(uow.at))
    if problems:
        if csv:
            raise Invalid(
                "royalty_report_rejected", field="file", problems=problems, count=len(problems)
            )
        first = problems[0]
        error = Conflict if first.code == "royalty_period_reported" else Invalid
        raise error(first.code, field="period", **first.params)
    labels = [ln.period for ln in lines]
    written = await conn.fetch(
        Q.insert_report,
        contract_id,
        uow.actor.user,
        uow.at,
        labels,
        [ln.net_sales_fen for ln in lines],
        [ln.units for ln in lines],
        [dues[k][0] for k in labels],
        [dues[k][1] for k in labels],
    )
    if len(written) != len(lines):  # the contract lock makes this the key's backstop only
        raise Conflict("royalty_period_reported", field="period")
    out = [
        ReportOut(
            contract_id=contract_id,
            period=ln.period,
            net_sales_fen=ln.net_sales_fen,
            units=ln.units,
            due_fen=dues[ln.period][0],
            due_on=dues[ln.period][1],
        )
        for ln in lines
    ]
    uow.audit(
        "royalty.report",
        "licence_contract",
        contract_id,
        chain_org_id=row["bank_org_id"],
        after={"reports": msgspec.to_builtins(out), "via": "csv" if csv else "form"},
    )
    return out


@command(REPORT_ROYALTIES)
async def report_sales(uow: UnitOfWork, data: ReportSales) -> list[ReportOut]:
    """The licensee reports one or more periods (the page's form sends one)."""
    if not data.lines:
        raise Invalid("required", field="lines")
    lines = []
    for i, given in enumerate(data.lines):
        try:
            label = parse_period_label(given.period)
        except Invalid as exc:
            field = "period" if len(data.lines) == 1 else f"lines[{i}].period"
            raise Invalid(exc.code, field=field, **exc.params) from None
        lines.append(SalesLine(period=label, net_sales_fen=given.net_sales_fen, units=given.units))
    return await _record(uow, data.contract_id, lines, csv=False)


@command(REPORT_ROYALTIES)
async def report_sales_csv(uow: UnitOfWork, data: ReportCsv) -> list[ReportOut]:
    """The licensee's CSV file: all or nothing, every problem by CSV line and column."""
    _, terms = await lock_for_licensee(uow.conn, uow.actor.org, data.contract_id)
    lines = parse_sales_report_csv(data.data, terms=terms)
    return await _record(uow, data.contract_id, lines, csv=True)
