"""Disposal by agreement (docs/rules.md §Acquisition and pledge-to-equity): the one module
of both ways a case ends without a sale to the market.

* acquisition at an agreed price (协议折价 / 收储, Civil Code art. 436): the bank takes the
  case's assets itself at a price not below the market's reference — the last failed
  auction's start price or 70 % of the valuation, whichever is higher (AgreementPolicy);
* pledge-to-equity (质权转股权): the bank converts all or part of its claim into equity of
  the borrower at the value an appraisal gives (valid and out of its own objection window
  as any appraisal, market/cases/valuation.py `appraisal_dates`).

An approved acquisition institution (an organisation of kind `acquirer`) may be named as
the taker of an acquisition instead of the bank. The guards and the pools' window are the
bank's own; the case must have a lot whose round failed, and the taker accepts (or
declines) by a deadline (`AgreementPolicy.acceptance_days`, never after the window). Out of
the window, accepted and not objected to, the attempt becomes a SALE of that lot to the
taker at the agreed price, in the lot's current round (the lot lifecycle's
`sell_by_agreement`; the one way a sale is recorded, auctions/closing.py `_record_sale`,
with a registration of the taker in the round that carries no deposit): the sale
confirmation, the payment of the balance (its `JK` reference), escrow and the transfer of
title follow as for any sale, and the price is routed through the waterfall as the sale's
cash receipt when the transfer completes — not as a debt of the bank. Not accepted by then
it lapses; a lot that moved on meanwhile (relisted) lapses it too.

Both need the pledgor's written consent (a document of the case, `pledgor_consent`); both
tell every organisation that bore the loss on the loan and wait out their objection window
(10 days from the proposal, on the injected clock). A pool manager's objection with a
reason stops it; the bank may withdraw it; otherwise the timed sweep completes it.

Completing routes the agreed price (or the conversion value) through the waterfall as a
receipt (`acquisition:<id>`, `equity:<id>`; market/pools/services.py `route_receipt`) on
which no cash came in: its debit side is `receivable:agreement:<id>`, what the bank owes
the exchange, and the bank's own share is netted out of it (no payout to itself). The bank
pays what it owes to the exchange account with the settlement reference (`ZJ` + 10
characters) in the 附言; the exchange statement's import matches it
(market/acquisition/lines.py), posts Dr exchange:clearing, Cr the receivable, and only then
instructs the payouts to the pools, the parties and the pledgor — paid out and matched
like every payout. A debt of nothing (the bank the only payee) is settled at completion.

Locks, in this order everywhere: the case row (FOR UPDATE), then the attempt's row
(FOR UPDATE). A proposal holds the case row and the partial unique index
`agreed_disposals_one_pending` backs it: two proposals at once give one. An objection, a
withdrawal and the sweep each re-read the attempt's status under its lock: whichever comes
first decides it, the other finds it ended (409). `route_receipt` takes the same case lock
(already held) and is keyed by its source, so a sweep run twice or concurrently routes once.
The taker's acceptance takes the same two locks: against the sweep, whichever comes first
decides (accepted, then sold; or lapsed, then the acceptance finds it ended). The sale to a
taker then locks the lot row (a third lock, after the other two; nothing that holds a lot
lock waits for a case's attempt), and the sale's UNIQUE (lot_id, round) backs it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from msgspec import Meta

from auctions.closing import _record_sale
from auctions.deposits import CLEARING
from auctions.registration import ALPHABET, bidder_code, draw, transfer_reference
from market import ledger
from market.accounts.permissions import (
    OBJECT_TO_AGREEMENT,
    PROPOSE_AGREEMENT,
    READ_AGREEMENTS,
    TAKE_AGREEMENT,
)
from market.acquisition.policy import POLICY, AgreementPolicy
from market.cases.policy import CHINA, DEFAULT_VALUATION_POLICY, ValuationPolicy
from market.cases.services import china_today
from market.cases.valuation import appraisal_dates
from market.clock import FrozenClock
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, NotFound
from market.exchange_account.proof import StatementProof
from market.lots import services as lots
from market.lots.terms import TermsPolicy
from market.money import MAX_FEN, format_cny
from market.pools import services as pools

Q = Queries("acquisition")

Kind = Literal["acquisition", "equity"]
Status = Literal["pending", "objected", "withdrawn", "completed", "declined", "lapsed"]
CONSENT_ITEM: Final = "pledgor_consent"
APPRAISAL_ITEM: Final = "equity_appraisal"
SETTLEMENT_PREFIX: Final = "ZJ"  # 折价: what the bank writes on the transfer of its debt
SETTLEMENT_BODY: Final = 10


def receivable(disposal_id: int, bank_org_id: int) -> ledger.Account:
    """What the bank owes the exchange for the other payees of an agreed disposal."""
    return ledger.Account(
        f"receivable:agreement:{disposal_id}",
        "asset",
        "acquisition.account.receivable",
        owner_org_id=bank_org_id,
    )


def settlement_reference(text: str) -> str | None:
    """`text` if it is a settlement reference (`ZJ` + 10 characters of the alphabet)."""
    body = text[len(SETTLEMENT_PREFIX) :]
    if (
        text.startswith(SETTLEMENT_PREFIX)
        and len(body) == SETTLEMENT_BODY
        and all(c in ALPHABET for c in body)
    ):
        return text
    return None


# --- inputs and outputs -----------------------------------------------------------------

Fen = Annotated[int, Meta(gt=0, le=MAX_FEN)]
Reason = Annotated[str, Meta(min_length=1, max_length=2000)]


class AcquisitionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bank takes the case's assets itself at `amount_fen`, or names an approved
    acquisition institution (`taker_org_id`) that buys them at that price."""

    amount_fen: Fen
    consent_document_id: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    taker_org_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None


class EquityIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bank converts `amount_fen` of its claim into equity of the borrower, at the
    value the appraisal report (a case document) gives the shares it receives."""

    amount_fen: Fen
    consent_document_id: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    appraisal_document_id: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    appraiser: Annotated[str, Meta(min_length=1, max_length=200)]
    report_no: Annotated[str, Meta(min_length=1, max_length=100)]
    appraised_fen: Fen
    valued_on: date
    equity_percent: Decimal  # of the borrower's registered capital, above 0 and at most 100
    equity_shares: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None


class ObjectionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class Propose(msgspec.Struct, frozen=True, kw_only=True):
    case_id: int
    offer: AcquisitionIn | EquityIn
    policy: AgreementPolicy = POLICY
    valuation_policy: ValuationPolicy = DEFAULT_VALUATION_POLICY


class Object(msgspec.Struct, frozen=True, kw_only=True):
    disposal_id: int
    reason: str
    policy: AgreementPolicy = POLICY


class Withdraw(msgspec.Struct, frozen=True, kw_only=True):
    disposal_id: int


class AnswerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The named acquisition institution's answer to the bank's proposal."""

    decision: Literal["accept", "decline"]


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    disposal_id: int
    decision: Literal["accept", "decline"]


class Equity(msgspec.Struct, frozen=True, kw_only=True):
    """Equity the case's bank holds in the borrower."""

    disposal_id: int
    holder_org_id: int
    holder_name: str
    shares: int | None
    percent: Decimal
    value_fen: int
    acquired_on: date


