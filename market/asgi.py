"""The ASGI entry point servers load: `market.asgi:app` as a factory.

`market serve` has already resolved DATABASE_URL / REDIS_URL (starting embedded services
if needed) and put them in the environment of the server process.
"""

from __future__ import annotations

import gc

from litestar import Litestar

from market import logs, settings
from market.app import create_app


def app() -> Litestar:
    loaded = settings.load()
    logs.setup(loaded.log_level)
    app = create_app(loaded)
    # What exists now lives as long as the process (modules, routes, templates): frozen
    # out of the cyclic collector, a full collection scans only what came since. Without
    # this each full collection paused the event loop for about 70 ms, every few seconds
    # under load — every bid in flight waited (bench/bidding.py rejects_only, p99).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    return app


# A young collection runs when this many more container objects are alive than at the
# last one. Python's 700 is reached every few milliseconds under load by the objects of
# the requests in flight (64 bidders: ~60 young collections a second), which each
# collection then promotes, so they reach the full collection that scans every live
# object: measured on bench/bidding.py many_lots (gc.callbacks timing every collection),
# ~5 % of the event loop's time in the collector and a 25-38 ms pause of every request
# about every 2 s. At 20,000 the requests in flight never add up to a collection: after
# the caches filled, none ran in 40 s; the young collection that does run pauses ~10 ms.
YOUNG_COLLECTION_THRESHOLD = 20_000
