"""Taking part in an auction: registration (报名) and bidder codes (docs/rules.md
§Registration and deposits).

An approved buyer or acquirer organisation (the BID permission) registers for the current
round of an announced or bidding lot, once per (lot, round, organisation). Refused: an
organisation barred from any of the lot's assets because it defaulted on it before (悔拍,
§After the close: 403 `barred_after_default`), a lot not open for registration (409
`registration_closed`).

Each registration gets
* an anonymous `bidder_code`, shown in the bid history instead of the buyer's name until
  the close (§Bidding): random, unique within the lot and round. A pre-emptive right holder
  (优先购买权人, §Lot terms) gets a code that starts with `P` and its rank, e.g. `P1K7QX`;
  nobody else's code starts with `P` and a digit, so every bidder sees who holds a
  priority;
* a `transfer_reference` (`BZJ` + 10 characters) the buyer writes on its bank transfer of
  the deposit, by which the operator confirms it (auctions/deposits.py);
* `deposit_fen`, the lot's deposit when it registered.

Concurrency: the unique key (lot_id, round, buyer_org_id) decides, not a pre-check. The
insert says ON CONFLICT DO NOTHING on it, so of two simultaneous registrations of one
organisation the second waits for the first's commit and then finds that row; both
answer the same registration. A clash of bidder code or transfer reference (another
organisation drew the same) fails only a savepoint, and a new code is drawn.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Final, Literal

import asyncpg
import msgspec

from market.accounts.models import Viewer
from market.accounts.permissions import BID, BIDDERS, refusal
from market.commands import UnitOfWork, command
from market.db import Conn, Queries, returned
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.settings import Settings

Q = Queries("registration")

DepositStatus = Literal["awaiting", "confirmed", "released", "applied", "forfeited"]
SaleStatus = Literal["awaiting_payment", "paid", "completed", "unwound", "defaulted"]
OPEN_STATUSES: Final = ("announced", "bidding")

# Codes a person reads off a screen or types into a bank transfer: no I/O/0/1.
ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
BIDDER_CODE_LENGTH: Final = 6  # 32^6 ≈ 10^9 codes: a clash within one lot is rare
TRANSFER_PREFIX: Final = "BZJ"  # 保证金
TRANSFER_BODY_LENGTH: Final = 10
_DRAWS: Final = 12  # clashes are retried with new draws; twelve in a row means a bug
_CLASH_CONSTRAINTS: Final = (
    "registrations_lot_id_round_bidder_code_key",
    "registrations_transfer_reference_key",
)
_MAX_REFERENCE: Final = 60
_MAX_ID: Final = 2**63 - 1  # bigint


class PayTo(msgspec.Struct, frozen=True, kw_only=True):
    """Where a deposit is transferred to: the exchange's deposit account (settings)."""

    account_name: str
    bank: str
    account_number: str


def deposit_account(settings: Settings) -> PayTo:
    return PayTo(
        account_name=settings.deposit_account_name,
        bank=settings.deposit_bank,
        account_number=settings.deposit_account_number,
    )


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """A registration as its own organisation (and the operator) sees it."""

    id: int
    lot_id: int
    lot_reference: str
    lot_title: str
    round: int
    bidder_code: str
    preemptive_rank: int | None
    deposit_fen: int
    transfer_reference: str
    deposit_status: DepositStatus
    confirmed_at: datetime | None
    settled_at: datetime | None
    created_at: datetime
    agreement_version: str | None = None  # the bidding agreement accepted (竞买协议)


class RegistrationOut(Registration, frozen=True, kw_only=True):
    """A registration as the API answers it: with the account its deposit goes to."""

    pay_to: PayTo


def with_pay_to(registration: Registration, settings: Settings) -> RegistrationOut:
    return RegistrationOut(**msgspec.structs.asdict(registration), pay_to=deposit_account(settings))


