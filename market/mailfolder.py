"""The demo's SMTP server: `market run` starts one when the configured SMTP server is this
machine's and nothing listens there, so a newcomer's exchange sends its e-mails for real —
over SMTP, as in production — into the data folder, one `.eml` file each (any mail
program opens them), and the console names each one. Without it the demo's notifications
failed to connect and were retried for ever, and the worker's log said only 'retry'.

Production sets MARKET_SMTP_HOST to its relay; a server that already listens on the
configured loopback port (a developer's own catcher) is left alone.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class MailFolder:
    """aiosmtpd handler: each accepted message becomes `<folder>/<n>.eml`, announced."""

    def __init__(self, folder: Path, announce: Callable[[str], None] = print) -> None:
        self.folder, self.announce = folder, announce
        folder.mkdir(parents=True, exist_ok=True)
        taken = (int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit())
        self._numbers = itertools.count(max(taken, default=0) + 1)  # a restart appends

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.folder / f"{next(self._numbers):06d}.eml"
        partial = path.with_suffix(".part")  # a reader never sees half a message
        partial.write_bytes(envelope.content)
        partial.rename(path)
        subject = message_from_bytes(envelope.content, policy=policy.default)["Subject"]
        self.announce(f"mail to {', '.join(envelope.rcpt_tos)}: {subject}  ({path})")
        return "250 OK"


def _listening(host: str, port: int) -> bool:
    """Whether a server listens on (host, port), found by binding it, not by connecting:
    a probe connection would open a session in that server (and, in a test, leave it to
    be torn down by the garbage collector). SO_REUSEADDR lets the bind succeed past
    connections in TIME_WAIT; only a listener refuses it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def catching(
    host: str, port: int, folder: Path, announce: Callable[[str], None] = print
) -> Iterator[Path | None]:
    """Serve SMTP on (host, port) into `folder` while inside, when the host is this machine
    and the port is free; yields the folder, or None when it started nothing."""
    if host not in LOOPBACK or _listening(host, port):
        yield None
        return
    controller = Controller(MailFolder(folder, announce), hostname=host, port=port)
    controller.start()
    try:
        yield folder
    finally:
        controller.stop()
