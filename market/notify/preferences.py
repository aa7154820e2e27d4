"""Per-user notification preferences (issue 5 item 4): which events by e-mail, and the
language of every message (users.language, also the UI's language for the user).

The inbox always gets every event (recipients.py) and webhooks are chosen per
organisation endpoint, so the user's choice here is e-mail per event. Only explicit
choices are stored; an event never chosen follows recipients.EMAIL_DEFAULT, so a new
event added later reaches users by its default without a migration of their rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from market import audit
from market.accounts.models import Language, OrgKind, Viewer
from market.db import Queries
from market.errors import Invalid
from market.i18n import LANGS
from market.notify.recipients import EVENTS, email_enabled

Q = Queries("notify")

_BIDDING: Final = tuple(e for e in EVENTS if e != "monitoring_flag")
# The events a kind of organisation can receive, in the order the page lists them:
# monitoring flags are the banks' (issue 5 item 1: "for banks"); the rest are bidders'.
EVENTS_FOR_KIND: Final[dict[str, tuple[str, ...]]] = {
    "bank": ("monitoring_flag",),
    "buyer": _BIDDING,
    "acquirer": _BIDDING,
    "pool": (),
    "operator": (),
}


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    language: Language
    events: tuple[str, ...]  # the events this user can receive, in page order
    email: dict[str, bool]  # event → e-mail on (explicit choice or default)


def events_for(kind: OrgKind) -> tuple[str, ...]:
    return EVENTS_FOR_KIND.get(kind, EVENTS)


async def load(pool: asyncpg.Pool, user_id: int, kind: OrgKind, language: Language) -> Preferences:
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.user_preferences, user_id)
    chosen = {r["event"]: r["enabled"] for r in rows if r["channel"] == "email"}
    events = events_for(kind)
    return Preferences(
        language=language,
        events=events,
        email={e: email_enabled(e, chosen) for e in events},
    )


async def save(
    pool: asyncpg.Pool,
    at: datetime,
    viewer: Viewer,
    *,
    language: str,
    email_on: Iterable[str],
) -> Preferences:
    """Store the user's e-mail choice for every event of the page and the language."""
    if language not in LANGS:
        raise Invalid("language: zh or en", field="language")
    events = events_for(viewer.org_kind)
    wanted = set(email_on)
    unknown = sorted(wanted - set(events))
    if unknown:
        raise Invalid(f"email: unknown events {', '.join(unknown)}", field="email")
    async with pool.acquire() as conn, conn.transaction():
        before = {
            r["event"]: r["enabled"]
            for r in await conn.fetch(Q.user_preferences, viewer.user_id)
            if r["channel"] == "email"
        }
        if events:
            await conn.execute(
                Q.upsert_preferences,
                viewer.user_id,
                list(events),
                ["email"] * len(events),
                [e in wanted for e in events],
            )
        await conn.execute(Q.set_language, viewer.user_id, language)
        after = {e: e in wanted for e in events}
        await audit.append(
            conn,
            at=at,
            chain_org_id=viewer.org_id,
            actor_user_id=viewer.user_id,
            actor_org_id=viewer.org_id,
            action="notification.preferences",
            object_kind="user",
            object_id=viewer.user_id,
            before={"language": viewer.language, "email": before},
            after={"language": language, "email": after},
        )
    lang: Language = "en" if language == "en" else "zh"
    return Preferences(language=lang, events=events, email=after)
