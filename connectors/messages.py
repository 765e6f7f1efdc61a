"""Customer text normalisation shared by every channel: one place decides the limits."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import UserMessage

from rasa_addons.nlu.language import detect_language

MAX_MESSAGE_CHARS = 1000
"""Longer messages are cut to this many characters; the bot then says so."""

MAX_SENDER_ID_CHARS = 128
TRUNCATION_METADATA_KEY = "kefu_truncated_from"
"""Metadata key carrying the original length of a truncated message."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENDER_ID = re.compile(rf"^[A-Za-z0-9_.:@-]{{1,{MAX_SENDER_ID_CHARS}}}$")


@dataclass(frozen=True)
class PreparedText:
    """Customer text ready for Rasa, with the original length if it was cut."""

    text: str
    truncated_from: int | None = None

    def metadata(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Returns `base` metadata plus the truncation marker when the text was cut."""
        metadata = dict(base or {})
        metadata.pop(TRUNCATION_METADATA_KEY, None)
        if self.truncated_from is not None:
            metadata[TRUNCATION_METADATA_KEY] = self.truncated_from
        return metadata


def prepare_text(raw: str) -> PreparedText:
    """NFC-normalises, drops control characters and cuts the text at `MAX_MESSAGE_CHARS`."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", raw)).strip()
    if len(text) <= MAX_MESSAGE_CHARS:
        return PreparedText(text)
    return PreparedText(text[:MAX_MESSAGE_CHARS], truncated_from=len(text))


def is_valid_sender_id(value: Any) -> bool:
    """True for a short id of letters, digits and `_.:@-`, safe to log and store."""
    return isinstance(value, str) and bool(_SENDER_ID.match(value))


def namespaced_sender(channel: str, platform_id: str) -> str:
    """The Rasa sender id of a platform user: `<channel>:<platform id>` (e.g. `wechat:o6_b`)."""
    return f"{channel}:{platform_id}"


def platform_id(channel: str, sender_id: str) -> str:
    """The platform's own id of a Rasa sender (`wechat:o6_b` -> `o6_b`); bare ids pass as is."""
    return str(sender_id).removeprefix(f"{channel}:")


ALLOWED_METADATA_KEYS = frozenset({"channel"})
"""Client metadata keys kept (the web widget's `customData.channel`); others are dropped.

Kefu's actions read no client metadata; the desk trusts `metadata.kefu` on bot events, so
clients must never be able to set arbitrary keys.
"""
MAX_METADATA_BYTES = 1024
MAX_METADATA_VALUE_CHARS = 64


class MetadataTooLarge(ValueError):
    """The client's metadata object is over `MAX_METADATA_BYTES` as JSON."""


def allowed_metadata(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The whitelisted, short scalar entries of client metadata (never stored as given).

    Raises `MetadataTooLarge` when the object is over `MAX_METADATA_BYTES` as UTF-8 JSON.
    """
    if not raw:
        return {}
    size = len(json.dumps(raw, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(f"metadata is {size} bytes; at most {MAX_METADATA_BYTES}")
    return {
        key: value
        for key, value in raw.items()
        if key in ALLOWED_METADATA_KEYS
        and isinstance(value, (str, int, float, bool))
        and len(str(value)) <= MAX_METADATA_VALUE_CHARS
    }


TRUNCATION_NOTICES = {
    "zh": "您的消息较长（{length} 字），我先阅读了前 {limit} 字。",
    "en": "Your message was long ({length} characters); I read the first {limit:,}.",
}


def truncation_notice(text: str, original_length: int) -> str:
    """The notice for a cut message, in the message's language (Chinese when unclear)."""
    language = detect_language(text) or "zh"
    return TRUNCATION_NOTICES[language].format(length=original_length, limit=MAX_MESSAGE_CHARS)


def announcing_truncation(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
) -> Callable[[UserMessage], Awaitable[Any]]:
    """Wraps Rasa's message handler: a cut message first gets the notice on its own channel."""

    async def handle(message: UserMessage) -> Any:
        original_length = (message.metadata or {}).get(TRUNCATION_METADATA_KEY)
        if isinstance(original_length, int) and message.output_channel is not None:
            notice = truncation_notice(message.text or "", original_length)
            await message.output_channel.send_text_message(message.sender_id, notice)
        return await on_new_message(message)

    return handle
