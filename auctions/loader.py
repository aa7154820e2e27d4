"""Cached look-ups whose misses in one event-loop turn share one query.

The bid path looks up a lot by its reference and a bidder's registration on every
request. Both are cached; a miss goes to PostgreSQL, but a burst of misses — 64 bidders'
first bids, or a refresh of a thousand lots' entries — would be a query each. `Loader`
gathers the misses of one turn of the event loop and answers them with one query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import asyncpg
from lru import LRU

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Loader(Generic[K, V]):
    """`fetch(pool, keys)` returns the found keys' values; an absent key is None to its
    callers and is asked for again next time (it may exist by then). With `ttl` seconds,
    found values are asked for again after that long; either way the cache keeps the
    `size` values used most recently (an LRU: a `get` costs a fraction of a microsecond,
    which the bid path pays on every request)."""

    def __init__(
        self,
        fetch: Callable[[asyncpg.Pool, list[K]], Awaitable[dict[K, V]]],
        ttl: float | None = None,
        size: int = 100_000,
    ) -> None:
        self.fetch, self.ttl = fetch, ttl
        self.cache: LRU[K, tuple[float, V]] = LRU(size)
        self.wanted: dict[K, asyncio.Future[V | None]] = {}
        self.loading: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references

    async def get(self, pool: asyncpg.Pool, key: K) -> V | None:
        hit = self.cache.get(key)
        if hit is not None and (self.ttl is None or time.monotonic() - hit[0] < self.ttl):
            return hit[1]
        wanted = self.wanted.get(key)
        if wanted is None:
            loop = asyncio.get_running_loop()
            if not self.wanted:  # the first miss of this turn loads them all, after the turn
                loop.call_soon(self._start, pool)
            wanted = self.wanted[key] = loop.create_future()
        return await asyncio.shield(wanted)  # one waiter's cancellation spares the others

    def clear(self) -> None:
        """Forget everything (tests that truncate tables reuse keys)."""
        self.cache.clear()
        self.wanted.clear()

    def _start(self, pool: asyncpg.Pool) -> None:
        task = asyncio.get_running_loop().create_task(self._load(pool))
        self.loading.add(task)
        task.add_done_callback(self.loading.discard)

    async def _load(self, pool: asyncpg.Pool) -> None:
        batch = dict(self.wanted)
        self.wanted.clear()  # misses from now on start the next load
        try:
            found = await self.fetch(pool, list(batch))
        except Exception as exc:  # each waiting request answers it as its own error
            for future in batch.values():
                future.set_exception(exc)
            return
        now = time.monotonic()
        for key, value in found.items():  # (lru-dict's update takes no pairs)
            self.cache[key] = (now, value)
        for key, future in batch.items():
            future.set_result(found.get(key))
