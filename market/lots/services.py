"""Lots: a bank's drafts and every transition of the lifecycle, each a command
(market/commands.py) whose transition row, round history, audit row and events commit
with it, or not at all.

Concurrency: every change of a lot first locks its row (SELECT … FOR UPDATE); the
lifecycle rules then run on the state as it is after any concurrent change committed, so
two clicks on "publish" give one publication and one 409, and the worker opening bidding
cannot interleave with a bank pausing the lot. Draft edits also check the version the
editor read, so a stale form cannot overwrite a newer save.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from market.accounts.permissions import MANAGE_LOTS
from market.cases.paths import Move, check_move
from market.cases.services import case_for_lot, china_today
from market.catalogue.text import ipc_keys, search_document
from market.clock import FrozenClock
from market.collateral import monitoring
from market.commands import SYSTEM, Act, Context, UnitOfWork, command, run
from market.db import Conn, Queries, returned
from market.errors import Conflict, Invalid, LineProblem, NotFound
from market.lots import lifecycle, terms
from market.lots.lifecycle import FIRST_ROUND, FIXED_PRICE_ROUND, RELIST_ROUND, LotState
from market.lots.models import (
    ActionInput,
    DraftLot,
    DueLots,
    FixedPriceInput,
    LotDraft,
    LotOut,
    OnLot,
    PauseInput,
    PauseLot,
    PublishInput,
    PublishLot,
    RelistInput,
    RelistLot,
    ResumeInput,
    ResumeLot,
    SellAtFixedPrice,
    UpdateLot,
    WithdrawInput,
    WithdrawLot,
)
from market.notify import events
from market.settings import Settings

Q = Queries("lots")


def policy_for(settings: Settings) -> terms.TermsPolicy:
    """The exchange's terms policy; the announcement period is a setting (docs/rules.md
    §Lot terms)."""
    return terms.TermsPolicy(
        announcement_period=timedelta(seconds=settings.announcement_period_seconds)
    )


def _out(row: asyncpg.Record, asset_ids: list[int]) -> LotOut:
    data = dict(row)
    data["terms"] = msgspec.convert(row["terms"], terms.Terms)
    data["asset_ids"] = asset_ids
    return msgspec.convert(
        {k: data[k] for k in LotOut.__struct_fields__}, LotOut, from_attributes=False
    )


def state_of(row: asyncpg.Record | Mapping[str, Any]) -> LotState:
    """The lifecycle's view of a lot: a row of `lots` (or a LotOut as a dict)."""
    return LotState(
        status=row["status"],
        round=row["round"],
        start_price_fen=row["start_price_fen"],
        first_start_fen=row["first_start_fen"],
        announced_at=row["announced_at"],
        bidding_starts_at=row["bidding_starts_at"],
        bidding_ends_at=row["bidding_ends_at"],
        paused_from=row["paused_from"],
        paused_at=row.get("paused_at"),
        resume_by=row["resume_by"],
        reason=row["status_reason"],
    )


async def _catalogue_fields(
    conn: Conn, bank_org_id: int, asset_ids: list[int], title: str, description: str
) -> tuple[str, list[str], list[str], str]:
    """(region, asset kinds, IPC prefix keys, search document) for the public catalogue."""
    rows = await conn.fetch(Q.catalogue_inputs, asset_ids, bank_org_id)
    codes = [c for r in rows for c in r["ipc_codes"]]
    region = next((r["region"] for r in rows if r["region"]), "")
    texts = [title, description, region, *codes]
    for r in rows:
        texts += [r["title"], r["abstract"], r["number"]]
    return region, sorted({r["kind"] for r in rows}), ipc_keys(codes), search_document(*texts)


async def _checked_assets(
    conn: Conn, lot_id: int, case_assets: list[int], wanted: list[int] | None
) -> list[int]:
    asset_ids = sorted(set(wanted if wanted is not None else case_assets))
    if not asset_ids:
        raise Invalid("lot_needs_assets", field="asset_ids")
    strangers = sorted(set(asset_ids) - set(case_assets))
    if strangers:
        raise Invalid("assets_not_in_case", field="asset_ids", asset_ids=strangers)
    taken = await conn.fetch(Q.assets_in_other_lots, asset_ids, lot_id)
    if taken:
        raise Conflict(
            "assets_in_other_lot",
            field="asset_ids",
            asset_ids=[r["asset_id"] for r in taken],
            lots=sorted({r["reference"] for r in taken}),
        )
    return asset_ids


