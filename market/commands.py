"""Commands: each change of state is one function with a typed input, run by one actor at
one instant inside one unit of work.

    @command(WRITE_COLLATERAL)
    async def open_case(uow: UnitOfWork, data: OpenCase) -> CaseOut:
        ...                                  # uow.conn, uow.at, uow.actor
        uow.audit("case.open", "case", case.id, after=...)
        return case

    case = await act(open_case, data)        # a page, the API, a job or the demo alike

The unit of work opens the transaction and collects what the change owes: the audit rows
(written at the end, so the organisation's audit chain is locked for the shortest time),
the ledger entries and the outbox events; all commit together with the change, or none
does. After the commit, if the change owed notifications, the relay is kicked so they go
out now rather than at its next tick (market/notify/relay.py).

Who may run a command is its permission (market/accounts/permissions.py); the route that
calls it declares the same one, and `run` checks it again for the actor it is given, so a
job or a script cannot act for an organisation the rules would refuse.

Concurrency: a command's reads and writes share one transaction on one connection; the
rows it must not race on are locked by its own queries (`FOR UPDATE`), as each command's
docstring says. Two commands on different objects never wait for each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
from redis.asyncio import Redis

from market import audit, ledger
from market.accounts.models import ApiCaller, OrgKind, OrgStatus, Role, Viewer
from market.accounts.permissions import Permission, refusal
from market.clock import Clock
from market.db import Conn

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Actor:
    """Who a command acts for: a user of an organisation (through a page or a token), or
    the exchange itself (a timed job, the demo) when `org_id` is None."""

    org_id: int | None
    org_kind: OrgKind | None = None
    org_status: OrgStatus | None = None
    user_id: int | None = None
    role: Role | None = None  # None for a token: its scopes stand for the role
    token_id: int | None = None

    @classmethod
    def of(cls, subject: Viewer | ApiCaller) -> Actor:
        if isinstance(subject, Viewer):
            return cls(
                org_id=subject.org_id,
                org_kind=subject.org_kind,
                org_status=subject.org_status,
                user_id=subject.user_id,
                role=subject.role,
            )
        return cls(
            org_id=subject.org_id,
            org_kind=subject.org_kind,
            org_status=subject.org_status,
            user_id=subject.user_id,
            token_id=subject.token_id,
        )

    @property
    def org(self) -> int:
        """The organisation acted for; a command that needs one is never run by the system."""
        if self.org_id is None:
            raise RuntimeError("this command acts for an organisation, not the exchange")
        return self.org_id

    @property
    def user(self) -> int:
        if self.user_id is None:
            raise RuntimeError("this command is done by a person")
        return self.user_id


SYSTEM = Actor(org_id=None)


@dataclass
class UnitOfWork:
    conn: Conn
    at: datetime
    actor: Actor
    _audit: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0  # outbox rows written: the relay is kicked after the commit

    def audit(
        self,
        action: str,
        object_kind: str,
        object_id: int | str,
        *,
        chain_org_id: int | None = -1,
        before: Any = None,
        after: Any = None,
        by: Actor | None = None,
    ) -> None:
        """Record the change in the audit chain of `chain_org_id` (the actor's own
        organisation unless given; None is the exchange's chain), at the commit. `by`: who
        did it when that is not the command's actor (SYSTEM: the exchange's own act inside
        a person's command, e.g. a deposit its statement import confirmed)."""
        who = self.actor if by is None else by
        self._audit.append(
            {
                "chain_org_id": self.actor.org_id if chain_org_id == -1 else chain_org_id,
                "actor_user_id": who.user_id,
                "actor_org_id": who.org_id,
                "action": action,
                "object_kind": object_kind,
                "object_id": object_id,
                "before": before,
                "after": after,
            }
        )

    async def post(self, **entry: Any) -> ledger.Posted:
        """A balanced ledger entry (market/ledger.py `post`), at this change's instant."""
        return await ledger.post(self.conn, at=self.at, **entry)

    async def emit(self, statement: str, *args: Any) -> int:
        """Run an outbox producer (an INSERT … SELECT of events); returns the rows written."""
        status = await self.conn.execute(statement, *args)
        written = int(status.rsplit(" ", 1)[1]) if status.startswith("INSERT") else 0
        self.events += written
        return written

    async def _flush(self) -> None:
        for row in self._audit:
            await audit.append(self.conn, at=self.at, **row)
        self._audit.clear()


@dataclass(frozen=True)
class Context:
    """What every command runs against: the exchange's connections and its clock."""

    pool: asyncpg.Pool
    clock: Clock
    redis: Redis | None = None  # to kick the relay; None where no notification is owed


@asynccontextmanager
async def unit_of_work(ctx: Context, actor: Actor) -> AsyncIterator[UnitOfWork]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn=conn, at=ctx.clock.now(), actor=actor)
        yield uow
        await uow._flush()
    if uow.events and ctx.redis is not None:
        from market.notify.relay import kick

        await kick(ctx.redis)


@dataclass(frozen=True)
class Command(Generic[In, Out]):
    permission: Permission | None  # None: only the exchange itself runs it (jobs)
    fn: Callable[[UnitOfWork, In], Awaitable[Out]]

    @property
    def name(self) -> str:
        return self.fn.__name__

    async def __call__(self, uow: UnitOfWork, data: In) -> Out:
        """Run inside a unit of work another command already opened."""
        return await self.fn(uow, data)


def command(
    permission: Permission | None,
) -> Callable[[Callable[[UnitOfWork, In], Awaitable[Out]]], Command[In, Out]]:
    def wrap(fn: Callable[[UnitOfWork, In], Awaitable[Out]]) -> Command[In, Out]:
        return Command(permission=permission, fn=fn)

    return wrap


async def run(cmd: Command[In, Out], data: In, *, ctx: Context, actor: Actor) -> Out:
    """Run `cmd` for `actor` in a unit of work of its own."""
    if actor.org_id is not None:
        if cmd.permission is None:
            raise RuntimeError(f"{cmd.name} is run by the exchange only")
        assert actor.org_kind is not None and actor.org_status is not None
        found = refusal(cmd.permission, actor.org_kind, actor.org_status, actor.role)
        if found is not None:
            raise found
    async with unit_of_work(ctx, actor) as uow:
        return await cmd.fn(uow, data)


@dataclass(frozen=True)
class Act:
    """`act(command, data)`: a request's way to run commands as its caller."""

    ctx: Context
    actor: Actor

    async def __call__(self, cmd: Command[In, Out], data: In) -> Out:
        return await run(cmd, data, ctx=self.ctx, actor=self.actor)
