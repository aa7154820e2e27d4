"""CSV import against real PostgreSQL: all or nothing, upserts, encodings, concurrency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.collateral.csv_import import PortfolioRejected
from tests.collateral.factories import (
    REGISTRY_TABLES,
    count_rows,
    import_file,
    portfolio_rows,
    registry_snapshot,
    to_csv,
)
from tests.factories import make_org, make_token


async def _bank(pool: asyncpg.Pool, clock: FrozenClock) -> tuple[int, int]:
    org_id, user_id, _ = await make_org(pool, clock.now(), kind="bank")
    return org_id, user_id


async def _post(
    client: AsyncTestClient[Any], token: str, data: bytes, lang: str | None = None, **params: str
) -> Any:
    headers = {"authorization": f"Bearer {token}", "content-type": "text/csv"}
    if lang:
        headers["accept-language"] = lang
    return await client.post(
        "/api/v1/collateral/imports", content=data, params=params, headers=headers
    )


def _corrupt_check_digit(rows: list[dict[str, str]], index: int) -> dict[str, str]:
    row = rows[index]
    assert row["asset_kind"] == "专利"
    number = row["asset_number"]
    bad = number[:-1] + ("0" if number[-1] != "0" else "1")
    return row | {"asset_number": bad}


async def test_one_bad_row_rejects_1000_then_fixed_file_imports_then_reupload_updates(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user = await _bank(pool, clock)
    token = await make_token(pool, clock.now(), user, ["collateral:write", "collateral:read"])
    rows = portfolio_rows(1000, seed=3)
    bad_index = next(i for i in range(700, 1000) if rows[i]["asset_kind"] == "专利")
    broken = [*rows[:bad_index], _corrupt_check_digit(rows, bad_index), *rows[bad_index + 1 :]]

    r = await _post(client, token, to_csv(broken), filename="portfolio.csv")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    line = bad_index + 2  # header is line 1
    assert (body["code"], body["field"]) == ("csv_rejected", "file")
    assert body["params"] == {"filename": "portfolio.csv", "count": 1}
    expected = {
        "code": "patent_number_check_char",
        "line": line,
        "field": "asset_number",
        "params": {
            "column": "asset_number",
            "expected": body["errors"][0]["params"]["expected"],
            "char": broken[bad_index]["asset_number"][-1],
        },
    }
    assert [{k: v for k, v in e.items() if k != "detail"} for e in body["errors"]] == [expected]
    # The caller's words in one language: Chinese unless asked otherwise.
    assert "校验位应为" in body["errors"][0]["detail"]
    assert "check character" not in body["errors"][0]["detail"].lower()
    assert "未导入" in body["detail"] and "portfolio.csv" in body["detail"]
    english = await _post(client, token, to_csv(broken), lang="en", filename="portfolio.csv")
    assert english.status_code == 422
    assert english.json()["errors"][0]["detail"].startswith("Check character should be")
    assert "校验" not in english.json()["errors"][0]["detail"]
    assert "was not imported" in english.json()["detail"]
    assert set((await count_rows(pool, *REGISTRY_TABLES)).values()) == {0}
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE 'collateral.%'")
            == 0
        )
    async with pool.acquire() as conn:
        rejected = await conn.fetch(
            "SELECT id, status, error_count, errors FROM collateral_imports ORDER BY id"
        )
    assert [(x["status"], x["error_count"]) for x in rejected] == [("rejected", 1)] * 2
    # The import keeps the code and its params, not words.
    assert rejected[0]["errors"] == [expected]
    r = await client.get(
        f"/api/v1/collateral/imports/{rejected[0]['id']}",
        headers={"authorization": f"Bearer {token}", "accept-language": "en"},
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["errors"][0]["code"] == "patent_number_check_char"
    assert r.json()["errors"][0]["detail"].startswith("Check character should be")

    r = await _post(client, token, to_csv(rows), filename="portfolio.csv")
    assert r.status_code == 201, r.text
    first = r.json()
    pledges = len({x["pledge_registration_no"] for x in rows})
    assert first["rows"] == 1000
    assert (first["pledges_created"], first["pledges_updated"]) == (pledges, 0)
    assert (first["assets_created"], first["assets_updated"]) == (1000, 0)
    assert (first["loans_created"], first["loans_updated"]) == (pledges, 0)
    counts = await count_rows(pool, "pledgors", "ip_assets", "pledges", "pledge_assets", "loans")
    assert counts == {
        "pledgors": pledges,
        "ip_assets": 1000,
        "pledges": pledges,
        "pledge_assets": 1000,
        "loans": pledges,
    }
    snapshot = await registry_snapshot(pool, bank)

    r = await _post(client, token, to_csv(rows), filename="portfolio.csv")
    assert r.status_code == 201, r.text
    again = r.json()
    assert (again["assets_created"], again["assets_updated"]) == (0, 1000)
    assert (again["pledges_created"], again["pledges_updated"]) == (0, pledges)
    assert (again["loans_created"], again["loans_updated"]) == (0, pledges)
    assert (
        await count_rows(pool, "pledgors", "ip_assets", "pledges", "pledge_assets", "loans")
        == counts
    )
    assert await registry_snapshot(pool, bank) == snapshot
    async with pool.acquire() as conn:
        audits = await conn.fetch(
            "SELECT action, after FROM audit_log WHERE chain_org_id = $1 "
            "AND action LIKE 'collateral.%' ORDER BY seq",
            bank,
        )
    # One audit row per import, not one per row.
    assert [a["action"] for a in audits] == ["collateral.import", "collateral.import"]
    assert audits[0]["after"]["assets_created"] == 1000 and len(audits[0]["after"]["sha256"]) == 64

    r = await client.get(
        f"/api/v1/collateral/imports/{first['import_id']}",
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert r.json()["written_rows"] == 1000


async def test_gb18030_bom_and_chinese_headers_import_identically(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    rows = portfolio_rows(400, seed=5)
    snapshots = []
    for headers, encoding in (("en", "utf-8"), ("zh", "gb18030"), ("zh", "utf-8-sig")):
        bank, user = await _bank(pool, clock)
        result = await import_file(
            pool,
            clock.now(),
            user,
            to_csv(rows, headers=headers, encoding=encoding),
            filename=f"p-{encoding}.csv",
        )
        assert result.encoding == encoding and result.rows == 400
        snapshots.append(await registry_snapshot(pool, bank))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    assert any("发明" in str(s) or "方法" in str(s) for s in snapshots[0].values())


async def test_reupload_makes_a_pledges_assets_exactly_the_files(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user = await _bank(pool, clock)
    rows = portfolio_rows(60, seed=6)
    reg = max(
        {r["pledge_registration_no"] for r in rows},
        key=lambda g: sum(r["pledge_registration_no"] == g for r in rows),
    )
    await import_file(pool, clock.now(), user, to_csv(rows), filename="a.csv")
    dropped = next(i for i, r in enumerate(rows) if r["pledge_registration_no"] == reg)
    fewer = [r for i, r in enumerate(rows) if i != dropped]
    fewer = [
        r | {"secured_amount": "9,999,999"} if r["pledge_registration_no"] == reg else r
        for r in fewer
    ]
    result = await import_file(pool, clock.now(), user, to_csv(fewer), filename="b.csv")
    assert result.links_removed == 1 and result.assets_created == 0
    snapshot = await registry_snapshot(pool, bank)
    pledge, assets = snapshot[reg]
    assert pledge[0] == 999_999_900
    assert rows[dropped]["asset_number"] not in {a[1] for a in assets}
    # The asset itself stays in the registry (other pledges or cases may refer to it).
    assert (await count_rows(pool, "ip_assets"))["ip_assets"] == 60


async def test_other_banks_registries_are_separate(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    rows = portfolio_rows(30, seed=7)
    _, a_user = await _bank(pool, clock)
    _, b_user = await _bank(pool, clock)
    await import_file(pool, clock.now(), a_user, to_csv(rows), filename="a.csv")
    result = await import_file(pool, clock.now(), b_user, to_csv(rows), filename="b.csv")
    # Same numbers at another bank are that bank's own rows: created, not updated.
    assert result.assets_created == 30 and result.assets_updated == 0
    assert (await count_rows(pool, "ip_assets"))["ip_assets"] == 60


async def test_two_concurrent_imports_of_one_bank_serialise(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """pg_advisory_xact_lock per bank: the final state is one file's, counts are right."""
    rows_a = portfolio_rows(700, seed=8)
    # File B: the same pledges, loans and assets with other values, and every pledge of
    # several assets without its last one.
    last_of: dict[str, int] = {}
    for i, r in enumerate(rows_a):
        last_of[r["pledge_registration_no"]] = i
    sizes = {g: sum(r["pledge_registration_no"] == g for r in rows_a) for g in last_of}
    rows_b = [
        r
        | {
            "title": r["title"] + "（改进型）",
            "secured_amount": "8,888,888",
            "outstanding_interest": "1.23",
            "pool_code": "B-POOL",
        }
        for i, r in enumerate(rows_a)
        if not (
            sizes[r["pledge_registration_no"]] > 1 and last_of[r["pledge_registration_no"]] == i
        )
    ]
    dropped = len(rows_a) - len(rows_b)
    assert dropped > 50
    file_a, file_b = to_csv(rows_a), to_csv(rows_b)

    async def run(bank: int, user: int, data: bytes) -> Any:
        return await import_file(pool, clock.now(), user, data, filename="x.csv")

    expected = {}
    for order in ("ab", "ba"):
        bank, user = await _bank(pool, clock)
        results = [await run(bank, user, file_a if f == "a" else file_b) for f in order]
        expected[order] = (await registry_snapshot(pool, bank), results)

    bank, user = await _bank(pool, clock)
    result_a, result_b = await asyncio.gather(run(bank, user, file_a), run(bank, user, file_b))
    final = await registry_snapshot(pool, bank)
    order = "ab" if final == expected["ab"][0] else "ba"
    assert final == expected[order][0], "the final state mixes the two files"
    assert expected["ab"][0] != expected["ba"][0]
    first, second = (result_a, result_b) if order == "ab" else (result_b, result_a)
    want_first, want_second = expected[order][1]
    for got, want in ((first, want_first), (second, want_second)):
        for what in ("pledgors", "assets", "pledges", "loans"):
            assert getattr(got, f"{what}_created") == getattr(want, f"{what}_created"), what
            assert getattr(got, f"{what}_updated") == getattr(want, f"{what}_updated"), what
    assert second.assets_created + first.assets_created == len(rows_a)


