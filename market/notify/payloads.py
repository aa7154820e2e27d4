"""What a json-format webhook receives, per event, as types: the OpenAPI document's
`webhooks` section is built from them (docs/webhooks.md).

The delivery writes the body as `webhooks.WebhookMessage`, with the event's stored payload;
the Structs here say what that body holds for each event: `WebhookEvent`'s fields, `event`
fixed to the event's name and `payload` typed. tests/notify/test_webhook_sequence.py decodes
delivered bodies into them and validates them against the document, so they cannot drift
apart. Payloads may gain fields within a version; a receiver should ignore what it does not
know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from market.notify import endpoints
from market.notify.webhooks import VERSION

DepositStatus = Literal["awaiting", "confirmed"]
# An instant, ISO 8601 with its offset (RFC 3339).
Instant = Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """The event's own facts: ids, amounts in fen (integers), instants in ISO 8601."""


class OutbidPayload(Payload, frozen=True, kw_only=True):
    """Another bid passed this bidder's: the price now and the end now."""

    registration_id: int
    price_fen: int
    ends_at: Instant


class ExtendedPayload(Payload, frozen=True, kw_only=True):
    """A late bid moved the lot's end (to every registered bidder)."""

    ends_at: Instant


class _LotFacts(Payload, frozen=True, kw_only=True):
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int


class BiddingOpenedPayload(_LotFacts, frozen=True, kw_only=True):
    """Bidding opened on a lot the buyer registered for (its deposit may still be awaited)."""

    registration_id: int
    bidder_code: str
    deposit_status: DepositStatus
    auction_kind: Literal["english", "fixed_price", "sealed"]
    start_price_fen: int
    increment_fen: int
    starts_at: Instant | None
    ends_at: Instant | None


class EndingSoonPayload(_LotFacts, frozen=True, kw_only=True):
    """The lot ends in `lead_s` seconds; `price_fen` is null in a sealed auction."""

    registration_id: int
    bidder_code: str
    deposit_status: DepositStatus
    lead_s: int
    ends_at: Instant
    price_fen: int | None


class DepositPayload(Payload, frozen=True, kw_only=True):
    """The buyer's deposit for one registration: received (confirmed) or given back."""

    registration_id: int
    lot_reference: str
    round: int
    bidder_code: str
    amount_fen: int
    transfer_reference: str


class ListingPayload(Payload, frozen=True, kw_only=True):
    """A listing's step (docs/rules.md §Listing); `path` is its page."""

    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    path: str


class ListingPeriodPayload(ListingPayload, frozen=True, kw_only=True):
    """The period ended (to the bank): what it found."""

    outcome: Literal["no_intent", "negotiation", "auction"]
    qualified: int
    ends_at: Instant


class ListingTransferPayload(ListingPayload, frozen=True, kw_only=True):
    """One qualified intent: the negotiated transfer to confirm by `confirm_by`."""

    price_fen: int
    confirm_by: Instant


class ListingAuctionPayload(ListingPayload, frozen=True, kw_only=True):
    """Two or more: the auction the qualified intent bids in, with its deposit."""

    start_price_fen: int
    bidding_ends_at: Instant


def _sale_payload() -> type[Payload]:
    """The sale of a closed round (auctions/closing.py: `SaleOut`, its `id` as `sale_id`)."""
    from auctions.closing import SaleOut

    made = msgspec.defstruct(
        "SalePayload",
        [
            (f.name if f.name != "id" else "sale_id", f.type)
            for f in msgspec.structs.fields(SaleOut)
        ],
        bases=(Payload,),
        frozen=True,
        kw_only=True,
        module=__name__,
    )
    made.__doc__ = "The sale of a closed round: won, payment due, payment overdue, defaulted."
    assert issubclass(made, Payload)
    return made


SalePayload: Final = _sale_payload()


class LostPayload(Payload, frozen=True, kw_only=True):
    """The round closed sold to another bidder, at `price_fen`."""

    lot_id: int
    round: int
    registration_id: int
    price_fen: int


class LotMatchedPayload(_LotFacts, frozen=True, kw_only=True):
    """A newly published lot matches one of the buyer's saved interests."""

    interest_id: int
    region: str
    asset_kinds: list[str]
    start_price_fen: int
    deposit_fen: int
    starts_at: Instant | None
    ends_at: Instant | None


class MonitoringFlagPayload(Payload, frozen=True, kw_only=True):
    """The collateral monitor raised a flag on one of the bank's assets."""

    flag_id: int
    kind: Literal["annuity_due", "annuity_grace", "lapsed", "expiring", "expired", "invalidated"]
    detail: dict[str, Any]
    raised_at: Instant
    asset_id: int
    asset_kind: Literal["patent", "trademark", "software_copyright"]
    asset_number: str
    asset_title: str


