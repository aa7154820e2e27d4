"""`make screenshots` (market/screenshots.py) on the demo: its pages resolve, and each is
photographed into a non-empty PNG (one demo seeded for both: it is the slow part; the
script's own embedded servers are `make screenshots`' business, not the suite's)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from market import screenshots
from market.app import create_app
from market.buyer.demo import seed_buyer_activity
from market.clock import SystemClock
from market.demo import DEMO_PASSWORD, seed_demo
from market.settings import Settings
from tests.factories import sign_in
from tests.servers import running_server

pytestmark = pytest.mark.browser


async def test_the_screenshot_pages_resolve_and_are_taken(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    await seed_demo(settings, force=True)
    await seed_buyer_activity(pool, SystemClock(), settings)
    assert {s.viewport["width"] for s in screenshots.PAGES} == {390, 1280}
    assert {s.path for s in screenshots.PAGES} >= {"/", "/my/activity"}
    async with AsyncTestClient(app=create_app(settings, SystemClock())) as client:
        listed = await client.get("/lots")
        lot = listed.text.split('data-reference="', 1)[1].split('"', 1)[0]
        for shot in screenshots.PAGES:
            if shot.login is not None:
                await sign_in(client, shot.login, DEMO_PASSWORD)
            r = await client.get(shot.path.replace(screenshots.LOT, lot))
            assert r.status_code == 200, (shot, r.status_code)
        # The demo buyer's page shows what seed_buyer_activity made: a lead, a deposit owed.
        page = (await client.get("/my/activity")).text
        assert 'data-bid-state="leading"' in page and 'data-deposit-state="owed"' in page
    with running_server(settings) as url:
        written = await screenshots.shoot(url, tmp_path / "shots")
    assert [p.name for p in written] == [f"{s.name}.png" for s in screenshots.PAGES]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, path
