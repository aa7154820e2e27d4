"""PostgreSQL: the connection pool, the migration runner and the named-query loader.

Schema changes are plain numbered files in sql/migrations/, applied in order exactly once
under an advisory lock and recorded with a checksum of its statements. Queries are named blocks in
sql/queries/<area>.sql, loaded once; services pick them by name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from market.settings import ROOT

MIGRATIONS_DIR = ROOT / "sql" / "migrations"
QUERIES_DIR = ROOT / "sql" / "queries"
# An arbitrary constant: every process that migrates takes this lock first, so two
# processes starting at once apply each file once.
_MIGRATION_LOCK = 7_240_001

Pool = asyncpg.Pool
# What services take: a plain connection or one borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, encoded by msgspec (fast, strict).
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: msgspec.json.encode(v).decode(),
        decoder=msgspec.json.decode,
        schema="pg_catalog",
    )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: the exchange sets no session state on pooled connections
    (no SET, LISTEN, session advisory lock or cursor outside a transaction; temp tables are
    ON COMMIT DROP; the migration lock takes a connection of its own). asyncpg still rolls
    back an open transaction first. The default reset (RESET ALL, UNLISTEN *,
    pg_advisory_unlock_all, CLOSE ALL) would cost a round trip on every release, i.e. on
    every request; the bid path measured it at about 6 % of the app's CPU."""


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


# --- migrations -------------------------------------------------------------------------


class MigrationError(Exception):
    """A migration problem told in one line."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Of the statements, not the comments: a comment can be corrected after the file
        was applied; a statement cannot."""
        return hashlib.sha256(statements(self.sql).encode()).hexdigest()


def statements(sql: str) -> str:
    """The SQL without its `--` comments and blank lines, each line's spaces trimmed (a
    `--` inside a quoted string stays)."""
    kept = []
    for line in sql.splitlines():
        quoted, cut = False, len(line)
        for i, char in enumerate(line):
            if char == "'":
                quoted = not quoted
            elif not quoted and line.startswith("--", i):
                cut = i
                break
        code = line[:cut].strip()
        if code:
            kept.append(code)
    return "\n".join(kept)


_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def discover_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_words.sql")
        found.append(Migration(int(match.group(1)), path.stem, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1, 2, 3… without gaps; found {versions}")
    return found


async def _upgrade_checksums(conn: asyncpg.Connection, by_version: dict[int, Migration]) -> None:
    """A database whose checksums covered the whole file (comments too) gets them of the
    statements, once: the files it was migrated with are not here to compare against, so
    they are trusted this one time (docs/operations.md, "Migrations")."""
    await conn.execute(
        "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS "
        "checksum_of text NOT NULL DEFAULT 'file'"
    )
    for row in await conn.fetch("SELECT version FROM schema_migrations WHERE checksum_of = 'file'"):
        known = by_version.get(row["version"])
        if known is not None:
            await conn.execute(
                "UPDATE schema_migrations SET checksum = $2, checksum_of = 'statements' "
                "WHERE version = $1",
                known.version,
                known.checksum,
            )


async def migrate(conn: asyncpg.Connection, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet applied; return their names.

    Refuses (MigrationError) when an applied file was edited or removed, because the
    database would no longer match what the code was written against.
    """
    migrations = discover_migrations(folder)
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version     integer PRIMARY KEY,
                   name        text NOT NULL,
                   checksum    text NOT NULL,
                   applied_at  timestamptz NOT NULL DEFAULT now(),
                   checksum_of text NOT NULL DEFAULT 'statements')"""
        )
        by_version = {m.version: m for m in migrations}
        await _upgrade_checksums(conn, by_version)
        applied = {r["version"]: r for r in await conn.fetch("SELECT * FROM schema_migrations")}
        for version, row in sorted(applied.items()):
            known = by_version.get(version)
            if known is None:
                raise MigrationError(
                    f"migration {row['name']} is applied but its file is gone; restore it"
                )
            if known.checksum != row["checksum"]:
                raise MigrationError(
                    f"migration {known.name}.sql was edited after it was applied; "
                    "add a new migration instead"
                )
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, checksum_of) "
                    "VALUES ($1, $2, $3, 'statements')",
                    m.version,
                    m.name,
                    m.checksum,
                )
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


# --- named queries ----------------------------------------------------------------------

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries:
    """The named blocks of one sql/queries/<area>.sql file.

    `Q = Queries("accounts")` then `await conn.fetchrow(Q.user_by_email, email)`.
    A misspelt name fails at import time of the module that uses it, not at first call.
    """

    def __init__(self, area: str, folder: Path = QUERIES_DIR) -> None:
        text = (folder / f"{area}.sql").read_text(encoding="utf-8")
        self._area = area
        self._sql: dict[str, str] = {}
        parts = _NAME_LINE.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in self._sql:
                raise ValueError(f"sql/queries/{area}.sql: query {name!r} is defined twice")
            self._sql[name] = body.strip()

    def __getattr__(self, name: str) -> str:
        try:
            return self._sql[name]
        except KeyError:
            raise AttributeError(f"sql/queries/{self._area}.sql has no query {name!r}") from None

    def names(self) -> list[str]:
        return list(self._sql)


def returned(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row a RETURNING or a just-checked SELECT must have produced."""
    if row is None:
        raise RuntimeError("expected a row from the database, got none")
    return row
