"""Accounts: organisations, users, sign-in, API tokens. Each write is one transaction with
its audit row, so a refused request changes nothing.

Concurrency: registration relies on the unique keys (credit code, e-mail) rather than on
the pre-checks, which only give a friendlier message: two racing sign-ups with one e-mail
get one success and one 409. Approval locks the organisation row, so two operators
deciding at once cannot both act on a pending organisation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta

import asyncpg
import msgspec
from redis.asyncio import Redis

from market import audit, validators
from market.accounts import sessions
from market.accounts.models import (
    SCOPES_BY_KIND,
    ApiCaller,
    NewToken,
    OrganisationOut,
    OrgKind,
    RegisterBuyer,
    RegisteredOut,
    TokenOut,
    Viewer,
)
from market.accounts.passwords import hash_password, verify_password
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from market.settings import Settings

Q = Queries("accounts")


def _check(field: str, fn: object, value: str) -> str:
    assert callable(fn)
    try:
        result = fn(value)
    except ValueError as exc:
        raise Invalid(f"{field}: {exc}", field=field) from None
    assert isinstance(result, str)
    return result


async def create_organisation(
    conn: Conn,
    *,
    at: datetime,
    kind: str,
    name: str,
    credit_code: str | None,
    status: str,
    actor_user_id: int | None = None,
    actor_org_id: int | None = None,
    name_en: str | None = None,
) -> OrganisationOut:
    """Insert an organisation with its audit row (caller holds the transaction)."""
    code = _check("credit_code", validators.credit_code, credit_code) if credit_code else None
    if code and await conn.fetchval(Q.credit_code_taken, code):
        raise Conflict(
            "该统一社会信用代码的单位已注册 / "
            "an organisation with this credit code is already registered",
            field="credit_code",
        )
    row = await conn.fetchrow(Q.insert_org, kind, name.strip(), name_en, code, status, at)
    org = msgspec.convert(dict(returned(row)), OrganisationOut)
    await audit.append(
        conn,
        at=at,
        chain_org_id=org.id,
        actor_user_id=actor_user_id,
        actor_org_id=actor_org_id,
        action="organisation.create",
        object_kind="organisation",
        object_id=org.id,
        after=msgspec.to_builtins(org),
    )
    return org


async def create_user(
    conn: Conn,
    *,
    at: datetime,
    org_id: int,
    email: str,
    display_name: str,
    password: str,
    role: str,
    language: str = "zh",
    password_hash: str | None = None,
    actor_user_id: int | None = None,
) -> int:
    email = _check("email", validators.email, email)
    if await conn.fetchval(Q.email_taken, email):
        raise Conflict("该邮箱已有账户 / this e-mail address already has an account", field="email")
    pw_hash = password_hash or await hash_password(password)
    user_id: int = await conn.fetchval(
        Q.insert_user, org_id, email, display_name.strip(), pw_hash, role, language, at
    )
    await audit.append(
        conn,
        at=at,
        chain_org_id=org_id,
        actor_user_id=actor_user_id or user_id,
        actor_org_id=org_id,
        action="user.create",
        object_kind="user",
        object_id=user_id,
        after={"email": email, "display_name": display_name, "role": role},
    )
    return user_id


async def register_buyer(pool: asyncpg.Pool, at: datetime, data: RegisterBuyer) -> RegisteredOut:
    """A buyer organisation and its first (admin) user, pending an operator's approval."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            org = await create_organisation(
                conn,
                at=at,
                kind="buyer",
                name=data.name,
                credit_code=data.credit_code,
                status="pending",
            )
            user_id = await create_user(
                conn,
                at=at,
                org_id=org.id,
                email=data.email,
                display_name=data.display_name,
                password=data.password,
                role="admin",
                language=data.language,
            )
    except asyncpg.UniqueViolationError as exc:
        # Lost a race with an identical sign-up: the pre-checks passed for both.
        field = "credit_code" if "credit_code" in (exc.constraint_name or "") else "email"
        label = "统一社会信用代码" if field == "credit_code" else "邮箱"
        raise Conflict(f"{label}已注册 / {field} is already registered", field=field) from None
    return RegisteredOut(organisation=org, user_id=user_id)


