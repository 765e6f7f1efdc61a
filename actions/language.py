"""The customer's language, decided per message, and the notice for truncated messages."""

from __future__ import annotations

import re
from typing import Any, Literal

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

Language = Literal["zh", "en"]
LANGUAGE_SLOT = "language"
TRUNCATION_METADATA_KEY = "kefu_truncated_from"
"""Set by every channel in connectors/ when it cut a long message (connectors/messages.py)."""

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]+(?![A-Za-z0-9])")
"""Latin words; letters glued to digits (order numbers like KF2026...) are no evidence."""


def detect_language(text: str) -> Language | None:
    """Chinese when Han characters outnumber Latin words, English when only Latin words, else None.

    A Han character carries about as much as an English word, so "我的order到哪了" is Chinese
    and "where is my 耳机 order" is English. Emoji, digits or other scripts give None.
    """
    han = len(_HAN.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    if han == 0 and latin_words == 0:
        return None
    return "zh" if han >= latin_words else "en"


class ActionDetectLanguage(Action):
    """Fills the `language` slot from each customer message (its custom slot mapping)."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_detect_language"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Sets the slot when the message's language differs from the current one.

        Intent payloads (`/greet`, button clicks) say nothing about the language.
        """
        text = tracker.latest_message.get("text") or ""
        language = None if text.startswith("/") else detect_language(text)
        if language is None or language == tracker.get_slot(LANGUAGE_SLOT):
            return []
        return [SlotSet(LANGUAGE_SLOT, language)]


class ActionAnnounceTruncation(Action):
    """Tells the customer that a long message was cut.

    Rasa calls `action_validate_slot_mappings` after every slot extraction, with the
    language slot already updated, so the notice comes in the customer's language and
    before the answer.
    """

    def name(self) -> str:
        """Rasa's per-turn slot validation hook."""
        return "action_validate_slot_mappings"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[dict[str, Any]]:
        """Utters `utter_message_truncated` when the channel marked the message as cut."""
        metadata = tracker.latest_message.get("metadata") or {}
        original_length = metadata.get(TRUNCATION_METADATA_KEY)
        if isinstance(original_length, int):
            dispatcher.utter_message(
                response="utter_message_truncated", original_length=original_length
            )
        return []
