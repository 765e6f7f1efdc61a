"""The handoff policy: when the bot hands a conversation to a person, and reading negative words.

Non-programmers edit `data/service/handoff.yml`; `load_handoff_policy` validates it and names
every mistake as `file:line: place: message` (read by `bot.core.data_file`). `is_negative` and
`negative_streak` are pure functions of a loaded policy: callers load it once and pass it in.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from bot.core.data_file import Loc, Problem, Section, load_data_file, place_text
from bot.core.settings import PROJECT_ROOT
from bot.service.policy import Keywords, KeywordText, Name
from bot.service.reading import normalise


class HandoffPolicyError(ValueError):
    """Invalid handoff policy file; each line is "file:line: place: message" for one mistake."""


class HandoffReason(str, enum.Enum):
    """Why a conversation went to an agent (stored with the handoff)."""

    explicit_request = "explicit_request"
    consecutive_misses = "consecutive_misses"
    major_complaint = "major_complaint"
    urgent_tier = "urgent_tier"
    negative_sentiment = "negative_sentiment"
    vip_customer = "vip_customer"
    correction_limit = "correction_limit"

    def label(self, language: str | None = None) -> str:
        """The reason in words: Chinese for "zh…", English for other languages, both for None."""
        zh, en = _REASON_LABELS[self]
        if language is None:
            return f"{zh} · {en}"
        return zh if language.lower().startswith("zh") else en


_REASON_LABELS: dict[HandoffReason, tuple[str, str]] = {
    HandoffReason.explicit_request: ("客户要求人工", "Customer asked for a person"),
    HandoffReason.consecutive_misses: (
        "机器人连续未能解答",
        "The bot missed several times in a row",
    ),
    HandoffReason.major_complaint: ("重大投诉", "Major complaint"),
    HandoffReason.urgent_tier: ("紧急诉求", "Urgent need"),
    HandoffReason.negative_sentiment: ("客户情绪激动", "Customer is upset"),
    HandoffReason.vip_customer: ("VIP 客户", "VIP customer"),
    HandoffReason.correction_limit: ("多次更正仍未确认", "Too many corrections"),
}


def reason_label(value: str, language: str | None = None) -> str:
    """The label of a stored reason ("客户要求人工 · Customer asked for a person").

    An unknown value (e.g. from a newer version) is shown as it is.
    """
    try:
        return HandoffReason(value).label(language)
    except ValueError:
        return value


# ---------------------------------------------------------------------------------------------
# The handoff policy file

Count = Annotated[StrictInt, Field(ge=1)]
"""A whole number, at least 1."""


def _none_as_empty(value: Any) -> Any:
    return () if value is None else value


class ExplicitRequest(Section):
    """The intents with which a customer asks for a person."""

    intents: tuple[Name, ...]

    @field_validator("intents", mode="before")
    @classmethod
    def _blank_as_empty(cls, value: Any) -> Any:
        return _none_as_empty(value)

    @field_validator("intents")
    @classmethod
    def _at_least_one(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one intent, e.g. [ask_human]")
        return value


class ConsecutiveMisses(Section):
    """Hand over after this many customer messages in a row the bot could not answer."""

    count: Count


class WordLists(Section):
    """Chinese and English words; both lists must have words."""

    zh: tuple[KeywordText, ...]
    en: tuple[KeywordText, ...]

    @field_validator("zh", "en", mode="before")
    @classmethod
    def _blank_as_empty(cls, value: Any) -> Any:
        return _none_as_empty(value)

    @field_validator("zh", "en")
    @classmethod
    def _at_least_one(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one word")
        return value


class NegativeSentiment(Section):
    """Hand over after `streak` negative customer messages in a row."""

    streak: Count
    words: WordLists
    negations: Keywords | None = None


class Vip(Section):
    """VIP customers go to an agent on their first message of a session."""

    enabled: StrictBool


class Triggers(Section):
    """What makes the bot hand a conversation to a person."""

    explicit_request: ExplicitRequest
    consecutive_misses: ConsecutiveMisses
    major_complaint: StrictBool
    urgent_tier: StrictBool
    negative_sentiment: NegativeSentiment
    vip: Vip


class Queue(Section):
    """The agents' queue."""

    online_window_minutes: Count


class HandoffPolicy(Section):
    """The handoff policy file, validated."""

    version: Literal[1]
    triggers: Triggers
    queue: Queue

    @property
    def explicit_intents(self) -> tuple[str, ...]:
        """Intents with which the customer asks for a person."""
        return self.triggers.explicit_request.intents

    @property
    def miss_count(self) -> int:
        """Unanswered customer messages in a row that start a handoff."""
        return self.triggers.consecutive_misses.count

    @property
    def negative_streak_limit(self) -> int:
        """Negative customer messages in a row that start a handoff."""
        return self.triggers.negative_sentiment.streak

    @property
    def major_complaint(self) -> bool:
        """Whether a confirmed major complaint goes to an agent."""
        return self.triggers.major_complaint

    @property
    def urgent_tier(self) -> bool:
        """Whether a confirmed urgent need goes to an agent."""
        return self.triggers.urgent_tier

    @property
    def vip_enabled(self) -> bool:
        """Whether VIP customers go to an agent on their first message of a session."""
        return self.triggers.vip.enabled

    @property
    def online_window(self) -> timedelta:
        """How recently the desk must have seen an agent for them to count as online."""
        return timedelta(minutes=self.queue.online_window_minutes)


