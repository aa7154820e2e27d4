"""E-mail over real SMTP (aiosmtplib), settings MARKET_SMTP_* (docs/rules.md §Notifications).

Exactly-once is impossible across two systems: the message is sent first and the
delivery marked sent after, so a process that dies in between sends it again on the
retry. The retry carries the same `Message-ID` — derived from the outbox row and the
address — so mail servers and clients that deduplicate by it show it once. In short:
at-least-once to the SMTP server, deduplicable by Message-ID.

`Mailer` keeps a few SMTP connections open and reuses them: opening one per message
(TCP, EHLO, maybe STARTTLS and AUTH) costs more than sending it. A connection the server
closed while idle is noticed on use and replaced once before the attempt counts as failed.

Failures are classified for the delivery job: a 5xx reply (RFC 5321 §4.2.1, "permanent
negative completion": unknown mailbox, refused sender, failed authentication) is terminal;
everything else — refused or dropped connections, timeouts, 4xx replies — is transient.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

import aiosmtplib
import msgspec

from market.notify.errors import TerminalDeliveryError, TransientDeliveryError
from market.notify.render import Rendered, content_language
from market.settings import Settings

# Seconds for one SMTP conversation step; a stuck server must not hold a worker slot long.
SMTP_TIMEOUT_S = 15.0
# Open connections per worker process: a local relay takes this many in parallel easily.
POOL_SIZE = 4


def mail_domain(mail_from: str) -> str:
    address = parseaddr(mail_from)[1]
    return address.rpartition("@")[2] or "ipx.invalid"


def message_id(outbox_id: int, target: str, mail_from: str) -> str:
    """`<outbox-{id}.{hash}@{domain}>`: the same for every attempt of one notification to
    one address, different for each address, revealing neither."""
    digest = hashlib.sha256(f"{outbox_id}\x00{target}".encode()).hexdigest()[:16]
    return f"<outbox-{outbox_id}.{digest}@{mail_domain(mail_from)}>"


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """One message ready for the SMTP envelope: who from, to whom, the bytes."""

    sender: str
    recipients: tuple[str, ...]
    message_id: str
    raw: bytes


@lru_cache(maxsize=8)
def _from_header(mail_from: str) -> tuple[str, str]:
    """(the From header, the envelope sender) of MARKET_MAIL_FROM, parsed once."""
    name, address = parseaddr(mail_from)
    return formataddr((name, address), charset="utf-8"), address


def _base64_lines(text: str) -> str:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return "\r\n".join(data[i : i + 76] for i in range(0, len(data), 76))


def build_message(
    settings: Settings, *, to: str, rendered: Rendered, outbox_id: int, sent_at: datetime
) -> Outgoing:
    """multipart/alternative: the text, then the HTML, both UTF-8 in base64 (RFC 2045,
    2046); the subject RFC 2047-encoded.

    Written out directly: the stdlib's generator parses and refolds every header again,
    which cost more CPU than the whole rest of a delivery (bench/notifications.py); a
    test parses the result with the stdlib to hold this to the standard.
    """
    from_header, sender = _from_header(settings.mail_from)
    mid = message_id(outbox_id, to, settings.mail_from)
    boundary = "=_ipx_" + mid[8:].split("@", 1)[0].replace(".", "_")
    subject = Header(rendered.subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    head = (
        f"Subject: {subject}\r\n"
        f"From: {from_header}\r\n"
        f"To: {to}\r\n"
        f"Date: {format_datetime(sent_at)}\r\n"
        f"Message-ID: {mid}\r\n"
        f"Content-Language: {content_language(rendered.lang)}\r\n"
        # Machine-sent: nobody's auto-responder should answer it (RFC 3834).
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
    )
    parts = "".join(
        f"--{boundary}\r\n"
        f"Content-Type: text/{kind}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{_base64_lines(body)}\r\n"
        for kind, body in (("plain", rendered.text), ("html", rendered.html))
    )
    raw = f"{head}\r\n{parts}--{boundary}--\r\n".encode("ascii")
    return Outgoing(sender=sender, recipients=(to,), message_id=mid, raw=raw)


def classify(exc: BaseException) -> TransientDeliveryError | TerminalDeliveryError:
    """What one failed SMTP attempt means for the retry schedule (module docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if codes and all(c >= 500 for c in codes):
            return TerminalDeliveryError(f"smtp recipient refused: {text}", status=codes[0])
        return TransientDeliveryError(f"smtp recipient deferred: {text}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"smtp {exc.code}: {exc.message}"
        if exc.code >= 500:
            return TerminalDeliveryError(message, status=exc.code)
        return TransientDeliveryError(message, status=exc.code)
    return TransientDeliveryError(f"smtp: {type(exc).__name__}: {exc}")


class Mailer:
    """A small pool of SMTP connections for one process (module docstring)."""

    def __init__(
        self, settings: Settings, *, size: int = POOL_SIZE, timeout_s: float = SMTP_TIMEOUT_S
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=self.timeout_s,
            use_tls=False,
            start_tls=s.smtp_starttls,
            username=s.smtp_user or None,
            password=s.smtp_password or None,
        )
        await client.connect()
        return client

    async def send(self, msg: Outgoing) -> None:
        """Hand the message to the SMTP server; raise Transient/TerminalDeliveryError."""
        sender, recipients, raw = msg.sender, list(msg.recipients), msg.raw
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            reused = client is not None
            try:
                if client is None or not client.is_connected:
                    reused = False
                    client = await self._connect()
                try:
                    await client.sendmail(sender, recipients, raw)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # The server dropped an idle connection: one fresh try, not a failure.
                    await _close(client)
                    client = await self._connect()
                    await client.sendmail(sender, recipients, raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    await _close(client)
                raise classify(exc) from exc
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        if client.is_connected:
            await client.quit()
    with contextlib.suppress(Exception):
        client.close()
