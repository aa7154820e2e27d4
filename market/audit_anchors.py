"""The audit chains' heads, anchored outside PostgreSQL (docs/rules.md §Security).

The keyed chain (market/audit.py) shows any row edited, inserted, moved or deleted in its
middle, but not a chain cut short or rolled back to an older state: an older chain is a
valid chain. So at intervals the worker appends each moved head — chain, seq, hash — to
a file outside the database (`Settings.audit_anchor_path`, by default
`<data folder>/audit-anchors.jsonl`; put it on another machine's disk in production),
one JSON line per head, each line carrying an HMAC under the audit key so that a line
cannot be forged. `market audit verify` then requires every anchored row to be there,
with its anchored hash: a chain cut below its anchor, rewritten or deleted is found.
Rows written after the last anchor and cut before the next are what an anchor cannot
show; the interval (`ANCHOR_MINUTES`) bounds them.

An anchor is written only for rows the anchorer has verified from the previous anchor
(or from genesis) with the key, so a chain tampered with between two anchorings is
refused rather than anchored. The first anchoring after the chain was keyed counts each
chain's unkeyed rows (`legacy`); from then on no unkeyed row is accepted beyond them.

Concurrency: the file is only appended to, one `write` of whole lines in append mode; two
anchorings at once write the same heads twice, which reads the same.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from market.audit import Break, Q, Walk
from market.db import Conn
from market.settings import Settings

# Every 10 minutes (docs/rules.md §Security): at most that much of a chain's newest
# history can be cut without an anchor showing it.
ANCHOR_MINUTES: Final = frozenset(range(0, 60, 10))


class AnchorLine(msgspec.Struct, frozen=True, kw_only=True):
    chain: int
    seq: int
    hash: str  # hex
    legacy: int  # the chain's unkeyed rows, counted at its first anchoring
    at: str
    mac: str = ""


@dataclass(frozen=True)
class Point:
    seq: int
    hash: bytes
    legacy: int


@dataclass
class Anchors:
    """What the anchor file says: each chain's newest anchored head, and the lines that
    do not check out (as breaks)."""

    latest: dict[int, Point] = field(default_factory=dict)
    problems: list[Break] = field(default_factory=list)

    @property
    def started(self) -> bool:
        return bool(self.latest)

    def legacy_until(self, chain: int) -> int | None:
        """The last seq of `chain` that may be unkeyed: before any anchoring any prefix;
        after, what the chain's first anchoring counted (none for a later chain)."""
        if not self.started:
            return None
        point = self.latest.get(chain)
        return point.legacy if point else 0


def anchor_path(settings: Settings) -> Path:
    return settings.audit_anchor_path or settings.data_dir / "audit-anchors.jsonl"


def _mac(key: bytes, line: AnchorLine) -> str:
    fields = msgspec.structs.asdict(line)
    fields.pop("mac")
    body = msgspec.json.encode(fields, order="sorted")
    return hmac.new(key, b"anchor" + body, hashlib.sha256).hexdigest()


def read(path: Path, key: bytes) -> Anchors:
    """The anchors in the file (none when it does not exist yet)."""
    anchors = Anchors()
    if not path.exists():
        return anchors
    with path.open("rb") as lines:
        for n, raw in enumerate(lines, start=1):
            try:
                line = msgspec.json.decode(raw, type=AnchorLine)
                good = hmac.compare_digest(line.mac, _mac(key, line))
            except msgspec.DecodeError:
                line, good = None, False
            if line is None or not good:
                chain = line.chain if line else -1
                reason = f"anchor line {n} of {path} was not written with the audit key"
                anchors.problems.append(Break(chain, line.seq if line else 0, None, reason))
                continue
            known = anchors.latest.get(line.chain)
            if known is None or line.seq > known.seq:
                anchors.latest[line.chain] = Point(line.seq, bytes.fromhex(line.hash), line.legacy)
    return anchors


async def anchor(conn: Conn, path: Path, key: bytes, at: datetime) -> tuple[int, list[Break]]:
    """Append an anchor for each chain whose head moved, once its new rows verify from
    the chain's last anchor; return (anchors written, chains refused)."""
    anchors = read(path, key)
    written: list[AnchorLine] = []
    refused: list[Break] = []
    for head in await conn.fetch(Q.all_heads):
        chain = head["chain_org_id"]
        point = anchors.latest.get(chain)
        if point is not None and point.seq >= head["seq"]:
            continue  # nothing new (a head moved back is for verify to report)
        if point is None:
            walk = Walk(chain, key, legacy_until=anchors.legacy_until(chain))
        else:  # from the anchor on, every row is keyed
            walk = Walk(
                chain,
                key,
                prev=point.hash,
                seq=point.seq,
                legacy=point.legacy,
                legacy_until=point.seq,
                keyed_seen=point.legacy < point.seq,
            )
        start, broken = walk.seq, None
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            async for row in conn.cursor(Q.chain_rows_after, chain, start):
                broken = walk.step(row)
                if broken is not None:
                    refused.append(broken)
                    break
        if broken is None and walk.seq > start:
            line = AnchorLine(
                chain=chain,
                seq=walk.seq,
                hash=walk.prev.hex(),
                legacy=walk.legacy,
                at=at.isoformat(),
            )
            written.append(msgspec.structs.replace(line, mac=_mac(key, line)))
    if written:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(msgspec.json.encode(line) + b"\n" for line in written)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    return len(written), refused
