"""Migrations: applied once in order under a lock, checksummed, edits refused."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from market import db
from tests.conftest import WORKER


@pytest.fixture
async def empty_db(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    pg = server_urls[0]
    name = f"market_migration_test_{WORKER}"  # one per test run, as the test databases
    admin = await asyncpg.connect(pg)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_concurrent_migrators_apply_each_file_once(empty_db: str) -> None:
    conns = [await db.connect(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        applied = [name for r in results for name in r]
        expected = [m.name for m in db.discover_migrations()]
        assert sorted(applied) == sorted(expected)  # each once, by whichever got there first
        rows = await conns[0].fetch("SELECT version, checksum FROM schema_migrations ORDER BY 1")
        assert [r["version"] for r in rows] == list(range(1, len(expected) + 1))
        assert await db.migrate(conns[0]) == []  # nothing left to do
    finally:
        for c in conns:
            await c.close()


async def test_edited_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS_DIR, folder)
    conn = await db.connect(empty_db)
    try:
        await db.migrate(conn, folder)
        first = sorted(folder.glob("*.sql"))[0]
        original = first.read_text()
        first.write_text(original + "\n-- a corrected comment is no edit\n")
        assert await db.migrate(conn, folder) == []
        first.write_text(original + "\nCREATE TABLE innocent_looking (id int);\n")
        with pytest.raises(db.MigrationError, match="edited after it was applied"):
            await db.migrate(conn, folder)
    finally:
        await conn.close()


def test_migration_numbers_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match="without gaps"):
        db.discover_migrations(tmp_path)


def test_named_queries_load(tmp_path: Path) -> None:
    (tmp_path / "x.sql").write_text(
        "-- name: one\n-- says one\nSELECT 1\n\n-- name: two\nSELECT 2\n"
    )
    q = db.Queries("x", tmp_path)
    assert q.one.endswith("SELECT 1") and q.two == "SELECT 2"
    with pytest.raises(AttributeError, match="no query 'three'"):
        _ = q.three


def test_a_checksum_covers_statements_not_comments() -> None:
    sql = "-- header\nCREATE TABLE t (\n  a text DEFAULT '--x',  -- why\n\n  b int\n);\n"
    assert db.statements(sql) == "CREATE TABLE t (\na text DEFAULT '--x',\nb int\n);"


async def test_a_database_checksummed_by_whole_files_is_upgraded_once(empty_db: str) -> None:
    """Its rows are rewritten to the statements' checksum; then edits are refused again."""
    conn = await db.connect(empty_db)
    try:
        await db.migrate(conn)
        await conn.execute(
            "ALTER TABLE schema_migrations ALTER COLUMN checksum_of SET DEFAULT 'file'"
        )
        await conn.execute("UPDATE schema_migrations SET checksum = 'old', checksum_of = 'file'")
        assert await db.migrate(conn) == []
        rows = await conn.fetch("SELECT version, checksum, checksum_of FROM schema_migrations")
        expected = {m.version: m.checksum for m in db.discover_migrations()}
        assert {r["version"]: r["checksum"] for r in rows} == expected
        assert {r["checksum_of"] for r in rows} == {"statements"}
    finally:
        await conn.close()
