"""Accounts: organisations, users, sign-in, API tokens. Each change is a command
(market/commands.py) whose audit row commits with it, so a refused request changes nothing.

Concurrency: registration relies on the unique keys (credit code, e-mail) rather than on
the pre-checks, which only give a friendlier message: two racing sign-ups with one e-mail
get one success and one 409. A decision locks the organisation row, so two operators
deciding at once cannot both act on a pending organisation. Revoking a token locks nothing:
setting revoked_at twice is harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import msgspec
from lru import LRU
from redis.asyncio import Redis

from market import validators
from market.accounts import sessions, throttle
from market.accounts.models import (
    ApiCaller,
    Language,
    NewToken,
    OrganisationOut,
    TokenOut,
    Viewer,
)
from market.accounts.passwords import hash_password, verify_password
from market.accounts.permissions import MANAGE_TOKENS, OWN_ACCOUNT, SCOPES_BY_KIND
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Invalid, NotFound, RateLimited, Unauthorized
from market.settings import Settings

Q = Queries("accounts")
QA = Queries("api")  # the API's token checks (sql/queries/api.sql)


def _check(field: str, fn: Callable[[str], str], value: str) -> str:
    """A validator's value, its refusal named for `field`."""
    try:
        return fn(value)
    except Invalid as exc:
        exc.field = field
        raise


async def create_organisation(
    uow: UnitOfWork,
    *,
    kind: str,
    name: str,
    credit_code: str | None,
    status: str,
    name_en: str | None = None,
    id_number: str | None = None,
) -> OrganisationOut:
    """An organisation with its audit row, inside a command's unit of work: a company by
    its credit code, or a person bidding in their own name by `id_number`."""
    code = _check("credit_code", validators.credit_code, credit_code) if credit_code else None
    if code and await uow.conn.fetchval(Q.credit_code_taken, code):
        raise Conflict("credit_code_taken", field="credit_code")
    number = _check("id_number", validators.id_number, id_number) if id_number else None
    if number and await uow.conn.fetchval(Q.id_number_taken, number):
        raise Conflict("id_number_taken", field="id_number")
    party = "individual" if number else "company"
    name = _check("name", validators.display_name, name)
    name_en = _check("name_en", validators.display_name, name_en) if name_en else name_en
    row = await uow.conn.fetchrow(
        Q.insert_org, kind, name, name_en, code, status, uow.at, party, number
    )
    org = msgspec.convert(dict(returned(row)), OrganisationOut)
    after = msgspec.to_builtins(org)
    if number:  # the number itself stays out of the chain, which outlives a deletion request
        after["id_number_sha256"] = hashlib.sha256(number.encode()).hexdigest()
    uow.audit("organisation.create", "organisation", org.id, chain_org_id=org.id, after=after)
    return org


async def create_user(
    uow: UnitOfWork,
    *,
    org_id: int,
    email: str,
    display_name: str,
    password: str,
    role: str,
    language: str = "zh",
    password_hash: str | None = None,
) -> int:
    """A user of `org_id` with its audit row, inside a command's unit of work."""
    email = _check("email", validators.email, email)
    if await uow.conn.fetchval(Q.email_taken, email):
        raise Conflict("email_taken", field="email")
    pw_hash = password_hash or await hash_password(password)
    user_id: int = await uow.conn.fetchval(
        Q.insert_user, org_id, email, display_name.strip(), pw_hash, role, language, uow.at
    )
    uow.audit(
        "user.create",
        "user",
        user_id,
        chain_org_id=org_id,
        after={"email": email, "display_name": display_name, "role": role},
    )
    return user_id


@command(OWN_ACCOUNT)
async def set_language(uow: UnitOfWork, lang: Language) -> None:
    """The signed-in user's language, for pages, e-mails and API answers."""
    await uow.conn.execute(Q.set_language, uow.actor.user, lang)


# --- sign-in ---------------------------------------------------------------------------


