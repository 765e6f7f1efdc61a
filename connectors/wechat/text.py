"""What the WeChat channel does to texts: byte-limited splitting, numbered options, fixed replies.

Plain functions without I/O; the webhook and the output channels put them to work.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

MAX_TEXT_BYTES = 2048
"""WeChat's limit for one text message (passive reply or customer-service message), in UTF-8."""

OPTIONS_HINT = "回复数字选择 / Reply with a number"

UNSUPPORTED_MESSAGE = (
    "抱歉，我暂时只能看懂文字消息，请用文字描述您的问题。\n"
    "Sorry, I can only read text messages for now: please type your question."
)
UNHEARD_VOICE = (
    "抱歉，这条语音我没有听清，请用文字再说一遍。\n"
    "Sorry, I couldn't make out that voice message: please type it instead."
)
UNKNOWN_MENU_ITEM = (
    "抱歉，这个菜单项暂时不可用，请直接输入您的问题。\n"
    "Sorry, that menu item isn't available: please type your question."
)
SYSTEM_BUSY = {
    "zh": "抱歉，系统正忙，刚才这条消息没能及时处理。您写的内容都已记下：可以稍后再发一次，"
    "也可以直接留言，或回复“转人工”请人工客服联系您。",
    "en": "Sorry, our system is busy and couldn't handle your message just now. What you wrote "
    "is kept: try again in a moment, leave a message, or reply “talk to a human” and a person "
    "will get back to you.",
}
"""The reply when the bot failed on a message (the domain's `utter_system_busy`, as text)."""

_BOUNDARIES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\n\s*\n"),  # paragraphs
    re.compile(r"\n"),  # lines
    re.compile(r"(?<=[。！？!?；;…])|(?<=\.)\s"),  # sentences
    re.compile(r"(?<=[，,、：:])|\s"),  # clauses and words
)
_NUMBER = re.compile(r"^[0-9]{1,3}$")


def utf8_len(text: str) -> int:
    """The length of `text` in UTF-8 bytes."""
    return len(text.encode("utf-8"))


def _fitting_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-8 bytes (never half a character)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _cut(window: str) -> int:
    """Where to end the piece taken from `window`: the last good boundary, else its end."""
    for boundary in _BOUNDARIES:
        ends = [match.end() for match in boundary.finditer(window)]
        good = [end for end in ends if end >= len(window) // 3]
        if good:
            return good[-1]
    return len(window)


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Splits `text` into pieces of at most `limit` UTF-8 bytes.

    Cuts prefer paragraph, then line, then sentence, then word boundaries, and never split
    a multi-byte character. Blank pieces are dropped.
    """
    if limit < 4:
        raise ValueError("The limit must hold at least one character (4 bytes).")
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if utf8_len(rest) <= limit:
            pieces.append(rest)
            break
        window = _fitting_prefix(rest, limit)
        end = _cut(window)
        piece, rest = rest[:end].strip(), rest[end:].strip()
        if piece:
            pieces.append(piece)
    return pieces


def join_messages(texts: Iterable[str]) -> str:
    """The bot's messages as one text, separated by blank lines."""
    return "\n\n".join(text.strip() for text in texts if text and text.strip())


def number_options(text: str, buttons: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """Renders buttons as numbered lines; returns the text and the payload of each number.

    `("请选择", [{"title": "查订单", "payload": "/order_status"}])` gives the text
    "请选择", "1. 查订单" and `OPTIONS_HINT` on three lines, and `["/order_status"]`.
    """
    lines = [text.strip()] if text and text.strip() else []
    payloads: list[str] = []
    for button in buttons:
        title = str(button.get("title") or button.get("payload") or "").strip()
        payload = str(button.get("payload") or title).strip()
        if not title:
            continue
        payloads.append(payload)
        lines.append(f"{len(payloads)}. {title}")
    if payloads:
        lines.append(OPTIONS_HINT)
    return "\n".join(lines), payloads


def chosen_number(text: str) -> int | None:
    """The number a reply consists of (ASCII or full-width digits, spaces allowed), else None."""
    normalized = unicodedata.normalize("NFKC", text).strip()
    return int(normalized) if _NUMBER.match(normalized) else None


def chosen_payload(text: str, payloads: Sequence[str]) -> str | None:
    """The payload of the option the customer's reply picks, or None (not a number in range)."""
    number = chosen_number(text)
    if number is None or not 1 <= number <= len(payloads):
        return None
    return payloads[number - 1]
