"""Embedded PostgreSQL and Redis: real servers, real signals, no mocks.

One PGDATA is initialised per module and copied for each test (initdb is the slow part).
The copy is root-owned when tests run as root, which also exercises the chown on start.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from market.services import EmbeddedServices, ServiceError, ServiceInfo, status, stop_recorded

REPO = Path(__file__).resolve().parent.parent
SERVER_NAMES = {"postgres", "redis-server"}


def leftovers(data_dir: Path) -> list[psutil.Process]:
    """Servers working on data_dir: postmaster by its -D argument, and, since backends and
    Redis rewrite their process titles, everything else by its working folder."""
    root = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "cwd", "status"]):
        info = proc.info
        if info["name"] not in SERVER_NAMES or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(info["cmdline"] or [])
        if root in cmdline or (info["cwd"] or "").startswith(root):
            found.append(proc)
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="market-services-"))
    services = EmbeddedServices(base / "data", pg_port=0, redis_port=0)
    services.start()
    services.stop()
    try:
        yield base / "data"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def data_dir(template: Path, tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "data"
    shutil.copytree(template, target, symlinks=True)
    try:
        yield target
    finally:
        stop_recorded(target)
        for proc in leftovers(target):  # a failed test must not leak servers into the next
            proc.kill()


async def read_and_write(url: str, value: str | None) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        await conn.execute("CREATE TABLE IF NOT EXISTS notes (body text)")
        if value is not None:
            await conn.execute("INSERT INTO notes VALUES ($1)", value)
        return [row["body"] for row in await conn.fetch("SELECT body FROM notes")]
    finally:
        await conn.close()


def test_data_survives_a_restart(data_dir: Path) -> None:
    with EmbeddedServices(data_dir, pg_port=0, redis_port=0) as services:
        assert services.database_url.endswith("/market")
        assert asyncio.run(read_and_write(services.database_url, "质押专利 #1")) == ["质押专利 #1"]
        client = redis.Redis.from_url(services.redis_url)
        assert client.ping()
        client.set("lot:1", "拍卖中")
        client.close()

    with EmbeddedServices(data_dir, pg_port=0, redis_port=0) as services:
        assert asyncio.run(read_and_write(services.database_url, None)) == ["质押专利 #1"]
        client = redis.Redis.from_url(services.redis_url, decode_responses=True)
        assert client.get("lot:1") == "拍卖中"
        assert client.config_get("save") == {"save": ""}
        client.close()


def test_stop_leaves_no_server_behind(data_dir: Path) -> None:
    services = EmbeddedServices(data_dir, pg_port=0, redis_port=0)
    services.start()
    running = leftovers(data_dir)
    # postmaster + its background workers, and redis
    assert {p.name() for p in running} == SERVER_NAMES
    assert len(running) > 3
    services.stop()
    assert leftovers(data_dir) == []
    assert not any(info.running for info in status(data_dir))
    assert not (data_dir / "run" / "postgres.json").exists()
    services.stop()  # idempotent


def test_database_name_is_quoted(data_dir: Path) -> None:
    with EmbeddedServices(data_dir, pg_port=0, redis=False, database="Market-Test") as services:
        assert services.database_url.endswith("/Market-Test")
        assert asyncio.run(read_and_write(services.database_url, "x")) == ["x"]
        with pytest.raises(ServiceError, match="not running"):
            _ = services.redis_url


PARENT = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from market.services import EmbeddedServices

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as the CLI does
    # As the CLI does: Ctrl-C stops it even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    services = EmbeddedServices(Path(sys.argv[1]), pg_port=0, redis_port=0)
    try:
        services.start()
        print("ready", flush=True)
        while True:
            time.sleep(1)
    finally:
        services.stop()
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_servers_die_with_their_parent(data_dir: Path, sig: signal.Signals) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "ready"
            servers = leftovers(data_dir)
            assert {p.name() for p in servers} == SERVER_NAMES
            # Out of reach of the terminal's Ctrl-C, which goes to the parent's process group.
            assert all(os.getpgid(p.pid) != os.getpgid(parent.pid) for p in servers)
            parent.send_signal(sig)
            parent.wait(30)
        finally:
            parent.kill()
    records = sorted(p.name for p in (data_dir / "run").glob("*.json"))
    if sig == signal.SIGKILL:
        # Nothing in the parent ran: only PR_SET_PDEATHSIG can stop the servers.
        assert records == ["postgres.json", "redis.json"]
        assert wait_until(lambda: leftovers(data_dir) == []), leftovers(data_dir)
    else:
        # The parent's own stop() ran and waited for the servers to exit.
        # Python ends an uncaught KeyboardInterrupt by re-raising SIGINT on itself.
        assert parent.returncode == (0 if sig == signal.SIGTERM else -signal.SIGINT)
        assert records == []
        assert leftovers(data_dir) == []
    # A record left by a killed parent is stale, not an obstacle.
    assert not any(info.running for info in status(data_dir))
    with EmbeddedServices(data_dir, pg_port=0, redis_port=0) as services:
        assert asyncio.run(read_and_write(services.database_url, None)) == []


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_taken_port_is_reported(data_dir: Path) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"^port {port} is taken .*MARKET_PG_PORT"):
            EmbeddedServices(data_dir, pg_port=port, redis_port=0).start()
        with pytest.raises(ServiceError, match=rf"^port {port} is taken .*MARKET_REDIS_PORT"):
            EmbeddedServices(data_dir, pg_port=0, redis_port=port).start()
    assert leftovers(data_dir) == []
    assert not (data_dir / "run" / "redis.json").exists()


def test_a_failed_start_shows_the_log_and_stops_the_rest(data_dir: Path) -> None:
    with (data_dir / "pg" / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'plenty'\n")
    services = EmbeddedServices(data_dir, pg_port=0, redis_port=0)
    with pytest.raises(ServiceError, match="did not start") as failure:
        services.start()
    assert "shared_buffers" in str(failure.value)  # the server's own complaint, from its log
    assert leftovers(data_dir) == []  # redis had started first
    assert not any(info.running for info in status(data_dir))


UP = "from pathlib import Path; import sys; from market.services import EmbeddedServices; "
UP += "EmbeddedServices(Path(sys.argv[1]), pg_port=0, redis_port=0).start(detach=True)"


def test_detached_servers_are_reused_and_stopped_by_record(data_dir: Path) -> None:
    assert status(data_dir) == [
        ServiceInfo("postgres", False, None, None, None),
        ServiceInfo("redis", False, None, None, None),
    ]
    # `market services up`: the process that starts them exits at once.
    subprocess.run([sys.executable, "-c", UP, str(data_dir)], cwd=REPO, check=True, timeout=60)
    up = status(data_dir)
    assert [info.running for info in up] == [True, True]
    assert all(psutil.pid_exists(info.pid or 0) for info in up)

    services = EmbeddedServices(data_dir, pg_port=0, redis_port=0)
    services.start()
    assert services.database_url == up[0].url
    assert services.redis_url == up[1].url
    assert asyncio.run(read_and_write(services.database_url, "reused")) == ["reused"]
    services.stop()  # not ours: must leave them running
    assert status(data_dir) == up
    assert {p.pid for p in leftovers(data_dir)} >= {info.pid for info in up}

    assert stop_recorded(data_dir) == ["postgres", "redis"]
    assert [info.running for info in status(data_dir)] == [False, False]
    assert leftovers(data_dir) == []
    assert stop_recorded(data_dir) == []


def test_a_failed_restart_keeps_the_server_known(data_dir: Path) -> None:
    """pg_ctl fails (here: the server's pid file is gone): the running server must still
    be the object's to stop, not forgotten and left running."""
    services = EmbeddedServices(data_dir, pg_port=0, redis=False)
    services.start()
    try:
        url = services.database_url
        (data_dir / "pg" / "postmaster.pid").unlink()
        with pytest.raises(subprocess.CalledProcessError):
            services.restart("postgres", immediate=True)
        assert services.database_url == url  # still known, still running
        assert asyncio.run(read_and_write(url, "x")) == ["x"]
    finally:
        services.stop()
    assert leftovers(data_dir) == []
