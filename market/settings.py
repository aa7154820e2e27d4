"""Every setting of the exchange, read from the environment once.

Defaults make `make run` work on a machine with nothing but Python: no URLs means
embedded PostgreSQL and Redis under the data folder (see market/services.py).
"""

from __future__ import annotations

import os
import secrets
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from market.problems import field_of as field_of_msgspec

ROOT = Path(__file__).resolve().parent.parent  # the repository: sql/, templates/, static/ live here


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None  # None → embedded PostgreSQL
    redis_url: str | None = None  # None → embedded Redis
    data_dir: Path = Path(".market")
    secret_key: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # App processes behind the one port; they share nothing but PostgreSQL and Redis.
    web_workers: int = 1
    pg_port: int = 55432  # embedded PostgreSQL; 5432 is often taken by a system server
    redis_port: int = 56379
    timezone: str = "Asia/Shanghai"  # display only; everything is stored in UTC
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "IP Exchange <noreply@ipx.example.cn>"
    log_level: str = "INFO"
    # Sign-in throttling (docs/rules.md §Security): per account and client address this
    # many failures go at full speed, within the window; then each try waits the delay,
    # doubled for every further failure, at most the longest delay. Per client address
    # alone (many accounts), the factor × as many.
    login_max_failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    login_window_seconds: Annotated[int, msgspec.Meta(ge=1)] = 900
    login_delay_seconds: Annotated[int, msgspec.Meta(ge=1)] = 30
    login_max_delay_seconds: Annotated[int, msgspec.Meta(ge=1)] = 900
    login_client_factor: Annotated[int, msgspec.Meta(ge=1)] = 4
    # Reverse proxies in front of the exchange (addresses or networks): only from them is
    # X-Forwarded-For believed, for the client's address (docs/rules.md §Security).
    trusted_proxies: tuple[str, ...] = ()
    session_ttl_seconds: int = 12 * 3600
    # The audit chain's HMAC key (docs/rules.md §Security): set it apart from the secret
    # key, from which it is derived otherwise, so that one can rotate without the other.
    audit_key: str = ""
    # Where the worker anchors the audit chains' heads, outside PostgreSQL; None: the data
    # folder's audit-anchors.jsonl. Production puts it on another machine's disk.
    audit_anchor_path: Path | None = None
    # Strict-Transport-Security under https (docs/rules.md §Security): browsers reach the
    # exchange over https only, for a year after their last visit.
    hsts_max_age_seconds: Annotated[int, msgspec.Meta(ge=0)] = 365 * 86400
    db_pool_max: int = 20
    # Announcement period before bidding opens (docs/rules.md §Lot terms: 30 days for property
    # rights such as IP; one exchange-wide setting so a demo can use minutes).
    announcement_period_seconds: int = 30 * 86400
    # Per-bidder rate limit (docs/rules.md §Bidding): generous for people, it stops one
    # runaway system from flooding a lot's writer.
    bid_rate_per_second: float = 100.0
    bid_burst: float = 200.0
    # "writer": one writer per hot lot (auctions/writer.py); "direct": one transaction
    # per bid, kept only so bench/bidding.py can measure the difference.
    bid_path: Literal["writer", "direct"] = "writer"
    # Webhooks go to public hosts only: an organisation's URL must not make the exchange
    # POST into its own network (SSRF). Development, tests and drills, whose receivers
    # listen on 127.0.0.1, turn this on.
    webhook_private_hosts: bool = False
    # The exchange's deposit account (保证金专户, docs/rules.md §Registration and deposits):
    # every registrant is told to transfer its deposit here, with its own reference. The
    # defaults are the demo's placeholders; an exchange sets its real account before going
    # live.
    deposit_account_name: str = "成都知识产权交易中心保证金专户"
    deposit_bank: str = "中国银行股份有限公司成都高新技术产业开发区支行"
    deposit_account_number: str = "1234 5678 9012 3456 789"
    # "production": the exchange's clock is the system's. "sandbox": a rehearsal exchange
    # whose operator may move its clock forward (market/sandbox, docs/operations.md
    # §Sandbox mode); every page says so. `market run` (the demo) runs as a sandbox.
    mode: Literal["production", "sandbox"] = "production"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry Secure when the public address is HTTPS."""
        return self.public_base_url.startswith("https://")

    def cookie_name(self, base: str) -> str:
        """A cookie's name: under https with the `__Host-` prefix, which browsers accept
        only from a Secure response, for Path=/ and without Domain, so a sibling subdomain
        cannot set or overwrite it (docs/rules.md §Security)."""
        return f"__Host-{base}" if self.secure_cookies else base

    @property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """`trusted_proxies` as networks (an address is a network of one)."""
        return tuple(ip_network(p, strict=False) for p in self.trusted_proxies)

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return msgspec.structs.replace(self, database_url=database_url, redis_url=redis_url)


_ENV = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "data_dir": "MARKET_DATA_DIR",
    "secret_key": "MARKET_SECRET_KEY",
    "public_base_url": "MARKET_PUBLIC_URL",
    "host": "MARKET_HOST",
    "port": "MARKET_PORT",
    "web_workers": "MARKET_WEB_WORKERS",
    "pg_port": "MARKET_PG_PORT",
    "redis_port": "MARKET_REDIS_PORT",
    "timezone": "MARKET_TIMEZONE",
    "smtp_host": "MARKET_SMTP_HOST",
    "smtp_port": "MARKET_SMTP_PORT",
    "smtp_user": "MARKET_SMTP_USER",
    "smtp_password": "MARKET_SMTP_PASSWORD",
    "smtp_starttls": "MARKET_SMTP_STARTTLS",
    "mail_from": "MARKET_MAIL_FROM",
    "log_level": "MARKET_LOG_LEVEL",
    "login_max_failures": "MARKET_LOGIN_MAX_FAILURES",
    "login_window_seconds": "MARKET_LOGIN_WINDOW_SECONDS",
    "login_delay_seconds": "MARKET_LOGIN_DELAY_SECONDS",
    "login_max_delay_seconds": "MARKET_LOGIN_MAX_DELAY_SECONDS",
    "login_client_factor": "MARKET_LOGIN_CLIENT_FACTOR",
    "trusted_proxies": "MARKET_TRUSTED_PROXIES",
    "session_ttl_seconds": "MARKET_SESSION_TTL_SECONDS",
    "audit_key": "MARKET_AUDIT_KEY",
    "audit_anchor_path": "MARKET_AUDIT_ANCHORS",
    "hsts_max_age_seconds": "MARKET_HSTS_MAX_AGE_SECONDS",
    "db_pool_max": "MARKET_DB_POOL_MAX",
    "announcement_period_seconds": "MARKET_ANNOUNCEMENT_SECONDS",
    "bid_rate_per_second": "MARKET_BID_RATE",
    "bid_burst": "MARKET_BID_BURST",
    "bid_path": "MARKET_BID_PATH",
    "webhook_private_hosts": "MARKET_WEBHOOK_PRIVATE_HOSTS",
    "deposit_account_name": "MARKET_DEPOSIT_ACCOUNT_NAME",
    "deposit_bank": "MARKET_DEPOSIT_BANK",
    "deposit_account_number": "MARKET_DEPOSIT_ACCOUNT_NUMBER",
    "mode": "MARKET_MODE",
}


_LISTS = frozenset({"trusted_proxies"})


class SettingsError(Exception):
    pass


def load(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment; a bad value names the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, var in _ENV.items():
        value = env.get(var)
        if value is not None and value != "":
            # A list is written comma-separated: MARKET_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1
            raw[field] = [v.strip() for v in value.split(",")] if field in _LISTS else value
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        var = _ENV.get(field_of_msgspec(str(exc)) or "", "")  # name the variable to fix
        raise SettingsError(f"bad setting {var}: {exc}".replace(" :", ":")) from exc
    try:
        _ = settings.proxy_networks  # each must read as an address or a network
    except ValueError as exc:
        raise SettingsError(f"bad setting MARKET_TRUSTED_PROXIES: {exc}") from exc
    for name in ("database_url", "redis_url"):
        url = getattr(settings, name)
        if url is not None and not urlsplit(url).scheme:
            raise SettingsError(f"{_ENV[name]} must be a URL, got {url!r}")
    if not settings.secret_key:
        settings = msgspec.structs.replace(settings, secret_key=_dev_secret(settings.data_dir))
    return settings


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _dev_secret(data_dir: Path) -> str:
    """A secret kept under the data folder so sessions survive restarts in development.

    Production sets MARKET_SECRET_KEY; this only spares a newcomer one more step.
    """
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