def takes_newcomers(lot: asyncpg.Record, at: datetime) -> bool:
    """Whether the lot's current round takes new registrations and deposits at `at`: an
    announced or bidding round; a listing's only until its period ends (docs/rules.md
    §Listing: the auction that follows is between the intents qualified in the period,
    nobody else), by the clock, however late the worker records the end. `lot` has the
    lot's status, paused_from, bidding_starts_at (a listing's period end) and terms' mode."""
    if lot["mode"] == "listing":
        in_period = lot["status"] == "announced" or lot["paused_from"] == "announced"
        return bool(in_period and at < lot["bidding_starts_at"])
    return lot["status"] in OPEN_STATUSES


def draw(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def bidder_code(preemptive_rank: int | None) -> str:
    """`P<rank>` + random for a pre-emptive holder; otherwise random, never `P<digit>…`.

    Ranks run 1…20 (market/lots/terms.py), so a priority code stays within the column's
    CHECK `^[A-Z0-9]{4,8}$`.
    """
    if preemptive_rank is not None:
        prefix = f"P{preemptive_rank}"
        return prefix + draw(max(BIDDER_CODE_LENGTH - len(prefix), 2))
    first = secrets.choice(ALPHABET.replace("P", ""))
    return first + draw(BIDDER_CODE_LENGTH - 1)


def transfer_reference() -> str:
    return TRANSFER_PREFIX + draw(TRANSFER_BODY_LENGTH)


def normalise_transfer_reference(text: str) -> str:
    """As the operator copies it from a bank statement: spaces dropped, upper case."""
    return "".join(text.split()).upper()


def check_reference(reference: str) -> None:
    """A lot reference worth looking up: a printable one of sane length (else 404, saying
    no more than that)."""
    if not reference or len(reference) > _MAX_REFERENCE or not reference.isprintable():
        raise NotFound()


async def load(conn: Conn, registration_id: int, buyer_org_id: int) -> Registration:
    """One registration of `buyer_org_id`; another organisation's is not found."""
    if not 0 < registration_id <= _MAX_ID:
        raise NotFound("no_such_registration")
    row = await conn.fetchrow(Q.registration_out, registration_id, buyer_org_id)
    if row is None:
        raise NotFound("no_such_registration")
    return msgspec.convert(dict(row), Registration)


class RegisterForLot(msgspec.Struct, frozen=True, kw_only=True):
    """The lot to register for, by its public reference; its current round is meant. The
    bidder accepts the bidding agreement in force by naming its version."""

    reference: str
    agreement_version: str | None = None


class Agreement(msgspec.Struct, frozen=True, kw_only=True):
    """A version of the bidding agreement (竞买协议), in both languages."""

    version: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    effective_at: datetime


async def agreement(conn: Conn, version: str) -> Agreement:
    row = await conn.fetchrow(Q.agreement, version)
    if row is None:
        raise NotFound("no_such_agreement")
    return msgspec.convert(dict(row), Agreement)


async def current_agreement(conn: Conn, at: datetime) -> Agreement:
    """The bidding agreement in force at `at` (the migrations seed the first version)."""
    return msgspec.convert(dict(returned(await conn.fetchrow(Q.current_agreement, at))), Agreement)


class Registered(msgspec.Struct, frozen=True, kw_only=True):
    registration: Registration
    created: bool  # False: the organisation had registered for this round already


@command(BID)
async def register_for_lot(uow: UnitOfWork, data: RegisterForLot) -> Registered:
    """Register the acting organisation for the lot's current round.

    A second registration of the same organisation answers the first (created=False);
    concurrent ones make one row (the unique key decides, see the module's docstring).
    """
    return await enrol(uow, data)


async def enrol(uow: UnitOfWork, data: RegisterForLot) -> Registered:
    """`register_for_lot`'s work, also an offeror's registration on a lot that takes
    licence offers (market/licensing/offers.py), under the caller's permission."""
    reference = data.reference
    check_reference(reference)
    conn, org_id = uow.conn, uow.actor.org
    lot = await conn.fetchrow(Q.lot_for_registration, reference)
    if lot is None:
        raise NotFound("no_such_lot")
    if not takes_newcomers(lot, uow.at):
        raise Conflict("registration_closed", reference=reference, status=lot["status"])
    barred = await conn.fetch(Q.barred_assets, lot["id"], org_id)
    if barred:
        raise Forbidden(
            "barred_after_default", reference=reference, asset_ids=[r["asset_id"] for r in barred]
        )
    existing = await conn.fetchval(Q.registration_by_key, lot["id"], lot["round"], org_id)
    if existing is not None:
        return Registered(registration=await load(conn, existing, org_id), created=False)
    # Each registration accepts the agreement in force, and records which version it was
    # (docs/rules.md §Registration and deposits).
    agreement = await current_agreement(conn, uow.at)
    if data.agreement_version is None:
        raise Invalid(
            "agreement_not_accepted", field="agreement_version", version=agreement.version
        )
    if data.agreement_version != agreement.version:
        raise Conflict(
            "agreement_outdated",
            field="agreement_version",
            version=data.agreement_version,
            current=agreement.version,
        )
    # No credit code matches nobody (NULL), never a holder listed with an empty one.
    credit_code = returned(await conn.fetchrow(Q.registrant, org_id))["credit_code"]
    code = (credit_code or "").strip().upper() or None
    rank = await conn.fetchval(Q.preemptive_rank, lot["id"], org_id, code)
    registration_id = await _insert(
        conn, uow.at, lot, org_id, uow.actor.user, rank, agreement.version
    )
    if registration_id is None:
        # A concurrent registration of the same organisation committed first.
        existing = returned(
            await conn.fetchrow(Q.registration_by_key, lot["id"], lot["round"], org_id)
        )["id"]
        return Registered(registration=await load(conn, existing, org_id), created=False)
    registration = await load(conn, registration_id, org_id)
    uow.audit(
        "registration.create",
        "registration",
        registration_id,
        after={
            "lot": reference,
            "round": registration.round,
            "bidder_code": registration.bidder_code,
            "preemptive_rank": registration.preemptive_rank,
            "deposit_fen": registration.deposit_fen,
            "transfer_reference": registration.transfer_reference,
            "agreement_version": agreement.version,
        },
    )
    return Registered(registration=registration, created=True)


async def _insert(
    conn: Conn,
    at: datetime,
    lot: asyncpg.Record,
    org_id: int,
    user_id: int,
    rank: int | None,
    agreement_version: str,
) -> int | None:
    """The new registration's id, or None if the organisation's row exists already."""
    for _ in range(_DRAWS):
        try:
            async with conn.transaction():  # a savepoint: a clash undoes only this attempt
                new_id: int | None = await conn.fetchval(
                    Q.insert_registration,
                    lot["id"],
                    lot["round"],
                    org_id,
                    user_id,
                    bidder_code(rank),
                    rank,
                    lot["deposit_fen"],
                    transfer_reference(),
                    at,
                    agreement_version,
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name in _CLASH_CONSTRAINTS:
                continue
            raise
        return new_id
    raise RuntimeError(f"no free bidder code or transfer reference after {_DRAWS} draws")


async def get_registration(
    pool: asyncpg.Pool, buyer_org_id: int, registration_id: int
) -> Registration:
    async with pool.acquire() as conn:
        return await load(conn, registration_id, buyer_org_id)


async def list_registrations(
    pool: asyncpg.Pool, buyer_org_id: int, limit: int = 200
) -> list[Registration]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.org_registrations, buyer_org_id, limit)
    return [msgspec.convert(dict(r), Registration) for r in rows]


async def registration_for_viewer(
    pool: asyncpg.Pool, org_id: int | None, org_kind: str | None, reference: str
) -> Registration | None:
    """The panel's registration: the organisation's for the lot's current round, or None
    (also for visitors and organisations that do not bid)."""
    if org_id is None or org_kind not in BIDDERS:
        return None
    check_reference(reference)
    async with pool.acquire() as conn:
        found = await conn.fetchval(Q.current_registration, reference, org_id)
        return None if found is None else await load(conn, found, org_id)


def registration_refusal(viewer: Viewer | None) -> str | None:
    """Why the lot page's registration panel offers a signed-in viewer no 报名 button: the
    code of the BID permission's refusal (market/accounts/permissions.py), or None."""
    if viewer is None:
        return None
    found = refusal(BID, viewer.org_kind, viewer.org_status, viewer.role)
    return None if found is None else found.code


async def registration_ids(
    conn: Conn, keys: list[tuple[int, int, int]]
) -> dict[tuple[int, int, int], int]:
    """(lot id, round, buyer organisation) → registration id, for every registration of
    the keys' lots and rounds: the asked-for keys that are registered and their lots' other
    registrants, whose first bids then find theirs cached. The caller checks the deposit
    under the lot's lock (the writer); a registration, once made, keeps its lot, round and
    buyer, so the answer may be cached."""
    rows = await conn.fetch(Q.registration_ids, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["lot_id"], r["round"], r["buyer_org_id"]): r["id"] for r in rows}