async def _basis(
    conn: Conn, bank_org_id: int, case_id: int, lot_id: int, data: LotDraft
) -> tuple[int, list[int]]:
    """The valuation a lot answers to, and its checked assets.

    A lot answers to its own assets' part of the case's governing valuation (docs/rules.md
    §Lot terms): the whole valuation for the whole collateral; for "a single patent or a
    package", the parts of its assets (`asset_shares`: the values the valuation records
    per asset, else an equal split). The bank does not choose it: a stated value that is
    not that part is refused, naming it. One asset is in one live lot, so a case's live
    lots never carry more than its valuation together.
    """
    case = await case_for_lot(conn, bank_org_id, case_id)
    if case.status != "open":
        raise Conflict("lot_case_not_open", status=case.status)
    if case.valuation_fen is None:
        raise Invalid("lot_needs_valuation", field="valuation_fen")
    asset_ids = await _checked_assets(conn, lot_id, case.asset_ids, data.asset_ids)
    if set(asset_ids) == set(case.asset_ids):
        share = case.valuation_fen
    else:
        share = sum(case.asset_shares[a] for a in asset_ids)
    if data.valuation_fen not in (None, share):
        raise Invalid(
            "lot_valuation_is_assets_share",
            field="valuation_fen",
            share_fen=share,
            case_valuation_fen=case.valuation_fen,
        )
    return share, asset_ids


async def _prepare(
    conn: Conn,
    at: datetime,
    policy: terms.TermsPolicy,
    bank_org_id: int,
    case_id: int,
    lot_id: int,
    data: LotDraft,
) -> tuple[terms.Terms, list[int], tuple[Any, ...]]:
    """Check a draft and compute what a new or edited draft row holds, in the order the
    insert_lot and update_draft queries share after their own leading parameters."""
    valuation, asset_ids = await _basis(conn, bank_org_id, case_id, lot_id, data)
    checked = terms.validate(policy, data.terms, valuation_fen=valuation, publish_at=at)
    region, kinds, keys, doc = await _catalogue_fields(
        conn, bank_org_id, asset_ids, data.title, data.description
    )
    columns = (
        data.title.strip(),
        data.description,
        valuation,
        checked.start_price_fen,
        checked.deposit_fen,
        checked.increment_fen,
        msgspec.to_builtins(checked),
        checked.bidding_starts_at,
        checked.bidding_ends_at,
        region,
        kinds,
        keys,
        doc,
        at,
        data.auction_kind,
    )
    return checked, asset_ids, columns


async def _save_children(
    conn: Conn, lot_id: int, asset_ids: list[int], checked: terms.Terms
) -> None:
    """The lot's assets and pre-emptive holders, replaced as a whole."""
    await conn.execute(Q.clear_lot_assets, lot_id)
    await conn.execute(Q.set_lot_assets, lot_id, asset_ids)
    await conn.execute(Q.clear_holders, lot_id)
    for h in checked.preemptive_holders:
        await conn.execute(Q.insert_holder, lot_id, h.rank, h.name, h.credit_code)


# --- reading ---------------------------------------------------------------------------


async def _load(conn: Conn, bank_org_id: int, lot_id: int) -> LotOut:
    row = await conn.fetchrow(Q.bank_lot, lot_id, bank_org_id)
    if row is None:
        raise NotFound("no_such_lot")
    assets = [r["asset_id"] for r in await conn.fetch(Q.lot_asset_ids, lot_id)]
    return _out(row, assets)


async def get_lot(pool: asyncpg.Pool, bank_org_id: int, lot_id: int) -> LotOut:
    async with pool.acquire() as conn:
        return await _load(conn, bank_org_id, lot_id)


async def transitions(pool: asyncpg.Pool, lot_id: int) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(Q.lot_transitions, lot_id)]


