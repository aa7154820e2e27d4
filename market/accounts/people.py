"""The people of an organisation: invitations, roles, deactivation (docs/permissions.md,
docs/rules.md §Onboarding).

An invitation is a link sent by e-mail that lets its holder set a name and a password and
join the organisation with the role it names; it expires (InvitationPolicy) and is used
once. Its secret is an HMAC of the invitation's random nonce under the exchange's secret
key, computed when the e-mail is written and when the link is used: the database holds
nothing that opens an account by itself.

Roles are ranked admin > officer > read_only: one invites only to a role one holds or a
lower one; only admins change roles or deactivate; an organisation keeps at least one
active admin. A deactivated user can no longer sign in, their open sessions end at their
next request (the viewer is read afresh each request), and the API tokens they made are
revoked, since they answered for them.

Concurrency: one open invitation per address (a unique index; inviting again replaces the
open one, and of two racing invitations one is refused); accepting locks the invitation
row, so a link is used once; role changes and deactivations lock the organisation's active
admins (`lock_admins`), so two admins demoting each other cannot leave none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
import msgspec
from msgspec import Meta

from market import validators
from market.accounts.models import (
    ROLE_RANK,
    AcceptInvitation,
    InvitationOut,
    Invite,
    RoleChange,
    UserOut,
)
from market.accounts.permissions import INVITE_USERS, MANAGE_USERS
from market.accounts.services import create_user, forget_tokens
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound

Q = Queries("onboarding")
QA = Queries("accounts")


class InvitationPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # An invitation link is good for 7 days (docs/rules.md §Onboarding): long enough for a
    # colleague on leave for a week, short enough that a forwarded old e-mail is dead.
    valid_days: Annotated[int, Meta(ge=1, le=30)] = 7


DEFAULT_INVITATION_POLICY = InvitationPolicy()


def invitation_token(secret_key: str, invitation_id: int, nonce: bytes) -> str:
    """The link's secret: `<id>.<HMAC-SHA256(secret key, id ‖ nonce)>`."""
    mac = hmac.new(
        secret_key.encode(), b"invitation:%d:" % invitation_id + nonce, hashlib.sha256
    ).digest()
    return f"{invitation_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def invitation_link(conn: Conn, secret_key: str, base_url: str, invitation_id: int) -> str:
    """The accept link the invitation e-mail carries."""
    nonce = await conn.fetchval(Q.invitation_nonce, invitation_id)
    if nonce is None:
        return base_url
    token = invitation_token(secret_key, invitation_id, bytes(nonce))
    return f"{base_url.rstrip('/')}/invitations/{token}"


def _status(row: asyncpg.Record, now: datetime) -> str:
    if row["accepted_at"] is not None:
        return "accepted"
    if row["revoked_at"] is not None:
        return "revoked"
    return "expired" if row["expires_at"] <= now else "open"


def invitation_out(row: asyncpg.Record, now: datetime) -> InvitationOut:
    return InvitationOut(
        id=row["id"],
        org_id=row["org_id"],
        email=row["email"],
        role=row["role"],
        created_at=row["created_at"].isoformat(),
        expires_at=row["expires_at"].isoformat(),
        status=_status(row, now),  # type: ignore[arg-type]
    )


def user_out(row: asyncpg.Record) -> UserOut:
    return UserOut(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        role=row["role"],
        language=row["language"],
        created_at=row["created_at"].isoformat(),
        disabled_at=row["disabled_at"].isoformat() if row["disabled_at"] else None,
    )


