"""Short receipts (docs/rules.md §Reconciliation): a statement line a little less than its
payout — bank charges deducted in transit — is matched with a reason; the payout is
received for the amount seen, the shortfall stays outstanding until a further line
settles it or the manager writes it off; an over-receipt or a line far off is refused
naming the amounts. Everything audited, the pool's ledger balanced."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.accounts import services as accounts
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, unit_of_work
from market.errors import AppError, Conflict, Invalid
from market.ledger import balance
from market.pools import reconciliation as recon
from market.pools import shortfalls
from market.pools.shortfalls import ShortReceiptPolicy
from tests.factories import act_as, csrf, sign_in
from tests.pools.test_reconciliation import (
    api_headers,
    do_import,
    received_entries,
    scene,
    statement_csv,
    yuan,
)

Client = AsyncTestClient[Any]
PAYOUT_FEN = 5_130_000  # ¥51,300.00
SEEN_FEN = 5_128_000  # ¥51,280.00


async def short_scene(pool: asyncpg.Pool, clock: FrozenClock) -> Any:
    """A pool expecting a payout of ¥51,300.00 (its half of a ¥102,600.00 receipt)."""
    s = await scene(pool, clock, receipts=(2 * PAYOUT_FEN,))
    (payout,) = s.pool_payouts
    assert payout["amount_fen"] == PAYOUT_FEN
    return s, payout


async def ledger_of(pool: asyncpg.Pool, pool_id: int) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {
            name: await balance(conn, f"pool:{pool_id}:{name}")
            for name in ("fund", "recoverable", "shortfall", "written_off")
        }


async def test_51280_for_a_payout_of_51300_leaves_20_outstanding_then_written_off(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s, payout = await short_scene(pool, clock)
    org, user, pid = s.pool_org.org_id, s.pool_org.user_id, s.pool_org.pool_id
    out = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(("2026-01-05", yuan(SEEN_FEN), payout["reference"], "交易所", "T1")),
    )
    (line,) = out.lines
    assert line.status == "amount_mismatch" and line.candidate_id == payout["id"]
    before = await ledger_of(pool, pid)

    act = await act_as(pool, clock, user)
    done = await act(
        recon.match_line,
        recon.MatchLine(
            line_id=line.id, reference=payout["reference"], short_reason="bank_charges"
        ),
    )
    assert done.status == "manual"
    row = await pool.fetchrow("SELECT * FROM payouts WHERE id = $1", payout["id"])
    assert row["status"] == "received" and await received_entries(pool, payout["id"]) == 1
    gap = await pool.fetchrow("SELECT * FROM payout_shortfalls WHERE payout_id = $1", payout["id"])
    assert (gap["expected_fen"], gap["received_fen"], gap["shortfall_fen"]) == (
        PAYOUT_FEN,
        SEEN_FEN,
        2_000,
    )
    assert (gap["reason"], gap["status"], gap["line_id"]) == (
        "bank_charges",
        "outstanding",
        line.id,
    )
    after = await ledger_of(pool, pid)
    assert after["fund"] - before["fund"] == SEEN_FEN  # what arrived reaches the fund
    assert after["shortfall"] == 2_000  # ¥20.00 outstanding
    assert before["recoverable"] - after["recoverable"] == PAYOUT_FEN
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'statement_line.match'")
    assert audit["after"]["received_fen"] == SEEN_FEN
    assert audit["after"]["shortfall"] == {
        "id": gap["id"],
        "shortfall_fen": 2_000,
        "reason": "bank_charges",
        "note": "",
    }

    # Visible on the reconciliation: the API and the page.
    headers = await api_headers(pool, clock, user)
    listed = (await client.get("/api/v1/reconciliation/shortfalls", headers=headers)).json()
    assert [(x["id"], x["shortfall_fen"], x["status"], x["reason_text"]) for x in listed] == [
        (gap["id"], 2_000, "outstanding", "银行手续费")
    ]
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    page = await client.get("/reconciliation")
    assert f'data-testid="shortfall-{gap["id"]}"' in page.text
    assert "¥20.00" in page.text and "银行手续费" in page.text

    # A write-off needs its reason: 422 naming the field, nothing written.
    r = await client.post(
        f"/api/v1/reconciliation/shortfalls/{gap['id']}/write-off",
        json={"note": "  "},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["field"] == "note"
    assert (await pool.fetchval("SELECT status FROM payout_shortfalls")) == "outstanding"

    r = await client.post(
        f"/api/v1/reconciliation/shortfalls/{gap['id']}/write-off",
        json={"note": "汇款手续费由本池承担"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "written_off" and r.json()["close_note"] == "汇款手续费由本池承担"
    final = await ledger_of(pool, pid)
    assert final["shortfall"] == 0 and final["written_off"] == 2_000
    assert final["fund"] == after["fund"]
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action = 'shortfall.write_off'")
    assert audit["object_id"] == str(gap["id"]) and audit["actor_user_id"] == user
    assert audit["after"] == {"status": "written_off", "note": "汇款手续费由本池承担"}
    # Once.
    r = await client.post(
        f"/api/v1/reconciliation/shortfalls/{gap['id']}/write-off",
        json={"note": "again"},
        headers=headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "shortfall_closed_already"
    assert (await ledger_of(pool, pid))["written_off"] == 2_000
    # Every entry balanced.
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_legs GROUP BY entry_id"
            " HAVING sum(amount_fen) <> 0) x"
        )
        == 0
    )


async def test_a_further_line_of_the_amount_outstanding_settles_the_shortfall(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s, payout = await short_scene(pool, clock)
    org, user, pid = s.pool_org.org_id, s.pool_org.user_id, s.pool_org.pool_id
    first = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(("2026-01-05", yuan(SEEN_FEN), payout["reference"], "交易所", "T1")),
    )
    act = await act_as(pool, clock, user)
    await act(
        recon.match_line,
        recon.MatchLine(
            line_id=first.lines[0].id,
            reference=payout["reference"],
            short_reason="other",
            short_note="代理行扣费",
        ),
    )
    gap_id = await pool.fetchval("SELECT id FROM payout_shortfalls")
    second = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(
            ("2026-01-05", "19.00", "补汇", "交易所", "T2"),
            ("2026-01-05", "20.00", "补汇手续费", "交易所", "T3"),
        ),
        name="second.csv",
    )
    wrong, right = second.lines
    fund_before = (await ledger_of(pool, pid))["fund"]
    with pytest.raises(Invalid) as refused:
        await act(
            shortfalls.settle_shortfall,
            shortfalls.SettleShortfall(shortfall_id=gap_id, line_id=wrong.id),
        )
    assert refused.value.code == "shortfall_amount_differs"
    assert refused.value.params["short_fen"] == 2_000 and refused.value.params["got_fen"] == 1_900
    done = await act(
        shortfalls.settle_shortfall,
        shortfalls.SettleShortfall(shortfall_id=gap_id, line_id=right.id, note="已补"),
    )
    assert done.status == "settled"
    gap = await pool.fetchrow("SELECT * FROM payout_shortfalls WHERE id = $1", gap_id)
    assert gap["settled_line_id"] == right.id and gap["closed_by"] == user
    line = await pool.fetchrow("SELECT * FROM statement_lines WHERE id = $1", right.id)
    assert line["status"] == "manual" and line["payout_id"] is None
    books = await ledger_of(pool, pid)
    assert books["fund"] - fund_before == 2_000 and books["shortfall"] == 0
    actions = [
        r["action"]
        for r in await pool.fetch("SELECT action FROM audit_log WHERE action LIKE '%shortfall%'")
    ]
    assert sorted(actions) == ["shortfall.settle", "statement_line.settle_shortfall"]
    with pytest.raises(Conflict):
        await act(
            shortfalls.write_off_shortfall,
            shortfalls.WriteOffShortfall(shortfall_id=gap_id, note="x"),
        )


async def test_an_over_receipt_or_a_line_far_off_is_refused_naming_the_amounts(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s, payout = await short_scene(pool, clock)
    org, user = s.pool_org.org_id, s.pool_org.user_id
    out = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(
            ("2026-01-05", yuan(PAYOUT_FEN + 100), payout["reference"], "交易所", "T1"),
            ("2026-01-05", yuan(PAYOUT_FEN - 30_000), payout["reference"], "交易所", "T2"),
        ),
    )
    over, far = out.lines
    act = await act_as(pool, clock, user)
    with pytest.raises(Invalid) as refused:
        await act(
            recon.match_line,
            recon.MatchLine(line_id=over.id, reference=payout["reference"], short_reason="other"),
        )
    assert refused.value.code == "amount_over_payout"
    assert refused.value.params == {
        "line": 2,
        "got_fen": PAYOUT_FEN + 100,
        "reference": payout["reference"],
        "expected_fen": PAYOUT_FEN,
        "over_fen": 100,
    }
    with pytest.raises(Invalid) as refused:
        await act(
            recon.match_line,
            recon.MatchLine(
                line_id=far.id, reference=payout["reference"], short_reason="bank_charges"
            ),
        )
    assert refused.value.code == "short_beyond_tolerance"
    assert refused.value.params["short_fen"] == 30_000
    assert refused.value.params["tolerance_fen"] == 20_000  # ¥200.00, the default
    # Other words, as the policy is data: a tolerance of ¥500 takes the same line.
    roomy = ShortReceiptPolicy(max_short_fen=50_000)
    assert roomy.tolerance_fen(PAYOUT_FEN) == 50_000
    # "other" needs its words.
    with pytest.raises(Invalid) as refused:
        await act(
            recon.match_line,
            recon.MatchLine(
                line_id=far.id,
                reference=payout["reference"],
                short_reason="other",
                policy=roomy,
            ),
        )
    assert refused.value.code == "short_note_needed" and refused.value.field == "short_note"
    assert await pool.fetchval("SELECT count(*) FROM payout_shortfalls") == 0
    assert (
        await pool.fetchval("SELECT status FROM payouts WHERE id = $1", payout["id"]) == "expected"
    )
    assert await received_entries(pool, payout["id"]) == 0


def test_the_tolerance_is_the_smaller_of_the_amount_and_the_share() -> None:
    policy = ShortReceiptPolicy()
    assert policy.tolerance_fen(5_130_000) == 20_000  # ¥200.00 of ¥51,300.00 (5 %: ¥2,565)
    assert policy.tolerance_fen(100_000) == 5_000  # 5 % of ¥1,000.00
    with pytest.raises(Invalid) as refused:
        shortfalls.check_short(
            policy, line_no=3, got_fen=94_000, reference="HK1", expected_fen=100_000, field="f"
        )
    assert refused.value.params["tolerance_fen"] == 5_000
    assert (
        shortfalls.check_short(
            policy, line_no=3, got_fen=95_000, reference="HK1", expected_fen=100_000, field="f"
        )
        == 5_000
    )


async def test_two_managers_matching_the_same_line_at_once_make_one_match(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s, payout = await short_scene(pool, clock)
    org, user = s.pool_org.org_id, s.pool_org.user_id
    async with unit_of_work(Context(pool=pool, clock=clock), SYSTEM) as uow:
        other = await accounts.create_user(
            uow,
            org_id=org,
            email="second.manager@pool.test",
            display_name="第二位管理人",
            password="",
            password_hash=await pool.fetchval(
                "SELECT password_hash FROM users WHERE id = $1", user
            ),
            role="admin",
        )
    out = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(("2026-01-05", yuan(SEEN_FEN), payout["reference"], "交易所", "T1")),
    )
    (line,) = out.lines

    async def match(who: int, reason: str) -> recon.LineDone:
        act = await act_as(pool, clock, who)
        return await act(
            recon.match_line,
            recon.MatchLine(line_id=line.id, reference=payout["reference"], short_reason=reason),
        )

    results = await asyncio.gather(
        match(user, "bank_charges"), match(other, "short_paid"), return_exceptions=True
    )
    won = [x for x in results if isinstance(x, recon.LineDone)]
    lost = [x for x in results if isinstance(x, AppError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict) and lost[0].code == "settled_already"
    assert await pool.fetchval("SELECT count(*) FROM payout_shortfalls") == 1
    assert await received_entries(pool, payout["id"]) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'statement_line.match'")
        == 1
    )


async def test_the_statement_page_carries_each_open_lines_actions(
    client: Client, pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s, payout = await short_scene(pool, clock)
    org, user = s.pool_org.org_id, s.pool_org.user_id
    out = await do_import(
        pool,
        clock,
        org,
        user,
        statement_csv(
            ("2026-01-05", yuan(SEEN_FEN), payout["reference"], "交易所", "T1"),
            ("2026-01-05", "3.21", "结息", "本行", "T2"),
        ),
    )
    short, interest = out.lines
    sid = out.statement.id
    assert (await sign_in(client, s.pool_org.email)).status_code in (302, 303)
    page = await client.get(f"/reconciliation/statements/{sid}")
    assert f'data-testid="actions-{short.id}"' in page.text
    assert f'data-testid="actions-{interest.id}"' in page.text
    assert f'data-testid="suggested-{short.id}"' in page.text and "短收 ¥20.00" in page.text

    token = await csrf(client)
    # Without a reason: the statement page again, the amounts named, nothing written.
    r = await client.post(
        f"/reconciliation/lines/{short.id}/match",
        data={"_csrf_token": token, "reference": payout["reference"], "back": str(sid)},
        follow_redirects=False,
    )
    assert r.status_code == 422 and 'data-testid="statement-lines"' in r.text
    assert "比 " + payout["reference"] + " 应收的 ¥51,300.00 少 ¥20.00" in r.text
    assert await pool.fetchval("SELECT count(*) FROM payout_shortfalls") == 0
    r = await client.post(
        f"/reconciliation/lines/{short.id}/match",
        data={
            "_csrf_token": token,
            "reference": payout["reference"],
            "short_reason": "bank_charges",
            "back": str(sid),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/reconciliation/statements/{sid}?done=matched#line-2"
    r = await client.post(
        f"/reconciliation/lines/{interest.id}/set-aside",
        data={"_csrf_token": token, "note": "银行结息", "back": str(sid)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(
        f"/reconciliation/statements/{sid}?done=set_aside"
    )
    page = await client.get(f"/reconciliation/statements/{sid}")
    assert 'data-testid="line-short-2"' in page.text and "短收 ¥20.00（银行手续费）" in page.text
    gap_id = await pool.fetchval("SELECT id FROM payout_shortfalls")
    assert f'data-testid="shortfall-{gap_id}"' in page.text  # outstanding, with its actions
    r = await client.post(
        f"/reconciliation/shortfalls/{gap_id}/write-off",
        data={"_csrf_token": token, "note": "手续费由本池承担", "back": str(sid)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert await pool.fetchval("SELECT status FROM payout_shortfalls") == "written_off"