async def _gone_assets(
    conn: Conn, bank_org_id: int, asset_ids: Sequence[int], today: date
) -> list[LineProblem]:
    """A lapsed, invalidated or expired asset is withdrawn from the lot before publication
    (docs/rules.md §Lot lifecycle): judged by the monitoring rule on the asset's facts
    today, whether or not the daily run has raised its flag yet. Named by its number; a
    lapse by its date."""
    out: list[LineProblem] = []
    for row in await conn.fetch(Q.lot_asset_facts, list(asset_ids), bank_org_id):
        facts = monitoring.AssetFacts(
            kind=row["kind"],
            legal_status=row["legal_status"],
            annuity_paid_through=row["annuity_paid_through"],
            term_ends_on=row["term_ends_on"],
            valid_until=row["valid_until"],
        )
        for kind in sorted(monitoring.assess(facts, today) & monitoring.GONE):
            params: dict[str, Any] = {"asset_number": row["number"]}
            if kind == "lapsed":
                day = monitoring.lapsed_on(facts)
                params["lapsed_on"] = day.isoformat() if day else "—"
            out.append(LineProblem(code=f"lot_asset_{kind}", field="asset_ids", params=params))
    return out


async def publish_blockers(
    conn: Conn, bank_org_id: int, case_id: int, at: datetime, asset_ids: Sequence[int] = ()
) -> tuple[LineProblem, ...]:
    """What must be in place before the public may see a lot of the case (docs/rules.md
    §Disposal cases and valuation, §Lot lifecycle): every disclosure document, a valuation
    still valid, its objection window passed, and none of the lot's `asset_ids` gone. Each
    is a problem of its own, with its code."""
    case = await case_for_lot(conn, bank_org_id, case_id)
    missing = [
        LineProblem(code="lot_disclosure_missing", field="disclosure", params={"item": item})
        for item in case.missing_items
    ]
    # Valuation dates are dates in China (market/cases/policy.py CHINA).
    today = china_today(at)
    if case.valuation_fen is None:
        missing.append(LineProblem(code="lot_needs_valuation", field="valuation"))
    else:
        until = case.valuation_valid_until
        if until is not None and until < today:
            missing.append(
                LineProblem(
                    code="lot_valuation_expired",
                    field="valuation",
                    params={"valid_until": until.isoformat()},
                )
            )
        objection = case.objection_until
        if objection is not None and objection >= today:
            missing.append(
                LineProblem(
                    code="lot_objection_window_open",
                    field="valuation",
                    params={"until": objection.isoformat()},
                )
            )
    missing += await _gone_assets(conn, bank_org_id, asset_ids, today)
    return tuple(missing)


async def blockers_of(
    pool: asyncpg.Pool, bank_org_id: int, lot: LotOut, at: datetime
) -> tuple[LineProblem, ...]:
    async with pool.acquire() as conn:
        return await publish_blockers(conn, bank_org_id, lot.case_id, at, lot.asset_ids)


# --- drafts ----------------------------------------------------------------------------

DRAFT_PREFIX = "DRAFT-"


def draft_reference(lot_id: int) -> str:
    """What a draft is called until its publication numbers it: its draft id, which no
    buyer ever sees (the catalogue, the documents and the payments name published lots)."""
    return f"{DRAFT_PREFIX}{lot_id:06d}"


def is_numbered(reference: str) -> bool:
    """A lot number given at publication (a lot made before numbers were given at
    publication keeps the one its draft had)."""
    return not reference.startswith(DRAFT_PREFIX)


async def _number(uow: UnitOfWork, row: asyncpg.Record) -> str:
    """The lot's public number, given in the publishing transaction: the next of the
    year (in Beijing time) of the publication, `LOT-2026-000123` (docs/rules.md §Lot
    lifecycle). The year's counter row is locked FOR UPDATE until the transaction ends:
    concurrent publications take consecutive numbers one after the other, and one that
    is refused later or rolls back gives its number back, so none is ever skipped."""
    if is_numbered(row["reference"]):
        return str(row["reference"])
    year = china_today(uow.at).year
    await uow.conn.execute(Q.open_number_year, year)
    await uow.conn.fetchval(Q.lock_number_year, year)
    number: int = await uow.conn.fetchval(Q.take_number, year)
    reference = f"LOT-{year}-{number:06d}"
    await uow.conn.execute(Q.set_reference, row["id"], reference)
    return reference