class Agreement(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    case_id: int
    case_reference: str
    kind: Kind
    taker_org_id: int
    taker_name: str
    amount_fen: int
    floor_fen: int
    status: Status
    proposed_at: datetime
    objection_until: datetime
    ended_at: datetime | None
    objection_reason: str | None
    appraised_fen: int | None
    valued_on: date | None
    equity_percent: Decimal | None
    equity_shares: int | None
    receipt_id: int | None
    owed_fen: int | None  # what the bank owes the other payees, once completed
    settlement_reference: str | None  # what the bank writes on its transfer
    settled_at: datetime | None
    # an acquisition institution as the taker: its deadline, its acceptance, the lot it
    # buys and, once completed, the sale
    accept_by: datetime | None
    accepted_at: datetime | None
    lot_id: int | None
    sale_id: int | None
    bank_org_id: int

    @property
    def by_taker(self) -> bool:
        """An acquisition institution takes the assets, not the bank."""
        return self.taker_org_id != self.bank_org_id


def agreement_out(row: asyncpg.Record) -> Agreement:
    return msgspec.convert({k: row[k] for k in Agreement.__struct_fields__}, Agreement)


async def equity_held(conn: Conn, case_id: int) -> list[Equity]:
    return [
        msgspec.convert(
            {k: r[k] for k in Equity.__struct_fields__ if k != "holder_org_id"}
            | {"holder_org_id": r["holder_org_id"]},
            Equity,
        )
        for r in await conn.fetch(Q.equity_of_case, case_id)
    ]


class Taker(msgspec.Struct, frozen=True, kw_only=True):
    """An approved acquisition institution the bank may name as the taker."""

    org_id: int
    name: str


class CaseAgreements(msgspec.Struct, frozen=True, kw_only=True):
    """A case's attempts (oldest first), the equity its bank holds, and the acquisition
    institutions it may name as the taker of an acquisition."""

    case_id: int
    case_reference: str
    case_open: bool
    agreements: list[Agreement]
    equity: list[Equity]
    takers: list[Taker]


async def of_case(conn: Conn, bank_org_id: int, case_id: int) -> CaseAgreements:
    """The bank's own case's attempts and equity; another bank's case is 404."""
    case = await conn.fetchrow(Q.case_owned, case_id, bank_org_id)
    if case is None:
        raise NotFound("no_such_case")
    return CaseAgreements(
        case_id=case_id,
        case_reference=case["reference"],
        case_open=case["status"] == "open",
        agreements=[agreement_out(r) for r in await conn.fetch(Q.of_case, case_id)],
        equity=await equity_held(conn, case_id),
        takers=[
            Taker(org_id=r["id"], name=r["name"]) for r in await conn.fetch(Q.approved_acquirers)
        ],
    )


# --- notifications ----------------------------------------------------------------------


async def _tell(
    uow: UnitOfWork, event: str, row: Any, case_ref: str, org_ids: list[int], **extra: Any
) -> None:
    """`event` about the attempt `row` to each organisation, once each."""
    for org_id in org_ids:
        path = (
            f"/bank/cases/{row['case_id']}/agreed-disposals"
            if org_id == row["bank_org_id"]
            else "/agreed-disposals"
        )
        payload = {
            "disposal_id": row["id"],
            "case_reference": case_ref,
            "kind": row["kind"],
            "amount_fen": row["amount_fen"],
            "path": path,
            **extra,
        }
        await uow.emit(
            Q.insert_outbox, event, org_id, payload, f"{event}:{row['id']}:{org_id}", uow.at
        )


async def _bearers(conn: Conn, case: Any) -> list[int]:
    return [
        r["org_id"] for r in await conn.fetch(Q.bearer_orgs, case["loan_id"], case["bank_org_id"])
    ]


async def visible(conn: Conn, org_id: int, disposal_id: int) -> asyncpg.Record:
    """An attempt its bank, its taker or an organisation that bore the loss may see;
    anyone else's answer is 404."""
    row = await conn.fetchrow(Q.disposal, disposal_id)
    if row is None:
        raise NotFound("no_such_agreed_disposal")
    if org_id in (row["bank_org_id"], row["taker_org_id"]):
        return row
    case = returned(await conn.fetchrow(Q.case_of, row["case_id"]))
    if org_id not in await _bearers(conn, case):
        raise NotFound("no_such_agreed_disposal")
    return row


@command(READ_AGREEMENTS)
async def status_of(uow: UnitOfWork, disposal_id: int) -> Agreement:
    """One attempt, as its bank, taker or a loss-bearing organisation sees it."""
    return agreement_out(await visible(uow.conn, uow.actor.org, disposal_id))


async def listed(conn: Conn, org_id: int, org_kind: str, limit: int = 200) -> list[Agreement]:
    """The attempts an organisation sees, newest first: a bank's own, those a pool bore the
    loss of, those an acquirer takes; the operator sees every one."""
    if org_kind == "operator":
        rows = await conn.fetch(Q.all_disposals, limit)
    elif org_kind == "bank":
        rows = await conn.fetch(Q.for_bank, org_id, limit)
    elif org_kind == "pool":
        rows = await conn.fetch(Q.for_pool, org_id, limit)
    else:
        rows = await conn.fetch(Q.for_taker, org_id, limit)
    return [agreement_out(r) for r in rows]


# --- proposing --------------------------------------------------------------------------


async def _document(conn: Conn, case_id: int, document_id: int, item: str, field: str) -> None:
    """A document of this case for `item`, not removed; another case's is refused."""
    doc = await conn.fetchrow(Q.case_document, document_id)
    if doc is None or doc["case_id"] != case_id or doc["removed_at"] is not None:
        raise Invalid("agreement_document_not_of_case", field=field, document_id=document_id)
    if doc["item"] != item:
        raise Invalid("agreement_document_wrong_item", field=field, item=item)


async def price_floor(
    conn: Conn, case_id: int, policy: AgreementPolicy, today: date
) -> tuple[int, str, int]:
    """The lowest agreed price (docs/rules.md §Acquisition and pledge-to-equity): the last
    failed auction's start price or the policy's share of the valuation, whichever is
    higher; with the rule that sets it and the amount it read."""
    valuation = await conn.fetchrow(Q.current_valuation, case_id)
    if valuation is None:
        raise Invalid("agreement_needs_valuation", field="amount_fen")
    if valuation["valid_until"] < today:
        # An expired valuation no longer tells the market price (§Disposal cases and
        # valuation: valid one year).
        raise Invalid(
            "agreement_valuation_expired", field="amount_fen", valid_until=valuation["valid_until"]
        )
    of_valuation = policy.floor_of_valuation(valuation["value_fen"])
    failed = await conn.fetchrow(Q.last_failed_start, case_id)
    if failed is not None and failed["start_price_fen"] >= of_valuation:
        return failed["start_price_fen"], "agreement_below_auction_start", failed["start_price_fen"]
    return of_valuation, "agreement_below_valuation_share", valuation["value_fen"]


async def _taker_lot(conn: Conn, case_id: int, taker_org_id: int) -> asyncpg.Record:
    """The failed lot an acquisition institution named as the taker buys; the taker must be
    an approved organisation of kind `acquirer` (refused naming `taker_org_id`)."""
    org = await conn.fetchrow(Q.org_kind, taker_org_id)
    if org is None or org["kind"] != "acquirer":
        raise Invalid("agreement_taker_not_acquirer", field="taker_org_id")
    if org["status"] != "approved":
        raise Invalid("agreement_taker_not_approved", field="taker_org_id", status=org["status"])
    failed = await conn.fetch(Q.failed_lots, case_id)
    if len(failed) != 1:
        # The sale needs one lot whose round failed to sell in (market/lots/lifecycle.py
        # `sell_by_agreement`): none, or several to choose between.
        raise Conflict("agreement_taker_needs_failed_lot", field="taker_org_id", lots=len(failed))
    if failed[0]["sold_before"]:
        # The round's sale was voided (悔拍): one round, one sale.
        raise Conflict(
            "agreement_taker_round_sold_before", field="taker_org_id", lot=failed[0]["reference"]
        )
    return failed[0]


@command(PROPOSE_AGREEMENT)
async def propose(uow: UnitOfWork, data: Propose) -> Agreement:
    """The bank proposes to take the case's assets at an agreed price, or to convert its
    claim into equity (module docstring); the loss-bearing organisations are told.

    Locks the case row (FOR UPDATE) before it reads what the guards need; one pending
    attempt per case (`agreed_disposals_one_pending`): of two proposals at once the second
    waits for the case lock, then finds the first (409 `agreement_pending`)."""
    conn, bank, offer = uow.conn, uow.actor.org, data.offer
    case = await conn.fetchrow(Q.case_locked, data.case_id, bank)
    if case is None:
        raise NotFound("no_such_case")
    if await conn.fetchrow(Q.pending_of_case, case["id"]) is not None:
        raise Conflict("agreement_pending", field="case_id")
    lot = await conn.fetchrow(Q.live_lot, case["id"])
    if lot is not None:
        raise Conflict("agreement_lot_on_market", field="case_id", lot=lot["reference"])
    await _document(
        conn, case["id"], offer.consent_document_id, CONSENT_ITEM, "consent_document_id"
    )
    equity: dict[str, Any] = dict.fromkeys(
        (
            "appraisal_document_id",
            "appraiser",
            "report_no",
            "appraised_fen",
            "valued_on",
            "valid_until",
            "equity_shares",
            "equity_percent",
        ),
    )
    objection_until = uow.at + data.policy.objection_window
    taker, taker_lot = bank, None
    if isinstance(offer, AcquisitionIn):
        kind: Kind = "acquisition"
        if offer.taker_org_id is not None and offer.taker_org_id != bank:
            taker_lot = await _taker_lot(conn, case["id"], offer.taker_org_id)
            taker = offer.taker_org_id
        floor, code, basis = await price_floor(conn, case["id"], data.policy, china_today(uow.at))
        if offer.amount_fen < floor:
            raise Invalid(code, field="amount_fen", floor_fen=floor, basis_fen=basis)
    else:
        kind = "equity"
        if not (offer.equity_percent.is_finite() and 0 < offer.equity_percent <= 100):
            raise Invalid("equity_percent_out_of_range", field="equity_percent")
        if offer.equity_percent != round(offer.equity_percent, 4):
            raise Invalid("equity_percent_too_precise", field="equity_percent", places=4)
        dates = appraisal_dates(offer.valued_on, china_today(uow.at), data.valuation_policy)
        await _document(
            conn, case["id"], offer.appraisal_document_id, APPRAISAL_ITEM, "appraisal_document_id"
        )
        if offer.amount_fen > offer.appraised_fen:
            raise Invalid(
                "equity_above_appraisal", field="amount_fen", appraised_fen=offer.appraised_fen
            )
        state = await pools.case_state(conn, case)
        owed = state.claim_costs_fen + state.claim_interest_fen + state.claim_principal_fen
        owed += sum(c.outstanding_fen for c in state.costs)
        if offer.amount_fen > owed:
            raise Invalid("equity_above_claim", field="amount_fen", claim_fen=owed)
        floor = offer.amount_fen
        equity = {
            "appraisal_document_id": offer.appraisal_document_id,
            "appraiser": offer.appraiser.strip(),
            "report_no": offer.report_no.strip(),
            "appraised_fen": offer.appraised_fen,
            "valued_on": offer.valued_on,
            "valid_until": dates.valid_until,
            "equity_shares": offer.equity_shares,
            "equity_percent": offer.equity_percent,
        }
        # The appraisal's own objection window (异议期, its last day in China included)
        # runs inside the pools' window, or the attempt waits for it too.
        appraisal_ends = datetime.combine(dates.objection_until + timedelta(days=1), time(), CHINA)
        objection_until = max(objection_until, appraisal_ends)
    accept_by = (
        None if taker_lot is None else min(uow.at + data.policy.acceptance_window, objection_until)
    )
    row = await conn.fetchrow(
        Q.insert_disposal,
        case["id"],
        bank,
        kind,
        taker,
        offer.amount_fen,
        floor,
        offer.consent_document_id,
        equity["appraisal_document_id"],
        equity["appraiser"],
        equity["report_no"],
        equity["appraised_fen"],
        equity["valued_on"],
        equity["valid_until"],
        equity["equity_shares"],
        equity["equity_percent"],
        objection_until,
        uow.actor.user,
        uow.at,
        taker_lot and taker_lot["id"],
        taker_lot and taker_lot["round"],
        accept_by,
    )
    if row is None:  # the unique index: another attempt is pending
        raise Conflict("agreement_pending", field="case_id")
    if taker_lot is not None and accept_by is not None:
        await _tell(
            uow,
            "agreed_disposal_offered",
            row,
            case["reference"],
            [taker],
            accept_by=accept_by.isoformat(),
            objection_until=objection_until.isoformat(),
        )
    await _tell(
        uow,
        "agreed_disposal_proposed",
        row,
        case["reference"],
        await _bearers(conn, case),
        objection_until=objection_until.isoformat(),
    )
    uow.audit(
        f"agreement.propose_{kind}",
        "agreed_disposal",
        row["id"],
        after={
            "case_id": case["id"],
            "amount_fen": offer.amount_fen,
            "floor_fen": floor,
            "consent_document_id": offer.consent_document_id,
            "objection_until": objection_until.isoformat(),
            **{k: str(v) for k, v in equity.items() if v is not None},
            **(
                {"taker_org_id": taker, "lot_id": taker_lot["id"], "accept_by": str(accept_by)}
                if taker_lot is not None
                else {}
            ),
        },
    )
    return agreement_out(returned(await conn.fetchrow(Q.disposal, row["id"])))


# --- objection, withdrawal --------------------------------------------------------------


async def _locked(uow: UnitOfWork, disposal_id: int) -> tuple[asyncpg.Record, asyncpg.Record]:
    """(case, attempt) locked in that order."""
    found = await uow.conn.fetchrow(Q.disposal, disposal_id)
    if found is None:
        raise NotFound("no_such_agreed_disposal")
    case = returned(await uow.conn.fetchrow(Q.case_any_locked, found["case_id"]))
    return case, returned(await uow.conn.fetchrow(Q.disposal_locked, disposal_id))


def _pending(row: asyncpg.Record) -> None:
    if row["status"] != "pending":
        raise Conflict("agreement_ended", field="disposal_id", status=row["status"])


@command(OBJECT_TO_AGREEMENT)
async def object_to(uow: UnitOfWork, data: Object) -> Agreement:
    """A pool manager whose pool bore the loss objects, with a reason, within the window:
    the attempt stops and nothing is routed. Locks the case, then the attempt (module
    docstring): an objection racing the completing sweep finds it completed (409), or the
    sweep finds it objected."""
    reason = " ".join(data.reason.split())
    if not reason:
        raise Invalid("objection_reason_missing", field="reason")
    if len(reason) > data.policy.reason_max_chars:
        raise Invalid("objection_reason_too_long", field="reason", max=data.policy.reason_max_chars)
    case, row = await _locked(uow, data.disposal_id)
    if uow.actor.org not in await _bearers(uow.conn, case):
        raise NotFound("no_such_agreed_disposal")
    _pending(row)
    if uow.at >= row["objection_until"]:
        raise Invalid(
            "objection_window_closed",
            field="reason",
            objection_until=row["objection_until"],
        )
    row = returned(
        await uow.conn.fetchrow(
            Q.objected, row["id"], uow.at, uow.actor.org, uow.actor.user, reason
        )
    )
    await _tell(
        uow, "agreed_disposal_objected", row, case["reference"], [row["bank_org_id"]], reason=reason
    )
    uow.audit(
        "agreement.object",
        "agreed_disposal",
        row["id"],
        chain_org_id=row["bank_org_id"],
        after={"reason": reason, "objected_org_id": uow.actor.org},
    )
    return agreement_out(returned(await uow.conn.fetchrow(Q.disposal, row["id"])))


@command(PROPOSE_AGREEMENT)
async def withdraw(uow: UnitOfWork, data: Withdraw) -> Agreement:
    """The bank withdraws its pending attempt. Same locks as the objection."""
    case, row = await _locked(uow, data.disposal_id)
    if row["bank_org_id"] != uow.actor.org:
        raise NotFound("no_such_agreed_disposal")
    _pending(row)
    row = returned(await uow.conn.fetchrow(Q.withdrawn, row["id"], uow.at))
    await _tell(
        uow, "agreed_disposal_withdrawn", row, case["reference"], await _bearers(uow.conn, case)
    )
    uow.audit("agreement.withdraw", "agreed_disposal", row["id"])
    return agreement_out(returned(await uow.conn.fetchrow(Q.disposal, row["id"])))


@command(TAKE_AGREEMENT)
async def answer(uow: UnitOfWork, data: Answer) -> Agreement:
    """The acquisition institution named as the taker accepts or declines, by its deadline
    (`accept_by`; 422 `agreement_acceptance_closed` naming `decision` after). Another
    organisation's answer is 404. Same locks as the objection (module docstring): against
    the completing sweep, whichever takes the case lock first decides. Accepting twice
    answers the first; declining after accepting is refused (409)."""
    case, row = await _locked(uow, data.disposal_id)
    if row["taker_org_id"] != uow.actor.org or row["taker_org_id"] == row["bank_org_id"]:
        raise NotFound("no_such_agreed_disposal")
    if row["status"] != "pending":
        raise Conflict("agreement_ended", field="decision", status=row["status"])
    if row["accepted_at"] is not None:
        if data.decision == "accept":
            return agreement_out(returned(await uow.conn.fetchrow(Q.disposal, row["id"])))
        raise Conflict("agreement_accepted_already", field="decision")
    if uow.at >= row["accept_by"]:
        raise Invalid("agreement_acceptance_closed", field="decision", accept_by=row["accept_by"])
    if data.decision == "accept":
        row = returned(await uow.conn.fetchrow(Q.accepted, row["id"], uow.at, uow.actor.user))
        await _tell(uow, "agreed_disposal_accepted", row, case["reference"], [row["bank_org_id"]])
    else:
        row = returned(await uow.conn.fetchrow(Q.ended_as, row["id"], "declined", uow.at))
        told = [row["bank_org_id"], *await _bearers(uow.conn, case)]
        await _tell(uow, "agreed_disposal_declined", row, case["reference"], told)
    uow.audit(
        f"agreement.{data.decision}",
        "agreed_disposal",
        row["id"],
        chain_org_id=row["bank_org_id"],
        after={"taker_org_id": uow.actor.org},
    )
    return agreement_out(returned(await uow.conn.fetchrow(Q.disposal, row["id"])))


# --- completion -------------------------------------------------------------------------


async def _new_reference(conn: Conn) -> str:
    while True:
        ref = SETTLEMENT_PREFIX + draw(SETTLEMENT_BODY)
        if await conn.fetchrow(Q.settlement_locked, ref) is None:
            return ref


async def _complete(uow: UnitOfWork, case: asyncpg.Record, row: asyncpg.Record) -> None:
    """Route the agreed amount as a receipt the bank owes (module docstring); record the
    equity of a conversion; tell the bank what it owes and the bearers it completed."""
    conn, bank = uow.conn, row["bank_org_id"]
    receipt = await pools.route_receipt(
        uow,
        pools.RouteReceipt(
            case_id=row["case_id"],
            kind=row["kind"],
            source=f"{row['kind']}:{row['id']}",
            amount_fen=row["amount_fen"],
            from_account=receivable(row["id"], bank),
            owed_by_org_id=bank,
        ),
    )
    owed = await ledger.balance(conn, receivable(row["id"], bank).code)
    reference = await _new_reference(conn)
    done = returned(
        await conn.fetchrow(Q.completed, row["id"], uow.at, receipt.id, owed, reference)
    )
    if row["kind"] == "equity":
        await conn.execute(
            Q.insert_equity,
            row["id"],
            row["case_id"],
            bank,
            row["equity_shares"],
            row["equity_percent"],
            row["amount_fen"],
            china_today(uow.at),
        )
    bearers = await _bearers(conn, case)
    await _tell(uow, "agreed_disposal_completed", done, case["reference"], [bank, *bearers])
    if owed:
        await _tell(
            uow,
            "agreed_disposal_payouts_owed",
            done,
            case["reference"],
            [bank],
            owed_fen=owed,
            settlement_reference=reference,
        )
    else:
        await pools.instruct_payouts(uow, receipt.id)
    uow.audit(
        "agreement.complete",
        "agreed_disposal",
        row["id"],
        chain_org_id=bank,
        after={"receipt_id": receipt.id, "owed_fen": owed, "settlement_reference": reference},
    )


async def _taker_registration(uow: UnitOfWork, row: asyncpg.Record) -> asyncpg.Record:
    """The taker's registration in the lot's round (the sale's registration): its own if it
    registered to bid, else one without a deposit."""
    conn, lot_id, rnd, taker = uow.conn, row["lot_id"], row["lot_round"], row["taker_org_id"]
    found = await conn.fetchrow(Q.registration_of, lot_id, rnd, taker)
    while found is None:
        try:
            async with conn.transaction():  # a clash of drawn codes: draw again
                await conn.fetchval(
                    Q.taker_registration,
                    lot_id,
                    rnd,
                    taker,
                    row["accepted_by"],
                    bidder_code(None),
                    transfer_reference(),
                    uow.at,
                )
        except asyncpg.UniqueViolationError:
            continue
        found = await conn.fetchrow(Q.registration_of, lot_id, rnd, taker)
    return found


async def _sell_to_taker(
    uow: UnitOfWork, case: asyncpg.Record, row: asyncpg.Record, terms: TermsPolicy
) -> bool:
    """Out of the window: accepted, the failed lot is sold to the taker at the agreed price
    (module docstring), True; not accepted, or the lot moved on, the attempt lapses."""
    conn, bank = uow.conn, row["bank_org_id"]
    lot = returned(await conn.fetchrow(lots.Q.lock_lot_any_bank, row["lot_id"]))
    moved_on = lot["status"] != "failed" or lot["round"] != row["lot_round"]
    if row["accepted_at"] is None or moved_on:
        done = returned(await conn.fetchrow(Q.ended_as, row["id"], "lapsed", uow.at))
        told = [bank, row["taker_org_id"], *await _bearers(conn, case)]
        await _tell(
            uow,
            "agreed_disposal_lapsed",
            done,
            case["reference"],
            told,
            accepted=row["accepted_at"] is not None,
        )
        uow.audit(
            "agreement.lapse",
            "agreed_disposal",
            row["id"],
            chain_org_id=bank,
            after={"accepted": row["accepted_at"] is not None, "lot_moved_on": moved_on},
        )
        return False
    winner = await _taker_registration(uow, row)
    sale = await _record_sale(uow, uow.at, lot, winner, row["amount_fen"])
    await lots.sell_by_agreement(uow, uow.at, terms, lot["id"])
    done = returned(await conn.fetchrow(Q.sold_to_taker, row["id"], uow.at, sale.id))
    told = [bank, row["taker_org_id"], *await _bearers(conn, case)]
    await _tell(
        uow,
        "agreed_disposal_completed",
        done,
        case["reference"],
        told,
        sale_id=sale.id,
        payment_reference=sale.payment_reference,
    )
    uow.audit(
        "agreement.complete",
        "agreed_disposal",
        row["id"],
        chain_org_id=bank,
        after={"sale_id": sale.id, "lot_id": lot["id"], "price_fen": row["amount_fen"]},
    )
    return True


class DueAgreements(msgspec.Struct, frozen=True, kw_only=True):
    batch: int = 200
    terms: TermsPolicy = msgspec.field(default_factory=TermsPolicy)


@command(None)
async def complete_due(uow: UnitOfWork, data: DueAgreements) -> list[int]:
    """Complete every pending attempt whose objection window has passed (one batch): each
    case row locked, then the attempt re-read under its lock, so an objection, a
    withdrawal or a taker's answer that committed first wins; a second sweep finds nothing
    pending. An acquisition institution's attempt becomes a sale, or lapses."""
    completed: list[int] = []
    for r in await uow.conn.fetch(Q.due, uow.at, data.batch):
        case = returned(await uow.conn.fetchrow(Q.case_any_locked, r["case_id"]))
        row = returned(await uow.conn.fetchrow(Q.disposal_locked, r["id"]))
        if row["status"] != "pending" or row["objection_until"] > uow.at:
            continue
        if row["taker_org_id"] != row["bank_org_id"]:
            if not await _sell_to_taker(uow, case, row, data.terms):
                continue  # lapsed
        else:
            await _complete(uow, case, row)
        completed.append(row["id"])
    return completed


async def sweep(pool: asyncpg.Pool, at: datetime, **kw: Any) -> list[int]:
    """The worker's sweep at `at` (the injected clock)."""
    ctx = Context(pool=pool, clock=FrozenClock(at), redis=kw.get("redis"))
    data = DueAgreements(terms=kw.get("terms") or TermsPolicy())
    return await run(complete_due, data, ctx=ctx, actor=SYSTEM)


# --- the bank's settlement --------------------------------------------------------------


async def settle(
    uow: UnitOfWork, row: asyncpg.Record, amount_fen: int, proof: StatementProof
) -> str:
    """The bank's transfer of what it owes reached the exchange account (`row` locked by
    the caller, its amount checked): Dr exchange:clearing, Cr the receivable, once (keyed
    by the attempt); then the payouts it owed are instructed."""
    await uow.post(
        source_kind="agreement_settled",
        source_id=row["id"],
        legs=[
            ledger.debit(CLEARING, amount_fen),
            ledger.credit(receivable(row["id"], row["bank_org_id"]), amount_fen),
        ],
        memo=f"折价清偿 {row['settlement_reference']} {format_cny(amount_fen)}",
    )
    await uow.conn.execute(Q.settled, row["id"], uow.at, proof.line_id)
    await pools.instruct_payouts(uow, row["receipt_id"])
    uow.audit(
        "agreement.settle",
        "agreed_disposal",
        row["id"],
        chain_org_id=row["bank_org_id"],
        by=SYSTEM,
        after={"amount_fen": amount_fen, **proof.audited()},
    )
    return str(row["settlement_reference"])
