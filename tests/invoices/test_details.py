"""Invoicing details (docs/rules.md §Invoices): validated field by field — a bad taxpayer
number, a missing field of a special invoice, a special invoice for a person — each a 4xx
naming the field with nothing written; a good save is audited; only a writer may save."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from tests.factories import csrf, make_org, make_token, sign_in
from tests.invoices.scene import SPECIAL

URL = "/api/v1/invoices/details"


async def _written(pool: asyncpg.Pool) -> tuple[int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM invoice_details"),
        await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'invoice_details.set'"),
    )


async def test_bad_details_answer_4xx_naming_the_field_and_write_nothing(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="buyer")
    token = await make_token(pool, clock.now(), user, ["invoices:read", "invoices:write"])
    auth = {"Authorization": f"Bearer {token}"}
    bad_check = SPECIAL["taxpayer_number"][:-1] + "X"  # the check character is N
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"taxpayer_number": bad_check}, 422, "taxpayer_number", "credit_code_check_char"),
        ({"taxpayer_number": "9151010"}, 422, "taxpayer_number", "taxpayer_number_length"),
        (
            {"taxpayer_number": "51010A7PQ3X5AAA"},
            422,
            "taxpayer_number",
            "taxpayer_number_bad_char",
        ),
        ({"taxpayer_number": ""}, 422, "taxpayer_number", "invoice_field_required"),
        ({"bank_account": "   "}, 422, "bank_account", "invoice_field_required"),
        ({"address_phone": ""}, 422, "address_phone", "invoice_field_required"),
        ({"title": " "}, 422, "title", "required"),
        ({"invoice_type": "vat_fancy"}, 400, "invoice_type", ""),
        ({"title": "x" * 201}, 400, "title", ""),
        ({"note": "x"}, 400, "note", ""),
    ]
    for change, status, field, code in cases:
        r = await client.put(URL, json={**SPECIAL, **change}, headers=auth)
        assert r.status_code == status, (change, r.text)
        assert r.json()["field"] == field, (change, r.json())
        if code:
            assert r.json()["code"] == code, (change, r.json())
    assert await _written(pool) == (0, 0)

    # An ordinary invoice needs the name and the taxpayer number only; older numbers pass.
    for number in ("510104MA6C8XY4X", "51010419800101123X01"):
        body = {"invoice_type": "vat_ordinary", "title": "某公司", "taxpayer_number": number}
        r = await client.put(URL, json=body, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["details"]["taxpayer_number"] == number
    # Full-width and lower case typed: stored normalised.
    typed = SPECIAL["taxpayer_number"].lower().replace("9", "９")
    r = await client.put(URL, json={**SPECIAL, "taxpayer_number": typed}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["details"]["taxpayer_number"] == SPECIAL["taxpayer_number"]
    assert await _written(pool) == (1, 3)
    r = await client.get(URL, headers=auth)
    assert r.json()["details"]["invoice_type"] == "vat_special" and r.json()["person"] is False

    # A token that may only read may not write.
    reader = await make_token(pool, clock.now(), user, ["invoices:read"])
    r = await client.put(URL, json=SPECIAL, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403


async def test_a_person_gets_an_ordinary_invoice_in_its_name(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, user, _ = await make_org(pool, clock.now(), kind="buyer")
    await pool.execute(
        "UPDATE organisations SET party_type = 'individual', credit_code = NULL,"
        " id_number = '11010519491231002X' WHERE id = $1",
        org,
    )
    token = await make_token(pool, clock.now(), user, ["invoices:read", "invoices:write"])
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.put(URL, json={**SPECIAL, "title": "王小明"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "invoice_type"
    assert await _written(pool) == (0, 0)
    r = await client.put(
        URL, json={"invoice_type": "vat_ordinary", "title": "王小明"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["details"]["taxpayer_number"] is None


async def test_the_details_page(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, _, email = await make_org(pool, clock.now(), kind="bank")
    await sign_in(client, email)
    r = await client.get("/invoices")
    assert r.status_code == 200 and 'data-testid="details-missing"' in r.text
    form = {"_csrf_token": await csrf(client), **SPECIAL}
    r = await client.post(
        "/invoices/details", data={**form, "taxpayer_number": "91510100MA6C8XY41X"}
    )
    assert r.status_code == 422
    assert 'id="err-details-taxpayer_number"' in r.text and "校验码" in r.text
    assert 'value="成都锂能科技有限公司"' in r.text  # what was typed stays
    assert await _written(pool) == (0, 0)
    r = await client.post("/invoices/details", data=form)
    assert r.status_code == 200 and 'data-testid="invoices-done"' in r.text
    assert "增值税专用发票" in r.text and SPECIAL["taxpayer_number"] in r.text
    assert await _written(pool) == (1, 1)
