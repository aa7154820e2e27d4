"""Per-user notification preferences (docs/rules.md §Notifications): which events by
e-mail, and the language of every message (users.language, also the UI's language for the
user). Each user keeps their own (OWN_ACCOUNT).

The inbox always gets every event (recipients.py) and webhooks are chosen per
organisation endpoint, so the user's choice here is e-mail per event. Only explicit
choices are stored; an event never chosen follows recipients.EMAIL_DEFAULT, so a new
event added later reaches users by its default without a migration of their rows.
"""

from __future__ import annotations

from typing import Final

import asyncpg
import msgspec

from market.accounts.models import Language, OrgKind
from market.accounts.permissions import OWN_ACCOUNT
from market.commands import UnitOfWork, command
from market.db import Queries, returned
from market.errors import Invalid
from market.i18n import LANGS
from market.notify.recipients import EVENTS, email_enabled

Q = Queries("notify")

# An invitation goes to an address, never to a user; a decision on the organisation is
# always sent (recipients.py).
_ACCOUNT: Final = frozenset({"invitation", "organisation_decided"})
# A licensee's: its royalty reminders and the end of its licence (market/licensing).
LICENSEE: Final = (
    "royalty_report_due",
    "royalty_payment_due",
    "royalty_payment_late",
    "licence_terminated",
)
# What a bank hears of its lots' licence offers; what an offeror hears of its offers.
_BANK_OFFERS: Final = ("offer_received",)
_OFFEROR: Final = ("offer_outbid_by_value", "offer_chosen", "offer_not_chosen")
# The pledgor's part in licensing (docs/rules.md §The pledgor, §Open licence): told to the
# bank, and a taken open licence to the pledgor too.
_LICENSING_BANK: Final = (
    "licensing_consent_given",
    "licence_back_accepted",
    "licence_back_declined",
    "open_licence_taken",
)
# A sale's transfer of title (market/transfer): what its parties hear, what the pools
# hear (the recovery arriving) and what the operators hear (notices to check, checks late).
_TRANSFER: Final = (
    "transfer_step_due",
    "transfer_step_reminder",
    "transfer_step_overdue",
    "transfer_notice_uploaded",
    "transfer_notice_rejected",
    "sale_completed",
    "sale_unwound",
)
_TRANSFER_POOL: Final = ("sale_completed",)
_TRANSFER_OPERATOR: Final = ("transfer_notice_uploaded", "transfer_step_overdue")
# What the payer of the exchange's fee hears of its invoices (market/invoices).
INVOICES: Final = ("invoice_details_needed", "invoice_issued")
_BIDDING: Final = tuple(
    e
    for e in EVENTS
    if e not in ("monitoring_flag", *_BANK_OFFERS, *_LICENSING_BANK) and e not in _ACCOUNT
)
# The events a kind of organisation can receive, in the order the page lists them:
# monitoring flags are the banks'; the rest are bidders' (a bidder may be a licensee too);
# the pledgor hears what a licensee hears (反向许可: it is the licensee).
EVENTS_FOR_KIND: Final[dict[str, tuple[str, ...]]] = {
    "bank": (
        "monitoring_flag",
        *_BANK_OFFERS,
        *_LICENSING_BANK,
        *_TRANSFER,
        "document_issued",
        *INVOICES,
    ),
    "buyer": _BIDDING,
    "acquirer": _BIDDING,
    "pool": _TRANSFER_POOL,
    "operator": _TRANSFER_OPERATOR,
    "pledgor": (*_OFFEROR, "open_licence_taken", *LICENSEE),
}


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    language: Language
    events: tuple[str, ...]  # the events this user can receive, in page order
    email: dict[str, bool]  # event → e-mail on (explicit choice or default)


class SavePreferences(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The page's choices: the language, and the events to receive by e-mail (every
    event of the page not listed is off)."""

    language: Language
    email: list[str] = msgspec.field(default_factory=list)


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


@command(OWN_ACCOUNT)
async def save_preferences(uow: UnitOfWork, data: SavePreferences) -> Preferences:
    """Store the acting user's e-mail choice for every event of the page, and the language.

    The user's row is locked first, so concurrent saves take turns and each audit row's
    `before` is what the previous save left."""
    if data.language not in LANGS:
        raise Invalid("not_a_choice", field="language", value=str(data.language))
    assert uow.actor.org_kind is not None
    events = events_for(uow.actor.org_kind)
    wanted = set(data.email)
    unknown = sorted(wanted - set(events))
    if unknown:
        raise Invalid("unknown_events", field="email", events=unknown, allowed=list(events))
    user_id = uow.actor.user
    language = returned(await uow.conn.fetchrow(Q.lock_user_language, user_id))["language"]
    before = {
        r["event"]: r["enabled"]
        for r in await uow.conn.fetch(Q.user_preferences, user_id)
        if r["channel"] == "email"
    }
    if events:
        await uow.conn.execute(
            Q.upsert_preferences,
            user_id,
            list(events),
            ["email"] * len(events),
            [e in wanted for e in events],
        )
    await uow.conn.execute(Q.set_language, user_id, data.language)
    after = {e: e in wanted for e in events}
    uow.audit(
        "notification.preferences",
        "user",
        user_id,
        before={"language": language, "email": before},
        after={"language": data.language, "email": after},
    )
    return Preferences(language=data.language, events=events, email=after)
