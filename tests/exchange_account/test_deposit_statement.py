"""The exchange account's statement confirms deposits by reference and amount: against 50
registrations, exactly the lines whose transfer reference and amount are a deposit's
confirm it (the buyer told, the line the proof, audited as the exchange's act); every
other line waits with its reason in words, and the operator decides it by hand."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import DEPOSIT, check_books
from tests.exchange_account.scene import registrations, statement

CSV = {"Content-Type": "text/csv"}
URL = "/api/v1/operator/clearing"


async def _status(pool: asyncpg.Pool, registration_id: int) -> str:
    return str(
        await pool.fetchval("SELECT deposit_status FROM registrations WHERE id=$1", registration_id)
    )


async def test_a_statement_confirms_exactly_the_deposits_it_pays(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=47)
    assert len(s.refs) == 50
    b = [w.registration_id for w in s.open.waiting]  # 47 awaiting, their round open
    winner, loser = (x.registration_id for x in s.sold.buyers)
    late = s.sold.waiting[0].registration_id  # awaiting; its round closed
    ref = s.refs
    sale = s.sale
    confirmed_before = await pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE source_kind='deposit_confirmed'"
    )

    def spaced(r: str) -> str:  # as a person types it into a bank's form
        return f"保证金 {r[:3].lower()} {r[3:7]}-{r[7:]}"

    lines: list[tuple[int, str, str]] = []
    lines += [(DEPOSIT, ref[b[i]], f"T{i}") for i in range(20)]
    lines += [(DEPOSIT, spaced(ref[b[i]]), f"T{i}") for i in range(20, 30)]
    lines += [
        (DEPOSIT - 100_00, ref[b[30]], "SHORT"),  # short by 100 yuan
        (DEPOSIT + 1, ref[b[31]], "LONG"),  # long by one fen
        (DEPOSIT, ref[b[32]], "FIRST"),
        (DEPOSIT, f"{ref[b[32]]} 重复汇款", "SECOND"),  # a second line for one deposit
        (DEPOSIT, "BZJ2222222222", "NOSUCH"),  # a well-formed reference nobody has
        (DEPOSIT, "不明来款", "UNKNOWN"),
        (DEPOSIT, ref[loser], "CONFIRMED"),  # confirmed by hand, released at the close
        (DEPOSIT, ref[late], "LATE"),  # its round is over
        (sale.balance_due_fen - 1_00, sale.payment_reference, "JKSHORT"),
        (sale.balance_due_fen, f"{sale.payment_reference} 余款", "JK"),
        (-5_000_00, "退款", "OUT"),  # paid out: skipped, counted
    ]
    r = await client.post(
        f"{URL}/statements",
        content=statement(*lines, day=s.today),
        headers={**s.op_auth, **CSV},
    )
    assert r.status_code == 201, r.text
    done = r.json()
    assert done["counts"] == {"matched": 32, "amount_mismatch": 3, "unknown": 5}
    assert done["outgoing_skipped"] == 1 and done["skipped"] == 0
    assert sorted(done["settled"]["deposit"]) == sorted(ref[i] for i in [*b[:30], b[32]])
    assert done["settled"]["sale"] == [sale.payment_reference]
    assert done["settled"]["royalty"] == []

    # Exactly these deposits are confirmed; every other still awaits.
    paid = {*b[:30], b[32]}
    for reg in b:
        assert await _status(pool, reg) == ("confirmed" if reg in paid else "awaiting"), reg
    assert await _status(pool, late) == "awaiting"
    assert await _status(pool, loser) == "released"
    assert await _status(pool, winner) == "applied"  # the balance paid: the deposit applied
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE source_kind='deposit_confirmed'"
        )
        == confirmed_before + 31
    )
    assert await pool.fetchval("SELECT paid_at FROM sales WHERE id=$1", sale.id) is not None

    # Each confirmed deposit names its line as proof; the exchange did it, not a person.
    proofs = await pool.fetch(
        "SELECT r.id, r.confirmed_by, l.bank_txn_id, l.status FROM registrations r"
        " JOIN statement_lines l ON l.registration_id = r.id WHERE r.id = ANY($1::bigint[])",
        list(paid),
    )
    assert len(proofs) == 31
    assert {p["status"] for p in proofs} == {"matched"}
    assert {p["confirmed_by"] for p in proofs} == {None}
    assert {p["bank_txn_id"] for p in proofs if p["id"] == b[32]} == {"FIRST"}
    audits = await pool.fetch(
        "SELECT object_id, actor_user_id, after FROM audit_log WHERE action='deposit.confirm'"
        " AND after ? 'statement_line_id'"
    )
    assert sorted(int(a["object_id"]) for a in audits) == sorted(paid)
    assert {a["actor_user_id"] for a in audits} == {None}
    sale_audit = await pool.fetchval(
        "SELECT after FROM audit_log WHERE action='sale.pay' AND object_id=$1", str(sale.id)
    )
    assert (sale_audit["bank_txn_id"], sale_audit["matched"]) == ("JK", "statement")
    # The buyers are told: one deposit_confirmed event each.
    told = await pool.fetch(
        "SELECT dedupe_key FROM outbox WHERE event='deposit_confirmed'"
        " AND dedupe_key = ANY($1::text[])",
        [f"deposit_confirmed:{i}" for i in paid],
    )
    assert len(told) == 31

    # The lines that wait, with their reasons.
    r = await client.get(f"{URL}/exceptions", headers={**s.op_auth, "Accept-Language": "en"})
    assert r.status_code == 200
    waiting = {x["bank_txn_id"]: x for x in r.json()}
    assert {t: (x["status"], x["reason"]["code"]) for t, x in waiting.items()} == {
        "SHORT": ("amount_mismatch", "deposit_amount_differs"),
        "LONG": ("amount_mismatch", "deposit_amount_differs"),
        "SECOND": ("unknown", "deposit_second_in_file"),
        "NOSUCH": ("unknown", "deposit_no_such_reference"),
        "UNKNOWN": ("unknown", "nothing_fits"),
        "CONFIRMED": ("unknown", "deposit_confirmed_already"),
        "LATE": ("unknown", "deposit_round_over"),
        "JKSHORT": ("amount_mismatch", "sale_amount_differs"),
    }
    assert waiting["SHORT"]["reason"]["params"]["difference_fen"] == -100_00
    assert (
        "¥-100.00" in waiting["SHORT"]["reason"]["detail"]
        or "100.00" in (waiting["SHORT"]["reason"]["detail"])
    )
    assert "line" in waiting["SECOND"]["reason"]["detail"]

    # The operator decides them by hand.
    line = {t: x["id"] for t, x in waiting.items()}

    async def match(txn: str, reg: int) -> Any:
        return await client.post(
            f"{URL}/lines/{line[txn]}/deposit",
            json={"transfer_reference": ref[reg].lower(), "note": "按户名核对"},
            headers=s.op_auth,
        )

    r = await match("SHORT", b[30])  # the amount is not the deposit
    assert r.status_code == 422 and r.json()["code"] == "deposit_amount_mismatch", r.text
    r = await match("SECOND", b[32])  # confirmed already, by the first line
    assert r.status_code == 409 and r.json()["code"] == "deposit_confirmed_already", r.text
    r = await match("UNKNOWN", b[33])  # no reference, but it is b33's deposit
    assert r.status_code == 200, r.text
    assert r.json()["released"] is False and r.json()["line"]["status"] == "manual"
    r = await match("LATE", late)  # confirmed now, its round over: released at once
    assert r.status_code == 200 and r.json()["released"] is True, r.text
    assert await _status(pool, b[33]) == "confirmed"
    assert await _status(pool, late) == "released"
    assert (
        await pool.fetchval("SELECT confirmed_by FROM registrations WHERE id=$1", b[33])
        == s.operator_user
    )
    r = await match("UNKNOWN", b[34])  # a line is decided once
    assert r.status_code == 409 and r.json()["code"] == "settled_already", r.text
    r = await client.post(
        f"{URL}/lines/{line['NOSUCH']}/set-aside",
        json={"note": "非本所报名，已退回汇款人"},
        headers=s.op_auth,
    )
    assert r.status_code == 200 and r.json()["status"] == "set_aside", r.text
    r = await client.post(
        f"{URL}/lines/{line['NOSUCH']}/set-aside", json={"note": "再次"}, headers=s.op_auth
    )
    assert r.status_code == 409 and r.json()["code"] == "set_aside_already", r.text
    assert {
        a["action"]
        for a in await pool.fetch(
            "SELECT action FROM audit_log WHERE object_kind='statement_line' AND object_id = ANY($1)",
            [str(line[t]) for t in ("UNKNOWN", "LATE", "NOSUCH")],
        )
    } == {"statement_line.match", "statement_line.set_aside"}
    r = await client.get(f"{URL}/exceptions", headers=s.op_auth)
    assert {x["bank_txn_id"] for x in r.json()} == {
        "SHORT",
        "LONG",
        "SECOND",
        "CONFIRMED",
        "JKSHORT",
    }

    # The same file again: 409; an overlapping statement: each transfer once.
    again = statement(*lines, day=s.today)
    r = await client.post(f"{URL}/statements", content=again, headers={**s.op_auth, **CSV})
    assert r.status_code == 409 and r.json()["code"] == "duplicate_statement"
    overlap = statement((DEPOSIT, ref[b[0]], "T0"), (DEPOSIT, ref[b[35]], "T35"), day=s.today)
    r = await client.post(f"{URL}/statements", content=overlap, headers={**s.op_auth, **CSV})
    assert r.status_code == 201, r.text
    assert r.json()["skipped"] == 1 and r.json()["settled"]["deposit"] == [ref[b[35]]]
    assert await pool.fetchval("SELECT count(*) FROM statement_lines WHERE bank_txn_id='T0'") == 1
    await check_books(pool)


async def test_a_malformed_statement_is_refused_by_line_and_column_with_nothing_written(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=2)
    good = s.refs[s.open.waiting[0].registration_id]
    before = [
        await pool.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("statements", "statement_lines", "ledger_entries", "outbox", "audit_log")
    ]
    bad = (
        "交易日期,金额,附言,流水号\r\n"
        f"{s.today.isoformat()},{DEPOSIT // 100}.00,{good},T1\r\n"
        f"{s.today.isoformat()},七万元,BZJ,T2\r\n"
    ).encode()
    r = await client.post(f"{URL}/statements", content=bad, headers={**s.op_auth, **CSV})
    assert r.status_code == 422, r.text
    problems = r.json()["errors"]
    # Line 3 (the header is line 1), the amount column, as the file names it.
    assert [(p["line"], p["field"], p["params"]["column"]) for p in problems] == [
        (3, "amount", "金额")
    ], problems
    r = await client.post(
        f"{URL}/statements", content=b"\xff\xfe\x00garbage", headers={**s.op_auth, **CSV}
    )
    assert r.status_code in (400, 422), r.text
    r = await client.post(f"{URL}/statements", content=bad, headers={**s.op_auth})
    assert r.status_code == 415
    r = await client.post(
        f"{URL}/lines/999999/deposit", json={"transfer_reference": good}, headers=s.op_auth
    )
    assert r.status_code == 404
    after = [
        await pool.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("statements", "statement_lines", "ledger_entries", "outbox", "audit_log")
    ]
    assert after == before
    assert await _status(pool, s.open.waiting[0].registration_id) == "awaiting"