@command(MANAGE_LOTS)
async def draft_lot(uow: UnitOfWork, data: DraftLot) -> LotOut:
    """A draft lot from a case of the bank's, its terms checked against the rules.

    A draft has no lot number, only its draft id (`draft_reference`): the number is given
    at publication (`publish_lot`), so a draft refused or abandoned uses none.

    Concurrency: a new draft changes no existing row and takes no lock; its draft id
    carries an id taken from the sequence before the insert, so two drafts never share
    one. (Two drafts saved at the same instant from the same assets are not kept apart:
    the check that an asset is in no other live lot is a read.)"""
    conn, at, bank = uow.conn, uow.at, uow.actor.org
    lot_id: int = await conn.fetchval(Q.next_lot_id)
    checked, asset_ids, columns = await _prepare(
        conn, at, data.policy, bank, data.case_id, lot_id, data.lot
    )
    reference = draft_reference(lot_id)
    await conn.execute(Q.insert_lot, lot_id, data.case_id, bank, reference, *columns)
    await _save_children(conn, lot_id, asset_ids, checked)
    await conn.execute(
        Q.insert_transition,
        lot_id,
        "create",
        "draft",
        "draft",
        FIRST_ROUND,
        "",
        uow.actor.user_id,
        at,
    )
    uow.audit(
        "lot.create",
        "lot",
        lot_id,
        after={
            "reference": reference,
            "case_id": data.case_id,
            "assets": asset_ids,
            "terms": msgspec.to_builtins(checked),
        },
    )
    return await _load(conn, bank, lot_id)


@command(MANAGE_LOTS)
async def update_lot(uow: UnitOfWork, data: UpdateLot) -> LotOut:
    """New content for a draft of the bank's.

    Concurrency: the lot row is locked first (an edit and a publication take turns), and
    the version the editor read must still be the lot's, so a stale form is refused
    rather than overwriting a newer save."""
    conn, at, bank = uow.conn, uow.at, uow.actor.org
    row = await conn.fetchrow(Q.lock_lot, data.lot_id, bank)
    if row is None:
        raise NotFound("no_such_lot")
    if row["status"] != "draft":
        raise lifecycle.IllegalTransition(
            "edit_needs_draft", action="edit", status=row["status"], round=row["round"]
        )
    if row["version"] != data.lot.version:
        raise Conflict(
            "lot_version_stale", field="version", version=row["version"], read=data.lot.version
        )
    checked, asset_ids, columns = await _prepare(
        conn, at, data.policy, bank, row["case_id"], data.lot_id, data.lot
    )
    await conn.execute(Q.update_draft, data.lot_id, data.lot.version, *columns)
    await _save_children(conn, data.lot_id, asset_ids, checked)
    uow.audit(
        "lot.edit",
        "lot",
        data.lot_id,
        before={"terms": row["terms"], "title": row["title"]},
        after={"terms": msgspec.to_builtins(checked), "title": data.lot.title},
    )
    return await _load(conn, bank, data.lot_id)


# --- transitions -------------------------------------------------------------------------


