"""A sale from the close to the payout with an injected clock (docs/rules.md §Transfer of
title): the balance is held in escrow; the pledge's release and the recordal of the
transfer are uploaded against their deadlines, with reminders; the operator confirms and
the price is routed — or a step fails or a deadline passes and the sale unwinds, the buyer
refunded (its deposit too unless it caused the failure). After every ending the ledger
balances and every fen in the clearing account is owed to somebody."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from market.clock import FrozenClock
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.lots import services as lots
from market.settings import Settings
from market.transfer import checking, jobs, notices
from market.transfer.models import RecordFailure, RejectNotice
from tests.auctions.test_closing import balance, check_books, pay, rows, sold_scene, value
from tests.factories import act_as
from tests.transfer.factories import (
    confirm,
    notice,
    upload_recordals,
    upload_release,
)


async def paid_scene(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> Any:
    scene, sale = await sold_scene(pool, clock, settings)
    clock.advance(days=2)
    paid = await pay(pool, clock, scene.operator_user, sale.payment_reference, sale.balance_due_fen)
    assert paid.status == "paid"
    return scene, paid


async def outbox_keys(pool: asyncpg.Pool) -> set[str]:
    return {r["dedupe_key"] for r in await rows(pool, "SELECT dedupe_key FROM outbox")}


async def owed_to_somebody(pool: asyncpg.Pool, sale: Any) -> None:
    """Balanced books; the sale's receivable, the lot's proceeds and forfeits and the
    winner's deposit are empty; every account holding money is one that says whose it
    is: a buyer's refund or live deposit, a payee of the waterfall, the exchange's income,
    or the proceeds of a sale still held in escrow. So every fen of the clearing account
    (the rest of the ledger, negated) is owed to somebody."""
    await check_books(pool)
    for code in (
        f"sale:receivable:{sale.id}",
        f"proceeds:lot:{sale.lot_id}",
        f"forfeit:lot:{sale.lot_id}",
        f"deposit:reg:{sale.registration_id}",
    ):
        assert await balance(pool, code) == 0, code
    held = {
        f"proceeds:lot:{r['lot_id']}"
        for r in await rows(pool, "SELECT lot_id FROM sales WHERE status = 'paid'")
    }
    accounts = await rows(
        pool,
        "SELECT a.code, sum(l.amount_fen) AS fen FROM ledger_legs l JOIN ledger_accounts a"
        " ON a.id = l.account_id GROUP BY a.code HAVING sum(l.amount_fen) <> 0",
    )
    owners = ("exchange:clearing", "refund:org:", "payable:", "income:", "deposit:reg:")
    stray = [
        r["code"] for r in accounts if not r["code"].startswith(owners) and r["code"] not in held
    ]
    assert stray == []
    assert await balance(pool, "exchange:clearing") > 0


async def test_happy_path_holds_the_price_until_the_operator_confirms(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    winner = scene.buyers[0]
    # Held in escrow: the price sits in the lot's proceeds, nothing is routed.
    assert await balance(pool, f"proceeds:lot:{sale.lot_id}") == -sale.price_fen
    assert await value(pool, "SELECT count(*) FROM receipts") == 0
    assert await balance(pool, f"sale:receivable:{sale.id}") == 0
    transfer = await value(pool, "SELECT status FROM transfers WHERE sale_id=$1", sale.id)
    assert transfer == "in_escrow"
    assert {f"transfer_step_due:{sale.id}:release", f"transfer_step_due:{sale.id}:recordal"} <= (
        await outbox_keys(pool)
    )
    # The operator cannot confirm before the notices are in.
    with pytest.raises(Conflict) as early:
        await confirm(pool, clock, scene.operator_user, sale.id)
    assert (early.value.code, early.value.field) == ("transfer_notices_missing", "sale_id")

    clock.advance(days=5)
    after_release = await upload_release(pool, clock, scene.bank_user, sale.id)
    assert after_release.step == "recordal" and after_release.check_due_at is None
    clock.advance(days=30)
    in_check = await upload_recordals(pool, clock, winner.user_id, sale.id)
    assert in_check.step == "check" and in_check.missing == []
    assert in_check.check_due_at == clock.now() + timedelta(days=5)
    assert await value(pool, "SELECT count(*) FROM receipts") == 0
    clock.advance(days=1)
    done = await confirm(pool, clock, scene.operator_user, sale.id)
    assert (done.status, done.step, done.ended_at) == ("completed", None, clock.now())
    assert {n.status for n in done.notices} == {"accepted"}
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "completed"
    # Routed now, once: commission to the exchange, the rest to the bank's claim.
    assert (
        await value(pool, "SELECT count(*) FROM receipts WHERE source=$1", f"sale:{sale.id}") == 1
    )
    assert await balance(pool, "income:commission") == -sale.fee_fen
    assert await balance(pool, f"payable:org:{scene.bank_org}") == -(sale.price_fen - sale.fee_fen)
    assert f"sale_completed:{sale.id}:{winner.org_id}" in await outbox_keys(pool)
    again = await confirm(pool, clock, scene.operator_user, sale.id)
    assert again == done
    await owed_to_somebody(pool, sale)
    # Completed: the sweep leaves it alone long after every deadline.
    clock.advance(days=400)
    assert await jobs.sweep(pool, clock.now(), lots.policy_for(settings)) == []


async def test_every_deadline(pool: asyncpg.Pool, clock: FrozenClock, settings: Settings) -> None:
    """Reminders 7 and 1 days before the release's deadline, then the bank is overdue:
    the sale unwinds with a full refund (the buyer is not at fault)."""
    scene, sale = await paid_scene(pool, clock, settings)
    policy = lots.policy_for(settings)
    due = await value(pool, "SELECT release_due_at FROM transfers WHERE sale_id=$1", sale.id)
    assert due == sale.paid_at + timedelta(days=30)
    recordal_due = await value(
        pool, "SELECT recordal_due_at FROM transfers WHERE sale_id=$1", sale.id
    )
    assert recordal_due == sale.paid_at + timedelta(days=90)
    clock.set(due - timedelta(days=7, seconds=1))
    assert await jobs.sweep(pool, clock.now(), policy) == []
    assert not any(k.startswith("transfer_step_reminder") for k in await outbox_keys(pool))
    clock.set(due - timedelta(days=7))
    await jobs.sweep(pool, clock.now(), policy)
    await jobs.sweep(pool, clock.now(), policy)  # once
    reminders = await rows(
        pool, "SELECT dedupe_key FROM outbox WHERE event='transfer_step_reminder'"
    )
    assert [r["dedupe_key"].split(":")[2:4] for r in reminders] == [["release", "7"]]
    clock.set(due - timedelta(hours=1))
    assert await jobs.sweep(pool, clock.now(), policy) == []
    keys = [
        r["dedupe_key"].split(":")[2:4]
        for r in await rows(
            pool, "SELECT dedupe_key FROM outbox WHERE event='transfer_step_reminder' ORDER BY id"
        )
    ]
    assert keys == [["release", "7"], ["release", "1"]]
    # Overdue by a microsecond: the bank did not release the pledge.
    clock.set(due)
    assert await jobs.sweep(pool, clock.now(), policy) == [sale.id]
    assert await jobs.sweep(pool, clock.now(), policy) == []
    t = await rows(
        pool, "SELECT status, cause, buyer_at_fault FROM transfers WHERE sale_id=$1", sale.id
    )
    assert [tuple(r) for r in t] == [("unwound", "bank", False)]
    refund = await balance(pool, f"refund:org:{sale.buyer_org_id}")
    assert refund == -(sale.balance_due_fen + sale.deposit_fen)  # balance and deposit
    assert f"transfer_step_overdue:{sale.id}:release:{int(due.timestamp())}" in await outbox_keys(
        pool
    )
    assert f"sale_unwound:{sale.id}:{sale.buyer_org_id}" in await outbox_keys(pool)
    lot = await lots.get_lot(pool, scene.bank_org, sale.lot_id)
    assert (lot.status, lot.round) == ("failed", 1)  # the bank relists
    assert await value(pool, "SELECT count(*) FROM receipts") == 0
    await owed_to_somebody(pool, sale)


async def test_recordal_overdue_is_the_buyers_and_the_check_overdue_only_warns(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    policy = lots.policy_for(settings)
    scene, sale = await paid_scene(pool, clock, settings)
    await upload_release(pool, clock, scene.bank_user, sale.id)
    # The operator's check, late: the operators hear of it, the sale stays in escrow.
    other, other_sale = await paid_scene(pool, clock, settings)
    await upload_release(pool, clock, other.bank_user, other_sale.id)
    shown = await upload_recordals(pool, clock, other.buyers[0].user_id, other_sale.id)
    assert shown.check_due_at is not None
    clock.set(shown.check_due_at)
    assert await jobs.sweep(pool, clock.now(), policy) == []
    overdue = await rows(
        pool,
        "SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE $1",
        f"transfer_step_overdue:{other_sale.id}:check:%",
    )
    operators = await value(pool, "SELECT count(*) FROM organisations WHERE kind='operator'")
    assert len(overdue) == operators == 2  # each operator organisation (one per scene), once
    # The recordal's deadline passes without one: the buyer's failure.
    due = await value(pool, "SELECT recordal_due_at FROM transfers WHERE sale_id=$1", sale.id)
    clock.set(due)
    assert await jobs.sweep(pool, clock.now(), policy) == [sale.id]
    t = await rows(pool, "SELECT cause, buyer_at_fault FROM transfers WHERE sale_id=$1", sale.id)
    assert [tuple(r) for r in t] == [("buyer", True)]
    assert await balance(pool, f"refund:org:{sale.buyer_org_id}") == -(
        sale.price_fen - sale.deposit_fen
    )
    got = await value(
        pool, "SELECT amount_fen FROM receipts WHERE source=$1", f"forfeit:sale:{sale.id}"
    )
    assert got == sale.deposit_fen
    await owed_to_somebody(pool, sale)
    # The other sale was in the operator's hands: it completes.
    await confirm(pool, clock, other.operator_user, other_sale.id)
    await owed_to_somebody(pool, other_sale)


async def test_failed_recordal_unwinds_with_a_full_refund(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    winner = scene.buyers[0]
    await upload_release(pool, clock, scene.bank_user, sale.id)
    clock.advance(days=20)
    shown = await upload_recordals(pool, clock, winner.user_id, sale.id)
    # The operator rejects the recordal: it names another patent. The buyer uploads again.
    operator = await act_as(pool, clock.now(), scene.operator_user)
    recordal = next(n for n in shown.notices if n.kind == "patent_recordal")
    rejected = await operator(
        checking.reject_notice, RejectNotice(notice_id=recordal.id, reason="专利号与拍品不符")
    )
    assert rejected.step == "recordal" and rejected.check_due_at is None
    assert f"transfer_notice_rejected:{recordal.id}" in await outbox_keys(pool)
    with pytest.raises(Conflict) as twice:
        await operator(checking.reject_notice, RejectNotice(notice_id=recordal.id, reason="x"))
    assert twice.value.code == "transfer_notice_decided"
    again = await upload_recordals(pool, clock, winner.user_id, sale.id)
    assert again.step == "check"
    # Then CNIPA's register shows the patent lapsed (unpaid annuity): the transfer fails,
    # not by the buyer's fault.
    failure = checking.with_policy(
        RecordFailure(sale_id=sale.id, cause="lapsed_right", note="专利权因未缴年费终止"), settings
    )
    out = await operator(checking.record_failure, failure)
    assert (out.status, out.cause, out.buyer_at_fault) == ("unwound", "lapsed_right", False)
    assert await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id) == "unwound"
    assert await balance(pool, f"refund:org:{winner.org_id}") == -(
        sale.balance_due_fen + sale.deposit_fen
    )
    assert await value(pool, "SELECT count(*) FROM receipts") == 0
    # the refund is a payment instruction to the buyer (docs/rules.md §Payments out)
    instructed = await value(
        pool,
        "SELECT amount_fen FROM payment_instructions WHERE source = $1 AND payee_org_id = $2",
        f"sale_refund:sale_unwound:{sale.id}",
        winner.org_id,
    )
    assert instructed == sale.balance_due_fen + sale.deposit_fen
    with pytest.raises(Conflict) as late:
        await confirm(pool, clock, scene.operator_user, sale.id)
    assert (late.value.code, late.value.field) == ("transfer_not_in_escrow", "sale_id")
    lot = await lots.get_lot(pool, scene.bank_org, sale.lot_id)
    assert (lot.status, lot.status_reason) == ("failed", "lot.reason.transfer_unwound")
    # the fee was not earned: no invoice for it, now or later (docs/rules.md §Invoices)
    reason = "SELECT reason FROM invoice_cancellations WHERE sale_id=$1"
    assert await value(pool, reason, sale.id) == "sale_unwound:lapsed_right"
    await owed_to_somebody(pool, sale)


async def test_buyer_caused_failure_forfeits_the_deposit(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    scene, sale = await paid_scene(pool, clock, settings)
    await upload_release(pool, clock, scene.bank_user, sale.id)
    operator = await act_as(pool, clock.now(), scene.operator_user)
    failure = RecordFailure(sale_id=sale.id, cause="buyer", note="买受人拒绝办理著录项目变更")
    out = await operator(checking.record_failure, checking.with_policy(failure, settings))
    assert (out.status, out.buyer_at_fault) == ("unwound", True)
    assert await balance(pool, f"refund:org:{sale.buyer_org_id}") == -(
        sale.price_fen - sale.deposit_fen
    )
    receipt = await value(
        pool, "SELECT amount_fen FROM receipts WHERE source=$1", f"forfeit:sale:{sale.id}"
    )
    assert receipt == sale.deposit_fen
    bars = await value(pool, "SELECT count(*) FROM buyer_bars WHERE sale_id=$1", sale.id)
    assert bars == len(scene.lot.asset_ids)
    await owed_to_somebody(pool, sale)


async def test_confirm_sweep_and_failure_at_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """Two confirmations, a failure and the deadline sweep at the same instant, on real
    PostgreSQL: exactly one ending, one receipt or one refund, books balanced."""
    policy = lots.policy_for(settings)
    for _ in range(3):
        scene, sale = await paid_scene(pool, clock, settings)
        await upload_release(pool, clock, scene.bank_user, sale.id)
        await upload_recordals(pool, clock, scene.buyers[0].user_id, sale.id)
        operator = await act_as(pool, clock.now(), scene.operator_user)
        failure = checking.with_policy(RecordFailure(sale_id=sale.id, cause="bank"), settings)
        results = await asyncio.gather(
            confirm(pool, clock, scene.operator_user, sale.id),
            operator(checking.record_failure, failure),
            confirm(pool, clock, scene.operator_user, sale.id),
            jobs.sweep(pool, clock.now() + timedelta(days=365), policy),
            return_exceptions=True,
        )
        status = await value(pool, "SELECT status FROM sales WHERE id=$1", sale.id)
        assert status in ("completed", "unwound")
        conflicts = [r for r in results if isinstance(r, Conflict)]
        assert all(c.code == "transfer_not_in_escrow" for c in conflicts)
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
        receipts = await value(
            pool, "SELECT count(*) FROM receipts WHERE source=$1", f"sale:{sale.id}"
        )
        refunds = await value(
            pool,
            "SELECT count(*) FROM ledger_entries WHERE source_kind='sale_refund' AND source_id=$1",
            f"sale_unwound:{sale.id}",
        )
        assert (receipts, refunds) == ((1, 0) if status == "completed" else (0, 1))
        await owed_to_somebody(pool, sale)


async def test_bad_notices_are_refused_and_nothing_is_written(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    other, other_sale = await paid_scene(pool, clock, settings)
    scene, sale = await paid_scene(pool, clock, settings)
    winner = scene.buyers[0]
    buyer = await act_as(pool, clock.now(), winner.user_id)
    bank = await act_as(pool, clock.now(), scene.bank_user)
    today = clock.now().date()
    count = "SELECT (SELECT count(*) FROM transfer_notices) + (SELECT count(*) FROM case_documents)"
    before = await value(pool, count)
    audit = await value(pool, "SELECT count(*) FROM audit_log")

    async def refused(
        act: Any, cmd: Any, data: Any, kind: type[Exception], code: str, field: str
    ) -> None:
        with pytest.raises(kind) as e:
            await act(cmd, data)
        assert (e.value.code, e.value.field) == (code, field)  # type: ignore[attr-defined]
        assert await value(pool, count) == before
        assert await value(pool, "SELECT count(*) FROM audit_log") == audit

    # A notice for another sale: the buyer of one sale names the other's.
    await refused(
        buyer,
        notices.upload_recordal,
        notice(other_sale.id, "patent_recordal", "BG1", today),
        NotFound,
        "not_found",
        "sale_id",
    )
    # A date before the sale, a date in the future.
    before_sale = (sale.closed_at - timedelta(days=2)).date()
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "patent_recordal", "BG1", before_sale),
        Invalid,
        "transfer_notice_before_sale",
        "issued_on",
    )
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "patent_recordal", "BG1", today + timedelta(days=2)),
        Invalid,
        "date_in_future",
        "issued_on",
    )
    # The bank's notice by the buyer; a kind the lot (patents only) does not need.
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "pledge_release", "ZX1", today),
        Forbidden,
        "transfer_notice_other_party",
        "kind",
    )
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "trademark_assignment", "TM1", today),
        Invalid,
        "transfer_notice_not_needed",
        "kind",
    )
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "patent_recordal", "BG 1", today),
        Invalid,
        "cnipa_number_unreadable",
        "number",
    )
    await refused(
        buyer,
        notices.upload_recordal,
        notice(sale.id, "patent_recordal", "BG1", today, b"\x00\x01\x02 not a document"),
        Invalid,
        "file_type_not_accepted",
        "file",
    )
    await refused(
        bank,
        notices.upload_release,
        notice(sale.id, "patent_recordal", "BG1", today),
        Forbidden,
        "transfer_notice_other_party",
        "kind",
    )
    # A recordal number already standing on another sale.
    await upload_recordals(pool, clock, winner.user_id, sale.id)
    number = await value(pool, "SELECT number FROM transfer_notices WHERE sale_id=$1", sale.id)
    before = await value(pool, count)
    audit = await value(pool, "SELECT count(*) FROM audit_log")
    other_buyer = await act_as(pool, clock.now(), other.buyers[0].user_id)
    await refused(
        other_buyer,
        notices.upload_recordal,
        notice(other_sale.id, "patent_recordal", number.lower(), today),
        Conflict,
        "transfer_notice_number_used",
        "number",
    )
    await upload_release(pool, clock, scene.bank_user, sale.id)
    await confirm(pool, clock, scene.operator_user, sale.id)
    await owed_to_somebody(pool, sale)


async def test_an_upload_at_the_deadline_and_the_sweep_at_once(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    """The bank's release arrives a second before its deadline while the sweep runs at the
    deadline: either the notice is in and the sale stays in escrow, or the sale unwound
    and the notice was refused with nothing written — never both, never neither."""
    policy = lots.policy_for(settings)
    for _ in range(3):
        scene, sale = await paid_scene(pool, clock, settings)
        due = await value(pool, "SELECT release_due_at FROM transfers WHERE sale_id=$1", sale.id)
        late = FrozenClock(due - timedelta(seconds=1))
        upload, swept = await asyncio.gather(
            upload_release(pool, late, scene.bank_user, sale.id),
            jobs.sweep(pool, due, policy),
            return_exceptions=True,
        )
        notices_in = await value(
            pool, "SELECT count(*) FROM transfer_notices WHERE sale_id=$1", sale.id
        )
        status = await value(pool, "SELECT status FROM transfers WHERE sale_id=$1", sale.id)
        if status == "unwound":
            assert isinstance(upload, Conflict) and upload.code == "transfer_not_in_escrow"
            assert notices_in == 0 and sale.id in swept  # type: ignore[operator]
        else:
            assert status == "in_escrow" and notices_in == 1
            assert not isinstance(upload, Exception) and sale.id not in swept  # type: ignore[operator]
        await check_books(pool)
