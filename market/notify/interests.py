"""Saved interests (订阅, docs/rules.md §Notifications): a buyer names what it looks for, and
every lot published afterwards that matches is announced to it (`lot_matched`, events.py).

Who keeps them: a user of an approved buyer or acquirer, each their own (READ_INTERESTS,
MANAGE_INTERESTS); an API token acts for the user who created it.

An interest holds up to three kinds of criteria; a lot matches when every kind the
interest gives holds:
* IPC prefixes — any of them is a prefix of one of the lot's IPC codes (`H01M`, `H01M 4/`,
  `H01M 4/525`), compared as the catalogue's compact keys (catalogue.text.ipc_filter_key
  against lots.ipc_keys);
* keywords — any of them is found by the catalogue's search in the lot's title,
  description and assets (catalogue.text.search_query against lots.search): "锂电池"
  finds "一种锂电池正极材料", as the catalogue would;
* a price range on the start price, in fen, either end open.

Keywords are stored as the tsquery text `search_query` makes of them ("'锂电' & '电池'"):
the publication then matches all interests with one statement, PostgreSQL evaluating
the very query the catalogue would run. What a buyer sees is `keyword_text` of it — the
tokens joined back ("锂电池"), which `search_query` maps to the same query again.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final

import asyncpg
import msgspec
from msgspec import Meta

from market.accounts.permissions import MANAGE_INTERESTS
from market.catalogue.text import ipc_filter_key, search_query, tokens
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.money import MAX_FEN

Q = Queries("events")

# Bounds on the work every publication does for every interest; a buyer with more to
# follow widens a prefix instead.
MAX_INTERESTS: Final = 20
MAX_TERMS: Final = 10
MAX_KEYWORD: Final = 50
_MAX_ID: Final = 2**63 - 1

Term = Annotated[str, Meta(min_length=1, max_length=MAX_KEYWORD)]


class InterestInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a buyer follows; at least one criterion."""

    ipc_prefixes: Annotated[list[Term], Meta(max_length=MAX_TERMS)] = msgspec.field(
        default_factory=list
    )
    keywords: Annotated[list[Term], Meta(max_length=MAX_TERMS)] = msgspec.field(
        default_factory=list
    )
    price_min_fen: Annotated[int, Meta(ge=0, le=MAX_FEN)] | None = None
    price_max_fen: Annotated[int, Meta(ge=0, le=MAX_FEN)] | None = None


class InterestOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    ipc_prefixes: list[str]  # compact keys: "H01M", "H01M4/", "H01M4/525"
    keywords: list[str]  # as searched (keyword_text)
    price_min_fen: int | None
    price_max_fen: int | None
    created_at: datetime


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """An interest as stored: IPC keys, keyword queries, price range."""

    ipc_prefixes: list[str]
    keyword_queries: list[str]
    price_min_fen: int | None
    price_max_fen: int | None


def check(data: InterestInput) -> Checked:
    """Normalise an interest, or Invalid naming the field."""
    prefixes: list[str] = []
    for text in data.ipc_prefixes:
        try:
            key = ipc_filter_key(text)
        except Invalid as exc:  # the IPC validator's own code and words
            exc.field = "ipc_prefixes"
            raise
        if key not in prefixes:
            prefixes.append(key)
    queries: list[str] = []
    for text in data.keywords:
        query = search_query(text)
        if query is None:
            raise Invalid("keyword_unsearchable", field="keywords", keyword=text.strip())
        if query not in queries:
            queries.append(query)
    low, high = data.price_min_fen, data.price_max_fen
    if low is not None and high is not None and low > high:
        raise Invalid("price_range_inverted", field="price_max_fen", min_fen=low, max_fen=high)
    if not prefixes and not queries and low is None and high is None:
        # An empty interest would match every lot.
        raise Invalid("empty_interest", field="ipc_prefixes")
    return Checked(
        ipc_prefixes=prefixes, keyword_queries=queries, price_min_fen=low, price_max_fen=high
    )


_TOKEN = re.compile(r"'((?:[^']|'')*)'(:\*)?")


def keyword_text(query: str) -> str:
    """The words of a stored keyword query: "'锂电' & '电池'" → "锂电池".

    Overlapping bigrams chain back into their run; everything else is joined by spaces.
    `search_query(keyword_text(q)) == q` for every q that search_query made.
    """
    words: list[str] = []
    chain = False  # the last word was built from bigrams, so the next may continue it
    for match in _TOKEN.finditer(query):
        token = match[1].replace("''", "'").replace("\\\\", "\\")
        cjk_pair = not match[2] and _is_cjk_pair(token)
        if cjk_pair and chain and words[-1][-1] == token[0]:
            words[-1] += token[1]
        else:
            words.append(token)
        chain = cjk_pair
    return " ".join(words)


def _is_cjk_pair(token: str) -> bool:
    # A run of two CJK characters is cut into its bigram and its last character; a
    # two-letter word of any alphabet stays one token.
    return len(token) == 2 and len(list(tokens(token))) == 2


def _out(row: asyncpg.Record) -> InterestOut:
    return InterestOut(
        id=row["id"],
        ipc_prefixes=list(row["ipc_prefixes"]),
        keywords=[keyword_text(q) for q in row["keywords"]],
        price_min_fen=row["price_min_fen"],
        price_max_fen=row["price_max_fen"],
        created_at=row["created_at"],
    )


async def list_interests(pool: asyncpg.Pool, user_id: int) -> list[InterestOut]:
    async with pool.acquire() as conn:
        return [_out(r) for r in await conn.fetch(Q.user_interests, user_id)]


@command(MANAGE_INTERESTS)
async def create_interest(uow: UnitOfWork, data: InterestInput) -> InterestOut:
    """Save an interest of the acting user (at most MAX_INTERESTS; 409 beyond).

    The user's row is locked while their interests are counted, so two concurrent saves
    cannot both pass the limit."""
    checked = check(data)
    user_id = uow.actor.user
    returned(await uow.conn.fetchrow(Q.lock_user, user_id))
    if await uow.conn.fetchval(Q.count_interests, user_id) >= MAX_INTERESTS:
        raise Conflict("too_many_interests", max=MAX_INTERESTS)
    row = returned(
        await uow.conn.fetchrow(
            Q.insert_interest,
            user_id,
            checked.ipc_prefixes,
            checked.keyword_queries,
            checked.price_min_fen,
            checked.price_max_fen,
            uow.at,
        )
    )
    uow.audit("interest.create", "saved_interest", row["id"], after=msgspec.to_builtins(checked))
    return _out(row)


@command(MANAGE_INTERESTS)
async def delete_interest(uow: UnitOfWork, interest_id: int) -> InterestOut:
    """Delete one of the acting user's interests; another user's answers 404.

    One DELETE … RETURNING: of two concurrent deletions one finds the row, the other 404."""
    if not 0 < interest_id <= _MAX_ID:
        raise NotFound("no_such_interest")
    row = await uow.conn.fetchrow(Q.delete_interest, interest_id, uow.actor.user)
    if row is None:
        raise NotFound("no_such_interest")
    gone = _out(row)
    uow.audit("interest.delete", "saved_interest", interest_id, before=msgspec.to_builtins(gone))
    return gone
