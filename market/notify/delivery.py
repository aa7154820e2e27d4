"""The delivery job: one notification on one channel to one target
(docs/rules.md §Notifications).

`deliver(ctx, delivery_id)` is an arq job that may run twice, late, or at the same time
as itself; each try is the command `try_delivery`, which only the exchange runs. It has
one effect because it works under the delivery row's lock (`FOR UPDATE SKIP LOCKED`: a
second copy finds it locked and leaves) and does nothing unless the row is still
`pending` and due. Per channel:

* inbox — the inbox row (unique per user and outbox row) is inserted in the same
  transaction that marks the delivery sent: exactly once;
* email — sent while the row is locked, then marked sent in that transaction. A process
  that dies between the two sends again on the retry with the same Message-ID
  (email.py): at-least-once to the SMTP server, deduplicable by Message-ID;
* webhook — webhooks.send with the idempotency key `ipx-delivery-{id}`, the same on every
  attempt, so the receiver can drop a repeat: at-least-once, deduplicable. A stream's
  deliveries (one endpoint, one lot — docs/webhooks.md) go out in `sequence` order: one
  whose earlier delivery is still pending waits (`mark_waiting`: not due, no attempt
  counted) and is made due by the transaction that finishes that one (`wake_next`), whose
  job queues it once committed.

Transient failures retry on `NotifyPolicy.retry_schedule_s` (attempt n+1 waits the n-th
entry); after the last, or at once on a terminal failure, the row is `failed` with the
error (the technical text of the SMTP server or the receiver, for the operator), listed
at /operator/notifications and replayable (`replay_deliveries`, OPERATE).

Skipped, never sent (status `skipped`, the reason in last_error) — on the people's channels
(inbox, e-mail); a webhook gets every event, skipped only when its endpoint is gone:
* an `outbid` when a newer outbid of the same bidder on the same lot was written within
  `outbid_collapse_s` — the newest carries the latest price; the relay defers outbid
  e-mails by `outbid_email_delay_s` so that rapid ones collapse;
* an `ending_soon` whose lot is no longer bidding, or whose end has passed: a reminder
  is never sent after the close;
* a webhook whose endpoint was deactivated or deleted since the relay.

The queue is a convenience, PostgreSQL is the truth: arq jobs are enqueued after commits
(best effort) with id `deliver:{delivery_id}:{attempts}`, and `requeue_due` (a cron
every 30 s, relay.py) enqueues every pending delivery that is due, so a Redis that lost
its data is refilled. The job keeps no result (`keep_result=0`, jobs.py), so its id is
free again as soon as it finishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg
import httpx
import msgspec
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from market.accounts.people import invitation_link
from market.accounts.permissions import OPERATE
from market.clock import Clock, offset_ms, system_time
from market.commands import SYSTEM, Context, UnitOfWork, command, run
from market.db import Conn, Queries
from market.i18n import Lang, pick
from market.notify import email as mail
from market.notify import endpoints, webhooks
from market.notify import render as templates
from market.notify.errors import DeliveryError, TerminalDeliveryError, TransientDeliveryError
from market.settings import Settings

Q = Queries("notify")
log = logging.getLogger("market.notify")

MAX_ERROR_CHARS: Final = 1000
ENQUEUE_CHUNK: Final = 50


class NotifyPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers of delivery, as data with defaults (docs/rules.md §Notifications)."""

    # Transient failures retry on an explicit schedule: 10 s, 1 min, 5 min, 30 min, 2 h —
    # about two and a half hours of outage absorbed, then the operator.
    retry_schedule_s: tuple[int, ...] = (10, 60, 300, 1800, 7200)
    # Rapid outbid events for the same bidder and lot within a short window collapse
    # into one message carrying the latest price.
    outbid_collapse_s: int = 60
    # ... and for the collapse to happen, an outbid e-mail waits this long before it goes.
    outbid_email_delay_s: int = 30

    def __post_init__(self) -> None:
        if not self.retry_schedule_s or any(s <= 0 for s in self.retry_schedule_s):
            raise ValueError("retry_schedule_s: one or more positive numbers of seconds")
        if self.outbid_collapse_s < 0 or self.outbid_email_delay_s < 0:
            raise ValueError("outbid_collapse_s and outbid_email_delay_s cannot be negative")
        if self.outbid_email_delay_s > self.outbid_collapse_s:
            raise ValueError("outbid_email_delay_s cannot exceed outbid_collapse_s")


