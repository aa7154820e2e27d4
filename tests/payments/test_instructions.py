"""Payment instructions end to end: a released deposit and a payout become instructions,
the operator exports them as a payment file, the clearing account's outgoing lines mark
them paid, the money leaving clearing posted once (docs/rules.md §Payments out)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from market.cases.services import china_today
from market.clock import FrozenClock
from market.errors import AppError, Conflict, Invalid
from market.exchange_account import statement as clearing
from market.payments import accounts as payee_accounts
from market.payments import files
from market.pools import reconciliation
from market.settings import Settings
from tests.auctions.test_closing import (
    Scene,
    balance,
    check_books,
    pay,
    rows,
    sold_scene,
    value,
)
from tests.factories import act_as
from tests.transfer.factories import complete_transfer

ACCOUNT = payee_accounts.AccountIn(
    account_name="竞买人有限公司",
    account_number="6222 0212 3456 7890",
    bank_name="工商银行成都分行",
)


def outgoing_csv(*lines: tuple[date, int, str, str]) -> bytes:
    """A clearing-account statement of outgoing transfers (支出金额 filled)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["交易日期", "金额", "支出金额", "附言", "对方户名", "流水号"])
    for day, fen, ref, txn in lines:
        w.writerow([day.isoformat(), "", f"{fen // 100}.{fen % 100:02d}", ref, "收款人", txn])
    return out.getvalue().encode("utf-8")


def incoming_csv(*lines: tuple[date, int, str, str]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["交易日期", "金额", "附言", "对方户名", "流水号"])
    for day, fen, ref, txn in lines:
        w.writerow([day.isoformat(), f"{fen // 100}.{fen % 100:02d}", ref, "交易所", txn])
    return out.getvalue().encode("utf-8")