async def sign_in(
    pool: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    *,
    email: str,
    password: str,
    client: str,
    at: datetime,
    previous: str | None = None,
) -> str:
    """Check the password and open a session; returns the session token. The session
    the browser held before (`previous`) ends: a session is never carried across a
    sign-in (docs/rules.md §Security — fixation).

    Every try is counted before its password is checked, atomically, per account and
    client address (market/accounts/throttle.py): past the limit a try is refused with
    429 and how long to wait, before the password is even checked, so guessing slows
    down without locking the real user, elsewhere, out.
    """
    email = email.strip().lower()
    attempt = throttle.attempt_of(email, client)
    wait = await throttle.reserve(redis, settings, attempt, int(at.timestamp() * 1000))
    if wait:
        raise RateLimited(retry_after=wait)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.login_user, email)
    if not await verify_password(row["password_hash"] if row else None, password):
        raise Unauthorized("wrong_password")
    assert row is not None
    await throttle.succeeded(redis, attempt)
    if previous:
        await sessions.destroy(redis, previous)
    return await sessions.create(redis, row["id"], settings.session_ttl_seconds)


async def load_viewer(pool: asyncpg.Pool, user_id: int) -> Viewer | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.viewer, user_id)
    return None if row is None else msgspec.convert(dict(row), Viewer)


# --- API tokens ------------------------------------------------------------------------

TOKEN_PREFIX = "ipx"


def token_out(row: asyncpg.Record, secret: str | None = None) -> TokenOut:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return TokenOut(
        id=row["id"],
        name=row["name"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"].isoformat(),
        expires_at=iso(row["expires_at"]),
        revoked_at=iso(row["revoked_at"]),
        secret=secret,
    )


@command(MANAGE_TOKENS)
async def create_token(uow: UnitOfWork, data: NewToken) -> TokenOut:
    """A new token for the actor's organisation; the secret is in this answer only."""
    assert uow.actor.org_kind is not None
    allowed = SCOPES_BY_KIND[uow.actor.org_kind]
    bad = sorted(set(data.scopes) - allowed)
    if bad:
        raise Invalid("scopes_not_available", field="scopes", scopes=bad, allowed=sorted(allowed))
    expires = uow.at + timedelta(days=data.expires_in_days) if data.expires_in_days else None
    if uow.actor.token_id is not None:
        await _within_calling_token(uow, uow.actor.token_id, set(data.scopes), expires)
    public_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    row = returned(
        await uow.conn.fetchrow(
            Q.insert_token,
            uow.actor.org,
            uow.actor.user,
            data.name.strip(),
            public_id,
            hashlib.sha256(secret.encode()).digest(),
            sorted(set(data.scopes)),
            uow.at,
            expires,
        )
    )
    uow.audit(
        "api_token.create",
        "api_token",
        row["id"],
        after={"name": data.name, "scopes": sorted(set(data.scopes))},
    )
    return token_out(row, secret=f"{TOKEN_PREFIX}_{public_id}_{secret}")


async def _within_calling_token(
    uow: UnitOfWork, token_id: int, scopes: set[str], expires: datetime | None
) -> None:
    """A token made through the API holds no scope the calling token lacks and expires no
    later than it: a program cannot widen or prolong its own access."""
    row = returned(await uow.conn.fetchrow(QA.token_scopes, token_id))
    beyond = sorted(scopes - set(row["scopes"]))
    if beyond:
        raise Invalid("scopes_beyond_token", field="scopes", scopes=beyond)
    limit = row["expires_at"]
    if limit is not None and (expires is None or expires > limit):
        raise Invalid("token_outlives_caller", field="expires_in_days", expires_at=limit)


async def list_tokens(pool: asyncpg.Pool, org_id: int) -> list[TokenOut]:
    async with pool.acquire() as conn:
        return [token_out(r) for r in await conn.fetch(Q.org_tokens, org_id)]


async def get_token(pool: asyncpg.Pool, org_id: int, token_id: int) -> TokenOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.org_token, token_id, org_id)
    if row is None:
        raise NotFound("no_such_token")
    return token_out(row)


