"""Who hears an outbox row, and on which channels (docs/rules.md §Notifications).

Recipients: `recipient_user_id` → that user; only `recipient_org_id` → the organisation's
active users; neither (lot-wide events such as `extended`) → every active user of the
organisations registered in the lot's current round.

Channels, per recipient:
* inbox — always: the in-app record of everything owed to the user (not a preference);
* email — the user's choice per event (preferences.py), by default on for every event in
  `EMAIL_DEFAULT`; the address is the user's;
* webhook — once per event and active endpoint of the organisation concerned that
  subscribes to the event (an endpoint with no events listed takes them all); the
  organisation chose it when it registered the endpoint, so no user preference applies.

The language is read when the message is rendered (users.language), not here, so a
user who switches language before a deferred e-mail goes out gets it in the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import asyncpg
import msgspec

from market.db import Conn, Queries

Q = Queries("notify")

Channel = Literal["inbox", "email", "webhook"]
CHANNELS: Final[tuple[Channel, ...]] = ("inbox", "email", "webhook")

# Every event the outbox carries (producers: auctions/writer.py, deposits.py,
# closing.py, market/notify/events.py and market/licensing/offers.py, deciding.py,
# pledgor.py, open_licence.py, reminders.py, enforcement.py, market/documents/rendering.py,
# market/listing/, market/invoices, market/transfer, market/payments/instructions.py,
# paying.py, market/acquisition).
EVENTS: Final[tuple[str, ...]] = (
    "outbid",
    "extended",
    "ending_soon",
    "bidding_opened",
    "deposit_confirmed",
    "deposit_released",
    "won",
    "lost",
    "payment_due",
    "payment_overdue",
    "defaulted",
    "lot_matched",
    "monitoring_flag",
    "organisation_decided",
    "offer_received",
    "offer_outbid_by_value",
    "offer_chosen",
    "offer_not_chosen",
    "hammer_superseded",
    "royalty_report_due",
    "royalty_payment_due",
    "royalty_payment_late",
    "licence_terminated",
    "invitation",
    "licensing_consent_given",
    "licence_back_accepted",
    "licence_back_declined",
    "open_licence_taken",
    "document_issued",
    "listing_intent_approved",
    "listing_period_ended",
    "listing_transfer_to_confirm",
    "listing_auction_created",
    "transfer_step_due",
    "transfer_step_reminder",
    "transfer_step_overdue",
    "transfer_notice_uploaded",
    "transfer_notice_rejected",
    "sale_completed",
    "sale_unwound",
    "invoice_details_needed",
    "invoice_issued",
    "refund_instructed",
    "refund_paid",
    "payout_paid",
    "agreed_disposal_proposed",
    "agreed_disposal_objected",
    "agreed_disposal_withdrawn",
    "agreed_disposal_completed",
    "agreed_disposal_payouts_owed",
    "agreed_disposal_offered",
    "agreed_disposal_accepted",
    "agreed_disposal_declined",
    "agreed_disposal_lapsed",
)

# E-mail on by default: everything a bidder must act on or would regret
# missing. `extended` is not among them: it reaches every registered bidder at each late
# bid, and the outbid and ending-soon messages already tell the one who must act.
EMAIL_DEFAULT: Final[frozenset[str]] = frozenset(EVENTS) - {"extended"}


class Planned(msgspec.Struct, frozen=True):
    """One delivery the relay will record: (outbox row, channel, target)."""

    outbox_id: int
    channel: Channel
    target: str  # inbox: the user id; email: the address; webhook: the endpoint id


def email_enabled(event: str, choices: dict[str, bool]) -> bool:
    """The user's explicit choice for this event, else the default."""
    return choices.get(event, event in EMAIL_DEFAULT)


async def plan(conn: Conn, rows: Sequence[asyncpg.Record]) -> list[Planned]:
    """The deliveries owed for these outbox rows (three set-based queries for a batch)."""
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    event_of = {r["id"]: r["event"] for r in rows}
    users = await conn.fetch(Q.recipient_users, ids)
    choices: dict[int, dict[str, bool]] = {}
    if users:
        for p in await conn.fetch(Q.email_preferences, list({u["user_id"] for u in users})):
            choices.setdefault(p["user_id"], {})[p["event"]] = p["enabled"]
    out: list[Planned] = []
    seen: set[tuple[int, str, str]] = set()

    def add(outbox_id: int, channel: Channel, target: str) -> None:
        key = (outbox_id, channel, target)
        if key not in seen:
            seen.add(key)
            out.append(Planned(outbox_id, channel, target))

    for r in rows:
        # An invitation goes to an address that is nobody's yet: e-mail only.
        if r["event"] == "invitation" and r["email_to"]:
            add(r["id"], "email", r["email_to"])
    for u in users:
        add(u["outbox_id"], "inbox", str(u["user_id"]))
        if email_enabled(event_of[u["outbox_id"]], choices.get(u["user_id"], {})):
            add(u["outbox_id"], "email", u["email"])
    for w in await conn.fetch(Q.webhook_targets, ids):
        add(w["outbox_id"], "webhook", str(w["endpoint_id"]))
    return out