class OrganisationDecidedPayload(Payload, frozen=True, kw_only=True):
    """The exchange approved or rejected the organisation (a rejection gives its reason)."""

    org_id: int
    org_name: str
    status: Literal["approved", "rejected"]
    reason: str


class OfferReceivedPayload(Payload, frozen=True, kw_only=True):
    """A licence offer (or a sale and licence back) was made on the bank's lot."""

    offer_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    offeror_name: str
    type: Literal["licence", "sale_and_licence_back"]
    licence_kind: Literal["exclusive", "sole", "non_exclusive"]
    upfront_fen: int
    minimum_annual_fen: int
    price_fen: int | None


class OfferDecidedPayload(Payload, frozen=True, kw_only=True):
    """The bank chose the offeror's offer, or did not (its deposit then goes back)."""

    offer_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    type: Literal["licence", "sale_and_licence_back"]
    licence_kind: Literal["exclusive", "sole", "non_exclusive"]


class OfferOutbidPayload(Payload, frozen=True, kw_only=True):
    """Another offer on the lot is now worth more to the bank in money of today than the
    offeror's (docs/rules.md §Licence offers and decision): it may improve its own."""

    offer_id: int
    by_offer_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    pv_fen: int  # the offer's present value
    leading_pv_fen: int  # the leading set's


class HammerSupersededPayload(Payload, frozen=True, kw_only=True):
    """The bank chose a licence over the top bid: the bidder owes nothing, its deposit
    goes back."""

    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    registration_id: int
    price_fen: int
    deposit_fen: int


class PaymentOutPayload(Payload, frozen=True, kw_only=True):
    """A refund or a payout the exchange owes the organisation: instructed (with its due
    date) or paid (docs/rules.md §Payments out)."""

    instruction_id: int
    reference: str  # written on the transfer
    amount_fen: int
    purpose: Literal["deposit_refund", "sale_refund", "payout"]
    path: str  # the organisation's page of refunds and payouts
    due_at: Instant | None = None


class LicensingConsentGivenPayload(Payload, frozen=True, kw_only=True):
    """The pledgor consented to licensing the pledged rights of the bank's case (民法典
    art. 444)."""

    case_id: int
    case_reference: str
    pledgor_name: str
    consented_at: Instant
    path: str  # the case's page on the exchange


class LicenceBackAnsweredPayload(Payload, frozen=True, kw_only=True):
    """The pledgor accepted a licence back, or declined it with its reason (the contract
    then ends terminated)."""

    contract_id: int
    contract_reference: str
    case_id: int
    case_reference: str
    pledgor_name: str
    reason: str
    path: str


class OpenLicenceTakenPayload(Payload, frozen=True, kw_only=True):
    """A firm took an open licence of the case's patent: its contract runs from `start`
    to `end` on the published terms."""

    open_licence_id: int
    contract_id: int
    contract_reference: str
    case_id: int
    patent_number: str
    patent_title: str
    licensee_name: str
    start: str  # YYYY-MM-DD
    end: str
    path: str


class RoyaltyReminderPayload(Payload, frozen=True, kw_only=True):
    """A licence contract's report or payment is due soon, or late: which item, what the
    licensee owes now (null while the report is missing) and the interest so far."""

    contract_id: int
    contract_reference: str
    period: str  # the item: UPFRONT, 2027Q1, ADJ3
    payment_reference: str  # to write on the transfer
    about: Literal["report", "payment"]
    when: Literal["before", "after"]
    days: int
    due_on: str  # YYYY-MM-DD
    owed_fen: int | None
    interest_fen: int


class LicenceTerminatedPayload(Payload, frozen=True, kw_only=True):
    """The bank terminated the licence for arrears past the grace period."""

    contract_id: int
    contract_reference: str
    reason: str
    terminated_at: Instant
    unpaid: list[str]  # the items unpaid past the grace period


class DocumentIssuedPayload(Payload, frozen=True, kw_only=True):
    """The exchange issued a sale's 成交确认书 (confirmation) or 交易凭证 (certificate), to the
    buyer and the bank: its verification code and the SHA-256 of its PDF."""

    document_id: int
    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    kind: Literal["confirmation", "certificate"]
    code: str
    sha256: str
    issued_at: Instant
    path: str  # the parties' documents page


class TransferPayload(Payload, frozen=True, kw_only=True):
    """A sale held in escrow until its title has moved (market/transfer): the sale and its
    lot, and the page of the transfer for this recipient."""

    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    price_fen: int
    path: str


class TransferStepPayload(TransferPayload, frozen=True, kw_only=True):
    """A step of the transfer is due, due soon (`days` before) or overdue."""

    step: Literal["release", "recordal", "check"]
    due_at: Instant
    days: int | None = None