@command(MANAGE_TOKENS)
async def revoke_token(uow: UnitOfWork, token_id: int) -> None:
    existing = await uow.conn.fetchrow(Q.org_token, token_id, uow.actor.org)
    if existing is None:
        raise NotFound("no_such_token")
    if existing["revoked_at"] is not None:
        return  # revoking twice is harmless
    await uow.conn.execute(Q.revoke_token, token_id, uow.actor.org, uow.at, uow.actor.user)
    forget_tokens()  # revocation is rare; forgetting every cached token is simplest
    uow.audit(
        "api_token.revoke",
        "api_token",
        token_id,
        before={"revoked_at": None},
        after={"revoked_at": uow.at.isoformat()},
    )


# Validated tokens, for a few seconds: the bid path answers thousands of requests a second
# and must not read the token table for each. A revocation in this process clears the
# cache at once; another process sees it within TOKEN_CACHE_SECONDS. The secret's hash is
# compared on every request all the same. Bounded (the TOKEN_CACHE_SIZE used last): a
# flood of distinct tokens evicts old ones rather than growing the process.
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_SIZE = 10_000
_tokens: LRU[str, tuple[float, bytes, ApiCaller, datetime | None]] = LRU(TOKEN_CACHE_SIZE)


def forget_tokens() -> None:
    """Drop every validated token (a revocation; tests that reuse ids)."""
    _tokens.clear()


async def authenticate_token(pool: asyncpg.Pool, at: datetime, presented: str) -> ApiCaller:
    """Resolve `Authorization: Bearer ipx_<public id>_<secret>`; every failure is the same 401."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12:
        raise Unauthorized("invalid_token")
    digest = hashlib.sha256(parts[2].encode()).digest()
    cached = _tokens.get(parts[1])
    if cached is not None and time.monotonic() - cached[0] < TOKEN_CACHE_SECONDS:
        _, known, caller, expires_at = cached
        if hmac.compare_digest(known, digest) and (expires_at is None or expires_at > at):
            return caller
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.token_for_auth, parts[1])
        if (
            row is None
            or not hmac.compare_digest(row["secret_sha256"], digest)
            or row["revoked_at"] is not None
            or (row["expires_at"] is not None and row["expires_at"] <= at)
        ):
            _tokens.pop(parts[1], None)
            raise Unauthorized("invalid_token")
        # "last used" is for the token list page; a write on every call would cost the hot
        # paths, so it is refreshed at most every five minutes.
        if row["last_used_at"] is None or at - row["last_used_at"] > timedelta(minutes=5):
            await conn.execute(Q.touch_token, row["id"], at)
    caller = ApiCaller(
        token_id=row["id"],
        org_id=row["org_id"],
        org_kind=row["org_kind"],
        org_status=row["org_status"],
        user_id=row["created_by"],
        scopes=frozenset(row["scopes"]),
        language=row["language"],
    )
    _tokens[parts[1]] = (time.monotonic(), row["secret_sha256"], caller, row["expires_at"])
    return caller


async def get_organisation(pool: asyncpg.Pool, org_id: int) -> OrganisationOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.org_by_id, org_id)
    if row is None:
        raise NotFound("no_such_organisation")
    return organisation_out(row)


def organisation_out(row: asyncpg.Record) -> OrganisationOut:
    fields = ("id", "kind", "name", "party_type", "credit_code", "status", "status_reason")
    return msgspec.convert({k: row[k] for k in fields}, OrganisationOut)


async def organisations_by_status(pool: asyncpg.Pool, statuses: list[str]) -> list[OrganisationOut]:
    """The operator's queue: organisations in these statuses, oldest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.orgs_by_status, statuses)
    return [organisation_out(r) for r in rows]