async def _transition(
    uow: UnitOfWork,
    at: datetime,
    policy: terms.TermsPolicy,
    row: asyncpg.Record,
    action: lifecycle.Action,
    *,
    new_terms: terms.Terms | None = None,
) -> None:
    """Apply `action` to the locked lot `row` at `at` (the transition's own instant: the
    announced opening, the effective end…), and record it."""
    conn = uow.conn
    before = state_of(row)
    after = lifecycle.apply(policy, before, action)
    stored = msgspec.convert(row["terms"], terms.Terms) if new_terms is None else new_terms
    if after.round == FIXED_PRICE_ROUND and before.round == RELIST_ROUND:
        # The fixed-price sale runs at the second round's start; its window is the sale period.
        stored = msgspec.structs.replace(
            stored, bidding_starts_at=after.bidding_starts_at, bidding_ends_at=after.bidding_ends_at
        )
    name = type(action).__struct_config__.tag
    assert isinstance(name, str)
    if after.round != before.round:
        # A relist is an English auction again; the last round is the fixed-price sale (变卖).
        kind = "fixed_price" if after.round == FIXED_PRICE_ROUND else "english"
        await conn.execute(Q.new_round, row["id"], kind)
    await conn.execute(
        Q.save_state,
        row["id"],
        after.status,
        after.round,
        after.start_price_fen,
        after.announced_at,
        after.bidding_starts_at,
        after.bidding_ends_at,
        after.paused_from,
        after.paused_at,
        after.resume_by,
        after.reason,
        msgspec.to_builtins(stored),
        stored.deposit_fen,
        stored.increment_fen,
        at,
    )
    await conn.execute(
        Q.insert_transition,
        row["id"],
        name,
        before.status,
        after.status,
        after.round,
        after.reason,
        uow.actor.user_id,
        at,
    )
    outcome = {
        "sold": "sold",
        "licensed": "licensed",
        "failed": "failed",
        "returned": "failed",
        "withdrawn": "withdrawn",
    }.get(after.status)
    await conn.execute(
        Q.upsert_round,
        row["id"],
        after.round,
        after.start_price_fen,
        after.announced_at,
        after.bidding_starts_at,
        after.bidding_ends_at,
        outcome,
        at if outcome else None,
    )
    if after.status == "withdrawn":
        # A withdrawn lot holds nobody's money: every confirmed deposit of the round goes
        # back (docs/rules.md §Registration and deposits). Imported here: the auction
        # engine builds on the lots area.
        from auctions.deposits import release_round_deposits

        await release_round_deposits(uow, at, row["id"], after.round)
    await events.lot_changed(uow, row["id"], before, after)
    uow.audit(
        f"lot.{name}",
        "lot",
        row["id"],
        chain_org_id=row["bank_org_id"],
        before=msgspec.to_builtins(before),
        after=msgspec.to_builtins(after),
    )


async def _lock(uow: UnitOfWork, lot_id: int) -> asyncpg.Record:
    """The bank's lot, locked for a change; another bank's lot answers 404."""
    row = await uow.conn.fetchrow(Q.lock_lot, lot_id, uow.actor.org)
    if row is None:
        raise NotFound("no_such_lot")
    return row


async def _bank_transition(
    uow: UnitOfWork,
    data: OnLot,
    row: asyncpg.Record,
    action: lifecycle.Action,
    new_terms: terms.Terms | None = None,
) -> LotOut:
    await _transition(uow, uow.at, data.policy, row, action, new_terms=new_terms)
    return await _load(uow.conn, uow.actor.org, data.lot_id)


@command(MANAGE_LOTS)
async def publish_lot(uow: UnitOfWork, data: PublishLot) -> LotOut:
    """Announce a draft: the public sees it and buyers may register. Refused while a
    disclosure document or a valid valuation is missing, or an asset is gone (lapsed,
    invalidated, expired), each blocker named. The lot gets its number here (`_number`),
    only once the lifecycle allows the publication.
    Concurrency: the lot row's lock (two publications: one succeeds, one gets 409), then
    the year's lot-number row FOR UPDATE (always in that order, so no two publications
    deadlock): concurrent publications of different lots take consecutive numbers."""
    row = await _lock(uow, data.lot_id)
    assets = [r["asset_id"] for r in await uow.conn.fetch(Q.lot_asset_ids, data.lot_id)]
    missing = await publish_blockers(uow.conn, uow.actor.org, row["case_id"], uow.at, assets)
    stored = msgspec.convert(row["terms"], terms.Terms)
    if stored.offers.takes_licences:
        # 民法典 art. 444: a pledged right is licensed only with the pledgor's consent
        # (docs/rules.md §Licence offers and decision); and a lot taking licence offers
        # only still solicits them long enough, counted from this publication.
        if await uow.conn.fetchval(Q.case_has_consent, row["case_id"]) is None:
            raise Conflict("licensing_consent_missing", field="offers.mode")
        offers = terms.OffersInput(
            mode=stored.offers.mode,
            valuation=stored.offers.valuation,
            decision_days=stored.offers.decision_days,
        )
        terms.validate_offers(data.policy, offers, stored.bidding_starts_at, uow.at)
    if stored.listing is None:
        publish = lifecycle.Publish(at=uow.at, missing=missing)
        lifecycle.apply(data.policy, state_of(row), publish)  # refused: no number taken
        await _number(uow, row)
        return await _bank_transition(uow, data, row, publish)
    # A listing's period counts its working days from this publication (docs/rules.md
    # §Listing); the draft's dates were only an estimate.
    starts, ends = terms.listing_schedule(stored.listing, uow.at)
    stored = msgspec.structs.replace(stored, bidding_starts_at=starts, bidding_ends_at=ends)
    publish = lifecycle.Publish(at=uow.at, missing=missing, listing=(starts, ends))
    lifecycle.apply(data.policy, state_of(row), publish)
    await _number(uow, row)
    return await _bank_transition(uow, data, row, publish, stored)


