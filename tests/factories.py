"""Factories that insert through the project's own services and SQL."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from market.accounts import services as accounts
from market.accounts.models import NewToken, Viewer
from market.accounts.passwords import _hasher
from market.clock import Clock, FrozenClock
from market.commands import SYSTEM, Act, Actor, Context, unit_of_work
from market.validators import _credit_check_char

PASSWORD = "correct horse battery"
_HASH = _hasher.hash(PASSWORD)  # hashed once: argon2 is deliberately slow
_seq = itertools.count(1)
# The bidding agreement's version the migrations seed: registrations accept it.
AGREEMENT = "2020-01"


def credit_code(n: int | None = None) -> str:
    """A valid 统一社会信用代码 that differs for every call."""
    body = f"9111010{(n if n is not None else next(_seq)):06d}MA00"
    body = (body + "0" * 17)[:17]
    return body + _credit_check_char(body)


async def make_org(
    pool: asyncpg.Pool,
    at: datetime,
    *,
    kind: str = "buyer",
    status: str = "approved",
    name: str | None = None,
) -> tuple[int, int, str]:
    """An organisation with one admin user; returns (org id, user id, e-mail)."""
    n = next(_seq)
    email = f"user{n}@{kind}.test"
    async with unit_of_work(Context(pool=pool, clock=FrozenClock(at)), SYSTEM) as uow:
        org = await accounts.create_organisation(
            uow,
            kind=kind,
            name=name or f"{kind} {n} 有限公司",
            credit_code=credit_code(n),
            status=status,
        )
        user_id = await accounts.create_user(
            uow,
            org_id=org.id,
            email=email,
            display_name=f"用户{n}",
            password="",
            password_hash=_HASH,
            role="admin",
        )
    return org.id, user_id, email


async def viewer(pool: asyncpg.Pool, user_id: int) -> Viewer:
    v = await accounts.load_viewer(pool, user_id)
    assert v is not None
    return v


async def act_as(pool: asyncpg.Pool, at: datetime | Clock, user_id: int) -> Act:
    """Run commands as this user (through their organisation) at `at` or on a clock."""
    # A datetime has a `now` too, so it passes for a Clock: ask for the datetime first.
    clock = FrozenClock(at) if isinstance(at, datetime) else at
    return Act(Context(pool=pool, clock=clock), Actor.of(await viewer(pool, user_id)))


async def make_token(pool: asyncpg.Pool, at: datetime, user_id: int, scopes: list[str]) -> str:
    act = await act_as(pool, at, user_id)
    token = await act(accounts.create_token, NewToken(name="test", scopes=scopes))
    assert token.secret
    return token.secret


async def csrf(client: AsyncTestClient[Any]) -> str:
    """Fetch a page so the CSRF cookie is set; return the token to post back."""
    if "ipx_csrf" not in client.cookies:
        await client.get("/login")
    return str(client.cookies["ipx_csrf"])


async def sign_in(client: AsyncTestClient[Any], email: str, password: str = PASSWORD) -> Any:
    token = await csrf(client)
    return await client.post(
        "/login",
        data={"email": email, "password": password, "_csrf_token": token},
        follow_redirects=False,
    )


class OneConnectionPool:
    """A pool of one connection, so a test sees every query made through it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def acquire(self) -> Any:
        conn = self.conn

        class _Held:
            async def __aenter__(self) -> asyncpg.Connection:
                return conn

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Held()
