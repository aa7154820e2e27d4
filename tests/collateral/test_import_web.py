"""The upload page: the file is queued, a real arq worker imports it, the page shows progress."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import asyncpg
from arq.connections import create_pool
from arq.worker import Worker
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from market.clock import FrozenClock
from market.collateral import csv_import, jobs
from market.settings import Settings
from tests.collateral.factories import (
    REGISTRY_TABLES,
    count_rows,
    import_file,
    portfolio_rows,
    to_csv,
)
from tests.factories import act_as, csrf, make_org, sign_in
from workers.settings import WorkerSettings, worker_context, worker_redis


def _worker(settings: Settings, clock: FrozenClock) -> Worker:
    return Worker(
        functions=WorkerSettings.functions,
        redis_settings=worker_redis(settings),
        burst=True,
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        ctx=worker_context(settings, clock),
        poll_delay=0.05,
        handle_signals=False,
    )


async def _signed_in_bank(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> tuple[int, int]:
    org, user, email = await make_org(pool, clock.now(), kind="bank")
    assert (await sign_in(client, email)).status_code in (302, 303)
    return org, user


async def _start(pool: asyncpg.Pool, clock: FrozenClock, user: int, data: bytes, **kw: Any) -> int:
    """An upload kept and queued, as the page's form does it (its job is not enqueued)."""
    act = await act_as(pool, clock, user)
    started = await act(csv_import.start_import, csv_import.StartImport(content=data, **kw))
    return started.import_id


async def _upload(client: AsyncTestClient[Any], data: bytes, name: str = "portfolio.csv") -> Any:
    return await client.post(
        "/bank/collateral/imports",
        files={"file": (name, data, "text/csv")},
        data={"_csrf_token": await csrf(client)},
        follow_redirects=False,
    )


async def test_upload_runs_in_the_worker_and_the_page_ends_done(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    await _signed_in_bank(client, pool, clock)
    rows = portfolio_rows(1200, seed=21)
    r = await _upload(client, to_csv(rows, headers="zh", encoding="gb18030"), "银行质押清单.csv")
    assert r.status_code == 303, r.text
    page_url = r.headers["location"]
    import_id = int(page_url.rsplit("/", 1)[1])

    page = await client.get(page_url)
    assert page.status_code == 200
    assert 'hx-trigger="every 500ms"' in page.text  # queued: the fragment polls
    assert f'hx-get="/bank/collateral/imports/{import_id}/progress"' in page.text
    assert "银行质押清单.csv" in page.text

    worker = _worker(settings, clock)
    await worker.main()
    # The import, then the relay it kicked for the monitoring flags it raised, and their
    # deliveries: none failed.
    assert worker.jobs_complete > 1 and worker.jobs_failed == 0
    await worker.close()

    fragment = await client.get(f"/bank/collateral/imports/{import_id}/progress")
    assert fragment.status_code == 200
    assert 'data-status="done"' in fragment.text
    assert "hx-trigger" not in fragment.text  # finished: polling stops
    assert re.search(r'<progress max="1200" value="1200">', fragment.text)
    assert (await count_rows(pool, "ip_assets"))["ip_assets"] == 1200
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, encoding, processed_rows, written_rows, summary FROM collateral_imports"
        )
    assert (row["status"], row["encoding"], row["processed_rows"], row["written_rows"]) == (
        "done",
        "gb18030",
        1200,
        1200,
    )

    registry = await client.get("/bank/collateral")
    assert registry.status_code == 200
    assert "银行质押清单.csv" in registry.text and 'data-testid="pledges"' in registry.text


async def test_progress_is_visible_while_the_write_transaction_is_open(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    seen: list[tuple[str, int, int, str]] = []

    async def watch(phase: str, done: int, total: int) -> None:
        # Another connection reads what the page would poll.
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status, processed_rows, written_rows FROM collateral_imports"
            )
        assert row is not None
        seen.append(
            (
                phase,
                done,
                row["written_rows"] if phase == "writing" else row["processed_rows"],
                row["status"],
            )
        )

    await import_file(
        pool, clock, user, to_csv(portfolio_rows(1100, seed=22)), filename="p.csv", progress=watch
    )
    assert [(p, d) for p, d, _, _ in seen] == [
        ("validating", 500),
        ("validating", 1000),
        ("validating", 1100),
        ("writing", 500),
        ("writing", 1000),
        ("writing", 1100),
    ]
    assert all(done == stored for _, done, stored, _ in seen)
    assert [s for _, _, _, s in seen][-1] == "writing"