@command(MANAGE_LOTS)
async def withdraw_lot(uow: UnitOfWork, data: WithdrawLot) -> LotOut:
    """Take a lot back before bidding opens; its confirmed deposits are released.
    Concurrency: the lot row's lock (the worker cannot open bidding meanwhile)."""
    row = await _lock(uow, data.lot_id)
    return await _bank_transition(uow, data, row, lifecycle.Withdraw(at=uow.at, reason=data.reason))


@command(MANAGE_LOTS)
async def pause_lot(uow: UnitOfWork, data: PauseLot) -> LotOut:
    """Pause (中止) an announced or bidding lot, for at most the allowed days.
    Concurrency: the lot row's lock, which the bid writer takes too."""
    row = await _lock(uow, data.lot_id)
    return await _bank_transition(uow, data, row, lifecycle.Pause(at=uow.at, reason=data.reason))


@command(MANAGE_LOTS)
async def resume_lot(uow: UnitOfWork, data: ResumeLot) -> LotOut:
    """Resume a paused lot; its schedule moves by the pause's length.
    Concurrency: the lot row's lock (the worker ending an overdue pause takes it too)."""
    row = await _lock(uow, data.lot_id)
    return await _bank_transition(uow, data, row, lifecycle.Resume(at=uow.at))


@command(MANAGE_LOTS)
async def relist_lot(uow: UnitOfWork, data: RelistLot) -> LotOut:
    """The one relist of a failed first round, as an auction or a listing, on new terms
    (at most the allowed reduction below the first start, the relist notice), within the
    window the failed round leaves open (docs/rules.md §Moving between paths).
    Concurrency: the lot row's lock; the round is checked on the locked row."""
    row = await _lock(uow, data.lot_id)
    if row["status"] != "failed" or row["round"] != FIRST_ROUND:
        raise lifecycle.IllegalTransition(
            "relist_needs_failed_first_round",
            action="relist",
            status=row["status"],
            round=row["round"],
        )
    # Within the window the failed round leaves open (docs/rules.md §Moving between paths).
    listing = data.terms.mode == "listing"
    move: Move = "relist_listing" if listing else "relist_auction"
    await check_move(uow.conn, row, move, uow.at, data.policy.moves)
    checked = terms.validate(
        data.policy,
        data.terms,
        valuation_fen=row["valuation_fen"],
        publish_at=uow.at,
        round=RELIST_ROUND,
        first_start_fen=row["first_start_fen"],
    )
    action = lifecycle.Relist(
        at=uow.at,
        start_price_fen=checked.start_price_fen,
        bidding_starts_at=checked.bidding_starts_at,
        bidding_ends_at=checked.bidding_ends_at,
    )
    return await _bank_transition(uow, data, row, action, checked)


@command(MANAGE_LOTS)
async def sell_at_fixed_price(uow: UnitOfWork, data: SellAtFixedPrice) -> LotOut:
    """The fixed-price sale (变卖) after a failed relist, at the relist's start, until
    `ends_at`, within the window the failed relist leaves open (docs/rules.md §Moving
    between paths). Concurrency: the lot row's lock; the window is read from the lot's
    transitions, written only under that lock."""
    row = await _lock(uow, data.lot_id)
    if row["round"] == RELIST_ROUND:
        # Within the window the failed relist leaves open (§Moving between paths).
        await check_move(uow.conn, row, "fixed_price", uow.at, data.policy.moves)
    return await _bank_transition(
        uow, data, row, lifecycle.FixedPrice(at=uow.at, ends_at=data.ends_at)
    )


