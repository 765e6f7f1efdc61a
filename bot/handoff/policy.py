"""The handoff policy: when the bot hands a conversation to a person, and reading negative words.

Non-programmers edit `data/service/handoff.yml`; `load_handoff_policy` validates it and names
every mistake as `file:line: place: message`. `load_data_file` does the reading for any such
data file (the canned replies use it too). `is_negative` and `negative_streak` are pure
functions of a loaded policy: callers load it once and pass it in.
"""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import yaml
from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationError, field_validator
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.service_policy import (
    Keywords,
    KeywordText,
    Name,
    _describe,
    _normalise,
    _PolicyLoader,
    _Section,
    _shown,
)
from bot.settings import PROJECT_ROOT

Loc: TypeAlias = tuple[int | str, ...]
"""A place in a data file: keys and list indexes from the top."""

Problem: TypeAlias = tuple[Loc, str]
"""A mistake found after the schema passed: its place and what is wrong."""

_M = TypeVar("_M", bound=BaseModel)


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
# Reading a data file with the line of every mistake


def _yaml_document(text: str) -> tuple[Node | None, Any]:
    """The node tree (for line numbers) and the data of a YAML text."""
    loader = _PolicyLoader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _line_of(root: Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest part of `loc` found in the file."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, MappingNode):
            found = [
                (key, value)
                for key, value in node.value
                if isinstance(key, ScalarNode) and key.value == str(part)
            ]
            if not found:
                break
            key, node = found[0]
            line = key.start_mark.line + 1
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


_UNKNOWN_KEY = re.compile(r"unknown key (.+?) \((?:did you mean|allowed here)")


def _error_loc(error: ErrorDetails) -> Loc:
    """Where a pydantic error points; an unknown key (refused by `_Section`) points at the key."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    found = _UNKNOWN_KEY.match(str(error["msg"]).removeprefix("Value error, "))
    if found:
        try:
            key = ast.literal_eval(found[1])
        except (ValueError, SyntaxError):
            return loc
        return (*loc, str(key))
    return loc


def load_data_file(
    path: Path,
    model: type[_M],
    error: type[ValueError],
    check: Callable[[_M], Iterable[Problem]] | None = None,
) -> _M:
    """Reads a YAML data file into `model`; each mistake becomes a line "file:line: place: message".

    Duplicate keys and YAML syntax errors are refused (see `bot.service_policy`). `check` finds
    mistakes the schema cannot see (duplicates across a list, ...) once the schema passes.

    Raises:
        error: Every mistake found, one per line, in the order of the file.
    """
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{shown}: file not found") from None
    except UnicodeDecodeError as problem:
        raise error(f"{shown}: not UTF-8 text ({problem.reason})") from problem
    except OSError as problem:
        raise error(f"{shown}: cannot read the file ({problem.strerror})") from problem
    try:
        root, data = _yaml_document(text)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        where = f"{shown}:{mark.line + 1}" if mark else shown
        kind = "" if isinstance(problem, ConstructorError) else "YAML syntax error: "
        detail = problem.problem or problem.context or "unreadable"
        if problem.context and problem.problem:
            detail += f" ({problem.context})"
        if detail.startswith("mapping values are not allowed"):
            detail += ' (put a text that contains ": " in quotes)'
        raise error(f"{where}: {kind}{detail}") from problem
    except yaml.YAMLError as problem:
        raise error(f"{shown}: YAML syntax error: {problem}") from problem
    if data is None:
        raise error(f"{shown}: the file is empty")
    if not isinstance(data, dict):
        raise error(f"{shown}:1: must hold keys such as 'version: 1'")
    lines: list[tuple[int, str]] = []
    try:
        loaded = model.model_validate(data)
    except ValidationError as invalid:
        for details in invalid.errors():
            line = _line_of(root, _error_loc(details)) or 1
            lines.extend((line, message) for message in _explain(details))
        raise _located(error, shown, lines) from invalid
    for loc, message in check(loaded) if check else ():
        place = _place(loc)
        lines.append((_line_of(root, loc) or 1, f"{place}: {message}" if place else message))
    if lines:
        raise _located(error, shown, lines)
    return loaded


_PLAIN_WORDS = {
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list, e.g. [a, b]",
    "list_type": "must be a list, e.g. [a, b]",
    "string_too_short": "must not be empty",
}


def _explain(details: ErrorDetails) -> list[str]:
    """A pydantic error in plain words (`bot.service_policy` words the common ones)."""
    kind = details["type"]
    if kind == "too_short" and details["input"] == "":
        kind = "string_too_short"
    if kind not in _PLAIN_WORDS:
        return _describe(details)
    place = _place(tuple(part for part in details["loc"] if part != "[key]"))
    return [f"{place}: {_PLAIN_WORDS[kind]}" if place else _PLAIN_WORDS[kind]]


def _place(loc: Loc) -> str:
    place = ""
    for part in loc:
        place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else part)
    return place


def _located(error: type[ValueError], shown: str, lines: list[tuple[int, str]]) -> ValueError:
    ordered = sorted(lines, key=lambda item: item[0])
    return error("\n".join(f"{shown}:{line}: {text}" for line, text in ordered))


# ---------------------------------------------------------------------------------------------
# The handoff policy file

Count = Annotated[StrictInt, Field(ge=1)]
"""A whole number, at least 1."""


def _none_as_empty(value: Any) -> Any:
    return () if value is None else value


class ExplicitRequest(_Section):
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


class ConsecutiveMisses(_Section):
    """Hand over after this many customer messages in a row the bot could not answer."""

    count: Count


class WordLists(_Section):
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


class NegativeSentiment(_Section):
    """Hand over after `streak` negative customer messages in a row."""

    streak: Count
    words: WordLists
    negations: Keywords | None = None


class Vip(_Section):
    """VIP customers go to an agent on their first message of a session."""

    enabled: StrictBool


class Triggers(_Section):
    """What makes the bot hand a conversation to a person."""

    explicit_request: ExplicitRequest
    consecutive_misses: ConsecutiveMisses
    major_complaint: StrictBool
    urgent_tier: StrictBool
    negative_sentiment: NegativeSentiment
    vip: Vip


class Queue(_Section):
    """The agents' queue."""

    online_window_minutes: Count


class HandoffPolicy(_Section):
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
            key = _normalise(word).strip()
            if key in seen:
                problems.append(((*loc, index), f"{word!r} is already listed {seen[key]}"))
            else:
                seen[key] = f"under {_place(loc)}"
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
    negation_words = {_normalise(word).strip() for word in negations.words}
    problems.extend(
        ((*loc, index), f"{word!r} is also listed under negations; remove it from one")
        for loc, listed in words
        for index, word in enumerate(listed)
        if _normalise(word).strip() in negation_words
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
    needles = sorted({_normalise(word).strip() for word in words} - {""}, key=len, reverse=True)
    body = "|".join(re.escape(needle) for needle in needles) or r"(?!x)x"
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])" if whole_words else body)


def _zh_negated(before: str, negations: Iterable[str]) -> bool:
    """A negation ending at most `_ZH_GAP` letters before, with no punctuation between."""
    needles = [needle for word in negations if (needle := _normalise(word).strip())]
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
        needle = _normalise(word).strip()
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
    normal = _normalise(text)
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
