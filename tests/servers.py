"""Real processes for tests that talk HTTP only: the server (granian, as `market serve`
runs it), the worker (`market worker`) and the `market` command itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from market.mailfolder import catching
from market.settings import ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a `market` process reads these settings from (plus `extra`)."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "MARKET_SECRET_KEY": settings.secret_key,
        "MARKET_DATA_DIR": str(settings.data_dir),
        "MARKET_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


def run_market(settings: Settings, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the `market` command (e.g. "seed-demo") to its end; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "market.cli", *args],
        cwd=ROOT,
        env=environment(settings, env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"market {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@contextmanager
def running_worker(settings: Settings, env: dict[str, str] | None = None) -> Iterator[None]:
    """`market worker` in a subprocess, stopped (SIGTERM) at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "worker"], cwd=ROOT, env=environment(settings, env)
    )
    try:
        yield
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_server(
    settings: Settings, target: str = "market.asgi:app", env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve `target` (an app factory) on a free loopback port; yields its base URL."""
    port = free_port()
    command = [
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
        "--no-ws",
        "--no-access-log",
        target,
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=environment(settings, env))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url
    finally:
        _stop(proc)


@contextmanager
def catching_mail(folder: Path) -> Iterator[int]:
    """An SMTP server on a free loopback port (the demo's, market/mailfolder.py) that
    writes every message it accepts into `folder` as `<n>.eml`; yields its port, for a
    process's MARKET_SMTP_PORT."""
    port = free_port()
    with catching("127.0.0.1", port, folder, lambda _said: None) as started:
        if started is None:
            raise RuntimeError(f"no SMTP server on port {port}")
        yield port
