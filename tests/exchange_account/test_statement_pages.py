"""The operator's page for the exchange account's statement: import, the confirmed
deposits listed, the lines that wait with their reasons in words, and the hand decisions
(match a line to a registration's deposit, set a line aside) with refusals beside the form
and nothing written."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.settings import Settings
from tests.auctions.test_closing import DEPOSIT
from tests.exchange_account.scene import registrations, statement
from tests.licensing.test_contract_pages import _as


async def test_the_operator_imports_and_decides_on_the_clearing_page(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    s = await registrations(pool, clock, settings, waiting=3)
    b = [w.registration_id for w in s.open.waiting]
    token = await _as(client, pool, s.operator_user)
    assert (await client.get("/operator/clearing")).status_code == 200
    data = statement(
        (DEPOSIT, s.refs[b[0]], "P1"),
        (DEPOSIT - 1_00, s.refs[b[1]], "P2"),
        (DEPOSIT, "汇款", "P3"),
        day=s.today,
    )
    r = await client.post(
        "/operator/clearing/statements",
        data={"_csrf_token": token},
        files={"file": ("exchange.csv", data, "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert f'data-testid="imported-deposit"><code>{s.refs[b[0]]}</code>' in r.text
    lines = {
        row["bank_txn_id"]: row["id"]
        for row in await pool.fetch("SELECT id, bank_txn_id FROM statement_lines")
    }
    assert f'data-testid="exception-{lines["P2"]}"' in r.text
    assert "未确认" in r.text  # the short line's reason, in words (zh_CN)
    assert f'data-testid="exception-{lines["P1"]}"' not in r.text

    async def post(url: str, **form: str) -> Any:
        return await client.post(url, data={**form, "_csrf_token": token})

    deposit = f"/operator/clearing/lines/{lines['P3']}/deposit"
    r = await post(deposit, transfer_reference="not a reference")
    assert r.status_code == 422 and 'data-testid="err-deposit_line-transfer_reference"' in r.text
    r = await post(deposit, transfer_reference="BZJ2222222222")  # nobody's: said beside it
    assert r.status_code == 404 and 'data-testid="err-deposit_line-transfer_reference"' in r.text
    assert await pool.fetchval("SELECT deposit_status FROM registrations WHERE id=$1", b[2]) == (
        "awaiting"
    )
    r = await post(deposit, transfer_reference=s.refs[b[2]].lower())
    assert r.status_code == 200 and 'data-testid="line-decided"' in r.text, r.text
    assert await pool.fetchval("SELECT deposit_status FROM registrations WHERE id=$1", b[2]) == (
        "confirmed"
    )
    aside = f"/operator/clearing/lines/{lines['P2']}/set-aside"
    r = await post(aside, note="")
    assert r.status_code == 422 and 'data-testid="err-set_aside-note"' in r.text
    r = await post(aside, note="少汇 1 元，已请竞买人补足后重新汇款")
    assert r.status_code == 200 and 'data-testid="no-exceptions"' in r.text, r.text