def parse_file(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())
    text = content.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def paid_scene(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> tuple[Scene, Any]:
    """A sold lot whose loser's deposit was released, whose price was paid and, once its
    title moved (docs/rules.md §Transfer of title), routed."""
    scene, sale = await sold_scene(pool, clock, settings)
    clock.advance(days=1)
    await pay(pool, clock, scene.operator_user, sale.payment_reference, sale.balance_due_fen)
    await complete_transfer(
        pool,
        clock,
        sale.id,
        bank_user=scene.bank_user,
        buyer_user=scene.buyers[0].user_id,
        operator_user=scene.operator_user,
    )
    return scene, sale


async def set_accounts(pool: asyncpg.Pool, clock: FrozenClock, scene: Scene) -> None:
    for user in (scene.buyers[1].user_id, scene.bank_user):
        act = await act_as(pool, clock.now(), user)
        await act(payee_accounts.set_own_account, ACCOUNT)


async def test_released_deposit_and_payout_become_instructions(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    loser = scene.buyers[1]
    found = await rows(pool, "SELECT * FROM payment_instructions ORDER BY id")
    refund, payout = found
    # The loser's deposit: owed back within 24 hours of its release at the close.
    assert (refund["purpose"], refund["payee_kind"], refund["payee_org_id"]) == (
        "deposit_refund",
        "org",
        loser.org_id,
    )
    assert refund["source"] == f"deposit_released:{loser.registration_id}"
    assert refund["amount_fen"] == sale.deposit_fen
    assert refund["due_at"] == scene.ends_at + timedelta(hours=24)
    assert refund["reference"].startswith("TK") and refund["status"] == "pending"
    # The bank's payout of the waterfall: its transfer reference is the payout's.
    hk = (await rows(pool, "SELECT * FROM payouts"))[0]
    assert (payout["purpose"], payout["payout_id"], payout["reference"]) == (
        "payout",
        hk["id"],
        hk["reference"],
    )
    assert (payout["payee_kind"], payout["payee_org_id"]) == ("org", scene.bank_org)
    assert payout["amount_fen"] == hk["amount_fen"] == sale.price_fen - sale.fee_fen
    assert payout["due_at"] == clock.now() + timedelta(days=5)
    events = {
        r["dedupe_key"]: r["recipient_org_id"] for r in await rows(pool, "SELECT * FROM outbox")
    }
    assert events[f"refund_instructed:{refund['id']}"] == loser.org_id
    await check_books(pool)


async def test_export_pays_and_posts_once_whichever_statement_comes_first(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _sale = await paid_scene(pool, clock, settings)
    operator = await act_as(pool, clock, scene.operator_user)
    value_date = china_today(clock.now() + timedelta(days=5))
    # No accounts yet: both are held back, nothing is exported.
    with pytest.raises(Invalid) as none:
        await operator(files.export_payment_file, files.ExportIn(value_date=value_date))
    assert (none.value.code, none.value.field) == ("nothing_to_pay", "value_date")
    assert await value(pool, "SELECT count(*) FROM payment_periods") == 0
    await set_accounts(pool, clock, scene)
    made = await operator(files.export_payment_file, files.ExportIn(value_date=value_date))
    assert made.line_count == 2 and made.held == []
    refund, payout = await rows(pool, "SELECT * FROM payment_instructions ORDER BY due_at, id")
    assert made.total_fen == refund["amount_fen"] + payout["amount_fen"]
    async with pool.acquire() as conn:
        day, content = await files.file_content(conn, made.id)
    assert day == value_date
    lines = parse_file(content)
    assert list(lines[0]) == list(files.HEADER)
    assert [(x["序号"], x["用途/附言"], x["金额(元)"]) for x in lines] == [
        ("1", refund["reference"], files.yuan(refund["amount_fen"])),
        ("2", payout["reference"], files.yuan(payout["amount_fen"])),
    ]
    assert {x["收款账号"] for x in lines} == {"6222021234567890"}
    assert {x["收款户名"] for x in lines} == {ACCOUNT.account_name}
    assert {x["开户行"] for x in lines} == {ACCOUNT.bank_name}
    assert (
        await value(pool, "SELECT count(*) FROM payment_instructions WHERE status='in_file'") == 2
    )

    # The bank's own statement shows the payout first: the money leaves clearing once.
    clock.set(clock.now() + timedelta(days=6))
    today = china_today(clock.now())
    bank = await act_as(pool, clock, scene.bank_user)
    await bank(
        reconciliation.import_statement,
        reconciliation.ImportStatement(
            data=incoming_csv((today, payout["amount_fen"], payout["reference"], "B1"))
        ),
    )
    assert (
        await value(pool, "SELECT status FROM payment_instructions WHERE id=$1", payout["id"])
        == "paid"
    )
    entries = await value(pool, "SELECT count(*) FROM ledger_entries")
    clearing_before = await balance(pool, "exchange:clearing")
    # Then the clearing account's statement: both outgoing lines, and an unknown one.
    done = await operator(
        clearing.import_exchange_statement,
        clearing.ImportExchangeStatement(
            data=outgoing_csv(
                (today, refund["amount_fen"], f"退款 {refund['reference']}", "C1"),
                (today, payout["amount_fen"], payout["reference"], "C2"),
                (today, 12_34, "手续费", "C3"),
            )
        ),
    )
    assert done.paid_out == [refund["reference"]]  # the payout was paid already
    assert done.outgoing_skipped == 1
    got = {r["reference"]: r for r in await rows(pool, "SELECT * FROM payment_instructions")}
    assert all(r["status"] == "paid" for r in got.values())
    assert got[payout["reference"]]["paid_statement_id"] == done.statement_id
    assert got[refund["reference"]]["paid_line_no"] == 2
    # One new entry: the refund leaving clearing; the payout's was posted by the bank's import.
    assert await value(pool, "SELECT count(*) FROM ledger_entries") == entries + 1
    assert await balance(pool, "exchange:clearing") == clearing_before - refund["amount_fen"]
    kinds = await rows(
        pool,
        "SELECT source_kind, count(*) AS n FROM ledger_entries WHERE source_kind IN"
        " ('payout_paid', 'instruction_paid', 'payout_received') GROUP BY 1",
    )
    assert {r["source_kind"]: r["n"] for r in kinds} == {"payout_paid": 1, "instruction_paid": 1}
    assert await balance(pool, f"refund:org:{scene.buyers[1].org_id}") == 0
    assert await balance(pool, f"payable:org:{scene.bank_org}") == 0
    await check_books(pool)
    events = {
        r["dedupe_key"]: r["recipient_org_id"] for r in await rows(pool, "SELECT * FROM outbox")
    }
    assert events[f"refund_paid:{refund['id']}"] == scene.buyers[1].org_id
    assert events[f"payout_paid:{payout['id']}"] == scene.bank_org

    # The bank's statement after the clearing's: nothing posted again either.
    again = await operator(
        clearing.import_exchange_statement,
        clearing.ImportExchangeStatement(
            data=outgoing_csv((today, refund["amount_fen"], refund["reference"], "C9"))
        ),
    )
    assert again.paid_out == [] and again.outgoing_skipped == 1
    assert await value(pool, "SELECT count(*) FROM ledger_entries") == entries + 1


async def test_clearing_first_then_payee_statement_posts_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _sale = await paid_scene(pool, clock, settings)
    payout = (await rows(pool, "SELECT * FROM payment_instructions WHERE purpose='payout'"))[0]
    operator = await act_as(pool, clock, scene.operator_user)
    today = china_today(clock.now())
    # Paid before it went out in a file (the operator paid it by hand): still paid once.
    done = await operator(
        clearing.import_exchange_statement,
        clearing.ImportExchangeStatement(
            data=outgoing_csv((today, payout["amount_fen"], payout["reference"], "C1"))
        ),
    )
    assert done.paid_out == [payout["reference"]]
    bank = await act_as(pool, clock, scene.bank_user)
    got = await bank(
        reconciliation.import_statement,
        reconciliation.ImportStatement(
            data=incoming_csv((today, payout["amount_fen"], payout["reference"], "B1"))
        ),
    )
    assert got.counts["matched"] == 1
    assert await value(pool, "SELECT status FROM payouts") == "received"
    n = await value(pool, "SELECT count(*) FROM ledger_entries WHERE source_kind='payout_paid'")
    assert n == 1
    assert await balance(pool, f"payable:org:{scene.bank_org}") == 0
    await check_books(pool)


async def test_two_exports_at_once_never_share_an_instruction(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    await set_accounts(pool, clock, scene)
    operator = await act_as(pool, clock, scene.operator_user)
    later = china_today(clock.now() + timedelta(days=5))
    got = await asyncio.gather(
        *(
            operator(
                files.export_payment_file, files.ExportIn(value_date=later + timedelta(days=d))
            )
            for d in (0, 0, 1, 2)
        ),
        return_exceptions=True,
    )
    made = [g for g in got if isinstance(g, files.FileOut)]
    refused = [g for g in got if isinstance(g, AppError)]
    assert len(made) == 1 and len(refused) == 3, got
    assert all(r.code == "nothing_to_pay" for r in refused)
    placed = await rows(pool, "SELECT file_id, count(*) AS n FROM payment_instructions GROUP BY 1")
    assert [(r["file_id"], r["n"]) for r in placed] == [(made[0].id, 2)]
    assert await value(pool, "SELECT count(*) FROM payment_files") == 1


async def test_two_clearing_imports_at_once_pay_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    refund, payout = await rows(pool, "SELECT * FROM payment_instructions ORDER BY id")
    operator = await act_as(pool, clock, scene.operator_user)
    bank = await act_as(pool, clock, scene.bank_user)
    today = china_today(clock.now())
    lines = [
        (today, refund["amount_fen"], refund["reference"]),
        (today, payout["amount_fen"], payout["reference"]),
    ]
    got = await asyncio.gather(
        *(
            operator(
                clearing.import_exchange_statement,
                clearing.ImportExchangeStatement(
                    data=outgoing_csv(*[(d, f, r, f"{k}{i}") for i, (d, f, r) in enumerate(lines)])
                ),
            )
            for k in ("A", "B", "C")
        ),
        bank(
            reconciliation.import_statement,
            reconciliation.ImportStatement(
                data=incoming_csv((today, payout["amount_fen"], payout["reference"], "B1"))
            ),
        ),
    )
    assert sorted(r for g in got[:3] for r in g.paid_out) == sorted(
        [refund["reference"], payout["reference"]]
    ) or sorted(r for g in got[:3] for r in g.paid_out) == [refund["reference"]]
    kinds = await rows(
        pool,
        "SELECT source_kind, source_id FROM ledger_entries WHERE source_kind IN"
        " ('payout_paid', 'instruction_paid')",
    )
    assert sorted((r["source_kind"], r["source_id"]) for r in kinds) == [
        ("instruction_paid", str(refund["id"])),
        ("payout_paid", str(payout["payout_id"])),
    ]
    linked = await value(pool, "SELECT count(*) FROM outgoing_lines WHERE status='matched'")
    assert linked == 2
    await check_books(pool)


async def test_closed_period_and_bad_account_are_refused_with_nothing_written(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    buyer = await act_as(pool, clock, scene.buyers[1].user_id)
    audit = await value(pool, "SELECT count(*) FROM audit_log")
    for bad, field in (
        ({"account_number": "6222-0212"}, "account_number"),
        ({"account_number": "1234567"}, "account_number"),
        ({"account_number": "1" * 33}, "account_number"),
        ({"account_name": "  "}, "account_name"),
        ({"account_name": "=HYPERLINK(1)"}, "account_name"),
        ({"bank_name": "x"}, "bank_name"),
    ):
        data = payee_accounts.AccountIn(
            **{
                "account_name": "甲",
                "account_number": "12345678",
                "bank_name": "工商银行",
                **bad,
            }
        )
        with pytest.raises(Invalid) as refused:
            await buyer(payee_accounts.set_own_account, data)
        assert refused.value.field == field and refused.value.status == 422
    assert await value(pool, "SELECT count(*) FROM settlement_accounts") == 0
    assert await value(pool, "SELECT count(*) FROM audit_log") == audit

    await set_accounts(pool, clock, scene)
    operator = await act_as(pool, clock, scene.operator_user)
    today = china_today(clock.now())
    with pytest.raises(Invalid) as past:
        await operator(
            files.export_payment_file, files.ExportIn(value_date=today - timedelta(days=1))
        )
    assert past.value.field == "value_date"
    await operator(files.close_payment_period, files.CloseIn(value_date=today + timedelta(days=5)))
    before = await rows(pool, "SELECT id, status, file_id FROM payment_instructions ORDER BY id")
    with pytest.raises(Conflict) as closed:
        await operator(
            files.export_payment_file, files.ExportIn(value_date=today + timedelta(days=5))
        )
    assert (closed.value.code, closed.value.field, closed.value.status) == (
        "payment_period_closed",
        "value_date",
        409,
    )
    assert (
        await rows(pool, "SELECT id, status, file_id FROM payment_instructions ORDER BY id")
        == before
    )
    assert await value(pool, "SELECT count(*) FROM payment_files") == 0
    with pytest.raises(Conflict):
        await operator(
            files.close_payment_period, files.CloseIn(value_date=today + timedelta(days=5))
        )


async def test_export_racing_the_closing_of_its_value_date(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    await set_accounts(pool, clock, scene)
    operator = await act_as(pool, clock, scene.operator_user)
    day = china_today(clock.now() + timedelta(days=5))
    got = await asyncio.gather(
        operator(files.export_payment_file, files.ExportIn(value_date=day)),
        operator(files.close_payment_period, files.CloseIn(value_date=day)),
        return_exceptions=True,
    )
    exported, closed = got
    assert isinstance(closed, files.PeriodOut)
    if isinstance(exported, files.FileOut):  # the export went first: the closing saw it
        assert closed.files == 1
    else:  # the closing went first: the export was refused, nothing written
        assert isinstance(exported, Conflict) and exported.field == "value_date"
        assert await value(pool, "SELECT count(*) FROM payment_files") == 0
        assert closed.files == 0


async def test_two_admins_saving_the_account_at_once_leave_one(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, _ = await paid_scene(pool, clock, settings)
    act = await act_as(pool, clock, scene.bank_user)
    numbers = [f"6222{n:012d}" for n in range(6)]
    saved = await asyncio.gather(
        *(
            act(
                payee_accounts.set_own_account,
                payee_accounts.AccountIn(
                    account_name="银行", account_number=number, bank_name="工商银行"
                ),
            )
            for number in numbers
        )
    )
    assert {s.account_number for s in saved} == set(numbers)
    stored = await rows(pool, "SELECT account_number FROM settlement_accounts")
    assert len(stored) == 1 and stored[0]["account_number"] in numbers
    audited = await value(
        pool, "SELECT count(*) FROM audit_log WHERE action = 'settlement_account.set'"
    )
    assert audited == len(numbers)
