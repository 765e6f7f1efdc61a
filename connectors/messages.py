"""Customer text normalisation shared by every channel: one place decides the limits."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

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
