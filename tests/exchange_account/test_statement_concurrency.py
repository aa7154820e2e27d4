"""Racing writers against real PostgreSQL: an import and the operator's confirmation of
the same deposit confirm it once (the registration row lock); two imports of overlapping
statements record and settle each transfer once (the import lock, the 流水号); two hand
matches of two lines to one deposit confirm it once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from auctions import deposits
from market.clock import FrozenClock
from market.errors import Conflict
from market.exchange_account import hand
from market.exchange_account import statement as exchange_statement
from market.settings import Settings
from tests.auctions.test_closing import DEPOSIT, check_books
from tests.exchange_account.scene import registrations, statement
from tests.factories import act_as


async def _entries(pool: asyncpg.Pool, registration_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE source_kind='deposit_confirmed'"
            " AND source_id=$1",
            str(registration_id),
        )
    )


async def _events(pool: asyncpg.Pool, registration_id: int) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE dedupe_key=$1",
            f"deposit_confirmed:{registration_id}",
        )
    )


async def test_an_import_and_a_manual_confirmation_of_one_deposit_confirm_it_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=6)
    for n, w in enumerate(s.open.waiting):  # six races, whoever wins each
        reg, ref = w.registration_id, s.refs[w.registration_id]
        data = statement((DEPOSIT, ref, f"RACE{n}"), day=s.today)
        acts = [await act_as(pool, clock, s.operator_user) for _ in range(2)]
        imported, confirmed = await asyncio.gather(
            acts[0](
                exchange_statement.import_exchange_statement,
                exchange_statement.ImportExchangeStatement(data=data),
            ),
            acts[1](
                deposits.confirm_deposit,
                deposits.ConfirmDeposit(transfer_reference=ref, amount_fen=DEPOSIT),
            ),
        )
        assert (await _entries(pool, reg), await _events(pool, reg)) == (1, 1)
        row = await pool.fetchrow(
            "SELECT status, reason::jsonb->>'code' AS code, registration_id"
            " FROM statement_lines WHERE bank_txn_id=$1",
            f"RACE{n}",
        )
        if confirmed.changed:  # the operator first: the line waits as a second transfer
            assert imported.settled["deposit"] == []
            assert (row["status"], row["code"], row["registration_id"]) == (
                "unknown",
                "deposit_confirmed_already",
                None,
            )
        else:  # the import first: the operator's confirmation finds it done
            assert imported.settled["deposit"] == [ref]
            assert (row["status"], row["registration_id"]) == ("matched", reg)
    await check_books(pool)


async def test_two_imports_of_overlapping_statements_settle_each_transfer_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=3)
    r1, r2, r3 = (w.registration_id for w in s.open.waiting)
    ref = s.refs
    first = statement((DEPOSIT, ref[r1], "A"), (DEPOSIT, ref[r2], "B"), day=s.today)
    second = statement((DEPOSIT, ref[r2], "B"), (DEPOSIT, ref[r3], "C"), day=s.today)
    acts = [await act_as(pool, clock, s.operator_user) for _ in range(2)]
    got = await asyncio.gather(
        *(
            a(
                exchange_statement.import_exchange_statement,
                exchange_statement.ImportExchangeStatement(data=data, filename=f"{n}.csv"),
            )
            for n, (a, data) in enumerate(zip(acts, (first, second), strict=True))
        )
    )
    assert sorted(g.skipped for g in got) == [0, 1]  # whichever ran second skipped B
    assert sorted(r for g in got for r in g.settled["deposit"]) == sorted(
        ref[r] for r in (r1, r2, r3)
    )
    for reg in (r1, r2, r3):
        assert (await _entries(pool, reg), await _events(pool, reg)) == (1, 1)
    assert [
        r["bank_txn_id"]
        for r in await pool.fetch(
            "SELECT bank_txn_id FROM statement_lines WHERE bank_txn_id IN ('A','B','C')"
            " ORDER BY bank_txn_id"
        )
    ] == ["A", "B", "C"]
    await check_books(pool)


async def test_two_hand_matches_of_two_lines_to_one_deposit_confirm_it_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=1)
    reg = s.open.waiting[0].registration_id
    act = await act_as(pool, clock, s.operator_user)
    data = statement((DEPOSIT, "汇款一", "X1"), (DEPOSIT, "汇款二", "X2"), day=s.today)
    await act(
        exchange_statement.import_exchange_statement,
        exchange_statement.ImportExchangeStatement(data=data),
    )
    lines = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM statement_lines WHERE bank_txn_id IN ('X1','X2') ORDER BY id"
        )
    ]
    acts = [await act_as(pool, clock, s.operator_user) for _ in lines]
    got: list[Any] = await asyncio.gather(
        *(
            a(
                hand.match_line_to_deposit,
                hand.MatchDepositLine(line_id=line, transfer_reference=s.refs[reg]),
            )
            for a, line in zip(acts, lines, strict=True)
        ),
        return_exceptions=True,
    )
    assert sorted(type(g).__name__ for g in got) == ["Conflict", "DepositLineMatched"]
    assert [g.code for g in got if isinstance(g, Conflict)] == ["deposit_confirmed_already"]
    assert (await _entries(pool, reg), await _events(pool, reg)) == (1, 1)
    assert (
        await pool.fetchval("SELECT count(*) FROM statement_lines WHERE registration_id=$1", reg)
        == 1
    )
