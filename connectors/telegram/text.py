"""What the Telegram channel does to texts: meaning for Rasa, splitting, fixed replies.

Plain functions without I/O: `/start` greets and nothing else names a Rasa intent; long
answers are cut under Telegram's 4,096 UTF-16 code units.
"""

from __future__ import annotations

import re

MAX_TEXT_UNITS = 4096
"""Telegram's limit on one message's text (counted in UTF-16 code units)."""

NON_TEXT_REPLY = (
    "抱歉，我目前只能看懂文字消息，请用文字描述您的问题。\n"
    "Sorry, I can only read text messages: please type your question."
)
EXPIRED_OPTION_REPLY = (
    "这个选项已经过期了，请重新告诉我您需要什么帮助。\n"
    "This option has expired: please tell me again what you need."
)
BUTTONS_FALLBACK_TEXT = "请选择 / Please choose:"

_START = re.compile(r"^/start(?:@\w+)?(?:\s|$)", re.IGNORECASE)
_COMMAND = re.compile(r"^/(\w+)(?:@\w+)?(?=\s|$)")


def text_for_rasa(text: str) -> str:
    """What a customer's text means to Rasa: `/start` greets, nothing else names an intent.

    `/start`, `/start payload` and `/start@Bot` become `/greet`; other commands lose their
    slash and bot name (`/help@Bot` -> `help`); any other leading slash is dropped, so a
    customer cannot send Rasa intents such as `/order_status` or `/choose{...}`.
    """
    if _START.match(text):
        return "/greet"
    command = _COMMAND.match(text)
    if command:
        text = command.group(1) + text[command.end() :]
    while text.startswith("/"):
        text = text[1:].lstrip()
    return text


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """`text` in parts Telegram accepts, cut at a line break or space where one is near."""
    parts: list[str] = []
    rest = text.strip()
    while _utf16_units(rest) > limit:
        cut = _fitting_chars(rest, limit)
        space = max(rest.rfind("\n", 0, cut), rest.rfind(" ", 0, cut))
        if space > cut // 2:
            cut = space
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_chars(text: str, limit: int) -> int:
    """How many leading characters of `text` fit in `limit` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)