async def decide_organisation(
    pool: asyncpg.Pool,
    at: datetime,
    viewer_user_id: int,
    viewer_org_id: int,
    org_id: int,
    *,
    approve: bool,
    reason: str,
) -> OrganisationOut:
    """An operator approves or rejects a pending organisation."""
    if not approve and not reason.strip():
        raise Invalid(
            "请填写驳回理由，申请人会看到 / give a reason for the rejection; the applicant sees it",
            field="reason",
        )
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q.lock_org, org_id)
        if row is None:
            raise NotFound("no such organisation")
        if row["status"] != "pending":
            raise Conflict(f"organisation is {row['status']}, not pending; nothing to decide")
        status = "approved" if approve else "rejected"
        new = await conn.fetchrow(
            Q.decide_org, org_id, status, reason.strip() or None, viewer_user_id, at
        )
        await audit.append(
            conn,
            at=at,
            chain_org_id=org_id,
            actor_user_id=viewer_user_id,
            actor_org_id=viewer_org_id,
            action=f"organisation.{status}",
            object_kind="organisation",
            object_id=org_id,
            before={"status": row["status"]},
            after={"status": status, "reason": reason},
        )
    return msgspec.convert(dict(returned(new)), OrganisationOut)


# --- sign-in ---------------------------------------------------------------------------


def _fail_keys(email: str, client: str) -> tuple[str, str]:
    return f"market:loginfail:email:{email}", f"market:loginfail:ip:{client}"


async def sign_in(
    pool: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    *,
    email: str,
    password: str,
    client: str,
) -> str:
    """Check the password and open a session; returns the session token.

    Failures are counted per e-mail address and per client address in Redis with a
    window (settings.login_*); past the limit every try is refused with 429 before the
    password is even checked, so guessing cannot continue at speed.
    """
    email = email.strip().lower()
    email_key, ip_key = _fail_keys(email, client)
    counts = await redis.mget(email_key, ip_key)
    email_fails, ip_fails = (int(c) if c else 0 for c in counts)
    limit = settings.login_max_failures
    if email_fails >= limit or ip_fails >= 4 * limit:
        ttl = await redis.ttl(email_key if email_fails >= limit else ip_key)
        raise RateLimited(
            "too many failed sign-ins; wait and try again", retry_after=max(int(ttl), 1)
        )
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.login_user, email)
    if not await verify_password(row["password_hash"] if row else None, password):
        pipe = redis.pipeline()
        for key in (email_key, ip_key):
            # The window starts at the first failure: SET NX gives the TTL, INCR keeps it.
            pipe.set(key, 0, ex=settings.login_window_seconds, nx=True)
            pipe.incr(key)
        await pipe.execute()
        raise Unauthorized("wrong e-mail address or password")
    assert row is not None
    await redis.delete(email_key)
    return await sessions.create(redis, row["id"], settings.session_ttl_seconds)


async def load_viewer(pool: asyncpg.Pool, user_id: int) -> Viewer | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.viewer, user_id)
    return None if row is None else msgspec.convert(dict(row), Viewer)


# --- API tokens ------------------------------------------------------------------------

TOKEN_PREFIX = "ipx"


def _token_out(row: asyncpg.Record, secret: str | None = None) -> TokenOut:
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


async def create_token(
    pool: asyncpg.Pool, at: datetime, viewer: Viewer, data: NewToken
) -> TokenOut:
    """A new token for the viewer's organisation; the secret is in this answer only."""
    if viewer.role != "admin":
        raise Forbidden("only an organisation's administrators manage API tokens")
    allowed = SCOPES_BY_KIND[viewer.org_kind]
    bad = sorted(set(data.scopes) - allowed)
    if bad:
        raise Invalid(
            f"scopes {', '.join(bad)} are not available to a {viewer.org_kind}; "
            f"choose from {', '.join(sorted(allowed))}",
            field="scopes",
        )
    public_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    expires = at + timedelta(days=data.expires_in_days) if data.expires_in_days else None
    async with pool.acquire() as conn, conn.transaction():
        row = returned(
            await conn.fetchrow(
                Q.insert_token,
                viewer.org_id,
                viewer.user_id,
                data.name.strip(),
                public_id,
                hashlib.sha256(secret.encode()).digest(),
                sorted(set(data.scopes)),
                at,
                expires,
            )
        )
        await audit.append(
            conn,
            at=at,
            chain_org_id=viewer.org_id,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            action="api_token.create",
            object_kind="api_token",
            object_id=row["id"],
            after={"name": data.name, "scopes": sorted(set(data.scopes))},
        )
    return _token_out(row, secret=f"{TOKEN_PREFIX}_{public_id}_{secret}")


