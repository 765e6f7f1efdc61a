"""Gives messages that hold no readable Chinese or English text their own intent."""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

# Han ideographs (incl. extension A), Latin letters or digits: what the bot can read.
_READABLE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]")
# Letters of other scripts (Cyrillic, Arabic, kana, Hangul, ...): \w minus digits, "_", Han, Latin.
_OTHER_LETTER = re.compile(r"[^\W\d_\u3400-\u4dbf\u4e00-\u9fffA-Za-z]")


UNREADABLE_INTENT = "unreadable_input"
"""The intent given to messages without readable text (domain.yml, rules/fallback.yml)."""
PUNCTUATION_INTENT = "punctuation"
"""The intent of a message of question marks or dots only ("?", "？？", "。。。"): the customer
is puzzled or waiting, which calls for "what is unclear?", not for "please write text"."""
_ONLY_PUNCTUATION = re.compile(r"^[\s?？!！.。…,，~～]*[?？.。…]+[\s?？!！.。…,，~～]*$")


def is_unreadable(text: str) -> bool:
    """True for empty, emoji- or punctuation-only text, and text mostly in another script.

    Digits are readable: a bare order number or a rating must reach the dialogue.

    A Han character counts like a three-letter word when weighing scripts against each other.
    """
    readable = sum(3 if "\u3400" <= ch <= "\u9fff" else 1 for ch in _READABLE.findall(text))
    if readable == 0:
        return True
    return len(_OTHER_LETTER.findall(text)) > readable


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class InputGuard(GraphComponent):
    """Overrides the intent with `unreadable_input` (confidence 1) for unreadable input.

    Question marks or dots alone get `punctuation` instead.

    Place it last in the pipeline. The bot then asks for a text message in Chinese or
    English instead of guessing an intent from emoji or a foreign script.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> InputGuard:
        """Creates the component (it has no state)."""
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Replaces the intent of unreadable messages (intent payloads like `/greet` pass)."""
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/") or not is_unreadable(text):
                continue
            name = PUNCTUATION_INTENT if _ONLY_PUNCTUATION.match(text) else UNREADABLE_INTENT
            intent = {
                INTENT_NAME_KEY: name,
                PREDICTED_CONFIDENCE_KEY: 1.0,
            }
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages
