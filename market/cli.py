"""The `market` command.

market run              everything a newcomer needs: services, migrations, demo data,
                        web server and worker; Ctrl-C stops it all
market serve            the web server only          market worker   the arq worker only
market migrate          apply new migrations         market seed-demo   demo data
market services up|down|status                       market audit verify|anchor
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType

from market import logs
from market.settings import Settings, SettingsError, load


class CliError(Exception):
    """Printed as one line, exit status 1."""


def _services(settings: Settings) -> object:
    from market.services import EmbeddedServices

    return EmbeddedServices(
        settings.data_dir,
        pg_port=settings.pg_port,
        redis_port=settings.redis_port,
        postgres=settings.embedded_postgres,
        redis=settings.embedded_redis,
    )


@contextlib.contextmanager
def resolved(settings: Settings) -> Iterator[Settings]:
    """Settings with both URLs: the given ones, or embedded servers started (and stopped) here."""
    if not settings.embedded_postgres and not settings.embedded_redis:
        yield settings
        return
    from market.services import EmbeddedServices

    services = _services(settings)
    assert isinstance(services, EmbeddedServices)
    services.start()
    try:
        yield settings.with_urls(
            settings.database_url or services.database_url,
            settings.redis_url or services.redis_url,
        )
    finally:
        services.stop()


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line before anything starts, rather than a server's backtrace later."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise CliError(
                f"port {port} on {host} is taken by another program; stop it or set MARKET_PORT"
            ) from None


def _exit_on_sigterm() -> None:
    # SIGTERM becomes SystemExit, so `finally` blocks stop the embedded servers.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    # Ctrl-C must stop everything even when started from a shell that ignores SIGINT for
    # background jobs (Python would then keep the ignore it inherited).
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    assert settings.database_url and settings.redis_url
    env["DATABASE_URL"] = settings.database_url
    env["REDIS_URL"] = settings.redis_url
    env["MARKET_SECRET_KEY"] = settings.secret_key
    return env


# --- commands ---------------------------------------------------------------------------


async def _migrate(settings: Settings) -> list[str]:
    from market import db

    assert settings.database_url
    conn = await db.connect(settings.database_url)
    try:
        return await db.migrate(conn)
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    with resolved(settings) as s:
        done = asyncio.run(_migrate(s))
    print("applied: " + ", ".join(done) if done else "database is up to date")


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> None:
    from market.demo import seed_demo

    with resolved(settings) as s:
        asyncio.run(_migrate(s))
        logins = asyncio.run(seed_demo(s, force=True))
    _print_logins(logins)


def cmd_bootstrap_operator(settings: Settings, args: argparse.Namespace) -> None:
    """The first operator of a new exchange; prints its administrator's invitation link."""
    with resolved(settings) as s:
        asyncio.run(_migrate(s))
        link = asyncio.run(_bootstrap_operator(s, args))
    print(f"operator created; its administrator joins at: {link}")


async def _bootstrap_operator(settings: Settings, args: argparse.Namespace) -> str:
    from market import db
    from market.accounts import onboarding, people
    from market.clock import SystemClock
    from market.commands import SYSTEM, Context, run
    from market.errors import AppError

    assert settings.database_url
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        data = onboarding.FirstOperator(
            name=args.name, credit_code=args.credit_code, admin_email=args.email
        )
        try:
            done = await run(
                onboarding.bootstrap_operator,
                data,
                ctx=Context(pool=pool, clock=SystemClock()),
                actor=SYSTEM,
            )
        except AppError as exc:
            raise CliError(f"{exc.code} {exc.field or ''} {exc.params or ''}".strip()) from None
        async with pool.acquire() as conn:
            return await people.invitation_link(
                conn, settings.secret_key, settings.public_base_url, done.invitation.id
            )
    finally:
        await pool.close()


def _print_logins(logins: list[tuple[str, str, str]]) -> None:
    from market.demo import demo_logins

    if logins:
        print("demo logins (e-mail / password):")
    else:  # every start says how to sign in, not only the first
        logins = demo_logins()
        print("demo data already present; its logins (e-mail / password, unless changed):")
    for who, email, password in logins:
        print(f"  {who:<28} {email:<28} {password}")


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the web server in this process (granian; see docs/operations.md for why)."""
    from granian import Granian
    from granian.constants import Interfaces, RuntimeModes

    os.environ.update(_child_env(settings))
    Granian(
        target="market.asgi:app",
        factory=True,
        address=host or settings.host,
        port=port or settings.port,
        interface=Interfaces.ASGI,
        workers=settings.web_workers,
        # One I/O thread per process, so requests reach the app in the order they
        # arrived: granian's default multi-threaded runtime hands them over reordered
        # (about three in four arrive after one sent later, bench/arrival_order.py), and
        # a bid sent first should be decided first (docs/bidding.md).
        runtime_mode=RuntimeModes.st,
        log_access=False,
    ).serve()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    _exit_on_sigterm()
    _check_port_free(args.host or settings.host, args.port or settings.port)
    with resolved(settings) as s:
        serve(s, args.host, args.port)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    from workers.settings import run

    with resolved(settings) as s:
        run(s)


def cmd_run(settings: Settings, args: argparse.Namespace) -> None:
    """Services, migrations, demo data, then the web server and worker as child processes."""
    from market.demo import seed_demo
    from market.mailfolder import catching
    from market.services import die_with_parent

    _exit_on_sigterm()
    _check_port_free(settings.host, settings.port)
    with (
        resolved(settings) as s,
        catching(s.smtp_host, s.smtp_port, s.data_dir / "mail") as mail,
    ):
        applied = asyncio.run(_migrate(s))
        if applied:
            print("migrations applied: " + ", ".join(applied))
        logins = asyncio.run(seed_demo(s, force=False))
        env = _child_env(s)
        # The demo is a sandbox (its operator may move the clock) unless MARKET_MODE says
        # otherwise; `market serve` and `market worker` alone default to production.
        env["MARKET_MODE"] = os.environ.get("MARKET_MODE") or "sandbox"
        exe = [sys.executable, "-m", "market.cli"]
        # A `kill -9` of this process runs no `finally`: the kernel stops the children
        # (SIGTERM, which each turns into a clean exit), so the next `make run` finds the
        # port free and no worker left behind.
        children = [
            subprocess.Popen(  # noqa: S603 - our own command
                [*exe, command],
                env=env,
                # prctl and getppid only, both async-signal-safe (market/services.py)
                preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509
            )
            for command in ("serve", "worker")
        ]
        url = f"http://{s.host}:{s.port}"
        print(f"\nIP collateral exchange running at {url}  (health: {url}/healthz)")
        if env["MARKET_MODE"] == "sandbox":
            print(f"sandbox mode: the operator moves the clock at {url}/operator/sandbox")
        print(f"data folder: {s.data_dir.resolve()}  — Ctrl-C stops everything")
        if mail is not None:
            print(f"e-mails go to {mail.resolve()} (an SMTP server on {s.smtp_port} for the demo)")
        _print_logins(logins)
        try:
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
            failed = [c.args for c in children if c.poll() not in (None, 0)]
            if failed:
                raise CliError("a child process stopped unexpectedly; see the log above")
        finally:
            for c in children:
                if c.poll() is None:
                    c.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 15
            for c in children:
                try:
                    c.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    c.kill()
                    c.wait()


def cmd_services(settings: Settings, args: argparse.Namespace) -> None:
    from market import services

    if args.action == "up":
        svc = _services(settings)
        assert isinstance(svc, services.EmbeddedServices)
        svc.start(detach=True)
        print(f"DATABASE_URL={svc.database_url}" if settings.embedded_postgres else "")
        print(f"REDIS_URL={svc.redis_url}" if settings.embedded_redis else "")
    elif args.action == "down":
        stopped = services.stop_recorded(settings.data_dir)
        print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    else:
        for info in services.status(settings.data_dir):
            state = f"running pid {info.pid} {info.url}" if info.running else "stopped"
            print(f"{info.name:<9} {state}")


def cmd_audit(settings: Settings, args: argparse.Namespace) -> None:
    from auctions import seals
    from market import audit, audit_anchors, db
    from market.clock import SystemClock

    path = audit_anchors.anchor_path(settings)

    async def verify(s: Settings) -> tuple[int, list[audit.Break | seals.SealBreak]]:
        assert s.database_url
        anchors = audit_anchors.read(path, audit.current_key())
        conn = await db.connect(s.database_url)
        try:
            checked, breaks = await audit.verify(conn, anchors=anchors)
            # The bids' seals live in the chain just verified (auctions/seals.py).
            sealed, broken_seals = await seals.verify(conn)
            return checked + sealed, [*breaks, *broken_seals]
        finally:
            await conn.close()

    async def anchor(s: Settings) -> tuple[int, list[audit.Break]]:
        assert s.database_url
        conn = await db.connect(s.database_url)
        try:
            return await audit_anchors.anchor(conn, path, audit.current_key(), SystemClock().now())
        finally:
            await conn.close()

    breaks: list[audit.Break | seals.SealBreak]
    with resolved(settings) as s:
        if args.action == "anchor":
            checked, anchored_breaks = asyncio.run(anchor(s))
            breaks = [*anchored_breaks]
        else:
            checked, breaks = asyncio.run(verify(s))
    if breaks:
        for b in breaks:
            print(f"BROKEN {b}")
        raise SystemExit(1)
    if args.action == "anchor":
        print(f"{checked} chain heads anchored in {path}")
        return
    print(f"audit log intact: {checked} rows verified")
    if not path.exists():
        print(f"no anchors yet in {path}: rows cut off a chain's end would not show")


def cmd_notify(settings: Settings, args: argparse.Namespace) -> None:
    from market.notify.jobs import replay_command

    if not args.ids and not args.all_failed:
        raise CliError("name deliveries with --id N (repeatable) or use --all-failed")
    with resolved(settings) as s:
        count = asyncio.run(replay_command(s, args.ids or [], all_failed=args.all_failed))
    print(f"{count} deliveries queued again")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="market", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="services + migrations + demo data + web + worker")
    serve_p = sub.add_parser("serve", help="web server")
    serve_p.add_argument("--host")
    serve_p.add_argument("--port", type=int)
    sub.add_parser("worker", help="background worker")
    sub.add_parser("migrate", help="apply new migrations")
    sub.add_parser("seed-demo", help="create demo organisations, users and data")
    boot = sub.add_parser("bootstrap-operator", help="the exchange's first operator")
    boot.add_argument("--name", required=True)
    boot.add_argument("--credit-code", required=True)
    boot.add_argument("--email", required=True, help="its first administrator, invited")
    svc = sub.add_parser("services", help="embedded PostgreSQL and Redis")
    svc.add_argument("action", choices=["up", "down", "status"])
    aud = sub.add_parser("audit", help="audit log")
    aud.add_argument("action", choices=["verify", "anchor"])
    notify = sub.add_parser("notify", help="notifications")
    notify.add_argument("action", choices=["replay"])
    notify.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        help="a failed delivery to send again (repeatable)",
    )
    notify.add_argument("--all-failed", action="store_true", help="every failed delivery")
    return p


COMMANDS = {
    "run": cmd_run,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "seed-demo": cmd_seed_demo,
    "bootstrap-operator": cmd_bootstrap_operator,
    "services": cmd_services,
    "audit": cmd_audit,
    "notify": cmd_notify,
}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from market.db import MigrationError

    try:
        settings = load()
        logs.setup(settings.log_level)
        from market import audit

        audit.use_key(audit.key_of(settings))  # what this process writes or checks is keyed
        COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        pass
    except (CliError, SettingsError, MigrationError) as exc:
        print(f"market: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        from market.services import ServiceError

        if isinstance(exc, ServiceError | OSError):
            print(f"market: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":
    main()
