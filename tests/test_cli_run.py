"""`market run` as a person runs it: the web server and the worker are its children, and
nothing of them outlives it — not even when it is killed with SIGKILL, which runs no
`finally` (docs/operations.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import pytest

from tests.conftest import WORKER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def run_db(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A database of its own: `market run` seeds the demo into it."""
    pg = server_urls[0]
    name = f"run_{WORKER}"
    admin = await asyncpg.connect(pg)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(pg)._replace(path="/" + name))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_a_killed_run_leaves_no_server_or_worker_behind(
    run_db: str, test_urls: tuple[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=run_db,
        REDIS_URL=test_urls[1],  # this worker's db, emptied before every test that uses it
        MARKET_PORT=str(port),
        MARKET_SMTP_PORT=str(_free_port()),
        MARKET_DATA_DIR=str(tmp_path / "data"),
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _healthy(f"http://127.0.0.1:{port}/healthz"):
            assert run.poll() is None, "market run stopped before it served"
            assert time.monotonic() < deadline, "market run did not come up in 120 s"
            time.sleep(0.5)
        children = psutil.Process(run.pid).children(recursive=True)
        commands = {" ".join(c.cmdline()[-1:]) for c in children}
        assert {"serve", "worker"} <= commands
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        assert not _healthy(f"http://127.0.0.1:{port}/healthz")
    finally:
        if run.poll() is None:
            run.kill()
        for child in psutil.Process(os.getpid()).children(recursive=True):
            if child.pid != os.getpid() and "market.cli" in " ".join(child.cmdline()):
                child.kill()
