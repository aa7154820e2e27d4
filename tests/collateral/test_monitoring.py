"""Monitoring: the pure rule, and the daily job with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market.clock import FrozenClock
from market.collateral import services
from market.collateral.jobs import CRON, monitor_collateral
from market.collateral.monitoring import AssetFacts, MonitoringRules, assess
from market.errors import BadValue
from market.settings import Settings
from tests.collateral.factories import import_file, patent_number, portfolio_rows, to_csv
from tests.factories import make_org, sign_in

TODAY = date(2026, 1, 5)


def _patent(**kw: Any) -> AssetFacts:
    return AssetFacts(kind="patent", legal_status=kw.pop("legal_status", "valid"), **kw)


@pytest.mark.parametrize(
    ("paid_through", "flags"),
    [
        (TODAY + timedelta(days=31), set()),
        (TODAY + timedelta(days=30), {"annuity_due"}),
        (TODAY, {"annuity_due"}),
        (TODAY - timedelta(days=1), {"annuity_grace"}),
        (date(2025, 7, 5), {"annuity_grace"}),  # exactly six months ago: last day of grace
        (date(2025, 7, 4), {"lapsed"}),  # beyond the grace period
    ],
)
def test_annuity(paid_through: date, flags: set[str]) -> None:
    far = TODAY + timedelta(days=3000)
    assert assess(_patent(annuity_paid_through=paid_through, term_ends_on=far), TODAY) == flags


def test_term_and_trademark_validity() -> None:
    assert assess(_patent(term_ends_on=TODAY + timedelta(days=90)), TODAY) == {"expiring"}
    assert assess(_patent(term_ends_on=TODAY + timedelta(days=91)), TODAY) == set()
    assert assess(_patent(term_ends_on=TODAY), TODAY) == {"expiring"}
    # Over: expired, and an unpaid annuity no longer matters.
    gone = _patent(term_ends_on=TODAY - timedelta(days=1), annuity_paid_through=date(2024, 1, 1))
    assert assess(gone, TODAY) == {"expired"}
    mark = AssetFacts(
        kind="trademark", legal_status="valid", valid_until=TODAY + timedelta(days=10)
    )
    assert assess(mark, TODAY) == {"expiring"}
    both = _patent(
        term_ends_on=TODAY + timedelta(days=20), annuity_paid_through=TODAY + timedelta(days=5)
    )
    assert assess(both, TODAY) == {"expiring", "annuity_due"}


def test_legal_status_flags() -> None:
    assert assess(_patent(legal_status="lapsed"), TODAY) == {"lapsed"}
    assert assess(_patent(legal_status="invalidated"), TODAY) == {"invalidated"}
    assert assess(_patent(legal_status="expired"), TODAY) == {"expired"}
    soft = AssetFacts(kind="software_copyright", legal_status="invalidated")
    assert assess(soft, TODAY) == {"invalidated"}
    # A pending application pays no annuity yet.
    pending = _patent(legal_status="pending", annuity_paid_through=TODAY - timedelta(days=400))
    assert assess(pending, TODAY) == set()


def test_rules_are_data() -> None:
    soon = _patent(annuity_paid_through=TODAY + timedelta(days=45))
    assert assess(soon, TODAY) == set()
    assert assess(soon, TODAY, MonitoringRules(annuity_notice_days=60)) == {"annuity_due"}
    with pytest.raises(BadValue) as negative:
        MonitoringRules(annuity_grace_months=-1)
    assert (negative.value.code, negative.value.field) == (
        "monitoring_rule_negative",
        "annuity_grace_months",
    )


def test_daily_cron_at_0130_beijing() -> None:
    job = next(c for c in CRON if c.name == "cron:monitor_collateral")
    assert (job.hour, job.minute) == ({17}, {30})


# --- the job ---------------------------------------------------------------------------


def _three_patents(today: date = TODAY) -> list[dict[str, str]]:
    rows = portfolio_rows(3, seed=31, max_assets=1, today=today)
    specs = [
        # overdue by 40 days: in the grace period
        (patent_number(2015, 1, 3101), "2015-03-10", "2025-11-26"),
        # utility model filed 2016-03-01: protected through 2026-02-28, 54 days away
        (patent_number(2016, 2, 3102), "2016-03-01", "2026-02-28"),
        (patent_number(2020, 1, 3103), "2020-06-01", "2026-05-31"),
    ]
    return [
        row
        | {
            "asset_kind": "专利",
            "asset_number": number,
            "patent_type": "",
            "filing_date": filed,
            "annuity_paid_through": paid,
            "ipc_codes": "G06F 16/2453",
            "legal_status": "有效",
            "nice_classes": "",
            "valid_until": "",
            "registered_on": "",
        }
        for row, (number, filed, paid) in zip(rows, specs, strict=True)
    ]


async def _open(pool: asyncpg.Pool) -> set[tuple[str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT a.number, m.kind FROM monitoring_flags m JOIN ip_assets a ON a.id = m.asset_id "
            "WHERE m.resolved_at IS NULL"
        )
    return {(r["number"], r["kind"]) for r in rows}


async def _all_flags(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, asset_id, kind, raised_at, resolved_at FROM monitoring_flags ORDER BY id"
        )
    return [tuple(r.values()) for r in rows]


async def test_monitor_job_raises_once_resolves_and_is_idempotent(
    pool: asyncpg.Pool, clock: FrozenClock, settings: Settings
) -> None:
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    rows = _three_patents()
    a, b, c = (r["asset_number"] for r in rows)
    result = await import_file(pool, clock.now(), user, to_csv(rows), filename="m.csv")
    # The import assesses its assets at once.
    assert result.flags_raised == 2
    assert await _open(pool) == {(a, "annuity_grace"), (b, "expiring")}

    ctx = {"pool": pool, "clock": clock, "settings": settings}
    before = await _all_flags(pool)
    for _ in range(2):
        assert await monitor_collateral(ctx) == {
            "banks": 1,
            "assets": 3,
            "raised": 0,
            "resolved": 0,
        }
    assert await _all_flags(pool) == before

    clock.advance(days=150)  # 2026-06-04 in Beijing
    assert await monitor_collateral(ctx) == {"banks": 1, "assets": 3, "raised": 3, "resolved": 2}
    assert await _open(pool) == {(a, "lapsed"), (b, "expired"), (c, "annuity_grace")}
    after = await _all_flags(pool)
    assert await monitor_collateral(ctx) == {"banks": 1, "assets": 3, "raised": 0, "resolved": 0}
    assert await _all_flags(pool) == after
    resolved = [f for f in after if f[4] is not None]
    assert len(resolved) == 2 and all(f[4] == clock.now() for f in resolved)

    # The pledgor pays C's annuity; the bank re-uploads; the flag clears.
    paid = [
        r | {"annuity_paid_through": "2027-05-31"} if r["asset_number"] == c else r for r in rows
    ]
    await import_file(pool, clock.now(), user, to_csv(paid), filename="m2.csv")
    assert await _open(pool) == {(a, "lapsed"), (b, "expired")}

    async with pool.acquire() as conn:
        audits = await conn.fetch(
            "SELECT after FROM audit_log WHERE action = 'collateral.monitor' ORDER BY seq"
        )
    assert [x["after"] for x in audits] == [{"raised": 3, "resolved": 2}]


async def test_monitor_uses_the_beijing_date(pool: asyncpg.Pool, settings: Settings) -> None:
    # 16:01 UTC on 2025-11-25 is already 00:01 on 2025-11-26 in Beijing.
    clock = FrozenClock(datetime(2025, 11, 25, 15, 59, tzinfo=UTC))
    _, user, _ = await make_org(pool, clock.now(), kind="bank")
    rows = _three_patents(date(2025, 11, 25))[:1]
    rows[0] = rows[0] | {"annuity_paid_through": "2025-11-25"}
    await import_file(pool, clock.now(), user, to_csv(rows), filename="t.csv")
    assert await _open(pool) == {(rows[0]["asset_number"], "annuity_due")}  # 23:59 in Beijing
    clock.advance(minutes=2)
    await monitor_collateral({"pool": pool, "clock": clock, "settings": settings})
    assert await _open(pool) == {(rows[0]["asset_number"], "annuity_grace")}


async def test_open_flags_for_the_case_and_lot_pages(
    pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    bank, user, _ = await make_org(pool, clock.now(), kind="bank")
    other, _, _ = await make_org(pool, clock.now(), kind="bank")
    await import_file(pool, clock.now(), user, to_csv(_three_patents()), filename="f.csv")
    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM ip_assets ORDER BY id")]
        flags = await services.open_flags(conn, bank, ids)
        assert sorted(f.kind for f in flags) == ["annuity_grace", "expiring"]
        grace = next(f for f in flags if f.kind == "annuity_grace")
        assert grace.detail["annuity_paid_through"] == "2025-11-26"
        assert grace.detail["grace_ends_on"] == "2026-05-26"
        assert await services.open_flags(conn, other, ids) == []


async def test_the_asset_page_words_a_flags_facts_in_the_readers_language(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, clock: FrozenClock
) -> None:
    _, user, email = await make_org(pool, clock.now(), kind="bank")
    await import_file(pool, clock.now(), user, to_csv(_three_patents()), filename="f.csv")
    await sign_in(client, email)
    async with pool.acquire() as conn:
        flagged = dict(await conn.fetch("SELECT kind, asset_id FROM monitoring_flags"))
    grace = await client.get(f"/bank/collateral/assets/{flagged['annuity_grace']}")
    assert "年费已缴至 2025-11-26，滞纳期至 2026-05-26" in grace.text
    expiring = await client.get(f"/bank/collateral/assets/{flagged['expiring']}")
    assert "保护期届满日 2026-02-28" in expiring.text
    client.cookies.set("ipx_lang", "en")
    english = await client.get(f"/bank/collateral/assets/{flagged['annuity_grace']}")
    assert "Annuities paid through 2025-11-26; the grace period ends 2026-05-26" in english.text
    assert "年费已缴至" not in english.text and "Annuity overdue (grace period)" in english.text
