"""The licence contracts' pages over HTTP (docs/rules.md §Licence contracts, §Licensing
royalties): the licensee reports by form and by CSV file (a bad file is refused line by
line and column by column, nothing written); the bank records the recordal and an audit,
and is refused a termination before the grace period; another organisation gets 404; the
operator imports the clearing account's statement and records a payment by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.factories import csrf, sign_in
from tests.licensing.scene import beijing
from tests.licensing.test_royalty_commands import PDF, scene
from tests.licensing.test_worked_example import statement

CSV_TYPE = "text/csv"


async def _as(client: AsyncTestClient[Any], pool: asyncpg.Pool, user_id: int) -> str:
    """Sign `user_id` in on the client; the CSRF token to post with."""
    client.cookies.clear()
    email = await pool.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    assert (await sign_in(client, email)).status_code < 400
    return await csrf(client)


async def _reports(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM royalty_reports"))


async def test_the_contract_pages(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    s = await scene(pool)
    k = s.contract
    url = f"/licences/{k.id}"

    # --- the licensee, after the first quarter ----------------------------------------
    clock.set(beijing(date(2027, 4, 2)))
    token = await _as(client, pool, s.licensee_user)
    listed = await client.get("/licences")
    assert listed.status_code == 200 and f'data-contract-id="{k.id}"' in listed.text
    assert "履行中" in listed.text
    shown = await client.get(url)
    assert shown.status_code == 200
    assert 'data-testid="report-form"' in shown.text
    assert 'data-testid="adjust-form"' not in shown.text  # the bank's, not the licensee's
    assert 'data-testid="recordal-form"' in shown.text
    assert "6%" in shown.text and "2027-07-01" in shown.text  # the terms; the recordal's due date

    # A bad CSV file: every problem by line and column, nothing recorded.
    bad = "期间,净销售额(元),数量\n2027Q1,abc,0\n2027Q9,100,x\n".encode()
    r = await client.post(
        f"{url}/reports.csv",
        data={"_csrf_token": token},
        files={"file": ("report.csv", bad, CSV_TYPE)},
    )
    assert r.status_code == 422, r.text
    assert 'data-testid="err-report_csv-file"' in r.text
    assert 'data-line="2" data-column="净销售额(元)"' in r.text
    assert 'data-line="3" data-column="期间"' in r.text
    assert 'data-line="3" data-column="数量"' in r.text
    assert await _reports(pool) == 0

    # The form: wrong values beside their fields, nothing recorded.
    for data, field in [
        ({"period": "2027Q2", "net_sales": "1000000"}, "period"),  # not yet ended
        ({"period": "2027Q1", "net_sales": "-5"}, "net_sales"),
        ({"period": "2027Q1", "net_sales": "1000000", "units": "1.5"}, "units"),
        ({"period": "", "net_sales": "1000000"}, "period"),
    ]:
        r = await client.post(f"{url}/reports", data={**data, "_csrf_token": token})
        assert r.status_code in (409, 422), (field, r.status_code)
        assert f'data-testid="err-report-{field}"' in r.text, field
    assert await _reports(pool) == 0

    r = await client.post(
        f"{url}/reports",
        data={"period": "2027Q1", "net_sales": "1,000,000.00", "units": "", "_csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    book = await client.get(url)
    q1 = book.text.split('data-item="2027Q1"')[1].split("</tr>")[0]
    assert "¥60,000.00" in q1 and f"{k.reference}-2027Q1" in q1
    r = await client.post(
        f"{url}/reports", data={"period": "2027Q1", "net_sales": "1", "_csrf_token": token}
    )
    assert r.status_code == 409 and 'data-testid="err-report-period"' in r.text

    # --- another organisation: 404 -----------------------------------------------------
    stranger = await _as(client, pool, s.stranger_user)
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"{url}/recordal/document")).status_code == 404
    r = await client.post(
        f"{url}/reports", data={"period": "2027Q1", "net_sales": "1", "_csrf_token": stranger}
    )
    assert r.status_code == 404
    assert f'data-contract-id="{k.id}"' not in (await client.get("/licences")).text

    # --- the bank: recordal, audit, termination refused --------------------------------
    clock.set(beijing(date(2027, 4, 3)))
    token = await _as(client, pool, s.bank_user)
    shown = await client.get(url)
    assert (
        'data-testid="adjust-form"' in shown.text and 'data-testid="report-form"' not in shown.text
    )
    recordal = {"recordal_number": "2027990000042", "recorded_on": "2027-04-01"}
    r = await client.post(f"{url}/recordal", data={**recordal, "_csrf_token": token})
    assert r.status_code == 422 and 'data-testid="err-recordal-document"' in r.text
    r = await client.post(
        f"{url}/recordal",
        data={**recordal, "recorded_on": "2027-05-01", "_csrf_token": token},
        files={"document": ("备案证明.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422 and 'data-testid="err-recordal-recorded_on"' in r.text
    r = await client.post(
        f"{url}/recordal",
        data={**recordal, "_csrf_token": token},
        files={"document": ("备案证明.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    shown = await client.get(url)
    assert 'data-testid="recordal-number">2027990000042' in shown.text
    assert 'data-testid="recordal-form"' not in shown.text
    document = await client.get(f"{url}/recordal/document")
    assert document.status_code == 200 and document.content == PDF

    r = await client.post(
        f"{url}/adjustments",
        data={"period": "2027Q1", "net_sales": "abc", "reason": "", "_csrf_token": token},
    )
    assert r.status_code == 422
    assert 'data-testid="err-adjust-net_sales"' in r.text
    assert 'data-testid="err-adjust-reason"' in r.text
    r = await client.post(
        f"{url}/adjustments",
        data={
            "period": "2027Q1",
            "net_sales": "1500000",
            "reason": "经销商渠道未计入",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    q1 = (await client.get(url)).text.split('data-item="2027Q1"')[1].split("</tr>")[0]
    assert "¥90,000.00" in q1  # 1,500,000 × 6 %, the period not yet paid

    assert 'data-testid="not-terminable"' in (await client.get(url)).text
    r = await client.post(f"{url}/termination", data={"reason": "逾期", "_csrf_token": token})
    assert r.status_code == 409 and 'data-testid="err-terminate-form"' in r.text
    assert await pool.fetchval("SELECT status FROM licence_contracts") == "active"

    # --- the operator: the clearing statement and a payment by hand --------------------
    clock.set(beijing(date(2027, 4, 20)))
    token = await _as(client, pool, s.operator_user)
    assert f'data-contract-id="{k.id}"' in (await client.get("/operator/licences")).text
    assert (await client.get(f"/operator/licences/{k.id}")).status_code == 200
    assert (await client.get("/operator/clearing")).status_code == 200
    r = await client.post(
        "/operator/clearing/statements",
        data={"_csrf_token": token},
        files={"file": ("clearing.csv", b"nonsense", CSV_TYPE)},
    )
    assert r.status_code == 422 and 'data-testid="err-import-file"' in r.text
    paid_q1 = statement(
        (date(2027, 4, 20), 9_000_000, f"{k.reference}-2027Q1 许可费", "T1"),
        (date(2027, 4, 20), 1_234_00, "不明来款", "T2"),
    )
    r = await client.post(
        "/operator/clearing/statements",
        data={"_csrf_token": token},
        files={"file": ("clearing.csv", paid_q1, CSV_TYPE)},
    )
    assert r.status_code == 200, r.text
    assert 'data-testid="imported-matched">1<' in r.text
    assert 'data-testid="imported-exceptions">1<' in r.text
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 1

    clock.set(beijing(date(2027, 7, 2)))
    token = await _as(client, pool, s.licensee_user)
    good = "期间,净销售额(元),数量\n2027Q2,500000,0\n".encode()
    r = await client.post(
        f"{url}/reports.csv",
        data={"_csrf_token": token},
        files={"file": ("report.csv", good, CSV_TYPE)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert await _reports(pool) == 2

    clock.set(beijing(date(2027, 7, 10)))
    token = await _as(client, pool, s.operator_user)
    payment = {"contract": k.reference, "period": "2027Q2", "paid_on": "2027-07-10"}
    for data, field in [
        ({**payment, "amount": "29999"}, "amount"),
        ({**payment, "contract": "XK-1999-000001", "amount": "30000"}, "contract"),
        ({**payment, "period": "2027Q4", "amount": "30000"}, "period"),
        ({**payment, "paid_on": "someday", "amount": "30000"}, "paid_on"),
    ]:
        r = await client.post("/operator/clearing/payments", data={**data, "_csrf_token": token})
        assert r.status_code in (404, 409, 422), (field, r.status_code)
        assert f'data-testid="err-payment-{field}"' in r.text, (field, r.text[-3000:])
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 1
    r = await client.post(
        "/operator/clearing/payments", data={**payment, "amount": "30000", "_csrf_token": token}
    )
    assert r.status_code == 200 and 'data-testid="payment-recorded"' in r.text
    assert await pool.fetchval("SELECT count(*) FROM royalty_payments") == 2
    q2 = (await client.get(f"/operator/licences/{k.id}")).text.split('data-item="2027Q2"')[1]
    assert "已结清" in q2.split("</tr>")[0]

    # The page in English.
    client.cookies.set("ipx_lang", "en")
    english = await client.get(f"/operator/licences/{k.id}")
    assert "Licence contract" in english.text and "Payment reference" in english.text
