"""Licence streams as a pool manager (and the bank) sees them (docs/rules.md §Licence
streams on the dashboard): for each licence contract on a case whose loan is enrolled in
the pool, what its schedule expects, what came in, what is outstanding or late, and the
pool's own share of what came in; and the pool's recoveries cumulated over time.

Read side only — no write path, nothing locked: the figures are read from the rows the
licensing and pool commands wrote. Every function takes a pool row the caller has checked
is the viewer's own (`services.own_pool`). Definitions, the same on the page and in the API:
* expected: the upfront fee, each reported period's due (after the bank's audit
  adjustments), and for a period not yet reported what the contract guarantees whatever
  is reported — the year's minimum royalty less the running royalty of the year's reported
  periods, in the period that closes the royalty year (market/licensing/royalties.py);
* due: the part of expected whose payment date has come (the upfront fee at signature);
* received: the receipts of the contract still routed (a reversed receipt counts nowhere),
  interest on arrears included; payments apply as `royalties.standing` applies them;
* outstanding: due less the royalty paid, per period; late once the payment date passed;
* the pool's share: its payouts from those receipts — `received` once its statement shows
  the transfer, `awaiting` until then. Only the pool's received payouts are in its
  recovery rate (market/pools/dashboard.py); expected, due and outstanding never are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Final

import asyncpg
import msgspec

from market.cases.services import china_today
from market.db import Conn, Queries
from market.errors import NotFound
from market.licensing.royalties import (
    Due,
    Installment,
    Payment,
    RoyaltyTerms,
    SalesLine,
    minimum_for_year,
    parse_terms,
    periods,
    standing,
)
from market.paging import Keyset, Page

Q = Queries("pool_streams")

STREAMS: Keyset[tuple[datetime, int]] = Keyset(
    "pool_streams", tuple[datetime, int], "created_at", "id"
)
# All of a pool's contracts are read for its totals; a pool with more than this many
# licence contracts shows the totals of the newest ones (and says so).
TOTALS_LIMIT: Final = 10_000


class StreamPeriod(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # 2027Q1, 2027H2, 2027
    payment_due: date
    reported: bool
    expected_fen: int  # the reported due, or what the minimum guarantees while unreported
    paid_fen: int  # royalty paid (interest on arrears is paid first and counted apart)
    interest_paid_fen: int
    outstanding_fen: int  # expected less paid once the payment date has come; else 0
    days_late: int
    late: bool


class PoolShare(msgspec.Struct, frozen=True, kw_only=True):
    routed_fen: int  # the pool's payouts from the stream's receipts (not reversed)
    received_fen: int  # of which its statement showed the transfer: in the recovery rate
    awaiting_fen: int  # routed, the transfer not yet seen


class ContractStream(msgspec.Struct, frozen=True, kw_only=True):
    contract_id: int
    reference: str
    case_id: int
    case_reference: str
    bank_org_id: int
    bank_name: str
    licensee_name: str
    kind: str
    status: str
    upfront_fen: int
    upfront_received_fen: int
    expected_fen: int
    due_fen: int
    received_fen: int  # every fen the exchange received on the contract, interest included
    outstanding_fen: int
    late_periods: int
    days_late: int  # the longest delay of an unpaid or late-paid period
    periods: list[StreamPeriod]
    pool_share: PoolShare | None  # None on the bank's view


class StreamTotals(msgspec.Struct, frozen=True, kw_only=True):
    contracts: int
    expected_fen: int
    due_fen: int
    received_fen: int
    outstanding_fen: int  # expected, due and not received: never in the recovery rate
    late_contracts: int
    pool_routed_fen: int
    pool_received_fen: int  # the only part of the streams in the pool's recovery rate
    pool_awaiting_fen: int
    truncated: bool  # more than TOTALS_LIMIT contracts: the newest ones' totals


class CurvePoint(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    all_fen: int  # cumulative: every recovery the pool received up to this day
    licence_fen: int  # cumulative: of which from licence fees and royalties


class StreamOverview(msgspec.Struct, frozen=True, kw_only=True):
    as_of: date
    case_id: int | None
    totals: StreamTotals
    curve: list[CurvePoint]


# --- one contract's stream (pure) ------------------------------------------------------


class _Receipt(msgspec.Struct, frozen=True, kw_only=True):
    receipt_id: int
    kind: str
    amount_fen: int
    period: str
    paid_on: date


def contract_stream(
    row: asyncpg.Record | dict[str, object],
    reports: Sequence[asyncpg.Record],
    receipts: Sequence[_Receipt],
    today: date,
    pool_share: PoolShare | None,
) -> ContractStream:
    """One contract's stream on `today` from its stored reports and its routed receipts."""
    terms: RoyaltyTerms = parse_terms(row["terms"])
    contract_periods = periods(terms)
    labels = {p.label for p in contract_periods}
    stored = {r["period"]: r for r in reports if r["period"] in labels}
    installments = []
    for period in contract_periods:
        r = stored.get(period.label)
        if r is None:
            installments.append(Installment(period=period, report=None, due=None))
            continue
        due = Due(
            period=period.label,
            running_fen=r["due_fen"],
            minimum_fen=0,
            top_up_fen=0,
            total_fen=r["due_fen"],
        )
        line = SalesLine(period=period.label, net_sales_fen=r["net_sales_fen"], units=r["units"])
        installments.append(Installment(period=period, report=line, due=due))
    royalty = [x for x in receipts if x.period in labels and x.kind == "royalty"]
    upfront_received = sum(x.amount_fen for x in receipts if x not in royalty)
    payments = [
        Payment(paid_on=min(x.paid_on, today), amount_fen=x.amount_fen, period=x.period)
        for x in royalty
    ]
    now = standing(installments, payments, today, terms=terms)
    # What the minimum guarantees in a period not yet reported: the year's minimum less
    # the running royalty its reported periods made due (royalties.due_for's top-up).
    reported_by_year: dict[int, int] = defaultdict(int)
    for item in installments:
        if item.due is not None:
            reported_by_year[item.period.royalty_year] += item.due.total_fen
    rows: list[StreamPeriod] = []
    for item, s in zip(installments, now.periods, strict=True):
        p = item.period
        if item.due is not None:
            expected = item.due.total_fen
        elif p.closes_year:
            year = p.royalty_year
            expected = max(0, minimum_for_year(terms, year) - reported_by_year[year])
        else:
            expected = 0
        fallen_due = today >= p.payment_due
        outstanding = max(0, expected - s.paid_fen) if fallen_due else 0
        rows.append(
            StreamPeriod(
                label=p.label,
                payment_due=p.payment_due,
                reported=item.report is not None,
                expected_fen=expected,
                paid_fen=s.paid_fen,
                interest_paid_fen=s.interest_paid_fen,
                outstanding_fen=outstanding,
                days_late=s.days_late if (outstanding or s.days_late) else 0,
                late=outstanding > 0 and today > p.payment_due,
            )
        )
    upfront = row["upfront_fen"]
    assert isinstance(upfront, int)
    upfront_outstanding = max(0, upfront - upfront_received)
    return ContractStream(
        contract_id=_int(row["id"]),
        reference=str(row["reference"]),
        case_id=_int(row["case_id"]),
        case_reference=str(row["case_reference"]),
        bank_org_id=_int(row["bank_org_id"]),
        bank_name=str(row["bank_name"]),
        licensee_name=str(row["licensee_name"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        upfront_fen=upfront,
        upfront_received_fen=upfront_received,
        expected_fen=upfront + sum(r.expected_fen for r in rows),
        due_fen=upfront + sum(r.expected_fen for r in rows if today >= r.payment_due),
        received_fen=sum(x.amount_fen for x in receipts),
        outstanding_fen=upfront_outstanding + sum(r.outstanding_fen for r in rows),
        late_periods=sum(r.late for r in rows),
        days_late=max((r.days_late for r in rows), default=0),
        periods=rows,
        pool_share=pool_share,
    )


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


# --- reading ---------------------------------------------------------------------------


async def _streams(
    conn: Conn, rows: Sequence[asyncpg.Record], today: date, pool_id: int | None
) -> list[ContractStream]:
    ids = [r["id"] for r in rows]
    if not ids:
        return []
    reports: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for r in await conn.fetch(Q.reports_of_contracts, ids):
        reports[r["contract_id"]].append(r)
    receipts: dict[int, list[_Receipt]] = defaultdict(list)
    for r in await conn.fetch(Q.receipts_of_contracts, ids):
        receipts[r["contract_id"]].append(
            _Receipt(
                receipt_id=r["receipt_id"],
                kind=r["kind"],
                amount_fen=r["amount_fen"],
                period=r["period"],
                paid_on=r["paid_on"] or china_today(r["received_at"]),
            )
        )
    shares: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if pool_id is not None:
        receipt_ids = [x.receipt_id for xs in receipts.values() for x in xs]
        for r in await conn.fetch(Q.pool_share_of_receipts, pool_id, receipt_ids):
            shares[r["receipt_id"]][r["status"]] += r["amount_fen"]
    out = []
    for row in rows:
        mine = receipts[row["id"]]
        share = None
        if pool_id is not None:
            got = sum(shares[x.receipt_id]["received"] for x in mine)
            waiting = sum(shares[x.receipt_id]["expected"] for x in mine)
            share = PoolShare(routed_fen=got + waiting, received_fen=got, awaiting_fen=waiting)
        out.append(contract_stream(row, reports[row["id"]], mine, today, share))
    return out


async def case_in_pool(conn: Conn, pool: asyncpg.Record, case_id: int | None) -> None:
    """A case filter names a case of the pool's enrolled loans; any other: 404."""
    if case_id is not None and await conn.fetchval(Q.case_in_pool, pool["id"], case_id) is None:
        raise NotFound("not_found", field="case")


async def pool_streams(
    conn: Conn,
    pool: asyncpg.Record,
    at: datetime,
    *,
    case_id: int | None = None,
    cursor: str | None = None,
    limit: int,
) -> Page[ContractStream]:
    """A page of the pool's contract streams, newest contract first."""
    await case_in_pool(conn, pool, case_id)
    after = STREAMS.after(cursor) or (None, None)
    rows = await conn.fetch(Q.contracts_of_pool, pool["id"], case_id, *after, limit + 1)
    page = STREAMS.page(rows, limit, lambda r: r)
    items = await _streams(conn, page.items, china_today(at), pool["id"])
    return Page(items=items, next_cursor=page.next_cursor)


def totals(streams: Iterable[ContractStream], *, truncated: bool = False) -> StreamTotals:
    out = list(streams)
    shares = [s.pool_share for s in out if s.pool_share is not None]
    return StreamTotals(
        contracts=len(out),
        expected_fen=sum(s.expected_fen for s in out),
        due_fen=sum(s.due_fen for s in out),
        received_fen=sum(s.received_fen for s in out),
        outstanding_fen=sum(s.outstanding_fen for s in out),
        late_contracts=sum(1 for s in out if s.late_periods or s.outstanding_fen),
        pool_routed_fen=sum(s.routed_fen for s in shares),
        pool_received_fen=sum(s.received_fen for s in shares),
        pool_awaiting_fen=sum(s.awaiting_fen for s in shares),
        truncated=truncated,
    )


async def overview(
    conn: Conn, pool: asyncpg.Record, at: datetime, *, case_id: int | None = None
) -> StreamOverview:
    """The totals of every contract stream of the pool (or of one case) and the pool's
    recovery curve: what it received, cumulated day by day, and the part from licences."""
    await case_in_pool(conn, pool, case_id)
    rows = await conn.fetch(Q.contracts_of_pool, pool["id"], case_id, None, None, TOTALS_LIMIT + 1)
    streams = await _streams(conn, rows[:TOTALS_LIMIT], china_today(at), pool["id"])
    return StreamOverview(
        as_of=china_today(at),
        case_id=case_id,
        totals=totals(streams, truncated=len(rows) > TOTALS_LIMIT),
        curve=await recovery_curve(conn, pool["id"], case_id),
    )


async def recovery_curve(conn: Conn, pool_id: int, case_id: int | None) -> list[CurvePoint]:
    out: list[CurvePoint] = []
    every = licence = 0
    for r in await conn.fetch(Q.recovery_by_day, pool_id, case_id):
        every += r["all_fen"]
        licence += r["licence_fen"]
        out.append(CurvePoint(day=r["day"], all_fen=every, licence_fen=licence))
    return out


async def case_streams(
    conn: Conn, bank_org_id: int, case_id: int, at: datetime
) -> list[ContractStream]:
    """The bank's view: the streams of its case's contracts (no pool share)."""
    rows = await conn.fetch(Q.contracts_of_case, case_id, bank_org_id)
    return await _streams(conn, rows, china_today(at), None)
