"""The operator's export of invoice requests for the finance system and the issued numbers
recorded back (docs/invoices.md): the file parsed back holds each request's snapshot; two
exports at once never export a request twice; the import of issued numbers is all or
nothing with its problems by line and column; an issued invoice is told to its payer."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.cases.services import china_today
from market.clock import FrozenClock
from market.invoices import exports
from market.settings import Settings
from tests.factories import csrf, make_token, sign_in
from tests.invoices.scene import Exchange, exchange, give_details, paid, rows, sold

EXPORTS = "/api/v1/operator/invoices/exports"
ISSUED = "/api/v1/operator/invoices/issued"


def parse(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf") and b"\r\n" in body
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


async def _three_requests(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> tuple[Exchange, list[Any]]:
    """Three paid sales with their requests: two commissions (the bank) and a premium."""
    ex = await exchange(pool, clock)
    await give_details(pool, clock, ex.bank_user, title="示范银行股份有限公司")
    made = []
    for premium in (0, 0, 250):
        s = await sold(pool, clock, settings, ex, premium_bp=premium)
        if premium:
            await give_details(
                pool,
                clock,
                s.buyer_user,
                invoice_type="vat_ordinary",
                title="竞买人1有限公司",
                address_phone="",
                bank_account="",
            )
        await paid(pool, clock, ex, s)
        made.append(s)
    assert await pool.fetchval("SELECT count(*) FROM invoice_requests") == 3
    return ex, made


async def test_the_export_parsed_back_and_the_issued_numbers_recorded(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex, made = await _three_requests(pool, clock, settings)
    token = await make_token(pool, clock.now(), ex.operator_user, ["operator:write"])
    auth = {"Authorization": f"Bearer {token}"}
    period = china_today(clock.now()).strftime("%Y-%m")
    later = (china_today(clock.now()) + timedelta(days=40)).strftime("%Y-%m")
    r = await client.post(EXPORTS, json={"period": later}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "period", r.text
    r = await client.post(EXPORTS, json={"period": "2026-13"}, headers=auth)
    assert r.status_code == 400 and r.json()["field"] == "period", r.text
    assert await pool.fetchval("SELECT count(*) FROM invoice_exports") == 0

    r = await client.post(EXPORTS, json={"period": period}, headers=auth)
    assert r.status_code == 201, r.text
    export = r.json()
    assert export["requests"] == 3
    r = await client.post(EXPORTS, json={"period": period}, headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "invoice_nothing_to_export"
    file = await client.get(f"{EXPORTS}/{export['id']}", headers=auth)
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    import hashlib

    assert hashlib.sha256(file.content).hexdigest() == export["sha256"]
    lines = parse(file.content)
    assert list(lines[0]) == list(exports.COLUMNS)
    requests = await rows(pool, "SELECT * FROM invoice_requests ORDER BY id")
    assert [int(x["request_id"]) for x in lines] == [q["id"] for q in requests]
    for line, q, s in zip(lines, requests, made, strict=True):
        assert int(line["sale_id"]) == s.sale.id == q["sale_id"]
        assert line["lot_reference"] == s.scene.lot.reference
        assert (line["kind"], line["fee_kind"]) == ("invoice", s.sale.fee_kind)
        assert line["title"] == q["title"] and line["taxpayer_number"] == q["taxpayer_number"]
        assert Decimal(line["amount"]) * 100 == s.sale.fee_fen
        assert Decimal(line["net_amount"]) + Decimal(line["tax_amount"]) == Decimal(line["amount"])
        assert Decimal(line["tax_amount"]) * 100 == q["tax_fen"]
        assert line["vat_rate"] == "0.06"
        assert line["requested_on"] == china_today(q["created_at"]).isoformat()
        assert line["invoice_number"] == line["invoice_date"] == ""
        assert q["status"] == "exported" and q["export_id"] == export["id"]
    assert [x["invoice_type"] for x in lines] == ["vat_special", "vat_special", "vat_ordinary"]
    assert lines[2]["bank_account"] == "" and lines[2]["item"] == "*经纪代理服务*买方佣金"
    assert lines[0]["bank_account"].startswith("中国银行")

    # The finance system fills in the file; a bad line rejects it whole.
    today = china_today(clock.now()).isoformat()
    for n, line in enumerate(lines):
        line["invoice_number"] = f"2551200000001234567{n}"
        line["invoice_date"] = today

    def file_of(found: list[dict[str, str]]) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(exports.COLUMNS), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(found)
        return out.getvalue().encode("utf-8")

    csv_auth = {**auth, "Content-Type": "text/csv"}
    broken = [dict(x) for x in lines]
    broken[0]["invoice_number"] = "12345"
    broken[1]["invoice_date"] = "2026-02-30"
    broken[2]["request_id"] = "999999"
    r = await client.post(ISSUED, content=file_of(broken), headers=csv_auth)
    assert r.status_code == 422 and r.json()["code"] == "invoice_import_rejected", r.text
    found = [(e["line"], e["field"], e["code"]) for e in r.json()["errors"]]
    assert found == [
        (2, "invoice_number", "invoice_number_format"),
        (3, "invoice_date", "not_a_date"),
    ]  # the form first; the look-ups once the form is right
    broken[0]["invoice_number"] = lines[0]["invoice_number"]
    broken[1]["invoice_date"] = (china_today(clock.now()) + timedelta(days=1)).isoformat()
    broken[2]["invoice_number"] = lines[0]["invoice_number"]  # one number twice in the file
    r = await client.post(ISSUED, content=file_of(broken), headers=csv_auth)
    found = [(e["line"], e["field"], e["code"]) for e in r.json()["errors"]]
    assert found == [(4, "invoice_number", "invoice_duplicate_number")]
    broken[2]["invoice_number"] = lines[2]["invoice_number"]
    r = await client.post(ISSUED, content=file_of(broken), headers=csv_auth)
    assert r.status_code == 422, r.text
    found = [(e["line"], e["field"], e["code"]) for e in r.json()["errors"]]
    assert found == [
        (3, "invoice_date", "invoice_date_future"),
        (4, "request_id", "invoice_no_such_request"),
    ]
    assert await pool.fetchval("SELECT count(*) FROM invoice_requests WHERE status='issued'") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event='invoice_issued'") == 0

    r = await client.post(ISSUED, content=file_of(lines), headers=csv_auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"issued": [q["id"] for q in requests], "unchanged": []}
    again = await client.post(ISSUED, content=file_of(lines), headers=csv_auth)
    assert again.json() == {"issued": [], "unchanged": [q["id"] for q in requests]}
    issued = await rows(pool, "SELECT invoice_number, status FROM invoice_requests ORDER BY id")
    assert [x["invoice_number"] for x in issued] == [x["invoice_number"] for x in lines]
    told = await rows(
        pool,
        "SELECT recipient_org_id, payload FROM outbox WHERE event='invoice_issued' ORDER BY id",
    )
    assert [t["recipient_org_id"] for t in told] == [ex.bank_org, ex.bank_org, made[2].buyer_org]
    assert told[2]["payload"]["invoice_number"] == lines[2]["invoice_number"]
    # A number once recorded stays: another number for the same request is refused.
    lines[0]["invoice_number"] = "25512000000099999999"
    r = await client.post(ISSUED, content=file_of(lines[:1]), headers=csv_auth)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invoice_already_issued"
    twice = b"request_id,invoice_number,invoice_date\r\n1,12345678,2026-01-01\r\n2,12345678,x\r\n"
    r = await client.post(ISSUED, content=twice, headers=csv_auth)
    assert [(e["line"], e["field"], e["code"]) for e in r.json()["errors"]] == [
        (3, "invoice_number", "invoice_duplicate_number"),
        (3, "invoice_date", "not_a_date"),
    ]
    r = await client.post(ISSUED, content=b"request_id,amount\r\n1,2\r\n", headers=csv_auth)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"invoice_number", "invoice_date"}
    r = await client.post(ISSUED, content=b"x", headers={**auth, "Content-Type": "image/png"})
    assert r.status_code == 415


async def test_two_exports_at_once_never_export_a_request_twice(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex, _ = await _three_requests(pool, clock, settings)
    token = await make_token(pool, clock.now(), ex.operator_user, ["operator:write"])
    auth = {"Authorization": f"Bearer {token}"}
    period = china_today(clock.now()).strftime("%Y-%m")
    answers = await asyncio.gather(
        *(client.post(EXPORTS, json={"period": period}, headers=auth) for _ in range(6))
    )
    statuses = sorted(a.status_code for a in answers)
    assert 201 in statuses and set(statuses) <= {201, 409}, [a.text for a in answers]
    exported: list[int] = []
    for a in answers:
        if a.status_code == 201:
            body = (await client.get(f"{EXPORTS}/{a.json()['id']}", headers=auth)).content
            exported += [int(x["request_id"]) for x in parse(body)]
    ids = [q["id"] for q in await rows(pool, "SELECT id FROM invoice_requests ORDER BY id")]
    assert sorted(exported) == ids  # every request once, none twice
    assert (
        await pool.fetchval("SELECT sum(requests) FROM invoice_exports")
        == len(ids)
        == await pool.fetchval("SELECT count(*) FROM invoice_requests WHERE status = 'exported'")
    )


async def test_the_operators_page_exports_and_records_by_hand(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex, made = await _three_requests(pool, clock, settings)
    await sign_in(client, ex.operator_email)
    r = await client.get("/operator/invoices")
    assert r.status_code == 200 and r.text.count('data-status="requested"') == 3
    token = await csrf(client)
    period = china_today(clock.now()).strftime("%Y-%m")
    r = await client.post("/operator/invoices/exports", data={"_csrf_token": token, "period": "x"})
    assert r.status_code in (400, 422) and 'id="err-export-period"' in r.text
    r = await client.post(
        "/operator/invoices/exports", data={"_csrf_token": token, "period": period}
    )
    assert r.status_code == 200 and 'data-testid="invoices-exported"' in r.text
    export_id = await pool.fetchval("SELECT max(id) FROM invoice_exports")
    file = await client.get(f"/operator/invoices/exports/{export_id}")
    assert file.status_code == 200 and len(parse(file.content)) == 3
    first = await pool.fetchval("SELECT min(id) FROM invoice_requests")
    form = {
        "_csrf_token": token,
        "request_id": str(first),
        "invoice_number": "1234567",
        "invoice_date": china_today(clock.now()).isoformat(),
    }
    r = await client.post("/operator/invoices/issue", data=form)
    assert r.status_code == 422 and 'id="err-issue-invoice_number"' in r.text
    r = await client.post(
        "/operator/invoices/issue",
        data={**form, "request_id": "999999", "invoice_number": "12345678"},
    )
    assert r.status_code == 404 and 'id="err-issue-request_id"' in r.text
    early = (china_today(clock.now()) - timedelta(days=9)).isoformat()
    r = await client.post(
        "/operator/invoices/issue",
        data={**form, "invoice_number": "12345678", "invoice_date": early},
    )
    assert r.status_code == 422 and 'id="err-issue-invoice_date"' in r.text
    assert await pool.fetchval("SELECT count(*) FROM invoice_requests WHERE status='issued'") == 0
    r = await client.post("/operator/invoices/issue", data={**form, "invoice_number": "12345678"})
    assert r.status_code == 200 and 'data-testid="invoices-recorded"' in r.text
    status = await pool.fetchval("SELECT status FROM invoice_requests WHERE id = $1", first)
    assert status == "issued"
    bad = b"request_id,invoice_number,invoice_date\r\n" + f"{first},1,2026\r\n".encode()
    r = await client.post(
        "/operator/invoices/issued",
        data={"_csrf_token": token},
        files={"file": ("issued.csv", bad, "text/csv")},
    )
    assert r.status_code == 422 and 'data-testid="rejected"' in r.text
    assert "<code>invoice_number</code>" in r.text and "8 位数字" in r.text
    del made


async def test_two_imports_of_one_file_at_once_issue_each_invoice_once(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    ex, _ = await _three_requests(pool, clock, settings)
    token = await make_token(pool, clock.now(), ex.operator_user, ["operator:write"])
    auth = {"Authorization": f"Bearer {token}"}
    period = china_today(clock.now()).strftime("%Y-%m")
    export = (await client.post(EXPORTS, json={"period": period}, headers=auth)).json()
    lines = parse((await client.get(f"{EXPORTS}/{export['id']}", headers=auth)).content)
    body = "request_id,invoice_number,invoice_date\r\n" + "".join(
        f"{x['request_id']},1234567{n},{china_today(clock.now()).isoformat()}\r\n"
        for n, x in enumerate(lines)
    )
    answers = await asyncio.gather(
        *(
            client.post(ISSUED, content=body.encode(), headers={**auth, "Content-Type": "text/csv"})
            for _ in range(4)
        )
    )
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    issued = sorted(i for a in answers for i in a.json()["issued"])
    assert issued == sorted(int(x["request_id"]) for x in lines)  # each once
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event='invoice_issued'") == 3
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action='invoice.issued'") == 3