async def test_rejected_upload_shows_the_errors_and_writes_nothing(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    await _signed_in_bank(client, pool, clock)
    rows = portfolio_rows(50, seed=23)
    rows[30] = rows[30] | {"pledgor_credit_code": "91510100MA0000000X"}
    r = await _upload(client, to_csv(rows, headers="zh"))
    import_id = int(r.headers["location"].rsplit("/", 1)[1])
    worker = _worker(settings, clock)
    await worker.main()
    await worker.close()
    fragment = await client.get(f"/bank/collateral/imports/{import_id}/progress")
    assert 'data-status="rejected"' in fragment.text and "hx-trigger" not in fragment.text
    # The line, the column as the file names it, the reason in the page's language.
    assert (
        '<tr data-code="credit_code_check_char"><td class="num">32</td>'
        "<td>出质人统一社会信用代码</td><td>校验码应为" in fragment.text
    )
    assert "Check character" not in fragment.text
    client.cookies.set("ipx_lang", "en")
    english = await client.get(f"/bank/collateral/imports/{import_id}/progress")
    assert "<td>出质人统一社会信用代码</td><td>Check character should be" in english.text
    assert "校验码应为" not in english.text
    assert set((await count_rows(pool, *REGISTRY_TABLES)).values()) == {0}


async def test_a_repeated_job_does_nothing(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    import_id = await _start(pool, clock, user, to_csv(portfolio_rows(20)), filename="q.csv")
    ctx = {"pool": pool, "clock": clock, "settings": settings}
    first = await jobs.run_collateral_import(ctx, import_id)
    second = await jobs.run_collateral_import(ctx, import_id)
    assert first["status"] == "done" and second["status"] == "skipped"
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'collateral.import'")
            == 1
        )


async def test_sweeper_requeues_a_lost_job(
    pool: asyncpg.Pool, redis: Redis, settings: Settings, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    # Uploaded, but its job never reached Redis.
    import_id = await _start(pool, clock, user, to_csv(portfolio_rows(10)), filename="lost.csv")
    arq = await create_pool(worker_redis(settings))
    ctx = {"pool": pool, "clock": clock, "settings": settings, "redis": arq}
    assert (await jobs.requeue_collateral_imports(ctx))["enqueued"] == []  # not yet 60 s old
    clock.advance(seconds=61)
    assert (await jobs.requeue_collateral_imports(ctx))["enqueued"] == [import_id]
    worker = _worker(settings, clock)
    await worker.main()
    await worker.close()
    await arq.aclose()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM collateral_imports") == "done"
    assert (await count_rows(pool, "ip_assets"))["ip_assets"] == 10


async def test_a_run_that_died_is_queued_again_and_an_api_one_failed(
    pool: asyncpg.Pool, redis: Redis, settings: Settings, clock: FrozenClock
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    data = to_csv(portfolio_rows(5))
    web = await _start(pool, clock, user, data, filename="w.csv")
    api = await _start(pool, clock, user, data, filename="a.csv", via="api")
    # Started by a request that was lost before it claimed the import.
    unclaimed = await _start(pool, clock, user, data, filename="u.csv", via="api")
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE collateral_imports SET status = 'writing', started_at = $2 "
            "WHERE id = ANY($1::bigint[])",
            [web, api],
            clock.now(),
        )
    clock.advance(jobs.STALE_RUN + timedelta(seconds=1))
    arq = await create_pool(worker_redis(settings))
    result = await jobs.requeue_collateral_imports({"pool": pool, "clock": clock, "redis": arq})
    await arq.aclose()
    assert result == {"enqueued": [web], "failed": [api, unclaimed]}
    async with pool.acquire() as conn:
        states = {
            r["id"]: (r["status"], r["errors"])
            for r in await conn.fetch("SELECT id, status, errors FROM collateral_imports")
        }
    interrupted = [{"code": "csv_import_interrupted"}]
    assert states == {
        web: ("queued", []),
        api: ("failed", interrupted),
        unclaimed: ("failed", interrupted),
    }


async def test_another_banks_import_page_is_404_and_buyers_are_refused(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, other_user, _ = await make_org(pool, clock.now(), kind="bank")
    theirs = await _start(pool, clock, other_user, b"a,b\r\n", filename="x.csv")
    await _signed_in_bank(client, pool, clock)
    assert (await client.get(f"/bank/collateral/imports/{theirs}")).status_code == 404
    assert (await client.get(f"/bank/collateral/imports/{theirs}/progress")).status_code == 404
    _, _, buyer_email = await make_org(pool, clock.now(), kind="buyer")
    client.cookies.clear()
    await sign_in(client, buyer_email)
    assert (await client.get("/bank/collateral")).status_code == 403


async def test_upload_without_a_file_shows_the_error_next_to_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    await _signed_in_bank(client, pool, clock)
    r = await _upload(client, b"", "empty.csv")
    assert r.status_code == 422
    assert '<span class="field-error" id="err-file">文件为空。</span>' in r.text
    assert "The file is empty" not in r.text
    client.cookies.set("ipx_lang", "en")
    r = await client.post(
        "/bank/collateral/imports",
        data={"_csrf_token": await csrf(client), "note": "no file"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert '<span class="field-error" id="err-file">Choose a CSV file to upload.</span>' in r.text
    assert (await count_rows(pool, "collateral_imports"))["collateral_imports"] == 0


async def test_template_download_has_the_headers(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    await _signed_in_bank(client, pool, clock)
    r = await client.get("/bank/collateral/template.csv")
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbf" + "质押登记号,".encode())
    # the example row is read by the import as it reads the bank's own rows …
    today = clock.now().date()
    checked = await csv_import.validate(r.content, today=today)
    assert [(p.line, p.code) for p in checked.errors] == [(2, "csv_example_row")]
    # … and valid in every column once it describes a pledge of the bank's
    own = r.content.decode("utf-8-sig").replace("Y2023990000001", "Y2023110000042")
    checked = await csv_import.validate(own.encode(), today=today)
    assert checked.errors == [] and len(checked.rows) == 1
    english = await client.get("/bank/collateral/template.csv?lang=en")
    assert english.content.decode("utf-8-sig").startswith("pledge_registration_no,")
    assert len(english.content.decode("utf-8-sig").splitlines()) == 2  # header, example


async def test_ten_thousand_rows_through_the_page(
    client: AsyncTestClient[Any],
    pool: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    await _signed_in_bank(client, pool, clock)
    data = to_csv(portfolio_rows(10_000, seed=24), headers="zh", encoding="gb18030")
    assert len(data) > 2_000_000
    r = await _upload(client, data, "全行质押清单.csv")
    assert r.status_code == 303, r.text
    import_id = int(r.headers["location"].rsplit("/", 1)[1])
    worker = _worker(settings, clock)
    await worker.main()
    await worker.close()
    fragment = await client.get(f"/bank/collateral/imports/{import_id}/progress")
    assert 'data-status="done"' in fragment.text
    assert '<progress max="10000" value="10000">' in fragment.text
    assert (await count_rows(pool, "ip_assets"))["ip_assets"] == 10_000


async def test_an_import_kept_with_sentences_still_shows_them(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    """Problems stored as sentences (the shape of older imports) are shown as written."""
    _, user = await _signed_in_bank(client, pool, clock)
    import_id = await _start(pool, clock, user, b"a,b\r\n", filename="old.csv")
    old = [{"line": 3, "column": "年利率(%)", "key": "rate", "reason": "'abc' is not a rate"}]
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE collateral_imports SET status = 'rejected', errors = $2, error_count = 1 "
            "WHERE id = $1",
            import_id,
            old,
        )
    fragment = await client.get(f"/bank/collateral/imports/{import_id}/progress")
    assert (
        '<tr data-code="csv_problem_as_written"><td class="num">3</td><td>年利率(%)</td>'
        "<td>原因：&#39;abc&#39; is not a rate</td>" in fragment.text
    )