async def list_tokens(pool: asyncpg.Pool, org_id: int) -> list[TokenOut]:
    async with pool.acquire() as conn:
        return [_token_out(r) for r in await conn.fetch(Q.org_tokens, org_id)]


async def get_token(pool: asyncpg.Pool, org_id: int, token_id: int) -> TokenOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.org_token, token_id, org_id)
    if row is None:
        raise NotFound("no such API token")
    return _token_out(row)


async def revoke_token(pool: asyncpg.Pool, at: datetime, viewer: Viewer, token_id: int) -> None:
    if viewer.role != "admin":
        raise Forbidden("only an organisation's administrators manage API tokens")
    async with pool.acquire() as conn, conn.transaction():
        existing = await conn.fetchrow(Q.org_token, token_id, viewer.org_id)
        if existing is None:
            raise NotFound("no such API token")
        if existing["revoked_at"] is not None:
            return  # revoking twice is harmless
        await conn.execute(Q.revoke_token, token_id, viewer.org_id, at, viewer.user_id)
        _token_cache.clear()  # revocation is rare; forgetting every cached token is simplest
        await audit.append(
            conn,
            at=at,
            chain_org_id=viewer.org_id,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            action="api_token.revoke",
            object_kind="api_token",
            object_id=token_id,
            before={"revoked_at": None},
            after={"revoked_at": at.isoformat()},
        )


# Validated tokens, for a few seconds: the bid path answers thousands of requests a second
# and must not read the token table for each. A revocation in this process clears the
# cache at once; another process sees it within TOKEN_CACHE_SECONDS. The secret's hash is
# compared on every request all the same.
TOKEN_CACHE_SECONDS = 5.0
_token_cache: dict[str, tuple[float, bytes, ApiCaller, datetime | None]] = {}


async def authenticate_token(pool: asyncpg.Pool, at: datetime, presented: str) -> ApiCaller:
    """Resolve `Authorization: Bearer ipx_<public id>_<secret>`; every failure is the same 401."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12:
        raise Unauthorized("invalid API token")
    digest = hashlib.sha256(parts[2].encode()).digest()
    cached = _token_cache.get(parts[1])
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
            _token_cache.pop(parts[1], None)
            raise Unauthorized("invalid, expired or revoked API token")
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
    )
    _token_cache[parts[1]] = (time.monotonic(), row["secret_sha256"], caller, row["expires_at"])
    return caller


def require_scope(caller: ApiCaller, scope: str) -> None:
    if scope not in caller.scopes:
        raise Forbidden(f"this API token lacks the scope {scope!r}")


def acting_org(caller: ApiCaller, scope: str, kind: OrgKind, refusal: str) -> int:
    """The organisation a token acts for, once it holds the scope and the organisation is
    an approved one of `kind`; else 403 `refusal` (a pending, rejected or suspended
    organisation acts on nothing). The API's twin of `market.web.require_org`."""
    require_scope(caller, scope)
    if caller.org_kind != kind or caller.org_status != "approved":
        raise Forbidden(refusal)
    return caller.org_id


async def get_organisation(pool: asyncpg.Pool, org_id: int) -> OrganisationOut:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q.org_by_id, org_id)
    if row is None:
        raise NotFound("no such organisation")
    return msgspec.convert(
        {k: row[k] for k in ("id", "kind", "name", "credit_code", "status")}, OrganisationOut
    )
