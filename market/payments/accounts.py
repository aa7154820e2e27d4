"""Payees' settlement accounts (收款账户: 户名, 账号, 开户行) — where the exchange sends what
it owes (docs/rules.md §Payments out).

An organisation's admin sets its own; a pool's manager may give a pool an account of its
own (otherwise its payouts go to the manager organisation's); a bank records one for a
pledgor of its registry, used while the pledgor has no organisation here (once it has, the
organisation's own account is used). Setting an account replaces the previous one
(`UNIQUE (owner_kind, owner_id)`, an upsert: two admins saving at once leave the last
one's, each audited). An instruction's account is read when it is exported, so a
corrected account applies to everything not yet sent.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from market.accounts.permissions import MANAGE_SETTLEMENT_ACCOUNT, WRITE_COLLATERAL, WRITE_POOL
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Invalid, NotFound
from market.pools.services import own_pool
from market.pools.statement_csv import control_character

Q = Queries("payments")

OwnerKind = Literal["org", "pool", "pledgor"]
MAX_NAME: Final = 100
_NUMBER: Final = re.compile(r"[0-9]{8,32}")
# A cell a spreadsheet would run as a formula (the payment file is opened in one).
_FORMULA: Final = ("=", "+", "-", "@")


class AccountIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A settlement account: 户名 (the account holder's name, as the bank has it), 账号
    (8 to 32 digits; spaces are ignored) and 开户行 (the bank branch)."""

    account_name: Annotated[str, Meta(max_length=MAX_NAME)]
    account_number: Annotated[str, Meta(max_length=64)]
    bank_name: Annotated[str, Meta(max_length=MAX_NAME)]


class AccountOut(msgspec.Struct, frozen=True, kw_only=True):
    owner_kind: OwnerKind
    owner_id: int
    account_name: str
    account_number: str
    bank_name: str
    updated_at: datetime


class SetPoolAccount(msgspec.Struct, frozen=True, kw_only=True):
    pool_id: int
    account: AccountIn


class SetPledgorAccount(msgspec.Struct, frozen=True, kw_only=True):
    pledgor_id: int
    account: AccountIn


def clean(data: AccountIn) -> AccountIn:
    """The account as stored, or Invalid naming the field at fault (a form is not checked
    by the API's schema, so every rule is here)."""
    number = re.sub(r"\s+", "", unicodedata.normalize("NFKC", data.account_number))
    if not _NUMBER.fullmatch(number):
        raise Invalid("account_number_invalid", field="account_number", min=8, max=32)
    name = " ".join(unicodedata.normalize("NFKC", data.account_name).split())
    bank = " ".join(unicodedata.normalize("NFKC", data.bank_name).split())
    for field, text, least in (("account_name", name, 1), ("bank_name", bank, 2)):
        if char := control_character(text):
            raise Invalid("control_character_in_text", field=field, char=char)
        if not least <= len(text) <= MAX_NAME:
            raise Invalid("account_text_length", field=field, min=least, max=MAX_NAME)
        if text.startswith(_FORMULA):
            raise Invalid("account_text_formula", field=field)
    return AccountIn(account_name=name, account_number=number, bank_name=bank)


def account_out(row: Any) -> AccountOut:
    return msgspec.convert(dict(row), AccountOut)


async def _save(uow: UnitOfWork, kind: OwnerKind, owner_id: int, data: AccountIn) -> AccountOut:
    account = clean(data)
    row = returned(
        await uow.conn.fetchrow(
            Q.upsert_account,
            kind,
            owner_id,
            account.account_name,
            account.account_number,
            account.bank_name,
            uow.actor.user,
            uow.at,
        )
    )
    uow.audit(
        "settlement_account.set",
        f"settlement_account:{kind}",
        owner_id,
        after=msgspec.to_builtins(account),
    )
    return account_out(row)


@command(MANAGE_SETTLEMENT_ACCOUNT)
async def set_own_account(uow: UnitOfWork, data: AccountIn) -> AccountOut:
    """The admin sets the organisation's settlement account."""
    return await _save(uow, "org", uow.actor.org, data)


@command(WRITE_POOL)
async def set_pool_account(uow: UnitOfWork, data: SetPoolAccount) -> AccountOut:
    """A pool's own account, set by its manager (another's pool: 404)."""
    await own_pool(uow.conn, uow.actor.org, data.pool_id)
    return await _save(uow, "pool", data.pool_id, data.account)


@command(WRITE_COLLATERAL)
async def set_pledgor_account(uow: UnitOfWork, data: SetPledgorAccount) -> AccountOut:
    """The account the bank records for a pledgor of its registry (another bank's: 404)."""
    if await uow.conn.fetchval(Q.pledgor_of_bank, data.pledgor_id, uow.actor.org) is None:
        raise NotFound("not_found", field="pledgor_id")
    return await _save(uow, "pledgor", data.pledgor_id, data.account)


async def account_of(conn: Conn, kind: OwnerKind, owner_id: int) -> AccountOut | None:
    row = await conn.fetchrow(Q.account_of, kind, owner_id)
    return None if row is None else account_out(row)
