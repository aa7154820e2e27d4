"""Chinese-capable search text: CJK bigrams, Latin words, tsquery safety, IPC prefix keys."""

from __future__ import annotations

import asyncpg
import pytest

from market.catalogue.text import (
    format_ipc_key,
    ipc_filter_key,
    ipc_keys,
    search_document,
    search_query,
    tokens,
)

TITLE = "一种锂电池正极材料的制备方法"


async def matches(pool: asyncpg.Pool, query: str, *texts: str) -> bool:
    """Does the database find the texts' document for the query, as the catalogue asks it?"""
    tsquery = search_query(query)
    assert tsquery is not None
    async with pool.acquire() as conn:
        found: bool = await conn.fetchval(
            "SELECT to_tsvector('simple', $1) @@ to_tsquery('simple', $2)",
            search_document(*texts),
            tsquery,
        )
    return found


def test_cjk_text_becomes_overlapping_bigrams_plus_the_last_character() -> None:
    assert list(tokens("锂电池")) == ["锂电", "电池", "池"]
    assert list(tokens("锂")) == ["锂"]
    # punctuation ends a run: no bigram across "，"
    assert "池正" not in list(tokens("锂电池，正极"))


def test_latin_words_are_lower_cased_and_full_width_folded() -> None:
    assert list(tokens("Lithium-Ion ５G H01M 4/525")) == [
        "lithium",
        "ion",
        "5g",
        "h01m",
        "4",
        "525",
    ]
    assert list(tokens("5G通信")) == ["5g", "通信", "信"]


def test_document_keeps_fields_apart_and_drops_duplicates() -> None:
    doc = search_document("锂电", "池子", "锂电")
    assert doc.split() == ["锂电", "电", "池子", "子"]  # no 电池 across the two fields


@pytest.mark.parametrize("query", ["锂电池", "电池", "锂电", "正极材料", "锂", "池", "制备 锂电池"])
async def test_chinese_queries_find_the_title(pool: asyncpg.Pool, query: str) -> None:
    assert await matches(pool, query, TITLE)


@pytest.mark.parametrize("query", ["池锂", "电锂", "钠电池", "锂电池 钠"])
async def test_wrong_order_or_missing_characters_do_not_match(
    pool: asyncpg.Pool, query: str
) -> None:
    assert not await matches(pool, query, TITLE)


async def test_english_words_and_numbers_match_case_insensitively(pool: asyncpg.Pool) -> None:
    text = "A LiFePO4 cathode for 5G base stations, Model X200"
    assert await matches(pool, "lifepo4", text)
    assert await matches(pool, "5g X200", text)
    assert await matches(pool, "Cathode", text)
    assert not await matches(pool, "anode", text)


async def test_the_database_keeps_every_token_as_one_lexeme(pool: asyncpg.Pool) -> None:
    doc = search_document(TITLE, "Lithium-ion H01M 4/525 ２０２３", "café 1e5 x2")
    async with pool.acquire() as conn:
        lexemes = await conn.fetchval("SELECT tsvector_to_array(to_tsvector('simple', $1))", doc)
    assert sorted(lexemes) == sorted(doc.split())


@pytest.mark.parametrize(
    "hostile",
    ["a & b", "x | !y", "a:* <-> b", "'); DROP TABLE lots; --", "a\\' b\\\\ ''c''", "(a", "a)"],
)
async def test_tsquery_syntax_in_the_query_is_only_text(pool: asyncpg.Pool, hostile: str) -> None:
    tsquery = search_query(hostile)
    assert tsquery is not None
    async with pool.acquire() as conn:
        # parses, and is an AND of quoted plain words
        parsed = await conn.fetchval("SELECT to_tsquery('simple', $1)::text", tsquery)
    assert "|" not in parsed and "!" not in parsed and "<->" not in parsed


def test_empty_queries_search_nothing() -> None:
    assert search_query("") is None
    assert search_query("  ，。!&|") is None


def test_single_character_is_a_prefix_query() -> None:
    assert search_query("锂") == "'锂':*"
    assert search_query("锂电池") == "'锂电' & '电池'"


def test_ipc_keys_hold_every_level() -> None:
    assert ipc_keys(["H01M 4/525"]) == ["H", "H01", "H01M", "H01M4/", "H01M4/525"]
    keys = ipc_keys(["h01m 4/525", "G06F 16/245", "not a code"])
    assert "G06F16/" in keys and "H01M4/525" in keys and len(keys) == 10


@pytest.mark.parametrize("typed", ["H", "H01", "H01M", "h01m", "H01M 4", "H01M 4/", "H01M4/525"])
def test_ipc_filters_are_keys_of_the_code(typed: str) -> None:
    assert ipc_filter_key(typed) in ipc_keys(["H01M 4/525"])


def test_ipc_filter_does_not_match_other_groups() -> None:
    assert ipc_filter_key("H01M 41") not in ipc_keys(["H01M 4/525"])
    assert ipc_filter_key("H01M 4/52") not in ipc_keys(["H01M 4/525"])
    with pytest.raises(ValueError):
        ipc_filter_key("Z99")


def test_full_keys_format_back_to_codes() -> None:
    assert format_ipc_key("H01M4/525") == "H01M 4/525"
    assert format_ipc_key("H01M4/") is None
