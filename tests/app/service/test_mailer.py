import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from bot.core.db import ServiceRecord, Ticket
from bot.core.settings import Settings
from bot.service.mailer import (
    ConfirmationLetter,
    MailError,
    confirmation_letter,
    is_valid_email,
    send_letter,
)
from bot.service.tickets import TicketStore
from tests.app.conftest import NOW, draft

DUE_ZH = "2026年11月23日 17:30 前"
NEXT_ZH = "客服专员将在 2 小时内电话联系您"


class Collector:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield collector, controller.port
    finally:
        controller.stop()


def settings(tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "var_dir": tmp_path,
        "smtp_host": "127.0.0.1",
        "smtp_port": 25,
        "smtp_sender": "kefu@shop.example",
        "smtp_timeout_seconds": 5,
    }
    values.update(changes)
    return Settings(**values)


def stored(engine: Engine, **changes: Any) -> tuple[ServiceRecord, Ticket]:
    store = TicketStore(engine)
    values: dict[str, Any] = {
        "email": "li@example.com",
        "special_requests": ["请先电话联系再上门"],
        "need_points": ["更换一副新耳机", "承担退回运费"],
    }
    values.update(changes)
    record_id = store.save_record(draft(**values))
    ticket = store.confirm(record_id, at=NOW)
    record = store.get_record(record_id)
    assert record is not None
    return record, ticket


def test_chinese_letter_lists_the_whole_need(engine: Engine) -> None:
    record, ticket = stored(engine, skipped=["implication"], implication=None, impacts=[])
    letter = confirmation_letter(record, ticket, DUE_ZH, NEXT_ZH)
    assert letter.to == "li@example.com"
    assert letter.subject == "需求确认函 · 工单 TK202611220001"
    for expected in (
        "工单号：TK202611220001",
        "类别：投诉",
        "订单号：KF202611200001",
        "商品：AuraSound X2 主动降噪耳机",
        "1. 更换一副新耳机",
        "2. 承担退回运费",
        "现状：上周收到耳机",
        "问题：左耳没有声音（自 2026-11-20 起）",
        "影响：未提供（您选择了跳过）",
        "期望的解决方式：换货",
        "联系方式：电话",
        "联系时间：工作日晚上",
        "沟通语言：中文",
        "- 请先电话联系再上门",
        f"预计处理时限：{DUE_ZH}",
        f"下一步：{NEXT_ZH}",
    ):
        assert expected in letter.text, expected


def test_english_letter(engine: Engine) -> None:
    record, ticket = stored(
        engine,
        language="en",
        need_payoff="refund",
        need_points=["Refund the full price"],
        special_requests=[],
        preferences={"contact_channel": "email", "contact_time": "any time", "language": "en"},
    )
    letter = confirmation_letter(record, ticket, "by 23 Nov 17:30", "An agent will email you.")
    assert letter.subject == "Need confirmation · ticket TK202611220001"
    for expected in (
        "Ticket number: TK202611220001",
        "1. Refund the full price",
        "Impact: 无法通勤时使用; 工作受影响",
        "Resolution you want: refund",
        "Contact channel: email",
        "Language: English",
        "Expected handling time: by 23 Nov 17:30",
        "Next step: An agent will email you.",
    ):
        assert expected in letter.text, expected
    assert "[Special requests]" not in letter.text


def test_letter_without_ticket_or_email(engine: Engine) -> None:
    record, _ = stored(engine, email=None)
    letter = confirmation_letter(record, None, DUE_ZH, NEXT_ZH)
    assert (letter.to, letter.subject) == ("", "需求确认函")
    assert "工单号" not in letter.text


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("li@example.com", True),
        ("first.last+kefu@mail.shop.cn", True),
        ("a_b-c@sub-domain.example.org", True),
        ("", False),
        ("li", False),
        ("li@example", False),
        ("li@@example.com", False),
        ("li @example.com", False),
        (" li@example.com", False),
        ("li@example.com\nBcc: x@y.com", False),
        (".li@example.com", False),
        ("li..wang@example.com", False),
        ("li@-example.com", False),
        ("li@example..com", False),
        ("李@example.com", False),
        ("x" * 65 + "@example.com", False),
        ("li@" + "a" * 250 + ".com", False),
    ],
)
def test_is_valid_email(text: str, valid: bool) -> None:
    assert is_valid_email(text) is valid


async def test_send_letter_delivers_utf8(
    engine: Engine, tmp_path: Path, smtp: tuple[Collector, int]
) -> None:
    collector, port = smtp
    record, ticket = stored(engine)
    letter = confirmation_letter(record, ticket, DUE_ZH, NEXT_ZH)
    assert await send_letter(settings(tmp_path, smtp_port=port), letter) is True
    [envelope] = collector.envelopes
    assert envelope.mail_from == "kefu@shop.example"
    assert envelope.rcpt_tos == ["li@example.com"]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "需求确认函 · 工单 TK202611220001"
    assert message["To"] == "li@example.com"
    assert message.get_content_charset() == "utf-8"
    body = message.get_content()
    assert "1. 更换一副新耳机" in body
    assert f"下一步：{NEXT_ZH}" in body


async def test_send_letter_without_host_sends_nothing(tmp_path: Path) -> None:
    letter = ConfirmationLetter(to="li@example.com", subject="s", text="t")
    assert await send_letter(settings(tmp_path, smtp_host=""), letter) is False


async def test_refused_connection_raises_mail_error(tmp_path: Path) -> None:
    letter = ConfirmationLetter(to="li@example.com", subject="需求确认函", text="正文")
    closed_port = free_port()
    with pytest.raises(MailError, match=f"127.0.0.1:{closed_port}"):
        await send_letter(settings(tmp_path, smtp_port=closed_port), letter)


async def test_invalid_recipient_raises_mail_error(tmp_path: Path) -> None:
    letter = ConfirmationLetter(to="not an address", subject="s", text="t")
    with pytest.raises(MailError, match="Not a valid email address"):
        await send_letter(settings(tmp_path), letter)