async def run_action(act: Act, lot_id: int, data: ActionInput, policy: terms.TermsPolicy) -> LotOut:
    """The command an action of the API or the lot page names, run as the caller."""
    match data:
        case PublishInput():
            return await act(publish_lot, PublishLot(lot_id=lot_id, policy=policy))
        case WithdrawInput(reason=reason):
            return await act(withdraw_lot, WithdrawLot(lot_id=lot_id, policy=policy, reason=reason))
        case PauseInput(reason=reason):
            return await act(pause_lot, PauseLot(lot_id=lot_id, policy=policy, reason=reason))
        case ResumeInput():
            return await act(resume_lot, ResumeLot(lot_id=lot_id, policy=policy))
        case RelistInput(terms=new_terms):
            return await act(relist_lot, RelistLot(lot_id=lot_id, policy=policy, terms=new_terms))
        case FixedPriceInput(ends_at=ends_at):
            return await act(
                sell_at_fixed_price, SellAtFixedPrice(lot_id=lot_id, policy=policy, ends_at=ends_at)
            )
    raise AssertionError(f"unknown action {data!r}")  # pragma: no cover


# --- the auction engine's hand-overs ---------------------------------------------------------
# The close, a winner's default and the opening on the first bid happen inside the auction
# engine's own transaction (auctions/closing.py, auctions/writer.py). They take its unit of
# work, or its bare connection: then the exchange acts, in the caller's transaction, and
# the audit rows are written before returning.


@asynccontextmanager
async def _exchange_unit(on: UnitOfWork | Conn, at: datetime) -> AsyncIterator[UnitOfWork]:
    if isinstance(on, UnitOfWork):
        yield on
        return
    # The bid writer's batch is its own unit: it hands over its connection.
    uow = UnitOfWork(conn=on, at=at, actor=SYSTEM)
    yield uow
    await uow._flush()


async def close_round(
    on: UnitOfWork | Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int, *, sold: bool
) -> None:
    """The auction engine's close (docs/rules.md §Bidding) hands its outcome to the
    lifecycle here, at the effective end `at`. The caller holds the lot row's lock."""
    async with _exchange_unit(on, at) as uow:
        row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
        await _transition(uow, at, policy, row, lifecycle.Close(at=at, sold=sold))


async def await_decision(
    uow: UnitOfWork, at: datetime, policy: terms.TermsPolicy, lot_id: int, *, licences_only: bool
) -> None:
    """The close hands a round with licence offers standing to the bank's decision
    (docs/rules.md §Licence offers and decision). The caller holds the lot row's lock."""
    row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    action = lifecycle.AwaitDecision(at=at, licences_only=licences_only)
    await _transition(uow, at, policy, row, action)


async def decide_round(
    uow: UnitOfWork, at: datetime, policy: terms.TermsPolicy, lot_id: int, outcome: str
) -> None:
    """The bank's decision (or its deadline's) ends the round: sold, licensed or failed."""
    assert outcome in ("sold", "licensed", "failed")
    row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    await _transition(uow, at, policy, row, lifecycle.Decide(at=at, outcome=outcome))  # type: ignore[arg-type]


async def default_sale(
    on: UnitOfWork | Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int
) -> None:
    """The closer's hand-back when a winner did not pay (悔拍, docs/rules.md §After the
    close): the round failed."""
    async with _exchange_unit(on, at) as uow:
        row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
        await _transition(uow, at, policy, row, lifecycle.Default(at=at))


async def unwind_sale(
    on: UnitOfWork | Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int
) -> None:
    """The hand-back when a paid sale is unwound because the title did not move
    (docs/rules.md §Transfer of title): the round failed, the disposal goes on."""
    async with _exchange_unit(on, at) as uow:
        row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
        await _transition(uow, at, policy, row, lifecycle.Unwind(at=at))


async def sell_by_agreement(
    uow: UnitOfWork, at: datetime, policy: terms.TermsPolicy, lot_id: int
) -> None:
    """The hand-over of an agreed disposal to an acquisition institution
    (market/acquisition): the failed round is sold. The caller holds the lot row's lock."""
    row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
    await _transition(uow, at, policy, row, lifecycle.SellByAgreement(at=at))