DEFAULT_POLICY: Final = NotifyPolicy()


def policy_of(ctx: dict[str, Any]) -> NotifyPolicy:
    policy = ctx.get("notify_policy")
    return policy if isinstance(policy, NotifyPolicy) else DEFAULT_POLICY


# --- the queue --------------------------------------------------------------------------


def job_id(delivery_id: int, attempts: int, suffix: str = "") -> str:
    return f"deliver:{delivery_id}:{attempts}{suffix}"


async def enqueue(
    redis: ArqRedis,
    delivery_id: int,
    attempts: int,
    delay: timedelta | None = None,
    suffix: str = "",
) -> bool:
    """Queue one try (True if newly queued). arq defers by the wall clock."""
    job = await redis.enqueue_job(
        "deliver",
        delivery_id,
        _job_id=job_id(delivery_id, attempts, suffix),
        _defer_by=delay if delay is not None and delay > timedelta(0) else None,
    )
    return job is not None


async def enqueue_rows(
    redis: ArqRedis | None,
    rows: Sequence[asyncpg.Record],
    at: datetime,
    suffix: Callable[[asyncpg.Record], str] | None = None,
) -> int:
    """Queue the tries of these (id, attempts, next_attempt_at) rows, best effort.

    A Redis failure here loses nothing: the rows are committed and `requeue_due` finds them.
    """
    if redis is None:
        return 0
    queued = 0
    try:
        # A few round trips in flight at once: a relay batch queues hundreds of jobs.
        for start in range(0, len(rows), ENQUEUE_CHUNK):
            done = await asyncio.gather(
                *(
                    enqueue(
                        redis,
                        r["id"],
                        r["attempts"],
                        None if r["next_attempt_at"] is None else r["next_attempt_at"] - at,
                        suffix(r) if suffix is not None else "",
                    )
                    for r in rows[start : start + ENQUEUE_CHUNK]
                )
            )
            queued += sum(done)
    except (RedisError, OSError) as exc:
        log.warning("could not queue deliveries (%s); the requeue cron will", exc)
    return queued


# --- channels ---------------------------------------------------------------------------


class Channels:
    """The clients of one worker process: SMTP connections and an HTTP client, opened on
    first use and reused by every job (reconnecting per message would cost more than the
    message). arq gives each job a copy of the worker's context, so this object is put
    there at start-up (`open_channels`) and shared by reference."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mailer: mail.Mailer | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def mailer(self) -> mail.Mailer:
        if self._mailer is None:
            self._mailer = mail.Mailer(self.settings)
        return self._mailer

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = webhooks.http_client(private_hosts=self.settings.webhook_private_hosts)
        return self._http

    async def close(self) -> None:
        mailer, self._mailer = self._mailer, None
        if mailer is not None:
            await mailer.close()
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()


async def open_channels(ctx: dict[str, Any]) -> None:
    """The worker's start-up: the channels every job of this process shares."""
    ctx["notify_channels"] = Channels(ctx["settings"])


async def close_channels(ctx: dict[str, Any]) -> None:
    """The worker's shutdown: close the SMTP connections and the HTTP client."""
    channels = ctx.pop("notify_channels", None)
    if isinstance(channels, Channels):
        await channels.close()


_LOT_FIELDS: Final = (
    "reference",
    "title",
    "status",
    "round",
    "bidding_starts_at",
    "bidding_ends_at",
    "current_price_fen",
    "start_price_fen",
    "deposit_fen",
)