async def test_api_refuses_non_banks_wrong_scope_and_wrong_media_type(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    data = to_csv(portfolio_rows(3))
    _, buyer_user, _ = await make_org(pool, clock.now(), kind="buyer")
    buyer_token = await make_token(pool, clock.now(), buyer_user, ["account:read"])
    assert (await _post(client, buyer_token, data)).status_code == 403
    _, user = await _bank(pool, clock)
    read_only = await make_token(pool, clock.now(), user, ["collateral:read"])
    r = await _post(client, read_only, data)
    assert r.status_code == 403
    assert (r.json()["code"], r.json()["params"]) == (
        "token_lacks_scope",
        {"scope": "collateral:write"},
    )
    token = await make_token(pool, clock.now(), user, ["collateral:write"])
    r = await client.post(
        "/api/v1/collateral/imports",
        content=data,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert r.status_code == 415 and r.json()["code"] == "csv_content_type"
    assert "Content-Type: text/csv" in r.json()["detail"]
    r = await _post(client, token, b"")
    assert r.status_code == 422
    assert (r.json()["code"], r.json()["field"]) == ("csv_empty", "file")
    assert r.json()["detail"] == "file：文件为空。"
    assert set((await count_rows(pool, *REGISTRY_TABLES, "collateral_imports")).values()) == {0}


async def test_api_lists_the_banks_imports_newest_first_a_page_at_a_time(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user = await _bank(pool, clock)
    token = await make_token(pool, clock.now(), user, ["collateral:write", "collateral:read"])
    rows = portfolio_rows(3, seed=5)
    rejected = await _post(client, token, to_csv(rows[:2]) + b"x,y\n", filename="bad.csv")
    assert rejected.status_code == 422
    clock.advance(seconds=60)
    done = await _post(client, token, to_csv(rows), filename="good.csv")
    assert done.status_code == 201, done.text
    auth = {"authorization": f"Bearer {token}"}
    r = await client.get("/api/v1/collateral/imports", headers=auth)
    assert r.status_code == 200
    listed = r.json()
    assert [(i["filename"], i["status"], i["via"]) for i in listed["items"]] == [
        ("good.csv", "done", "api"),
        ("bad.csv", "rejected", "api"),
    ]
    assert listed["items"][0]["id"] == done.json()["import_id"]
    assert listed["items"][0]["written_rows"] == 3 and listed["next_cursor"] is None
    first = (await client.get("/api/v1/collateral/imports?limit=1", headers=auth)).json()
    assert [i["filename"] for i in first["items"]] == ["good.csv"]
    rest = await client.get(
        "/api/v1/collateral/imports",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=auth,
    )
    assert [i["filename"] for i in rest.json()["items"]] == ["bad.csv"]
    only = (await client.get("/api/v1/collateral/imports?status=rejected", headers=auth)).json()
    assert [i["filename"] for i in only["items"]] == ["bad.csv"]
    bad = await client.get("/api/v1/collateral/imports?status=lost", headers=auth)
    assert bad.status_code in (400, 422) and bad.json()["field"] == "status"
    # Another bank's list is its own (empty); a buyer may not read a bank's registry.
    _, other = await _bank(pool, clock)
    theirs = await make_token(pool, clock.now(), other, ["collateral:read"])
    r = await client.get(
        "/api/v1/collateral/imports", headers={"authorization": f"Bearer {theirs}"}
    )
    assert r.status_code == 200 and r.json()["items"] == []
    _, buyer_user, _ = await make_org(pool, clock.now(), kind="buyer")
    buyer = await make_token(pool, clock.now(), buyer_user, ["account:read"])
    r = await client.get("/api/v1/collateral/imports", headers={"authorization": f"Bearer {buyer}"})
    assert r.status_code == 403


async def test_undecodable_file_is_422_with_the_reason(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user = await _bank(pool, clock)
    token = await make_token(pool, clock.now(), user, ["collateral:write"])
    r = await _post(client, token, b"\x80\x81\xff\xfe garbage", filename="x.csv")
    assert r.status_code == 422 and r.json()["code"] == "csv_rejected"
    [problem] = r.json()["errors"]
    assert problem == {
        "code": "csv_not_utf8_or_gb18030",
        "detail": "文件既不是 UTF-8 也不是 GB18030 编码。",
    }  # the file as a whole: no line, no column
    r = await _post(client, token, "质押登记号".encode("utf-16"), lang="en")
    assert r.json()["errors"][0]["code"] == "csv_utf16"
    assert "save it as 'CSV UTF-8'" in r.json()["errors"][0]["detail"]


async def test_rejection_raises_with_every_problem(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, user = await _bank(pool, clock)
    rows = [r | {"rate": "四点三五"} for r in portfolio_rows(300, seed=9)]
    with pytest.raises(PortfolioRejected) as caught:
        await import_file(pool, clock.now(), user, to_csv(rows), filename="r.csv")
    rejected = caught.value
    assert (rejected.code, rejected.field) == ("csv_rejected", "file")
    assert rejected.count == 300 and rejected.params == {"filename": "r.csv", "count": 300}
    assert rejected.problems is not None and len(rejected.problems) == 200
    assert [p.line for p in rejected.problems] == list(range(2, 202))
    assert {(p.code, p.field) for p in rejected.problems} == {("csv_rate_not_percent", "rate")}
    assert rejected.problems[0].params == {"column": "rate", "value": "四点三五"}
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT error_count, errors FROM collateral_imports")
    assert stored["error_count"] == 300 and len(stored["errors"]) == 200
    assert (await count_rows(pool, "loans"))["loans"] == 0


async def test_ten_thousand_rows_take_seconds(pool: asyncpg.Pool, clock: FrozenClock) -> None:
    _, user = await _bank(pool, clock)
    data = to_csv(portfolio_rows(10_000, seed=11), headers="zh", encoding="gb18030")
    started = time.perf_counter()
    result = await import_file(pool, clock.now(), user, data, filename="big.csv")
    seconds = time.perf_counter() - started
    print(f"\nbench collateral_import rows=10000 seconds={seconds:.2f}")
    assert result.rows == 10_000 and result.assets_created == 10_000
