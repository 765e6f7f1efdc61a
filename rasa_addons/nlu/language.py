"""The customer's language, decided per message, as a `language` entity (zh or en).

Detecting it inside the NLU pipeline costs microseconds; a custom slot-mapping action would
cost a round trip to the action server on every message. The `language` slot maps from this
entity, and domain.yml keeps the entity out of dialogue featurization (`ignore_entities`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

Language = Literal["zh", "en"]
LANGUAGE_ENTITY = "language"

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]+(?![A-Za-z0-9])")
"""Latin words; letters glued to digits (order numbers like KF2026...) are no evidence."""


def detect_language(text: str) -> Language | None:
    """Chinese when Han characters outnumber Latin words, English when only Latin words, else None.

    A Han character carries about as much as an English word, so "我的order到哪了" is Chinese
    and "where is my 耳机 order" is English. Emoji, digits, order numbers, intent payloads
    (`/greet`) and other scripts give None: the conversation keeps its language.
    """
    if text.startswith("/"):
        return None
    han = len(_HAN.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    if han == 0 and latin_words == 0:
        return None
    return "zh" if han >= latin_words else "en"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageDetector(GraphComponent):
    """Adds a `language` entity (`zh` or `en`) to messages whose language is clear."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        """Creates the component (it has no state)."""
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Appends the entity; messages of unclear language are left alone."""
        for message in messages:
            text = message.get(TEXT) or ""
            language = detect_language(text)
            if language is None:
                continue
            entity = {
                "entity": LANGUAGE_ENTITY,
                "value": language,
                "start": 0,
                "end": len(text),
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), entity], add_to_output=True)
        return messages
