"""One case, many tries: every disposal path a case tried, in order, with its outcome, and
the next paths its failed rounds leave open now and until when (docs/rules.md §Moving
between paths).

Each path contributes its own tries: a provider `async def tries(conn, case_id) ->
list[Try]` in the path's module, named once in `PROVIDERS` below. A new path (acquisition
at an agreed price, pledge-to-equity…) adds its module's provider there, one line; the case
page, the operator's view and `GET /api/v1/cases/{id}/paths` show it without a change.
Every `kind` and `outcome` a provider returns is named in its module's `KINDS` and
`OUTCOMES` and has a label in both languages (`paths.kind.<kind>`,
`paths.outcome.<outcome>`; tests/cases/test_paths.py checks the catalogs against them).

Reading only: the tries are derived from what the paths recorded (the lots' rounds and
transitions, the listing's periods and transfers, the licence decisions), never stored
twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any, Literal

import asyncpg
import msgspec

from market.cases.policy import MovesPolicy
from market.db import Conn, Queries
from market.errors import NotFound

Q = Queries("paths")

# The providers, as "module:function": each path's own module contributes its tries, and
# names the kinds and outcomes they may carry (its `KINDS` and `OUTCOMES`), each with a
# label in both languages (`paths.kind.<kind>`, `paths.outcome.<outcome>`). A new path is
# one more line here.
PROVIDERS: tuple[str, ...] = (
    "market.lots.paths:tries",
    "market.listing.paths:tries",
    "market.licensing.paths:tries",
    "market.acquisition.paths:tries",
)

Move = Literal["relist_auction", "relist_listing", "extend_listing", "fixed_price"]
MOVES: tuple[str, ...] = ("relist_auction", "relist_listing", "extend_listing", "fixed_price")


class Try(msgspec.Struct, frozen=True, kw_only=True):
    """One path tried on the case: a listing's period, an auction round, a fixed-price
    sale, a licence decision… `outcome` is a code with a label (`paths.outcome.<code>`);
    `amount_fen` is what it fetched (a sale's price) where it fetched something."""

    kind: str
    lot_id: int | None = None
    lot_reference: str | None = None
    round: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str
    amount_fen: int | None = None
    link: str | None = None


def lot_try(
    kind: str,
    lot: asyncpg.Record | Mapping[str, Any],
    started_at: datetime | None,
    ended_at: datetime | None,
    outcome: str,
    link: str,
    amount_fen: int | None = None,
) -> Try:
    """A try on one round of a lot (`lot`: a row with lot_id, reference and round)."""
    return Try(
        kind=kind,
        lot_id=lot["lot_id"],
        lot_reference=lot["reference"],
        round=lot["round"],
        started_at=started_at,
        ended_at=ended_at,
        outcome=outcome,
        amount_fen=amount_fen,
        link=link,
    )


class NextPath(msgspec.Struct, frozen=True, kw_only=True):
    """A path the bank may take now on a failed round of a lot, until `until`."""

    move: Move
    lot_id: int
    lot_reference: str
    round: int
    failed_at: datetime
    until: datetime
    link: str


class CasePaths(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    tries: list[Try]
    next: list[NextPath]


Provider = Callable[[Conn, int], Awaitable[list[Try]]]


def _modules() -> list[tuple[Any, str]]:
    """The registered providers' modules, imported when first asked for (the paths build
    on the cases area, so the cases area cannot import them at its own import)."""
    out = []
    for name in PROVIDERS:
        module, _, function = name.partition(":")
        out.append((import_module(module), function))
    return out


def providers() -> list[Provider]:
    return [getattr(module, function) for module, function in _modules()]


def kinds() -> tuple[str, ...]:
    """Every path kind a provider may return, in the providers' order."""
    return tuple(dict.fromkeys(k for module, _ in _modules() for k in module.KINDS))


def outcomes() -> tuple[str, ...]:
    """Every outcome a provider may return."""
    return tuple(dict.fromkeys(o for module, _ in _modules() for o in module.OUTCOMES))


def _order(known: tuple[str, ...]) -> Callable[[Try], tuple[datetime, datetime, int, int]]:
    far = datetime.max.replace(tzinfo=UTC)

    def key(t: Try) -> tuple[datetime, datetime, int, int]:
        rank = known.index(t.kind) if t.kind in known else len(known)
        return (t.started_at or far, t.ended_at or far, t.lot_id or 0, rank)

    return key


async def tries_of(conn: Conn, case_id: int) -> list[Try]:
    """Every path tried on the case, in the order they were tried."""
    out: list[Try] = []
    for provide in providers():
        out += await provide(conn, case_id)
    return sorted(out, key=_order(kinds()))


def move_deadline(policy: MovesPolicy, round_: int, failed_at: datetime) -> datetime:
    """Until when a round that failed at `failed_at` leaves its next paths open."""
    days = policy.fixed_price_within_days if round_ == 2 else policy.retry_within_days
    return failed_at + timedelta(days=days)


async def next_paths(conn: Conn, case_id: int, at: datetime, policy: MovesPolicy) -> list[NextPath]:
    """The next paths open at `at` on the case's failed rounds: a failed first round may
    be relisted as an auction or a listing (a listing whose period found no intent may
    instead be extended once); a failed second round goes to the fixed-price sale."""
    out: list[NextPath] = []
    for row in await conn.fetch(Q.failed_lots_of_case, case_id):
        if row["failed_at"] is None:
            continue
        until = move_deadline(policy, row["round"], row["failed_at"])
        if at > until:
            continue
        moves: list[Move] = []
        if row["round"] == 1:
            moves = ["relist_auction", "relist_listing"]
            if row["mode"] == "listing" and row["extendable"]:
                moves.append("extend_listing")
        elif row["round"] == 2:
            moves = ["fixed_price"]
        round_one = row["round"] == 1
        for move in moves:
            link = (
                f"/listings/{row['reference']}"
                if move == "extend_listing"
                else f"/bank/lots/{row['lot_id']}#move-{'relist' if round_one else move}"
            )
            out.append(
                NextPath(
                    move=move,
                    lot_id=row["lot_id"],
                    lot_reference=row["reference"],
                    round=row["round"],
                    failed_at=row["failed_at"],
                    until=until,
                    link=link,
                )
            )
    return out


async def check_move(
    conn: Conn, lot: asyncpg.Record | dict[str, Any], move: Move, at: datetime, policy: MovesPolicy
) -> None:
    """Refuse a move from a failed round once its window has passed (409
    `move_deadline_passed`, naming the move, the instant the round failed and the
    deadline). The lifecycle refuses a move the round's state does not allow."""
    if lot["status"] != "failed":
        return
    failed_at = await conn.fetchval(Q.failed_at, lot["id"], lot["round"])
    if failed_at is None:
        return
    until = move_deadline(policy, lot["round"], failed_at)
    if at > until:
        from market.lots.lifecycle import IllegalTransition

        raise IllegalTransition(
            "move_deadline_passed",
            action=move,
            status=lot["status"],
            round=lot["round"],
            failed_at=failed_at,
            until=until,
            days=(until - failed_at).days,
        )


async def case_paths(conn: Conn, case_id: int, at: datetime, policy: MovesPolicy) -> CasePaths:
    return CasePaths(
        case_id=case_id,
        tries=await tries_of(conn, case_id),
        next=await next_paths(conn, case_id, at, policy),
    )


async def bank_case_paths(
    pool: asyncpg.Pool, bank_org_id: int, case_id: int, at: datetime, policy: MovesPolicy
) -> CasePaths:
    """The bank's own case's paths; another bank's case (or none) answers 404."""
    async with pool.acquire() as conn:
        case = await conn.fetchrow(Q.case_of_operator, case_id)
        if case is None or case["bank_org_id"] != bank_org_id:
            raise NotFound("no_such_case")
        return await case_paths(conn, case_id, at, policy)


class OperatorCasePaths(CasePaths, frozen=True, kw_only=True):
    reference: str
    bank_org_id: int


async def operator_case_paths(
    pool: asyncpg.Pool, case_id: int, at: datetime, policy: MovesPolicy
) -> OperatorCasePaths:
    """Any case's paths, for the exchange's operator."""
    async with pool.acquire() as conn:
        case = await conn.fetchrow(Q.case_of_operator, case_id)
        if case is None:
            raise NotFound("no_such_case")
        found = await case_paths(conn, case_id, at, policy)
    return OperatorCasePaths(
        case_id=case_id,
        reference=case["reference"],
        bank_org_id=case["bank_org_id"],
        tries=found.tries,
        next=found.next,
    )
