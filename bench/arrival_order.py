"""In what order do 64 connections' requests reach the application?

The hot-lot goal counts accepted bids, and a bid is only acceptable above every bid
decided before it: how many of a hot lot's bids can be accepted depends on whether they
reach the engine in the order they were sent. This measures that order with no engine at
all: granian (one process, ASGI) serves a few-line ASGI app that records each request's
body, once with granian's default multi-threaded runtime and once single-threaded, as
`market serve` runs it since this measurement; and wrk (2 threads, 64 connections, as
bench/bidding.py) sends as body the microseconds of a clock the two threads share, taken
just before each request is written. A request that arrives after one sent later could
not have been accepted as a bid however fast the engine were. One line:

  bench arrival_order runtime=st connections=64 requests_per_s=… arrived_after_a_later_one_pct=…

Run: .venv/bin/python bench/arrival_order.py   (BENCH_SECONDS, default 10; needs wrk)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_seconds

SECONDS = bench_seconds(10)
CONNECTIONS = 64

LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
function request()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC: one clock for both threads
  local us = (tonumber(ts.tv_sec) % 100000) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
  return wrk.format("POST", "/", nil, tostring(us))
end
"""

# The app: counts requests, and those whose stamp is below the highest seen before them.
seen = {"requests": 0, "late": 0, "highest": 0}


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = (await receive()).get("body", b"")
    if scope["method"] == "POST":
        stamp = int(body)
        seen["requests"] += 1
        seen["late"] += stamp < seen["highest"]
        seen["highest"] = max(seen["highest"], stamp)
        payload = b"ok"
    else:  # GET: the counts so far, then start afresh
        payload = f"{seen['requests']} {seen['late']}".encode()
        seen.update(requests=0, late=0)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


def measure(runtime: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--runtime-mode",
            runtime,
            "--no-ws",
            "arrival_order:app",
        ],
        cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(LUA)
            script.flush()
            subprocess.run(
                ["wrk", "-t2", "-c8", "-d1s", "-s", script.name, base],
                capture_output=True,
                check=True,
            )  # warm up
            httpx.get(base)  # and forget the warm-up
            subprocess.run(
                ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", script.name, base],
                capture_output=True,
                check=True,
            )
        requests, late = map(int, httpx.get(base).text.split())
        print(
            f"bench arrival_order runtime={runtime} connections={CONNECTIONS}"
            f" requests_per_s={requests / SECONDS:.0f}"
            f" arrived_after_a_later_one_pct={100 * late / max(requests, 1):.1f}",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk: apt-get install wrk")
    for runtime in ("mt", "st"):  # granian's default, then `market serve`'s
        measure(runtime)


if __name__ == "__main__":
    main()
