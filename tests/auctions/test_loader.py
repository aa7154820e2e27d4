"""auctions/loader.py: the misses of one event-loop turn share one fetch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auctions.loader import Loader


async def test_misses_of_one_turn_share_one_fetch_and_hits_fetch_nothing() -> None:
    calls: list[list[int]] = []

    async def fetch(pool: Any, keys: list[int]) -> dict[int, str]:
        calls.append(sorted(keys))
        return {k: f"v{k}" for k in keys if k % 2}  # even keys do not exist

    loader: Loader[int, str] = Loader(fetch)
    found = await asyncio.gather(*(loader.get(None, k) for k in (1, 2, 3, 3)))
    assert found == ["v1", None, "v3", "v3"]
    assert calls == [[1, 2, 3]]
    assert await loader.get(None, 3) == "v3" and calls == [[1, 2, 3]]  # cached
    assert await loader.get(None, 2) is None and calls[-1] == [2]  # absent: asked again


async def test_a_failed_fetch_fails_its_waiters_only_and_the_next_miss_retries() -> None:
    fail = True

    async def fetch(pool: Any, keys: list[int]) -> dict[int, int]:
        if fail:
            raise ConnectionError("PostgreSQL went away")
        return {k: k * 10 for k in keys}

    loader: Loader[int, int] = Loader(fetch)
    results = await asyncio.gather(loader.get(None, 1), loader.get(None, 2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    fail = False
    assert await loader.get(None, 1) == 10


async def test_a_waiter_that_goes_away_does_not_cancel_the_others() -> None:
    release = asyncio.Event()

    async def fetch(pool: Any, keys: list[int]) -> dict[int, int]:
        await release.wait()
        return {k: k for k in keys}

    loader: Loader[int, int] = Loader(fetch)
    gone = asyncio.create_task(loader.get(None, 7))
    stays = asyncio.create_task(loader.get(None, 7))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await stays == 7
    with pytest.raises(asyncio.CancelledError):
        await gone