class TransferNoticePayload(TransferPayload, frozen=True, kw_only=True):
    """A party uploaded a notice, or the operator rejected one (with its reason and the
    step's deadline for another)."""

    notice_id: int
    kind: Literal[
        "pledge_release", "patent_recordal", "trademark_assignment", "software_registration"
    ]
    number: str
    issued_on: str | None = None
    reason: str = ""
    step: Literal["release", "recordal"] | None = None
    due_at: Instant | None = None


class SaleEndedPayload(TransferPayload, frozen=True, kw_only=True):
    """The title moved and the price was routed (completed), or the sale was unwound: why,
    and what the buyer gets back or forfeits."""

    receipt_id: int | None = None
    cause: Literal["pledgor_dispute", "lapsed_right", "bank", "buyer"] | None = None
    buyer_at_fault: bool | None = None
    refund_fen: int | None = None
    forfeited_fen: int | None = None


class InvoiceDetailsNeededPayload(Payload, frozen=True, kw_only=True):
    """A paid sale's fee is to be invoiced to the organisation, which has no invoicing
    details on file: it is asked for them (the request is made when it saves them)."""

    sale_id: int
    lot_id: int
    lot_reference: str
    fee_kind: Literal["commission", "buyer_premium"]
    fee_fen: int
    path: str  # the page of the organisation's invoices


class InvoiceIssuedPayload(Payload, frozen=True, kw_only=True):
    """The finance system issued the invoice (or the red-letter invoice) of a sale's fee."""

    request_id: int
    sale_id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    kind: Literal["invoice", "red_letter"]
    invoice_type: Literal["vat_special", "vat_ordinary"]
    invoice_number: str
    invoice_date: str  # YYYY-MM-DD
    amount_fen: int
    path: str


class AgreementPayload(Payload, frozen=True, kw_only=True):
    """A step of a disposal by agreement (docs/rules.md §Acquisition and pledge-to-equity):
    proposed (to the organisations that bore the loss, with the end of their objection
    window), objected (to the bank, with the reason), withdrawn, completed, and what the
    bank owes the other payees with the reference to write on its transfer. With an
    acquisition institution as the taker: offered to it (with its deadline to accept),
    accepted or declined (to the bank), lapsed, and completed as a sale to it (the sale and
    the reference to pay its balance with)."""

    disposal_id: int
    case_reference: str
    kind: Literal["acquisition", "equity"]
    amount_fen: int
    path: str
    objection_until: Instant | None = None
    reason: str | None = None
    owed_fen: int | None = None
    settlement_reference: str | None = None
    accept_by: Instant | None = None
    accepted: bool | None = None
    sale_id: int | None = None
    payment_reference: str | None = None


class ProbePayload(Payload, frozen=True, kw_only=True):
    """A test an administrator sent from the webhook page or the API; no stream."""

    endpoint_id: int


