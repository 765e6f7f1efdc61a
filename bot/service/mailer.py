"""The emailed need confirmation (需求确认函): the letter, and sending it over SMTP.

`confirmation_letter` is pure: it renders a stored `ServiceRecord` (and its ticket) as a
letter in the record's language (English for `en*`, Chinese otherwise). `send_letter` sends
it with aiosmtplib as configured by the `KEFU_SMTP_*` settings; with `KEFU_SMTP_HOST`
empty (local runs) it sends nothing and returns False. `send_mail` sends any email the same
way: plain text, optionally an HTML alternative with inline images, and attachments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from bot.core.db.models import ServiceRecord, Ticket
from bot.core.settings import Settings


@dataclass(frozen=True)
class ConfirmationLetter:
    """A need confirmation ready to send: recipient (may be empty), subject and plain text."""

    to: str
    subject: str
    text: str


@dataclass(frozen=True)
class MailPart:
    """A file sent with an email: attached, or shown in the HTML body when `cid` is set.

    The HTML refers to an inline part as `<img src="cid:<cid>">`.
    """

    filename: str
    content: bytes
    mime_type: str
    cid: str | None = None


class MailError(RuntimeError):
    """An email could not be sent (bad address, SMTP refusal, connection failure, timeout)."""


_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII,
)


def is_valid_email(text: str) -> bool:
    """A conservative address check: ASCII `local@domain.tld`, no blanks, at most 254 chars."""
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        return False
    return len(text.rpartition("@")[0]) <= 64


_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "需求确认函",
        "ticket": "工单",
        "greeting": "您好，",
        "intro": "感谢您联系我们。以下是我们记录的您的需求，请核对：",
        "ticket_number": "工单号",
        "category": "类别",
        "urgency": "优先级",
        "order_number": "订单号",
        "product": "商品",
        "needs": "【您的需求】",
        "spin": "【情况说明】",
        "situation": "现状",
        "problem": "问题",
        "since": "自 {date} 起",
        "implication": "影响",
        "need_payoff": "期望的解决方式",
        "preferences": "【联系偏好】",
        "contact_channel": "联系方式",
        "contact_time": "联系时间",
        "language": "沟通语言",
        "special_requests": "【特别要求】",
        "due": "预计处理时限",
        "next_step": "下一步",
        "skipped": "未提供（您选择了跳过）",
        "none": "（无）",
        "correct": "如有不符，请在与客服的对话中告诉我们，我们会及时更正。",
        "footer": "此邮件由 Kefu 客服系统自动发送，请勿直接回复。",
        "separator": "；",
    },
    "en": {
        "title": "Need confirmation",
        "ticket": "ticket",
        "greeting": "Hello,",
        "intro": "Thank you for contacting us. This is what we recorded about your request:",
        "ticket_number": "Ticket number",
        "category": "Category",
        "urgency": "Priority",
        "order_number": "Order number",
        "product": "Product",
        "needs": "[Your needs]",
        "spin": "[What happened]",
        "situation": "Situation",
        "problem": "Problem",
        "since": "since {date}",
        "implication": "Impact",
        "need_payoff": "Resolution you want",
        "preferences": "[How to reach you]",
        "contact_channel": "Contact channel",
        "contact_time": "Contact time",
        "language": "Language",
        "special_requests": "[Special requests]",
        "due": "Expected handling time",
        "next_step": "Next step",
        "skipped": "not provided (you skipped this question)",
        "none": "(none)",
        "correct": "If anything is wrong, tell us in the chat and we will correct it.",
        "footer": "Kefu customer service sent this email automatically; please do not reply.",
        "separator": "; ",
    },
}

_VALUES: dict[str, dict[str, str]] = {
    "zh": {
        "complaint": "投诉",
        "urgent": "紧急",
        "problem": "问题反馈",
        "logistics": "物流",
        "returns": "退换货",
        "normal": "普通",
        "consultation": "咨询",
        "refund": "退款",
        "replacement": "换货",
        "repair": "维修",
        "information": "了解信息",
        "call_back": "回电",
        "phone": "电话",
        "email": "邮件",
        "chat": "在线对话",
        "web": "网页对话",
        "wechat": "微信",
        "telegram": "Telegram",
        "sms": "短信",
        "zh": "中文",
        "en": "英文",
    },
    "en": {
        "complaint": "complaint",
        "urgent": "urgent",
        "problem": "problem report",
        "logistics": "delivery",
        "returns": "returns and exchanges",
        "normal": "normal",
        "consultation": "consultation",
        "refund": "refund",
        "replacement": "replacement",
        "repair": "repair",
        "information": "information",
        "call_back": "call back",
        "phone": "phone",
        "email": "email",
        "chat": "chat",
        "web": "web chat",
        "wechat": "WeChat",
        "telegram": "Telegram",
        "sms": "text message",
        "zh": "Chinese",
        "en": "English",
    },
}


def _letter_language(language: str) -> str:
    return "en" if language.lower().startswith("en") else "zh"


def confirmation_letter(
    record: ServiceRecord, ticket: Ticket | None, due_text: str, next_step: str
) -> ConfirmationLetter:
    """The need confirmation of `record` in its language, addressed to `record.email` (or "").

    It lists the ticket number, category and priority, order and product, need points, SPIN
    answers (declined ones marked as such), contact preferences, special requests, the due
    time (`due_text`, already worded for the customer) and the next step.
    """
    lang = _letter_language(record.language)
    label = _LABELS[lang]
    values = _VALUES[lang]

    def term(value: str) -> str:
        return values.get(value, value)

    def line(key: str, value: str | None) -> list[str]:
        return (
            [f"{label[key]}：{value}" if lang == "zh" else f"{label[key]}: {value}"]
            if value
            else []
        )

    def spin(key: str, value: str | None, render: Callable[[str], str] = str) -> list[str]:
        if value and value.strip():
            return line(key, render(value.strip()))
        return line(key, label["skipped"]) if key in record.skipped else []

    problem = record.problem
    if problem and record.problem_since is not None:
        since = label["since"].format(date=record.problem_since.isoformat())
        problem = f"{problem}（{since}）" if lang == "zh" else f"{problem} ({since})"
    implication = label["separator"].join(
        item.strip() for item in [record.implication or "", *record.impacts] if item.strip()
    )
    preferences = record.preferences

    body: list[str] = [label["greeting"], "", label["intro"], ""]
    body += line("ticket_number", ticket.number if ticket else None)
    body += line("category", term(record.category))
    body += line("urgency", term(record.urgency.value))
    body += line("order_number", record.order_number)
    body += line("product", record.product)
    body += ["", label["needs"]]
    body += [f"{n}. {point}" for n, point in enumerate(record.need_points, 1)] or [label["none"]]
    body += ["", label["spin"]]
    body += spin("situation", record.situation)
    body += spin("problem", problem)
    body += spin("implication", implication)
    body += spin("need_payoff", record.need_payoff, term)
    body += ["", label["preferences"]]
    body += line("contact_channel", term(preferences.get("contact_channel", "")))
    body += line("contact_time", preferences.get("contact_time"))
    body += line("language", term(preferences.get("language", "")))
    if record.special_requests:
        body += ["", label["special_requests"], *(f"- {r}" for r in record.special_requests)]
    body += [""]
    body += line("due", due_text)
    body += line("next_step", next_step)
    body += ["", label["correct"], "", label["footer"]]

    subject = label["title"]
    if ticket is not None:
        subject = f"{subject} · {label['ticket']} {ticket.number}"
    return ConfirmationLetter(to=record.email or "", subject=subject, text="\n".join(body) + "\n")


def _message(settings: Settings, letter: ConfirmationLetter) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = letter.to
    message["Subject"] = letter.subject
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=settings.smtp_sender.rpartition("@")[2] or None)
    message.set_content(letter.text, charset="utf-8")
    return message


async def send_letter(settings: Settings, letter: ConfirmationLetter) -> bool:
    """Sends the letter; False when `smtp_host` is empty (email copies are off).

    Raises `MailError` for an invalid recipient, a refusal by the SMTP server, a connection
    failure or a timeout (`smtp_timeout_seconds` per operation).
    """
    if not settings.smtp_host:
        return False
    if not is_valid_email(letter.to):
        raise MailError(f"Not a valid email address: {letter.to!r}.")
    try:
        message = _message(settings, letter)
    except ValueError as error:
        raise MailError(f"Could not build the email to {letter.to}: {error}") from error
    await _deliver(settings, message, letter.to, letter.subject)
    return True


async def send_mail(
    settings: Settings,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[MailPart] = (),
) -> bool:
    """Sends an email to one address; False when `smtp_host` is empty (email is off).

    `text` is the plain-text body; `html`, if given, the rich alternative, showing the
    `attachments` that have a `cid` inline; the others are attached. Raises `MailError`
    like `send_letter`.
    """
    if not settings.smtp_host:
        return False
    if not is_valid_email(to):
        raise MailError(f"Not a valid email address: {to!r}.")
    try:
        message = _message(settings, ConfirmationLetter(to=to, subject=subject, text=text))
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
            body = message.get_body(preferencelist=("html",))
            if body is None:  # pragma: no cover - add_alternative just added it
                raise ValueError("the HTML part is missing")
            for part in (part for part in attachments if part.cid):
                maintype, _, subtype = part.mime_type.partition("/")
                body.add_related(
                    part.content, maintype, subtype, cid=f"<{part.cid}>", filename=part.filename
                )
        for part in (part for part in attachments if html is None or not part.cid):
            maintype, _, subtype = part.mime_type.partition("/")
            message.add_attachment(part.content, maintype, subtype, filename=part.filename)
    except ValueError as error:
        raise MailError(f"Could not build the email to {to}: {error}") from error
    await _deliver(settings, message, to, subject)
    return True


async def _deliver(settings: Settings, message: EmailMessage, to: str, subject: str) -> None:
    """Hands `message` to the configured SMTP server (MailError on any failure)."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise MailError(f"Could not send {subject!r} to {to} via SMTP {where}: {error}") from error