def _lot_of(row: asyncpg.Record) -> dict[str, Any] | None:
    """The lot as it is now, from the delivery row's lot_* columns (None: no lot)."""
    if row["lot_id"] is None or row["lot_reference"] is None:
        return None
    return {"id": row["lot_id"], **{f: row[f"lot_{f}"] for f in _LOT_FIELDS}}


async def _newer_outbids(
    conn: Conn, rows: Sequence[asyncpg.Record], policy: NotifyPolicy
) -> dict[int, int]:
    """Outbox id → the later outbid of the same bidder on the same lot, within the
    collapse window, that supersedes it: one query for all the rows' outbid events."""
    ids = [
        r["outbox_id"]
        for r in rows
        if r["event"] == "outbid"
        and r["channel"] != "webhook"
        and r["recipient_user_id"] is not None
        and r["lot_id"]
    ]
    if not ids:
        return {}
    window = timedelta(seconds=policy.outbid_collapse_s)
    return {r["outbox_id"]: r["newer_id"] for r in await conn.fetch(Q.newer_outbids, ids, window)}


def _skip_reason(
    row: asyncpg.Record, lot: dict[str, Any] | None, now: datetime, newer: Mapping[int, int]
) -> str | None:
    if row["channel"] == "webhook":
        return None  # a program gets every event, in order (docs/webhooks.md)
    if row["event"] == "outbid" and row["outbox_id"] in newer:
        return f"superseded by #{newer[row['outbox_id']]}"
    if row["event"] == "ending_soon" and (
        lot is None
        or lot["status"] != "bidding"
        or lot["bidding_ends_at"] is None
        or lot["bidding_ends_at"] <= now
    ):
        return "lot no longer bidding"
    if row["event"] == "payment_due" and row["sale_status"] not in (None, "awaiting_payment"):
        # Delivered late (a worker was down): "please pay" to a buyer who has paid, or
        # whose sale defaulted, would mislead; the won/defaulted notices say what holds.
        return f"sale {row['sale_status']} already"
    return None


# --- the job ----------------------------------------------------------------------------


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one run did: sent, skipped, retry, failed — or nothing (busy, not_due, done,
    waiting: a webhook behind an earlier one of its stream)."""

    status: str
    retry_at: datetime | None = None
    error: str | None = None


class DeliveryTry(msgspec.Struct, frozen=True, kw_only=True):
    """One try of one delivery, with the worker's channels and numbers."""

    delivery_id: int
    settings: Settings
    channels: Channels
    policy: NotifyPolicy = DEFAULT_POLICY
    # A sandbox's clock offset (market/clock.py offset_ms): a webhook's signature carries
    # the system's time, which the receiver's clock is checked against, not the moved one.
    clock_offset_ms: int = 0


@dataclass(frozen=True)
class Tried:
    outcome: Outcome
    retry: asyncpg.Record | None  # the next try to queue once this one is committed
    woken: asyncpg.Record | None = None  # the next of its webhook stream, due now


@command(None)
async def try_delivery(uow: UnitOfWork, data: DeliveryTry) -> Tried:
    """One try of one delivery (module docstring).

    Concurrent copies stay correct by the delivery row's lock, taken `FOR UPDATE SKIP
    LOCKED` and held to the commit: a second copy finds it locked and leaves ("busy"),
    and a copy after the commit finds it no longer pending ("done")."""
    row = await uow.conn.fetchrow(Q.lock_deliveries, [data.delivery_id])
    if row is None:
        return Tried(Outcome(status="busy"), None)  # another copy holds it, or none such
    outcome, retry = await _attempt(
        uow.conn,
        row,
        data.settings,
        uow.at,
        data.channels,
        data.policy,
        clock_offset_ms=data.clock_offset_ms,
    )
    woken = None
    if row["channel"] == "webhook" and outcome.status in ("sent", "skipped", "failed"):
        woken = await uow.conn.fetchrow(
            Q.wake_next, row["target"], row["subject"], row["sequence"], uow.at
        )
    return Tried(outcome, retry, woken)


