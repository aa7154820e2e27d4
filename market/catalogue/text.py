"""Search text that works on Chinese: CJK bigrams plus Latin words, and IPC prefix keys.

PostgreSQL has no Chinese word segmenter here (no zhparser), so Chinese is indexed the way
Lucene's CJKAnalyzer does it: every run of CJK characters becomes its overlapping
character bigrams ("锂电池" → 锂电 电池). A query is cut the same way and its bigrams are
ANDed, so "电池", "锂电" and "锂电池" all find "一种锂电池正极材料", while "池锂" does not.
Each run also yields its last character alone, so a one-character query (a prefix match
'锂':*) finds the character wherever it stands, even at the end of a run.

Latin words and numbers are lower-cased ASCII/alphabetic runs. Every token is a plain word
that PostgreSQL's default parser keeps as one lexeme, so `to_tsvector('simple', doc)`
holds exactly the tokens made here, whatever the database locale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from market.validators import ipc_prefix

__all__ = [
    "format_ipc_key",
    "ipc_filter_key",
    "ipc_keys",
    "search_document",
    "search_query",
    "tokens",
]

# Halfwidth and Fullwidth Forms (U+FF01-U+FF5E ↔ ASCII) and the ideographic space: Chinese
# input methods type "Ｈ０１Ｍ" as readily as "H01M".
_FULL_WIDTH: Final = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}

# Scripts written without spaces, cut into bigrams (as Lucene's CJKBigramFilter does):
# Han (URO, extension A, compatibility, extensions B+), 〇, kana, Hangul syllables.
_CJK: Final = (
    "\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_RUN: Final = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN: Final = re.compile(rf"[{_CJK}]+")
# PostgreSQL rejects lexemes over 2 KB; nobody searches for a 64-character word.
_MAX_WORD: Final = 64
# A query of more tokens than this is pasted text, not a search; the rest is ignored.
_MAX_QUERY_TOKENS: Final = 32


def _words(text: str) -> Iterator[str]:
    """Non-CJK runs split into words: ASCII letters/digits and letters of other alphabets.

    Digits outside ASCII ('²', '①') are dropped: the database parser would not keep them
    inside a word, and nobody types them in a search box.
    """
    word: list[str] = []
    for c in text:
        if (c.isascii() and c.isalnum()) or (not c.isascii() and c.isalpha()):
            word.append(c)
        elif word:
            yield "".join(word)
            word = []
    if word:
        yield "".join(word)


def _cjk_tokens(run: str) -> Iterator[str]:
    for i in range(len(run) - 1):
        yield run[i : i + 2]
    yield run[-1]


def tokens(text: str) -> Iterator[str]:
    """The index tokens of one text, in order (duplicates included)."""
    folded = text.translate(_FULL_WIDTH).lower()
    for match in _RUN.finditer(folded):
        run = match.group()
        if _CJK_RUN.fullmatch(run):
            yield from _cjk_tokens(run)
        else:
            yield from (w for w in _words(run) if len(w) <= _MAX_WORD)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def search_document(*texts: str) -> str:
    """Space-separated tokens of all the texts, for `to_tsvector('simple', $1)`.

    Each text is cut on its own, so no bigram spans two fields (a title's last character
    and the abstract's first). Duplicates are dropped: matching is AND of tokens, and a
    smaller tsvector makes a smaller index.
    """
    return " ".join(_unique(t for text in texts if text for t in tokens(text)))


def _quote(token: str) -> str:
    # Tokens hold only letters and digits, but quoting every one (and doubling any quote
    # or backslash) keeps tsquery operators in user input from ever being operators.
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def search_query(q: str) -> str | None:
    """A `to_tsquery('simple', …)` string ANDing the query's tokens; None if it has none.

    Query runs are cut like documents, except that a run's trailing single character is
    only searched alone (as a prefix, '锂':*) when the run is that one character: in
    "锂电池" the bigrams already pin down every character.
    """
    parts: list[str] = []
    folded = q.translate(_FULL_WIDTH).lower()
    for match in _RUN.finditer(folded):
        run = match.group()
        if _CJK_RUN.fullmatch(run):
            if len(run) == 1:
                parts.append(_quote(run) + ":*")
            else:
                parts.extend(_quote(run[i : i + 2]) for i in range(len(run) - 1))
        else:
            parts.extend(_quote(w) for w in _words(run) if len(w) <= _MAX_WORD)
    parts = _unique(parts)[:_MAX_QUERY_TOKENS]
    return " & ".join(parts) if parts else None


def _prefixes(key: str) -> list[str]:
    """'H01M4/525' → H, H01, H01M, H01M4/, H01M4/525 (as far as the key goes)."""
    found = [key[:1]]
    if len(key) >= 3:
        found.append(key[:3])
    if len(key) >= 4:
        found.append(key[:4])
    slash = key.find("/")
    if slash != -1:
        found.append(key[: slash + 1])
    found.append(key)
    return found


def ipc_keys(codes: Iterable[str]) -> list[str]:
    """Every prefix of every IPC code (section, class, subclass, main group, full).

    Keys use market.validators.ipc_prefix's compact form, so the catalogue's IPC filter is
    `ipc_keys @> ARRAY[ipc_prefix(q)]` on a GIN index. A code that does not parse is left
    out: the registry validates codes on entry, and the catalogue must not refuse a lot
    over an old malformed one.
    """
    keys: list[str] = []
    for code in codes:
        try:
            key = ipc_prefix(code)
        except ValueError:
            continue
        keys.extend(_prefixes(key))
    return _unique(keys)


def ipc_filter_key(q: str) -> str:
    """The key an IPC filter typed by a person searches for; BadValue (a code) if malformed.

    A trailing '/' ("H01M 4/") means the whole main group, which is what ipc_prefix gives
    for "H01M 4".
    """
    text = q.translate(_FULL_WIDTH).strip()
    if text.endswith("/"):
        text = text[:-1]
    return ipc_prefix(text)


_FULL_KEY: Final = re.compile(r"^([A-H][0-9]{2}[A-Z])([0-9]{1,4})/([0-9]{2,6})$")


def format_ipc_key(key: str) -> str | None:
    """'H01M4/525' → 'H01M 4/525'; None for a key that is only a prefix."""
    m = _FULL_KEY.match(key)
    return f"{m[1]} {m[2]}/{m[3]}" if m else None
