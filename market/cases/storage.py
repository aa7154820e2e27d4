"""Where document bytes are kept: once per content in `document_blobs`, within each
organisation's storage quota (docs/rules.md §Security).

Every upload — a case's disclosure document, an organisation's onboarding documents, a
licence's recordal notice — is checked whole (type, size, checklist item, quota) before
`store` writes a byte: a refused upload leaves nothing behind, not even the dead tuples of
a rolled-back insert, which take disk space until a vacuum.

The quota counts the bytes of every document the organisation holds (its cases'
documents, removed ones included since their bytes stay, and its onboarding documents),
each document at its size even when another organisation stored the same content: what
one organisation may store never depends on what another stored.

Concurrency: `reserve` takes the organisation's advisory lock (namespace
DOCUMENT_STORAGE_LOCK) before it sums, and holds it until the transaction ends, so two
uploads of one organisation take turns and cannot both fit into the last free bytes.
Blob inserts race harmlessly on `insert_blob`'s ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from market.cases.policy import DEFAULT_DOCUMENT_POLICY, DocumentPolicy
from market.collateral.locks import xact_lock
from market.db import Conn, Queries
from market.errors import Invalid

Q = Queries("cases")

# First key of the two-key advisory lock (market/collateral/locks.py lists the others).
DOCUMENT_STORAGE_LOCK: Final = 7_240_007


async def reserve(
    conn: Conn,
    org_id: int,
    uploads: Sequence[tuple[str, int]],
    *,
    policy: DocumentPolicy = DEFAULT_DOCUMENT_POLICY,
) -> None:
    """Refuse the uploads — (field, size in bytes), in order — unless all fit the
    organisation's quota, naming the first that does not; else hold the organisation's
    storage lock until the transaction ends."""
    await xact_lock(conn, DOCUMENT_STORAGE_LOCK, org_id)
    used: int = await conn.fetchval(Q.org_stored_bytes, org_id)
    total = used
    for field, size in uploads:
        total += size
        if total > policy.org_quota_bytes:
            raise Invalid(
                "storage_quota_exceeded",
                field=field,
                size_bytes=size,
                used_bytes=used,
                quota_bytes=policy.org_quota_bytes,
            )


async def store(conn: Conn, content: bytes) -> bytes:
    """Keep the bytes (once per content); return their sha256. Call only once the upload
    is checked whole and `reserve`d."""
    digest = hashlib.sha256(content).digest()
    # Skip sending 20 MB to the server when the bytes are there already.
    if not await conn.fetchval(Q.blob_exists, digest):
        await conn.execute(Q.insert_blob, digest, content, len(content))
    return digest
