"""Which ASGI server: granian or uvicorn, measured on this exchange's own pages.

Starts the app under each server (one worker process each, as `market serve` runs it),
drives it with wrk over loopback and prints one line per server and path:

  bench asgi server=granian path=/healthz requests_per_s=… p50_ms=… p99_ms=…

Run: .venv/bin/python bench/asgi_servers.py   (uses DATABASE_URL/REDIS_URL, else embedded)
Needs Debian's wrk (apt-get install wrk).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_seconds
from market.cli import _child_env, resolved
from market.settings import load

DURATION = bench_seconds(10)
PATHS = ["/healthz", "/"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(server: str, port: int) -> list[str]:
    if server == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--runtime-mode",
            "st",  # as `market serve` runs it (market/cli.py)
            "--no-access-log",
            "market.asgi:app",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "market.asgi:app",
    ]


def to_ms(text: str) -> float:
    """wrk's latency figure (e.g. 812.00us, 3.20ms, 1.05s, 1.01m) in milliseconds."""
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk: apt-get install wrk")
    with resolved(load()) as settings:
        env = {**_child_env(settings), "MARKET_LOG_LEVEL": "WARNING"}
        for server in ("granian", "uvicorn"):
            port = free_port()
            proc = subprocess.Popen(command(server, port), env=env)
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(100):
                    try:
                        httpx.get(base + "/healthz", timeout=1)
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                for path in PATHS:
                    out = subprocess.run(
                        ["wrk", "-t2", "-c64", f"-d{DURATION}s", "--latency", base + path],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    if "Latency Distribution" not in out:
                        print(f"bench asgi server={server} path={path} failed:\n{out}")
                        continue
                    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
                    p50 = to_ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
                    p99 = to_ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
                    print(
                        f"bench asgi server={server} path={path} requests_per_s={rps:.0f} "
                        f"p50_ms={p50:.1f} p99_ms={p99:.1f}",
                        flush=True,
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=15)


if __name__ == "__main__":
    main()