# --- my auctions --------------------------------------------------------------------------


class MyBid(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    amount_fen: int
    kind: str
    at: datetime


class MySale(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    price_fen: int
    fee_kind: str
    fee_fen: int
    balance_due_fen: int
    due_at: datetime
    payment_reference: str
    status: SaleStatus
    paid_at: datetime | None
    overdue: bool  # still unpaid past its deadline


class MyAuction(msgspec.Struct, frozen=True, kw_only=True):
    """One row of "我的竞拍": a registration with its lot, bids and sale."""

    registration: Registration
    lot_status: str
    lot_round: int
    auction_kind: str
    current_price_fen: int | None
    bidding_starts_at: datetime | None
    bidding_ends_at: datetime | None
    leading: bool
    bid_count: int
    highest_fen: int | None
    last_bid_at: datetime | None
    bids: list[MyBid]  # the latest few, newest first
    sale: MySale | None

    @property
    def payment_due(self) -> bool:
        return self.sale is not None and self.sale.status == "awaiting_payment"


_REGISTRATION_FIELDS: Final = frozenset(Registration.__struct_fields__)


async def my_auctions(
    pool: asyncpg.Pool, buyer_org_id: int, now: datetime, *, limit: int = 200, bids: int = 5
) -> list[MyAuction]:
    """The organisation's registrations, newest first; only its own (tenancy in the SQL)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(Q.my_auctions, buyer_org_id, limit)
        recent = await conn.fetch(Q.my_bids, buyer_org_id, [r["id"] for r in rows], bids)
    by_registration: dict[int, list[MyBid]] = {}
    for b in recent:
        by_registration.setdefault(b["registration_id"], []).append(
            MyBid(seq=b["seq"], amount_fen=b["amount_fen"], kind=b["kind"], at=b["at"])
        )
    out = []
    for r in rows:
        sale = None
        if r["sale_id"] is not None:
            sale = MySale(
                id=r["sale_id"],
                price_fen=r["price_fen"],
                fee_kind=r["fee_kind"],
                fee_fen=r["fee_fen"],
                balance_due_fen=r["balance_due_fen"],
                due_at=r["due_at"],
                payment_reference=r["payment_reference"],
                status=r["sale_status"],
                paid_at=r["paid_at"],
                overdue=r["sale_status"] == "awaiting_payment" and r["due_at"] < now,
            )
        out.append(
            MyAuction(
                registration=msgspec.convert({k: r[k] for k in _REGISTRATION_FIELDS}, Registration),
                lot_status=r["lot_status"],
                lot_round=r["lot_round"],
                auction_kind=r["auction_kind"],
                current_price_fen=r["current_price_fen"],
                bidding_starts_at=r["bidding_starts_at"],
                bidding_ends_at=r["bidding_ends_at"],
                leading=bool(r["leading"]),
                bid_count=r["bid_count"],
                highest_fen=r["highest_fen"],
                last_bid_at=r["last_bid_at"],
                bids=by_registration.get(r["id"], []),
                sale=sale,
            )
        )
    return out
