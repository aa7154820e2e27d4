"""Message templates: a folder per event with subject, text and HTML, whose sentences are
the email catalog's in the reader's language, CNY amounts, Asia/Shanghai times; and the
e-mail they make."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import msgspec
import pytest

from market import i18n
from market.notify.email import build_message, classify, mail_domain, message_id
from market.notify.errors import TerminalDeliveryError, TransientDeliveryError
from market.notify.recipients import EVENTS
from market.notify.render import TEMPLATES, RenderError, has_templates, render
from market.settings import Settings

LOT = {
    "id": 1,
    "reference": "LOT-2026-000123",
    "title": "锂电池正极材料专利包",
    "status": "bidding",
    "round": 1,
    "bidding_starts_at": datetime(2026, 1, 5, 2, 0, tzinfo=UTC),
    "bidding_ends_at": datetime(2026, 1, 6, 2, 0, tzinfo=UTC),
    "current_price_fen": 120_000_000,
    "start_price_fen": 100_000_000,
    "deposit_fen": 10_000_000,
}
SALE = {
    "sale_id": 3,
    "lot_id": 1,
    "round": 1,
    "price_fen": 120_000_000,
    "fee_kind": "buyer_premium",
    "fee_fen": 1_200_000,
    "deposit_fen": 10_000_000,
    "balance_due_fen": 111_200_000,
    "due_at": "2026-01-16T16:30:00+00:00",
    "payment_reference": "JK9Q2M",
    "status": "awaiting_payment",
    "closed_at": "2026-01-06T02:00:00+00:00",
}
LICENCE_BACK = {
    "contract_id": 7,
    "contract_reference": "XK-2026-000007",
    "case_id": 3,
    "case_reference": "CZ-2026-000003",
    "pledgor_name": "北京链融数据科技有限公司",
    "reason": "费率过高",
    "path": "/bank/cases/3",
}
# Payloads as the producers write them (auctions/*, market/notify/events.py).
LISTING = {
    "lot_id": 1,
    "lot_reference": "LOT-2026-000123",
    "lot_title": "锂电池正极材料专利包（挂牌）",
    "round": 1,
    "path": "/listings/LOT-2026-000123",
}
TRANSFER = {
    "sale_id": 3,
    "lot_id": 1,
    "lot_reference": "LOT-2026-000123",
    "lot_title": "锂电池正极材料专利包",
    "price_fen": 120_000_000,
    "path": "/transfers/3",
}
AGREEMENT = {
    "disposal_id": 4,
    "case_reference": "CZ-2026-000003",
    "kind": "acquisition",
    "amount_fen": 123_456_789,
    "path": "/agreed-disposals",
}
PAYLOADS: dict[str, dict[str, Any]] = {
    "agreed_disposal_proposed": {**AGREEMENT, "objection_until": "2026-01-15T02:00:00+00:00"},
    "agreed_disposal_objected": {**AGREEMENT, "reason": "价格偏低"},
    "agreed_disposal_withdrawn": {**AGREEMENT, "kind": "equity"},
    "agreed_disposal_completed": AGREEMENT,
    "agreed_disposal_offered": {
        **AGREEMENT,
        "accept_by": "2026-01-15T02:00:00+00:00",
        "objection_until": "2026-01-15T02:00:00+00:00",
    },
    "agreed_disposal_accepted": AGREEMENT,
    "agreed_disposal_declined": AGREEMENT,
    "agreed_disposal_lapsed": {**AGREEMENT, "accepted": False},
    "agreed_disposal_payouts_owed": {
        **AGREEMENT,
        "owed_fen": 86_419_752,
        "settlement_reference": "ZJ8X2MQ7K3PA",
    },
    "document_issued": {
        "document_id": 4,
        "sale_id": 3,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "kind": "confirmation",
        "code": "21K3Q7XQKAEB30RE3SGC",
        "sha256": "ab" * 32,
        "issued_at": "2026-01-06T02:00:00+00:00",
        "path": "/documents",
    },
    "transfer_step_due": {**TRANSFER, "step": "release", "due_at": "2026-02-15T02:00:00+00:00"},
    "transfer_step_reminder": {
        **TRANSFER,
        "step": "recordal",
        "due_at": "2026-04-15T02:00:00+00:00",
        "days": 7,
    },
    "transfer_step_overdue": {**TRANSFER, "step": "check", "due_at": "2026-04-20T02:00:00+00:00"},
    "transfer_notice_uploaded": {
        **TRANSFER,
        "notice_id": 4,
        "kind": "pledge_release",
        "number": "ZX2026000123",
        "issued_on": "2026-01-20",
    },
    "transfer_notice_rejected": {
        **TRANSFER,
        "notice_id": 5,
        "kind": "patent_recordal",
        "number": "BG2026000456",
        "reason": "专利号与拍品不符",
        "step": "recordal",
        "due_at": "2026-04-25T02:00:00+00:00",
    },
    "sale_completed": {**TRANSFER, "receipt_id": 9},
    "sale_unwound": {
        **TRANSFER,
        "cause": "lapsed_right",
        "buyer_at_fault": False,
        "refund_fen": 121_200_000,
        "forfeited_fen": 0,
    },
    "offer_received": {
        "offer_id": 7,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "offeror_name": "成都锂能科技有限公司",
        "type": "licence",
        "licence_kind": "exclusive",
        "upfront_fen": 20_000_000,
        "minimum_annual_fen": 25_000_000,
        "price_fen": None,
    },
    "offer_outbid_by_value": {
        "offer_id": 7,
        "by_offer_id": 9,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "pv_fen": 119_131_346,
        "leading_pv_fen": 129_799_527,
    },
    "offer_chosen": {
        "offer_id": 7,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "type": "licence",
        "licence_kind": "exclusive",
    },
    "offer_not_chosen": {
        "offer_id": 8,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "type": "sale_and_licence_back",
        "licence_kind": "non_exclusive",
    },
    "hammer_superseded": {
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "round": 1,
        "registration_id": 5,
        "price_fen": 110_000_000,
        "deposit_fen": 7_000_000,
    },
    "licensing_consent_given": {
        "case_id": 3,
        "case_reference": "CZ-2026-000003",
        "pledgor_name": "北京链融数据科技有限公司",
        "consented_at": "2026-01-05T02:00:00+00:00",
        "path": "/bank/cases/3",
    },
    "licence_back_accepted": {**LICENCE_BACK, "reason": ""},
    "licence_back_declined": LICENCE_BACK,
    "open_licence_taken": {
        "open_licence_id": 2,
        "contract_id": 8,
        "contract_reference": "XK-2026-000008",
        "case_id": 3,
        "patent_number": "ZL201910000001.2",
        "patent_title": "一种正极材料",
        "licensee_name": "Huachuang Chip Co.",
        "start": "2026-01-05",
        "end": "2030-12-31",
        "path": "/pledgor/cases/3",
    },
    "organisation_decided": {
        "org_id": 5,
        "org_name": "Huachuang Chip Co.",
        "status": "rejected",
        "reason": "licence expired",
    },
    "invitation": {
        "invitation_id": 3,
        "email": "li@bank.test",
        "language": "zh",
        "role": "officer",
        "org_name": "CCB Zhongguancun",
        "expires_at": "2026-01-12T02:00:00+00:00",
        "inviter": "Li",
        "url": "https://ipx.example.cn/invitations/3.abc",
    },
    "outbid": {
        "registration_id": 4,
        "price_fen": 120_000_000,
        "ends_at": "2026-01-06T02:05:00+00:00",
    },
    "extended": {"ends_at": "2026-01-06T02:05:00+00:00"},
    "ending_soon": {
        "lot_reference": "LOT-2026-000123",
        "lead_s": 600,
        "ends_at": "2026-01-06T02:00:00+00:00",
        "price_fen": 120_000_000,
        "bidder_code": "K7Q2",
        "deposit_status": "confirmed",
    },
    "bidding_opened": {
        "start_price_fen": 100_000_000,
        "increment_fen": 500_000,
        "starts_at": "2026-01-05T02:00:00+00:00",
        "ends_at": "2026-01-06T02:00:00+00:00",
        "deposit_status": "awaiting",
        "bidder_code": "K7Q2",
    },
    "listing_intent_approved": {
        "registration_id": 4,
        "lot_reference": "LOT-2026-000123",
        "round": 1,
        "bidder_code": "K7Q2",
        "amount_fen": 7_000_000,
        "transfer_reference": "BZJ8X2",
    },
    "listing_period_ended": {
        **LISTING,
        "outcome": "negotiation",
        "qualified": 1,
        "ends_at": "2026-10-10T16:00:00+00:00",
    },
    "listing_transfer_to_confirm": {
        **LISTING,
        "price_fen": 70_000_000,
        "confirm_by": "2026-10-16T16:00:00+00:00",
    },
    "listing_auction_created": {
        **LISTING,
        "start_price_fen": 70_000_000,
        "bidding_ends_at": "2026-10-11T16:00:00+00:00",
    },
    "deposit_confirmed": {
        "registration_id": 4,
        "lot_reference": "LOT-2026-000123",
        "round": 1,
        "bidder_code": "K7Q2",
        "amount_fen": 10_000_000,
        "transfer_reference": "BZJ8X2",
    },
    "deposit_released": {
        "registration_id": 4,
        "lot_reference": "LOT-2026-000123",
        "round": 1,
        "bidder_code": "K7Q2",
        "amount_fen": 10_000_000,
        "transfer_reference": "BZJ8X2",
    },
    "won": SALE,
    "lost": {"lot_id": 1, "round": 1, "registration_id": 5, "price_fen": 120_000_000},
    "payment_due": SALE,
    "payment_overdue": SALE,
    "defaulted": SALE,
    "lot_matched": {
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "start_price_fen": 100_000_000,
        "deposit_fen": 10_000_000,
        "starts_at": "2026-01-05T02:00:00+00:00",
        "ends_at": "2026-01-06T02:00:00+00:00",
    },
    "monitoring_flag": {
        "flag_id": 9,
        "kind": "expiring",
        "detail": {
            "as_of": "2026-01-05",
            "legal_status": "valid",
            "ends_on": "2026-03-01",
            "days": 55,
        },
        "raised_at": "2026-01-05T02:00:00+00:00",
        "asset_id": 12,
        "asset_kind": "patent",
        "asset_number": "ZL201910000001.2",
        "asset_title": "一种正极材料",
    },
    # market/licensing/reminders.py, enforcement.py
    "royalty_report_due": {
        "contract_id": 3,
        "contract_reference": "XK-2027-000003",
        "period": "2027Q1",
        "payment_reference": "XK-2027-000003-2027Q1",
        "about": "report",
        "when": "before",
        "days": 7,
        "due_on": "2027-04-15",
        "owed_fen": None,
        "interest_fen": 0,
    },
    "royalty_payment_due": {
        "contract_id": 3,
        "contract_reference": "XK-2027-000003",
        "period": "2027Q1",
        "payment_reference": "XK-2027-000003-2027Q1",
        "about": "payment",
        "when": "before",
        "days": 1,
        "due_on": "2027-04-30",
        "owed_fen": 6_250_000,
        "interest_fen": 0,
    },
    "royalty_payment_late": {
        "contract_id": 3,
        "contract_reference": "XK-2027-000003",
        "period": "2027Q1",
        "payment_reference": "XK-2027-000003-2027Q1",
        "about": "payment",
        "when": "after",
        "days": 15,
        "due_on": "2027-04-30",
        "owed_fen": 6_261_558,
        "interest_fen": 11_558,
    },
    "licence_terminated": {
        "contract_id": 3,
        "contract_reference": "XK-2027-000003",
        "reason": "2027Q1 royalty unpaid 45 days",
        "terminated_at": "2027-06-14T02:00:00+00:00",
        "unpaid": ["2027Q1"],
    },
    "invoice_details_needed": {
        "sale_id": 3,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "fee_kind": "buyer_premium",
        "fee_fen": 1_200_000,
        "path": "/invoices",
    },
    "invoice_issued": {
        "request_id": 4,
        "sale_id": 3,
        "lot_id": 1,
        "lot_reference": "LOT-2026-000123",
        "lot_title": "锂电池正极材料专利包",
        "kind": "invoice",
        "invoice_type": "vat_special",
        "invoice_number": "25442000000123456789",
        "invoice_date": "2026-01-20",
        "amount_fen": 1_200_000,
        "path": "/invoices",
    },
    "refund_instructed": {
        "instruction_id": 4,
        "reference": "TKAB3CD4EF5G",
        "amount_fen": 7_000_000,
        "purpose": "deposit_refund",
        "path": "/payments",
        "due_at": "2026-01-07T02:00:00+00:00",
    },
    "refund_paid": {
        "instruction_id": 4,
        "reference": "TKAB3CD4EF5G",
        "amount_fen": 7_000_000,
        "purpose": "deposit_refund",
        "path": "/payments",
    },
    "payout_paid": {
        "instruction_id": 5,
        "reference": "HK7KX3M9PQ2R",
        "amount_fen": 95_000_000,
        "purpose": "payout",
        "path": "/payments",
    },
}


def test_every_event_has_its_folder_and_its_words_in_the_catalogs() -> None:
    assert set(PAYLOADS) == set(EVENTS)
    for event in EVENTS:
        assert has_templates(event), event
    for path in (TEMPLATES / "email").rglob("*.*"):
        text = path.read_text(encoding="utf-8")
        # The shape of a message only: its sentences are the email catalog's, each
        # rendered in the template's language.
        assert "lang ==" not in text, path
        assert not re.search(r"[\u4e00-\u9fff]", text), path
    for key in ("email.greeting", "email.lost.deposit", "email.flag.lapsed"):
        assert i18n.gettext("zh", key) != i18n.gettext("en", key) != key


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_event_renders_in_each_language_and_channel(event: str, lang: str) -> None:
    lot = None if event == "monitoring_flag" or "contract_id" in PAYLOADS[event] else LOT
    for channel in ("email", "inbox", "webhook"):
        r = render(
            event,
            lang,
            payload=PAYLOADS[event],
            lot=lot,
            name="王小明",
            base_url="https://ipx.example.cn",
            channel=channel,
        )  # type: ignore[arg-type]
        chinese = re.search(
            r"[\u4e00-\u9fff]",
            r.subject.replace("锂电池正极材料专利包", "").replace("一种正极材料", ""),
        )
        assert bool(chinese) == (lang == "zh"), r.subject
        assert "\n" not in r.subject and r.subject
        assert "None" not in r.text and "None" not in r.subject, r.text
        assert ("您好" in r.text or "Dear" in r.text) == (channel == "email")
        # The inbox page shows its own link; e-mail and webhooks carry the address.
        assert ("https://ipx.example.cn" in r.text) == (channel != "inbox")
        assert ("/account/notifications" in r.text) == (channel == "email")
        if channel == "email":
            assert r.html.startswith("<!doctype html>")
            assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in r.html
        else:
            assert r.html == ""  # only e-mail sends HTML


def test_amounts_in_cny_and_times_in_beijing() -> None:
    zh = render(
        "won", "zh", payload=SALE, lot=LOT, name="王小明", base_url="https://ipx.example.cn"
    )
    en = render("won", "en", payload=SALE, lot=LOT, name="Wang", base_url="https://ipx.example.cn")
    assert zh.subject == "恭喜竞得：LOT-2026-000123 成交价 ¥1,200,000.00"
    assert en.subject == "You won LOT-2026-000123 at ¥1,200,000.00"
    # 16:30 UTC on the 16th is 00:30 on the 17th in Beijing.
    assert "请于 2026-01-17 00:30（北京时间）前支付余款 ¥1,112,000.00" in zh.text
    assert "（含买方佣金 ¥12,000.00）" in zh.text
    assert "by 2026-01-17 00:30 Beijing time" in en.text and "¥1,112,000.00" in en.text
    assert "王小明，您好：" in zh.text and "https://ipx.example.cn/lots/LOT-2026-000123" in zh.text
    assert '<a href="https://ipx.example.cn/lots/LOT-2026-000123">' in zh.html
    out = render(
        "outbid", "en", payload=PAYLOADS["outbid"], lot=LOT, name=None, base_url="https://x"
    )
    assert out.subject == "You have been outbid on LOT-2026-000123: now ¥1,200,000.00"
    assert "2026-01-06 10:05 Beijing time" in out.text


def test_ending_soon_tells_the_current_end_and_price() -> None:
    moved = {
        **LOT,
        "bidding_ends_at": datetime(2026, 1, 6, 2, 7, tzinfo=UTC),
        "current_price_fen": 125_000_000,
    }
    r = render(
        "ending_soon",
        "zh",
        payload=PAYLOADS["ending_soon"],
        lot=moved,
        name=None,
        base_url="https://x",
    )
    assert r.subject == "即将结束：LOT-2026-000123 将于 2026-01-06 10:07 结束竞价"
    assert "当前价为 ¥1,250,000.00" in r.text
    sealed = render(
        "ending_soon",
        "en",
        payload={**PAYLOADS["ending_soon"], "price_fen": None},
        lot=LOT,
        name=None,
        base_url="https://x",
    )
    assert "price" not in sealed.text  # a sealed auction's price is not told


def test_a_monitoring_flag_names_its_kind_and_legal_status_in_words() -> None:
    payload = {
        **PAYLOADS["monitoring_flag"],
        "kind": "annuity_grace",
        "detail": {
            "annuity_paid_through": "2026-01-01",
            "grace_ends_on": "2026-07-01",
            "legal_status": "lapsed",
        },
    }
    zh = render("monitoring_flag", "zh", payload=payload, lot=None, name=None, base_url="https://x")
    assert zh.subject == "质押物监测提示：ZL201910000001.2 一种正极材料 年费逾期（滞纳期内）"
    assert "年费已缴至 2026-01-01，滞纳期至 2026-07-01。法律状态：失效。" in zh.text
    en = render("monitoring_flag", "en", payload=payload, lot=None, name=None, base_url="https://x")
    assert en.subject.endswith("annuity overdue, in the grace period")
    assert (
        "Annuities are paid through 2026-01-01; the grace period ends 2026-07-01. "
        "Legal status: lapsed." in en.text
    )
    # A kind this exchange has no word for yet is shown as it is, never as a key.
    odd = render(
        "monitoring_flag",
        "en",
        payload={**payload, "kind": "revoked", "detail": None},
        lot=None,
        name=None,
        base_url="https://x",
    )
    assert odd.subject == "Collateral monitoring: ZL201910000001.2 一种正极材料 revoked"


def test_html_escapes_what_users_typed() -> None:
    lot = {**LOT, "title": '<script>alert("x")</script>'}
    r = render(
        "lost", "en", payload=PAYLOADS["lost"], lot=lot, name="<b>Eve</b>", base_url="https://x"
    )
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html
    assert "<b>Eve</b>" not in r.html
    assert '<script>alert("x")</script>' in r.text  # plain text is not HTML


def test_a_broken_or_missing_template_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render("no_such_event", "zh", payload={}, lot=None, name=None, base_url="https://x")
    with pytest.raises(RenderError):
        render(
            "won", "zh", payload={"price_fen": "12.00"}, lot=LOT, name=None, base_url="https://x"
        )


def test_the_email_message(settings: Settings) -> None:
    r = render("won", "zh", payload=SALE, lot=LOT, name="王小明", base_url="https://ipx.example.cn")
    at = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
    msg = build_message(settings, to="buyer@example.cn", rendered=r, outbox_id=42, sent_at=at)
    assert msg.sender == "noreply@ipx.example.cn" and msg.recipients == ("buyer@example.cn",)
    assert all(len(line) <= 78 for line in msg.raw.split(b"\r\n"))  # RFC 5322 2.1.1
    parsed = message_from_bytes(msg.raw, policy=policy.default)
    assert not parsed.defects
    assert parsed["Subject"] == r.subject  # RFC 2047-encoded and back
    assert parsed["From"] == settings.mail_from and parsed["To"] == "buyer@example.cn"
    assert parsed["Date"].datetime == at
    assert parsed["Message-ID"] == message_id(42, "buyer@example.cn", settings.mail_from)
    assert re.fullmatch(r"<outbox-42\.[0-9a-f]{16}@ipx\.example\.cn>", parsed["Message-ID"])
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in parsed.iter_parts())
    assert text == r.text and html == r.html
    # A display name in Chinese is encoded too.
    zh_from = msgspec.structs.replace(settings, mail_from="知识产权交易所 <noreply@ipx.cn>")
    again = build_message(zh_from, to="b@x.cn", rendered=r, outbox_id=1, sent_at=at)
    assert (
        message_from_bytes(again.raw, policy=policy.default)["From"]
        == "知识产权交易所 <noreply@ipx.cn>"
    )
    # Stable per notification and address, different across either.
    assert message_id(42, "a@x.cn", "X <n@ipx.cn>") == message_id(42, "a@x.cn", "X <n@ipx.cn>")
    assert message_id(42, "a@x.cn", "n@ipx.cn") != message_id(42, "b@x.cn", "n@ipx.cn")
    assert message_id(42, "a@x.cn", "n@ipx.cn") != message_id(43, "a@x.cn", "n@ipx.cn")
    assert mail_domain("IP Exchange <noreply@ipx.example.cn>") == "ipx.example.cn"


def test_smtp_failures_are_classified() -> None:
    import aiosmtplib

    assert isinstance(
        classify(aiosmtplib.SMTPResponseException(550, "no such user")), TerminalDeliveryError
    )
    assert isinstance(
        classify(aiosmtplib.SMTPResponseException(451, "try later")), TransientDeliveryError
    )
    assert isinstance(classify(aiosmtplib.SMTPServerDisconnected("gone")), TransientDeliveryError)
    assert isinstance(classify(ConnectionRefusedError()), TransientDeliveryError)
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "unknown", "x@y.cn")]
    )
    assert isinstance(classify(refused), TerminalDeliveryError)