# Every event the exchange sends a webhook: the outbox's events and the test.
PAYLOADS: Final[dict[str, type[Payload]]] = {
    "outbid": OutbidPayload,
    "extended": ExtendedPayload,
    "ending_soon": EndingSoonPayload,
    "bidding_opened": BiddingOpenedPayload,
    "deposit_confirmed": DepositPayload,
    "deposit_released": DepositPayload,
    "won": SalePayload,
    "lost": LostPayload,
    "payment_due": SalePayload,
    "payment_overdue": SalePayload,
    "defaulted": SalePayload,
    "lot_matched": LotMatchedPayload,
    "monitoring_flag": MonitoringFlagPayload,
    "organisation_decided": OrganisationDecidedPayload,
    "offer_received": OfferReceivedPayload,
    "offer_chosen": OfferDecidedPayload,
    "offer_outbid_by_value": OfferOutbidPayload,
    "offer_not_chosen": OfferDecidedPayload,
    "hammer_superseded": HammerSupersededPayload,
    "refund_instructed": PaymentOutPayload,
    "refund_paid": PaymentOutPayload,
    "payout_paid": PaymentOutPayload,
    "licensing_consent_given": LicensingConsentGivenPayload,
    "licence_back_accepted": LicenceBackAnsweredPayload,
    "licence_back_declined": LicenceBackAnsweredPayload,
    "open_licence_taken": OpenLicenceTakenPayload,
    "royalty_report_due": RoyaltyReminderPayload,
    "royalty_payment_due": RoyaltyReminderPayload,
    "royalty_payment_late": RoyaltyReminderPayload,
    "licence_terminated": LicenceTerminatedPayload,
    "document_issued": DocumentIssuedPayload,
    "listing_intent_approved": DepositPayload,
    "listing_period_ended": ListingPeriodPayload,
    "listing_transfer_to_confirm": ListingTransferPayload,
    "listing_auction_created": ListingAuctionPayload,
    "transfer_step_due": TransferStepPayload,
    "transfer_step_reminder": TransferStepPayload,
    "transfer_step_overdue": TransferStepPayload,
    "transfer_notice_uploaded": TransferNoticePayload,
    "transfer_notice_rejected": TransferNoticePayload,
    "sale_completed": SaleEndedPayload,
    "sale_unwound": SaleEndedPayload,
    "invoice_details_needed": InvoiceDetailsNeededPayload,
    "invoice_issued": InvoiceIssuedPayload,
    "agreed_disposal_proposed": AgreementPayload,
    "agreed_disposal_objected": AgreementPayload,
    "agreed_disposal_withdrawn": AgreementPayload,
    "agreed_disposal_completed": AgreementPayload,
    "agreed_disposal_payouts_owed": AgreementPayload,
    "agreed_disposal_offered": AgreementPayload,
    "agreed_disposal_accepted": AgreementPayload,
    "agreed_disposal_declined": AgreementPayload,
    "agreed_disposal_lapsed": AgreementPayload,
    "test": ProbePayload,
}
assert set(PAYLOADS) == {*endpoints.EVENTS, "test"}, "an event without its payload type"


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every json-format webhook request."""

    version: Literal["2026-12-01"]  # webhooks.VERSION
    # The delivery's idempotency key (also the Idempotency-Key header): one per endpoint
    # and event, the same on every retry. A receiver that has seen it drops the request.
    id: str
    event: str
    notification_id: int  # the event's id: the same for every endpoint and channel
    # The stream `sequence` counts in: "lot:{id}", "asset:{id}" (a monitoring flag),
    # "organisation" (anything else), "test".
    subject: str
    # 1, 2, 3 … per endpoint and subject, without gaps, in the order of the events; the
    # exchange sends a stream's events in this order (docs/webhooks.md). 0 for a test.
    sequence: int
    created_at: Instant  # when the event happened
    title: str  # for people: in the organisation's language
    text: str
    lot_reference: str | None = None
    payload: Payload


def _event_type(event: str, payload: type[Payload]) -> type[WebhookEvent]:
    name = "Webhook" + "".join(part.title() for part in event.split("_"))
    made = msgspec.defstruct(
        name,
        [("event", Literal[event]), ("payload", payload)],
        bases=(WebhookEvent,),
        frozen=True,
        kw_only=True,
        module=__name__,
    )
    assert issubclass(made, WebhookEvent)
    return made


# The body's type for each event, e.g. WebhookOutbid: msgspec.json.decode(body, type=…).
EVENT_TYPES: Final[dict[str, type[WebhookEvent]]] = {
    event: _event_type(event, payload) for event, payload in PAYLOADS.items()
}
assert VERSION == "2026-12-01", "WebhookEvent.version names the current version"


# --- the OpenAPI document's webhooks -------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with every `#/$defs/…` reference replaced by its definition: the
    webhooks' schemas stand alone in the document (Litestar owns components.schemas)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_schema(event: str) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses) of the body of `event`."""
    (schema,), defs = msgspec.json.schema_components(
        [EVENT_TYPES[event]], ref_template="#/$defs/{name}"
    )
    return dict(_inline(schema, defs))


_HEADERS: Final = (
    ("Idempotency-Key", "The body's `id`: the same on every retry of this delivery."),
    ("X-IPX-Event", "The event's name, as in the body."),
    ("X-IPX-Timestamp", "Unix seconds of this attempt, signed with the body."),
    (
        "X-IPX-Signature",
        "`sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under the endpoint's "
        "secret; refuse a request whose timestamp is more than 5 minutes off.",
    ),
)


def webhooks_section() -> dict[str, PathItem | Reference]:
    """OpenAPI 3.1 `webhooks`: one POST per event, its body's schema, the version."""
    headers: list[Parameter] = [
        Parameter(
            name=name,
            param_in="header",
            required=True,
            description=text,
            schema=Schema(type=OpenAPIType.STRING),
        )
        for name, text in _HEADERS
    ]
    section: dict[str, PathItem | Reference] = {}
    for event, payload in PAYLOADS.items():
        body = EVENT_TYPES[event]
        section[event] = PathItem(
            post=Operation(
                tags=["webhooks"],
                summary=f"{event} (version {VERSION})",
                description=(
                    f"{(payload.__doc__ or '').strip()} Sent to the json-format endpoints "
                    f"that take `{event}`, as `{body.__name__}` (payload version {VERSION}). "
                    "Answer 2xx within 5 seconds; anything else is retried on the schedule "
                    "of docs/webhooks.md, and later events of the same subject wait for it."
                ),
                operation_id=f"webhook_{event}",
                parameters=list(headers),
                request_body=RequestBody(
                    required=True,
                    content={"application/json": OpenAPIMediaType(schema=json_schema(event))},  # type: ignore[arg-type]
                ),
                responses={
                    "200": OpenAPIResponse(
                        description="Received: any 2xx status. Nothing is read from the body."
                    )
                },
            )
        )
    return section