async def deliver_one(
    pool: asyncpg.Pool,
    settings: Settings,
    clock: Clock,
    delivery_id: int,
    *,
    channels: Channels,
    redis: ArqRedis | None = None,
    policy: NotifyPolicy = DEFAULT_POLICY,
) -> Outcome:
    """One try of one delivery, run by the exchange; the next try, if any, is queued on
    `redis` once this one is committed (else the requeue cron queues it when due)."""
    data = DeliveryTry(
        delivery_id=delivery_id,
        settings=settings,
        channels=channels,
        policy=policy,
        clock_offset_ms=offset_ms(clock),
    )
    tried = await run(try_delivery, data, ctx=Context(pool=pool, clock=clock), actor=SYSTEM)
    if tried.retry is not None:
        await enqueue_rows(redis, [tried.retry], clock.now())
    if tried.woken is not None:
        # Its own job id may still be held by the copy that found it waiting.
        await enqueue_rows(redis, [tried.woken], clock.now(), lambda _: f":after{delivery_id}")
    return tried.outcome


async def deliver_inbox_now(
    conn: Conn,
    settings: Settings,
    now: datetime,
    delivery_ids: Sequence[int],
    policy: NotifyPolicy = DEFAULT_POLICY,
) -> set[int]:
    """Deliver these new inbox deliveries inside the caller's transaction (the relay's):
    an inbox message is a row in our own database, so it needs no job of its own — that
    halves the jobs a typical event costs. The messages are written in one round trip.
    All of it runs in one savepoint: should anything fail, nothing of it stays, the
    deliveries remain pending for their jobs as before, and the relay goes on.
    Returns the ids that reached a final state (sent, skipped, failed)."""
    done: set[int] = set()
    if not delivery_ids:
        return done
    try:
        async with conn.transaction():
            sent: list[tuple[Any, ...]] = []
            rows = [
                row
                for row in await conn.fetch(Q.lock_deliveries, list(delivery_ids))
                if row["channel"] == "inbox" and row["status"] == "pending"
            ]
            newer = await _newer_outbids(conn, rows, policy)
            for row in rows:
                try:
                    prepared = _prepare(row, settings, now, newer)
                except TerminalDeliveryError as exc:
                    await _failed(conn, row, exc.message)
                else:
                    if isinstance(prepared, str):
                        await conn.execute(Q.mark_skipped, row["id"], prepared)
                    else:
                        sent.append(_inbox_args(row, now, prepared))
                done.add(row["id"])
            if sent:
                await conn.executemany(Q.inbox_sent, sent)
    except Exception:
        log.exception("inbox deliveries %s left to their jobs", list(delivery_ids)[:5])
        return set()
    return done


def _prepare(
    row: asyncpg.Record,
    settings: Settings,
    now: datetime,
    newer: Mapping[int, int],
    payload: Mapping[str, Any] | None = None,
) -> str | templates.Rendered:
    """The message of a pending, due delivery — or why it is skipped (a str); `newer` is
    `_newer_outbids` of the rows. Raises TerminalDeliveryError for a broken template or
    an inbox whose reader is gone."""
    lot = _lot_of(row)
    reason = _skip_reason(row, lot, now, newer)
    if reason is not None:
        return reason
    if row["channel"] == "inbox" and row["reader_id"] is None:
        raise TerminalDeliveryError("inbox: the user no longer exists")
    payload = payload if payload is not None else (row["payload"] or {})
    # An invitee is nobody's user yet: the invitation names the language.
    lang: Lang = pick(row["reader_language"] or payload.get("language"))
    try:
        return templates.render(
            row["event"],
            lang,
            payload=payload,
            lot=lot,
            name=row["reader_name"],
            base_url=settings.public_base_url,
            tz=settings.timezone,
            channel=row["channel"],
        )
    except templates.RenderError as exc:  # nothing is sent until someone fixes it
        raise TerminalDeliveryError(str(exc)) from exc


