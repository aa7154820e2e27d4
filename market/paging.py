"""Cursor pagination of the API's lists: one way for every collection.

    GET /api/v1/cases?status=open&limit=2
    {"items": [{…}, {…}], "next_cursor": "Y2FzZXM…"}
    GET /api/v1/cases?status=open&limit=2&cursor=Y2FzZXM…
    {"items": [{…}], "next_cursor": null}

A list is read in a fixed order, (sort key, id), and a page is the `limit` rows after the
last one the previous page ended on (keyset pagination: `WHERE (key, id) < ($k, $id)` in
SQL, never an OFFSET), so paging through a list whose rows are added to meanwhile returns
each row at most once and costs the same on the hundredth page as on the first. The cursor
is opaque to the caller: base64url of the list's name and the last row's (key, id), so a
cursor of one list given to another, or one that was altered, answers 400 naming the field
`cursor`. Filters are query parameters; a caller sends the same filters with every page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar, get_args

import asyncpg
import msgspec
from litestar.params import Parameter

from market.errors import BadRequest

T = TypeVar("T")
K = TypeVar("K")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

# The query parameters every list takes.
Limit = Annotated[
    int,
    Parameter(
        ge=1,
        le=MAX_LIMIT,
        description=f"How many items a page holds: 1 to {MAX_LIMIT}, {DEFAULT_LIMIT} if not given.",
    ),
]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=400,
        description="The `next_cursor` of the previous page; none for the first page.",
    ),
]


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a list: its items, and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None


def bad_cursor() -> BadRequest:
    return BadRequest("bad_cursor", field="cursor")


class Keyset(Generic[K]):
    """The order of one list: its name (carried in the cursor), the type of the (sort key,
    id) tuple of its last row and the columns it is read from:
    `Keyset("cases", tuple[datetime, int], "opened_at", "id")`."""

    def __init__(self, name: str, key: Any, *columns: str) -> None:
        if len(columns) != len(get_args(key)):
            raise ValueError(f"{name}: one column per element of the key")
        self.name = name
        self.columns = columns
        self._type: Any = tuple[str, key]  # (list name, (sort key, id))

    def encode(self, key: K) -> str:
        raw = msgspec.json.encode((self.name, key))
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def after(self, cursor: str | None) -> K | None:
        """The (sort key, id) the page starts after; None for the first page. A cursor
        that is not one of this list's answers 400 `bad_cursor`."""
        if cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            name, key = msgspec.json.decode(raw, type=self._type)
        except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
            raise bad_cursor() from None
        if name != self.name:
            raise bad_cursor()
        found: K = key
        return found

    def page(self, rows: Sequence[Any], limit: int, item: Callable[[Any], T]) -> Page[T]:
        """The page of `rows`, read with LIMIT `limit + 1`: the extra row only says that
        another page follows."""
        shown = rows[:limit]
        last = shown[-1] if len(rows) > limit and shown else None
        return Page(
            items=[item(r) for r in shown],
            next_cursor=None if last is None else self.encode(self._key(last)),
        )

    def _key(self, row: Any) -> K:
        key: K = tuple(row[c] for c in self.columns)  # type: ignore[assignment]
        return key

    async def read(
        self,
        pool: asyncpg.Pool,
        query: str,
        *args: Any,
        cursor: str | None,
        limit: int,
        item: Callable[[Any], T],
    ) -> Page[T]:
        """One page: `query` takes `args`, then the cursor's key (NULLs for the first
        page), then the number of rows to read."""
        after = self.after(cursor)
        start = after if after is not None else (None,) * len(self.columns)
        async with pool.acquire() as conn:
            rows = await conn.fetch(query, *args, *start, limit + 1)  # type: ignore[misc]
        return self.page(rows, limit, item)


def rows_as(kind: type[T]) -> Callable[[Any], T]:
    """A row as the struct `kind` whose fields are the row's columns of the same names."""

    def convert(row: Any) -> T:
        return msgspec.convert(dict(row), kind)

    return convert