async def open_if_due(
    on: UnitOfWork | Conn, at: datetime, policy: terms.TermsPolicy, lot_id: int
) -> bool:
    """Open bidding now if the announced instant has passed (the bid writer's path: bids
    never wait for the worker). Recorded at the announced instant. The caller holds or
    takes the lot row's lock."""
    async with _exchange_unit(on, at) as uow:
        row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
        if row["status"] != "announced" or row["bidding_starts_at"] > at:
            return False
        opens = row["bidding_starts_at"]
        stored = msgspec.convert(row["terms"], terms.Terms)
        if stored.mode == "listing" and not await _listing_period_ended(uow, opens, policy, row):
            # A listing's period ended: what follows depends on its qualified intents
            # (docs/rules.md §Listing); bidding opens only when two or more qualified.
            return False
        if stored.offers.mode == "licences_only":
            # A lot taking licence offers only never opens for bids: its offers close at
            # this instant (docs/rules.md §Licence offers and decision), and a bid that
            # brought the writer here then finds the lot closed. Imported here: licensing
            # builds on the lots area.
            from market.licensing.awaiting import close_offers

            await close_offers(uow, opens, policy, row)
            return False
        await _transition(uow, opens, policy, row, lifecycle.OpenBidding(at=opens))
        return True


async def _listing_period_ended(
    uow: UnitOfWork, at: datetime, policy: terms.TermsPolicy, row: asyncpg.Record
) -> bool:
    """Hand a listing whose period ended to the listing (market/listing/period.py): True
    when its intents make an auction and bidding opens now. Imported here: the listing
    builds on the lots area."""
    from market.listing.period import end_period

    return await end_period(uow, at, policy, row)


# --- on time: the worker's transitions -----------------------------------------------------


@command(None)
async def open_due_bidding(uow: UnitOfWork, data: DueLots) -> list[int]:
    """Open bidding on one batch of announced lots whose opening instant has come, each
    recorded at its announced instant however late the worker came.

    Concurrency: the batch's rows are taken FOR UPDATE SKIP LOCKED, so two workers share
    the work instead of waiting, and a lot a bank is pausing right now waits for the next
    sweep."""
    ids = [r["id"] for r in await uow.conn.fetch(Q.due_to_open, uow.at, data.batch)]
    for lot_id in ids:
        await open_if_due(uow, uow.at, data.policy, lot_id)
    return ids


@command(None)
async def end_overdue_pauses(uow: UnitOfWork, data: DueLots) -> list[int]:
    """End (withdraw) one batch of paused lots not resumed in time.

    Concurrency: FOR UPDATE SKIP LOCKED, as `open_due_bidding`; a resume that commits
    first leaves the lot no longer paused, and the lifecycle then refuses the expiry."""
    ids = [r["id"] for r in await uow.conn.fetch(Q.due_pause_expiry, uow.at, data.batch)]
    for lot_id in ids:
        row = returned(await uow.conn.fetchrow(Q.lock_lot_any_bank, lot_id))
        await _transition(uow, uow.at, data.policy, row, lifecycle.ExpirePause(at=uow.at))
    return ids


async def open_due_lots(
    pool: asyncpg.Pool,
    at: datetime,
    policy: terms.TermsPolicy,
    batch: int = 200,
    *,
    redis: Redis | None = None,
) -> list[int]:
    """The worker's sweep: open bidding on every announced lot due by `at`, batch after
    batch, as the exchange (catches up after downtime: whatever was missed is opened)."""
    ctx = Context(pool=pool, clock=FrozenClock(at), redis=redis)
    opened: list[int] = []
    while True:
        ids = await run(
            open_due_bidding, DueLots(policy=policy, batch=batch), ctx=ctx, actor=SYSTEM
        )
        opened += ids
        if len(ids) < batch:
            return opened


async def expire_pauses(
    pool: asyncpg.Pool,
    at: datetime,
    policy: terms.TermsPolicy,
    batch: int = 200,
    *,
    redis: Redis | None = None,
) -> list[int]:
    """The worker's sweep: end the pauses overdue at `at` (one batch a run)."""
    ctx = Context(pool=pool, clock=FrozenClock(at), redis=redis)
    return await run(end_overdue_pauses, DueLots(policy=policy, batch=batch), ctx=ctx, actor=SYSTEM)


# --- the listing's hand-overs (market/listing/): a listing's own transitions ---------------
# (its period extended, its negotiated transfer decided) are the lifecycle's, recorded the
# same way; the caller holds the lot row's lock.
transition = _transition
load_lot = _load