async def create_invitation(
    uow: UnitOfWork,
    *,
    org_id: int,
    email: str,
    role: str,
    language: str,
    field: str = "email",
    policy: InvitationPolicy = DEFAULT_INVITATION_POLICY,
) -> InvitationOut:
    """An invitation to `org_id` with its e-mail owed, inside a command's unit of work;
    an open invitation to the same address is replaced."""
    try:
        address = validators.email(email).lower()
    except Invalid as exc:
        exc.field = field
        raise
    if await uow.conn.fetchval(QA.email_taken, address):
        raise Conflict("email_taken", field=field)
    for old in await uow.conn.fetch(Q.revoke_open_invitations, address, uow.at):
        uow.audit("invitation.replace", "invitation", old["id"], chain_org_id=old["org_id"])
    try:
        async with uow.conn.transaction():
            row = returned(
                await uow.conn.fetchrow(
                    Q.insert_invitation,
                    org_id,
                    address,
                    role,
                    language,
                    secrets.token_bytes(16),
                    uow.actor.user_id,
                    uow.at,
                    uow.at + timedelta(days=policy.valid_days),
                )
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("invitation_open", field=field) from None
    await uow.emit(Q.insert_invitation_event, row["id"], uow.at)
    out = invitation_out(row, uow.at)
    uow.audit(
        "invitation.create",
        "invitation",
        out.id,
        chain_org_id=org_id,
        after={"email": address, "role": role, "expires_at": out.expires_at},
    )
    return out


async def _actor_role(uow: UnitOfWork) -> str:
    """The acting user's role (a token acts with its maker's)."""
    if uow.actor.role is not None:
        return uow.actor.role
    role: str | None = await uow.conn.fetchval(Q.user_role, uow.actor.user_id)
    return role or "read_only"


@command(INVITE_USERS)
async def invite_user(uow: UnitOfWork, data: Invite) -> InvitationOut:
    """Invite a colleague to the actor's organisation, to a role the actor holds or a
    lower one."""
    if ROLE_RANK[data.role] > ROLE_RANK[await _actor_role(uow)]:
        raise Forbidden("role_not_held", field="role", role=data.role)
    return await create_invitation(
        uow, org_id=uow.actor.org, email=data.email, role=data.role, language=data.language
    )


class Accept(AcceptInvitation, frozen=True, kw_only=True):
    secret_key: str  # the exchange's, to check the link (never from the request)


class Joined(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    org_id: int
    email: str
    role: str


@command(None)  # the link is the credential: anyone holding it may use it, once
async def accept_invitation(uow: UnitOfWork, data: Accept) -> Joined:
    """Join the organisation with the invitation's address and role."""
    invitation_id, _, _ = data.token.partition(".")
    if not invitation_id.isdigit() or len(invitation_id) > 18:
        raise Invalid("invitation_invalid", field="token")
    row = await uow.conn.fetchrow(Q.lock_invitation, int(invitation_id))
    expected = invitation_token(data.secret_key, row["id"], bytes(row["nonce"])) if row else "\x00"
    if row is None or not hmac.compare_digest(expected, data.token):
        raise Invalid("invitation_invalid", field="token")
    if row["accepted_at"] is not None:
        raise Conflict("invitation_used", field="token")
    if row["revoked_at"] is not None:
        raise Invalid("invitation_revoked", field="token")
    if row["expires_at"] <= uow.at:
        raise Invalid("invitation_expired", field="token", expired_at=row["expires_at"])
    try:
        async with uow.conn.transaction():
            user_id = await create_user(
                uow,
                org_id=row["org_id"],
                email=row["email"],
                display_name=data.display_name,
                password=data.password,
                role=row["role"],
                language=row["language"],
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("email_taken", field="token") from None
    await uow.conn.execute(Q.accept_invitation, row["id"], uow.at, user_id)
    uow.audit(
        "invitation.accept",
        "invitation",
        row["id"],
        chain_org_id=row["org_id"],
        after={"user_id": user_id},
    )
    return Joined(user_id=user_id, org_id=row["org_id"], email=row["email"], role=row["role"])


@command(MANAGE_USERS)
async def revoke_invitation(uow: UnitOfWork, invitation_id: int) -> None:
    row = await uow.conn.fetchrow(Q.revoke_invitation, invitation_id, uow.actor.org, uow.at)
    if row is None:
        raise NotFound("no_such_invitation")
    uow.audit("invitation.revoke", "invitation", invitation_id, after={"email": row["email"]})


async def _member(uow: UnitOfWork, user_id: int) -> tuple[asyncpg.Record, list[int]]:
    """A user of the actor's organisation, and its active admins, locked (module
    docstring)."""
    admins = [r["id"] for r in await uow.conn.fetch(Q.lock_admins, uow.actor.org)]
    row = await uow.conn.fetchrow(Q.org_user, user_id, uow.actor.org)
    if row is None:
        raise NotFound("no_such_user")
    return row, admins


class SetRole(RoleChange, frozen=True, kw_only=True):
    user_id: int


@command(MANAGE_USERS)
async def set_user_role(uow: UnitOfWork, data: SetRole) -> UserOut:
    """Give a user of the organisation another role; the last active admin stays one."""
    user, admins = await _member(uow, data.user_id)
    if user["disabled_at"] is not None:
        raise Conflict("user_deactivated", field="user_id")
    if user["role"] == "admin" and data.role != "admin" and admins == [user["id"]]:
        raise Conflict("last_admin", field="role")
    if user["role"] != data.role:
        await uow.conn.execute(Q.set_role, data.user_id, uow.actor.org, data.role)
        uow.audit(
            "user.role",
            "user",
            data.user_id,
            before={"role": user["role"]},
            after={"role": data.role},
        )
    row = returned(await uow.conn.fetchrow(Q.org_user, data.user_id, uow.actor.org))
    return user_out(row)


@command(MANAGE_USERS)
async def deactivate_user(uow: UnitOfWork, user_id: int) -> UserOut:
    """A user who left: no sign-in, no session, their tokens revoked; kept for the record.
    The last active admin cannot be deactivated."""
    user, admins = await _member(uow, user_id)
    if user["disabled_at"] is None:
        if admins == [user["id"]]:
            raise Conflict("last_admin", field="user_id")
        await uow.conn.execute(Q.deactivate_user, user_id, uow.actor.org, uow.at, uow.actor.user)
        tokens = [
            r["id"]
            for r in await uow.conn.fetch(Q.revoke_user_tokens, user_id, uow.at, uow.actor.user)
        ]
        if tokens:
            forget_tokens()
        uow.audit(
            "user.deactivate",
            "user",
            user_id,
            before={"disabled_at": None},
            after={"disabled_at": uow.at.isoformat(), "tokens_revoked": tokens},
        )
    row = returned(await uow.conn.fetchrow(Q.org_user, user_id, uow.actor.org))
    return user_out(row)


async def users_of(pool: asyncpg.Pool, org_id: int) -> list[UserOut]:
    async with pool.acquire() as conn:
        return [user_out(r) for r in await conn.fetch(QA.org_users, org_id)]


async def invitations_of(pool: asyncpg.Pool, org_id: int, now: datetime) -> list[InvitationOut]:
    async with pool.acquire() as conn:
        return [invitation_out(r, now) for r in await conn.fetch(Q.org_invitations, org_id)]
