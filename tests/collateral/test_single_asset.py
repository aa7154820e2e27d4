"""One asset by form: checked by the CSV line's own validator (errors named by field,
nothing written), written by the import as an addition to its pledge; a later CSV file
replaces only the assets files brought."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.collateral import csv_format
from tests.collateral.factories import (
    count_rows,
    import_file,
    patent_number,
    portfolio_rows,
    to_csv,
)
from tests.factories import csrf, make_org, make_token, sign_in

TABLES = ("ip_assets", "pledges", "pledge_assets", "pledgors", "loans", "collateral_imports")


async def _bank(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> tuple[int, int]:
    org, user, email = await make_org(pool, clock.now(), kind="bank")
    assert (await sign_in(client, email)).status_code in (302, 303)
    return org, user


def _one_row(serial: int = 1) -> dict[str, str]:
    row = portfolio_rows(1, seed=7)[0]
    row.update(
        asset_kind="专利",
        asset_number=patent_number(2021, 1, 900_000 + serial),
        patent_type="",
        filing_date="2021-04-01",
        title=f"一种固态电池电解质膜及其制备方法{serial}",
        ipc_codes="H01M 10/0562",
        legal_status="有效",
        annuity_paid_through="2026-04-01",
        nice_classes="",
        valid_until="",
        registered_on="",
    )
    return row


def _asset_of(row: dict[str, str]) -> dict[str, str]:
    return {key: row[key] for key in csv_format.ASSET_KEYS}


async def _post(client: AsyncTestClient[Any], values: dict[str, str]) -> Any:
    return await client.post(
        "/bank/collateral/assets/new",
        data={**values, "_csrf_token": await csrf(client)},
        follow_redirects=False,
    )


async def test_one_asset_by_form_is_registered(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    org, _ = await _bank(client, pool, clock)
    page = await client.get("/bank/collateral/assets/new")
    assert page.status_code == 200 and 'name="asset_number"' in page.text
    row = _one_row()
    r = await _post(client, row)
    assert r.status_code == 303, r.text
    asset_id = int(r.headers["location"].rsplit("/", 1)[1])
    async with pool.acquire() as conn:
        asset = await conn.fetchrow(
            "SELECT number, patent_type, term_ends_on, bank_org_id FROM ip_assets WHERE id = $1",
            asset_id,
        )
        link = await conn.fetchrow("SELECT source FROM pledge_assets WHERE asset_id = $1", asset_id)
        via = await conn.fetchval("SELECT via FROM collateral_imports")
    assert asset["number"] == row["asset_number"] and asset["bank_org_id"] == org
    assert asset["patent_type"] == "invention"  # derived from the number, as for a CSV line
    assert str(asset["term_ends_on"]) == "2041-03-31"
    assert link["source"] == "form" and via == "form"
    shown = await client.get(f"/bank/collateral/assets/{asset_id}")
    assert row["title"] in shown.text


async def test_bad_input_is_named_by_field_and_nothing_is_written(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    await _bank(client, pool, clock)
    good = _one_row()
    cases = [
        ({"asset_number": good["asset_number"][:-1] + "X"}, "asset_number"),
        ({"title": ""}, "title"),
        ({"filing_date": "2021-13-40"}, "filing_date"),
        ({"filing_date": "2020-04-01"}, "filing_date"),  # not the number's year
        ({"pledgor_credit_code": "91510100MA0000001"}, "pledgor_credit_code"),
        ({"rate": "abc"}, "rate"),
        ({"outstanding_principal": "99,999,999"}, "outstanding_principal"),
    ]
    for change, field in cases:
        r = await _post(client, {**good, **change})
        assert r.status_code == 422, (change, r.status_code)
        errors = re.findall(r'id="err-([a-z_]+)"', r.text)
        assert errors and errors[0] == field, (change, errors)
        assert "此单元格" not in r.text  # the form's words, not a spreadsheet's
    assert await count_rows(pool, *TABLES) == dict.fromkeys(TABLES, 0)
    r = await _post(client, {**good, "title": ""})
    assert "必填" in r.text
    assert f'value="{good["asset_number"]}"' in r.text  # what was typed stays


async def test_the_form_adds_to_a_pledge_and_a_csv_replaces_only_what_files_brought(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user = await _bank(client, pool, clock)
    first = _one_row(1)
    second = {**first, **_asset_of(_one_row(2))}  # the same pledge, another asset
    await import_file(pool, clock, user, to_csv([first, second]))
    async with pool.acquire() as conn:
        pledge_id = await conn.fetchval("SELECT id FROM pledges")
    # Opened from the pledge, the form carries the pledge's columns already.
    page = await client.get(f"/bank/collateral/assets/new?pledge={pledge_id}")
    assert f'value="{first["pledge_registration_no"]}"' in page.text
    assert f'value="{first["loan_no"]}"' in page.text
    added = {**first, **_asset_of(_one_row(3))}
    r = await _post(client, added)
    assert r.status_code == 303, r.text

    async def numbers() -> dict[str, str]:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT a.number, pa.source FROM pledge_assets pa"
                " JOIN ip_assets a ON a.id = pa.asset_id WHERE pa.pledge_id = $1",
                pledge_id,
            )
        return {r["number"]: r["source"] for r in rows}

    assert await numbers() == {
        first["asset_number"]: "csv",
        second["asset_number"]: "csv",
        added["asset_number"]: "form",
    }
    index = await client.get("/bank/collateral")
    assert 'data-testid="csv-replaces"' in index.text and "1 项质物是单项录入的" in index.text
    # The file re-uploaded without the second asset: that one goes, the form's stays.
    await import_file(pool, clock, user, to_csv([first]))
    assert await numbers() == {first["asset_number"]: "csv", added["asset_number"]: "form"}
    # A file that lists the form's asset holds it from then on…
    await import_file(pool, clock, user, to_csv([first, added]))
    assert await numbers() == {first["asset_number"]: "csv", added["asset_number"]: "csv"}
    # … so a file that leaves it out removes it.
    await import_file(pool, clock, user, to_csv([first]))
    assert await numbers() == {first["asset_number"]: "csv"}


async def test_one_asset_by_the_api_same_rules_same_words(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    token = await make_token(pool, clock.now(), user, ["collateral:write", "collateral:read"])
    auth = {"Authorization": f"Bearer {token}"}
    row = _one_row()
    bad = {**row, "asset_number": row["asset_number"][:-1] + "X", "title": ""}
    r = await client.post("/api/v1/collateral/assets", json=bad, headers=auth)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["field"] == "asset_number"
    assert {e["field"] for e in problem["errors"]} == {"asset_number", "title"}
    r = await client.post("/api/v1/collateral/assets", json={**row, "colour": "red"}, headers=auth)
    assert r.status_code == 400 and r.json()["field"] == "colour"
    assert await count_rows(pool, *TABLES) == dict.fromkeys(TABLES, 0)
    r = await client.post("/api/v1/collateral/assets", json=row, headers=auth)
    assert r.status_code == 201, r.text
    created = r.json()["asset_ids_created"]
    assert len(created) == 1
    r = await client.get(f"/api/v1/collateral/assets/{created[0]}", headers=auth)
    assert r.status_code == 200 and r.json()["number"] == row["asset_number"]