def _inbox_args(
    row: asyncpg.Record, now: datetime, rendered: templates.Rendered
) -> tuple[Any, ...]:
    return (
        row["id"],
        now,
        row["reader_id"],
        row["outbox_id"],
        row["event"],
        rendered.subject,
        rendered.text,
        row["lot_id"],
        row["created_at"],
    )


async def _attempt(
    conn: Conn,
    row: asyncpg.Record,
    settings: Settings,
    now: datetime,
    channels: Channels,
    policy: NotifyPolicy,
    *,
    clock_offset_ms: int = 0,
) -> tuple[Outcome, asyncpg.Record | None]:
    """One try of the delivery in `row`, locked by the caller's transaction; the second
    value is the row of the next try to queue, if there is one. `now` is the exchange's
    time, `clock_offset_ms` a sandbox's offset (DeliveryTry)."""
    delivery_id = row["id"]
    if row["status"] != "pending":
        return Outcome(status="done"), None
    if row["next_attempt_at"] is not None and row["next_attempt_at"] > now:
        return Outcome(status="not_due"), None
    try:
        newer = await _newer_outbids(conn, [row], policy)
        payload = dict(row["payload"] or {})
        if row["event"] == "invitation":  # the link is made when it is sent (people.py)
            payload["url"] = await invitation_link(
                conn, settings.secret_key, settings.public_base_url, payload["invitation_id"]
            )
        prepared = _prepare(row, settings, now, newer, payload)
        endpoint = None
        if not isinstance(prepared, str) and row["channel"] == "webhook":
            endpoint = await endpoints.by_id(conn, int(row["target"]))
            if endpoint is None or not endpoint.active:
                prepared = "webhook endpoint deactivated"
            elif earlier := await conn.fetchrow(
                Q.earlier_pending, row["target"], row["subject"], row["sequence"]
            ):
                why = f"waiting for #{earlier['id']} (sequence {earlier['sequence']})"
                await conn.execute(Q.mark_waiting, delivery_id, why)
                return Outcome(status="waiting", error=why), None
        if isinstance(prepared, str):
            await conn.execute(Q.mark_skipped, delivery_id, prepared)
            return Outcome(status="skipped", error=prepared), None
        if row["channel"] == "email":
            msg = mail.build_message(
                settings,
                to=row["target"],
                rendered=prepared,
                outbox_id=row["outbox_id"],
                sent_at=now,
            )
            await channels.mailer.send(msg)
        elif row["channel"] == "webhook":
            assert endpoint is not None
            signed_at = system_time(now, clock_offset_ms)
            await _send_webhook(channels.http, row, endpoint, prepared, signed_at)
    except TransientDeliveryError as exc:
        attempts = row["attempts"] + 1
        if attempts > len(policy.retry_schedule_s):
            return await _failed(conn, row, f"after {attempts} attempts: {exc.message}"), None
        # A receiver's Retry-After is honoured, up to the schedule's longest wait.
        wait = min(
            max(float(policy.retry_schedule_s[attempts - 1]), exc.retry_after or 0.0),
            float(max(policy.retry_schedule_s)),
        )
        at = now + timedelta(seconds=wait)
        retry = await conn.fetchrow(Q.mark_retry, delivery_id, attempts, at, _clip(exc.message))
        assert retry is not None
        return Outcome(status="retry", retry_at=retry["next_attempt_at"], error=exc.message), retry
    except DeliveryError as exc:  # terminal, or a channel that did not say which
        return await _failed(conn, row, exc.message), None
    if row["channel"] == "inbox":
        await conn.execute(Q.inbox_sent, *_inbox_args(row, now, prepared))
    else:
        await conn.execute(Q.mark_sent, delivery_id, now)
    return Outcome(status="sent"), None


