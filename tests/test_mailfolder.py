"""`market run`'s demo SMTP server: e-mails arrive over real SMTP as .eml files."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from market.mailfolder import catching


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _message(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "noreply@ipx.example.cn", to, subject
    msg.set_content("正文 body")
    return msg


async def test_mail_sent_over_smtp_lands_in_the_folder_and_is_announced(tmp_path: Path) -> None:
    port, said = _free_port(), []
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "000003.eml").write_bytes(b"an earlier run's")
    with catching("127.0.0.1", port, tmp_path / "mail", said.append) as folder:
        assert folder == tmp_path / "mail"
        await aiosmtplib.send(
            _message("buyer@ipx.demo", "【出价被超越】您的出价已被超越"),
            hostname="127.0.0.1",
            port=port,
        )
    saved = tmp_path / "mail" / "000004.eml"  # after the earlier run's, never over it
    parsed = message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "【出价被超越】您的出价已被超越"
    assert parsed["To"] == "buyer@ipx.demo"
    assert said == [f"mail to buyer@ipx.demo: 【出价被超越】您的出价已被超越  ({saved})"]
    assert not list(tmp_path.glob("mail/*.part"))


def test_a_port_in_use_or_a_remote_host_starts_nothing(tmp_path: Path) -> None:
    port = _free_port()
    with catching("127.0.0.1", port, tmp_path / "a") as first:
        assert first is not None
        with catching("127.0.0.1", port, tmp_path / "b") as second:
            assert second is None  # someone (here: the first) already serves SMTP there
    with catching("smtp.example.cn", port, tmp_path / "c") as remote:
        assert remote is None
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