def default_handoff_path() -> Path:
    """The shipped handoff policy: `data/service/handoff.yml` in the project."""
    return PROJECT_ROOT / "data" / "service" / "handoff.yml"


def _duplicates(lists: Iterable[tuple[Loc, Sequence[str]]], what: str) -> list[Problem]:
    """Words written twice (ignoring case and width) across the lists, at the second place."""
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    for loc, words in lists:
        for index, word in enumerate(words):
            key = normalise(word).strip()
            if key in seen:
                problems.append(((*loc, index), f"{word!r} is already listed {seen[key]}"))
            else:
                seen[key] = f"under {place_text(loc)}"
    return [(loc, f"{message}; keep one {what}") for loc, message in problems]


def _check_policy(policy: HandoffPolicy) -> list[Problem]:
    """Words and intents written twice, and negative words that are also negations."""
    sentiment = policy.triggers.negative_sentiment
    base: Loc = ("triggers", "negative_sentiment")
    words: list[tuple[Loc, Sequence[str]]] = [
        ((*base, "words", "zh"), sentiment.words.zh),
        ((*base, "words", "en"), sentiment.words.en),
    ]
    problems = _duplicates(words, "word")
    problems += _duplicates(
        [(("triggers", "explicit_request", "intents"), policy.explicit_intents)], "intent"
    )
    if sentiment.negations is None:
        return problems
    negations = sentiment.negations
    problems += _duplicates(
        [((*base, "negations", "zh"), negations.zh), ((*base, "negations", "en"), negations.en)],
        "negation",
    )
    negation_words = {normalise(word).strip() for word in negations.words}
    problems.extend(
        ((*loc, index), f"{word!r} is also listed under negations; remove it from one")
        for loc, listed in words
        for index, word in enumerate(listed)
        if normalise(word).strip() in negation_words
    )
    return problems


def load_handoff_policy(path: Path | None = None) -> HandoffPolicy:
    """Reads and validates a handoff policy file (default: the shipped one).

    Raises:
        HandoffPolicyError: Every mistake, one per line, as "file:line: place: message".
    """
    return load_data_file(
        default_handoff_path() if path is None else path,
        HandoffPolicy,
        HandoffPolicyError,
        _check_policy,
    )


# ---------------------------------------------------------------------------------------------
# Negative words

_ZH_GAP = 2
"""Characters that may stand between a Chinese negation and the word it cancels ("不太满意")."""


@lru_cache(maxsize=32)
def _pattern(words: tuple[str, ...], whole_words: bool) -> re.Pattern[str]:
    """One pattern for the words (longest first); whole words only for English."""
    needles = sorted({normalise(word).strip() for word in words} - {""}, key=len, reverse=True)
    body = "|".join(re.escape(needle) for needle in needles) or r"(?!x)x"
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])" if whole_words else body)


def _zh_negated(before: str, negations: Iterable[str]) -> bool:
    """A negation ending at most `_ZH_GAP` letters before, with no punctuation between."""
    needles = [needle for word in negations if (needle := normalise(word).strip())]
    for gap in range(_ZH_GAP + 1):
        if gap and not before[-gap:].isalnum():
            return False
        head = before[: len(before) - gap]
        if any(head.endswith(needle) for needle in needles):
            return True
    return False


_LAST_WORD = re.compile(r"([a-z0-9']+) *$")


def _en_negated(before: str, negations: Iterable[str]) -> bool:
    """The word right before is a negation ("not", or "isn't" for "n't")."""
    found = _LAST_WORD.search(before)
    if not found:
        return False
    last = found[1]
    for word in negations:
        needle = normalise(word).strip()
        if needle and (last == needle or ("'" in needle and last.endswith(needle))):
            return True
    return False


def is_negative(text: str, policy: HandoffPolicy) -> bool:
    """Whether a customer message reads as negative: it has a negative word that is not negated.

    Chinese words match anywhere; English words match whole words. Upper and lower case and
    full-width letters do not matter.
    """
    sentiment = policy.triggers.negative_sentiment
    negations = sentiment.negations
    normal = normalise(text)
    checks: tuple[tuple[bool, tuple[str, ...], tuple[str, ...]], ...] = (
        (False, sentiment.words.zh, negations.zh if negations else ()),
        (True, sentiment.words.en, negations.en if negations else ()),
    )
    for english, words, negation_words in checks:
        negated = _en_negated if english else _zh_negated
        for hit in _pattern(words, english).finditer(normal):
            if not negated(normal[: hit.start()], negation_words):
                return True
    return False


def negative_streak(texts: Sequence[str], policy: HandoffPolicy) -> int:
    """How many of the latest customer messages in a row read as negative (oldest text first)."""
    streak = 0
    for text in reversed(texts):
        if not is_negative(text, policy):
            break
        streak += 1
    return streak