async def _send_webhook(
    client: httpx.AsyncClient,
    row: asyncpg.Record,
    endpoint: webhooks.WebhookEndpoint,
    rendered: templates.Rendered,
    signed_at: datetime,
) -> None:
    key = f"ipx-delivery-{row['id']}"
    message = webhooks.WebhookMessage(
        id=key,
        event=row["event"],
        notification_id=row["outbox_id"],
        subject=row["subject"],
        sequence=row["sequence"],
        created_at=row["created_at"],
        title=rendered.subject,
        text=rendered.text,
        lot_reference=row["lot_reference"] or (row["payload"] or {}).get("lot_reference"),
        payload=dict(row["payload"] or {}),
    )
    try:
        await webhooks.send(
            endpoint,
            message,
            idempotency_key=key,
            client=client,
            now=signed_at,
        )
    except DeliveryError:
        raise
    except Exception as exc:
        # A failure the webhook code did not classify: not worth hammering the receiver.
        raise TerminalDeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


async def _failed(conn: Conn, row: asyncpg.Record, error: str) -> Outcome:
    log.warning("delivery %s (%s %s) failed: %s", row["id"], row["event"], row["channel"], error)
    await conn.execute(Q.mark_failed, row["id"], row["attempts"] + 1, _clip(error))
    return Outcome(status="failed", error=error)


_warned: list[bool] = []


async def deliver(ctx: dict[str, Any], delivery_id: int) -> str:
    """The arq job (jobs.py registers it without a kept result)."""
    channels = ctx.get("notify_channels")
    own = not isinstance(channels, Channels)
    if own:
        # A worker started without open_channels: correct, only slower (and it says so).
        if not _warned:
            _warned.append(True)
            log.warning("no notify_channels in the worker context: one connection per job")
        channels = Channels(ctx["settings"])
    assert isinstance(channels, Channels)
    try:
        outcome = await deliver_one(
            ctx["pool"],
            ctx["settings"],
            ctx["clock"],
            delivery_id,
            channels=channels,
            redis=ctx.get("redis"),
            policy=policy_of(ctx),
        )
    finally:
        if own:
            await channels.close()
    return outcome.status


# --- replay -----------------------------------------------------------------------------


class Replay(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which failed deliveries to try again: these, or every failed one."""

    delivery_ids: list[int] = msgspec.field(default_factory=list)
    all_failed: bool = False


@dataclass(frozen=True)
class Replayed:
    count: int
    at: datetime
    queue: list[asyncpg.Record]  # the tries to queue once the replay is committed


@command(OPERATE)
async def replay_deliveries(uow: UnitOfWork, data: Replay) -> Replayed:
    """Put failed deliveries back to pending, due now, attempts 0.

    Only failed ones: a sent delivery is never sent again by a replay. The caller queues
    the tries once committed (`queue_replayed`); without that the requeue cron queues
    them within 30 s. The operator's act is on the exchange's audit chain.

    Concurrent replays stay correct by the UPDATE's row locks and its `status = 'failed'`
    condition: of two replays of one delivery, the second finds it pending and leaves it.
    """
    if not data.all_failed and not data.delivery_ids:
        return Replayed(count=0, at=uow.at, queue=[])
    rows = await uow.conn.fetch(
        Q.replay_deliveries, list(data.delivery_ids), uow.at, data.all_failed
    )
    if rows:
        uow.audit(
            "notification.replay",
            "deliveries",
            "all-failed" if data.all_failed else ",".join(map(str, data.delivery_ids))[:200],
            chain_org_id=None,
            after={"ids": sorted(r["id"] for r in rows)},
        )
    return Replayed(count=len(rows), at=uow.at, queue=list(rows))


async def queue_replayed(redis: Redis | None, replayed: Replayed) -> int:
    """Queue the tries of a committed replay now (best effort, like every enqueue; without
    a job queue the requeue cron queues them)."""
    if not isinstance(redis, ArqRedis):
        return 0
    return await enqueue_rows(redis, replayed.queue, replayed.at)
