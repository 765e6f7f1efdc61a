"""The customer conversation set: labelled multi-turn conversations in YAML, split dev / test.

Format and labels: `tests/customer_conversations/README.md`. `load_split` reads every file
of a split and names the file and line of each mistake (`ConversationSetError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bot.conversation_eval.behaviours import is_known
from bot.core.data_file import Problem, load_data_file
from bot.core.settings import PROJECT_ROOT

SET_DIR = PROJECT_ROOT / "tests" / "customer_conversations"
"""Where the set lives: `dev/` and `test/` folders of YAML files."""

Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")

Category = Literal[
    "simple_question",
    "colloquial",
    "order_card",
    "multi_request",
    "bare_reply",
    "emotion",
    "complaint",
    "hazard",
    "context",
    "out_of_scope",
    "english_mixed",
    "handoff",
    "rating",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
"""The rows of the table, in this order."""
Text = Annotated[str, StringConstraints(min_length=1)]
Phrases = tuple[Text, ...]


class ConversationSetError(ValueError):
    """A conversation file is broken; the message names the file and line of each mistake."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_phrases(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


class RecordExpectation(_Strict):
    """What the service record must hold at the need confirmation (fields that are listed)."""

    category: Literal["complaint", "urgent", "problem"] | None = None
    order_number: str | None = None
    product: Phrases | None = None
    problem: Phrases | None = None
    problem_since: int | None = Field(default=None, le=0)
    impact: Literal["money", "time", "safety", "business", "none"] | None = None
    need_payoff: Literal["refund", "replacement", "repair", "information", "call_back"] | None = (
        None
    )
    tier: Literal["urgent", "normal", "consultation"] | None = None
    complaint_grade: Literal["general", "major", "none"] | None = None

    _phrases = field_validator("product", "problem", mode="before")(_as_phrases)

    def fields(self) -> dict[str, Any]:
        """The listed fields and their expected values."""
        return {name: value for name, value in self if value is not None}


class TurnSpec(_Strict):
    """One customer message and what the bot may do about it."""

    say: Text
    expect: tuple[Text, ...] = Field(min_length=1)
    must_not: tuple[Text, ...] = ()
    slots: dict[str, str | int | float | bool | None] = {}
    simple: bool = False
    category: Category | None = None
    record: RecordExpectation | None = None


class ConversationSpec(_Strict):
    """A conversation of one new customer."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    category: Category
    language: Literal["zh", "en", "mixed"] = "zh"
    note: str = ""
    turns: tuple[TurnSpec, ...] = Field(min_length=1)


class ConversationFile(_Strict):
    """A file of the set."""

    conversations: tuple[ConversationSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Conversation:
    """A conversation with where it came from."""

    spec: ConversationSpec
    path: Path
    split: Split

    @property
    def id(self) -> str:
        """The conversation's id."""
        return self.spec.id

    def turn_category(self, number: int) -> str:
        """The table row of turn `number`."""
        return self.spec.turns[number].category or self.spec.category

    def is_simple(self, number: int) -> bool:
        """Whether turn `number` is a simple question (counted for self-service)."""
        turn = self.spec.turns[number]
        return turn.simple or self.turn_category(number) == "simple_question"


def _check(loaded: ConversationFile) -> Iterator[Problem]:
    for c, conversation in enumerate(loaded.conversations):
        for t, turn in enumerate(conversation.turns):
            where: tuple[int | str, ...] = ("conversations", c, "turns", t)
            for key in ("expect", "must_not"):
                for i, label in enumerate(getattr(turn, key)):
                    if not is_known(label):
                        yield (*where, key, i), f"unknown behaviour {label!r} (README: Behaviours)"
            if turn.record is not None and "need_confirmation" not in turn.expect:
                yield (*where, "record"), "a record belongs on a turn expecting need_confirmation"


def load_file(path: Path, split: Split) -> list[Conversation]:
    """The conversations of one file; raises `ConversationSetError` with file:line."""
    loaded = load_data_file(path, ConversationFile, ConversationSetError, _check)
    return [Conversation(spec, path, split) for spec in loaded.conversations]


def load_split(split: Split, root: Path = SET_DIR) -> list[Conversation]:
    """Every conversation of a split, files in name order; ids must be unique.

    Raises:
        ConversationSetError: A file is broken, the folder is missing or an id repeats.
    """
    folder = root / split
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise ConversationSetError(f"{folder}: no conversation files (*.yml)")
    problems: list[str] = []
    conversations: list[Conversation] = []
    for path in files:
        try:
            conversations += load_file(path, split)
        except ConversationSetError as error:
            problems.append(str(error))
    seen: dict[str, Path] = {}
    for conversation in conversations:
        if conversation.id in seen:
            other = seen[conversation.id]
            problems.append(f"{conversation.path}: id {conversation.id!r} is also used in {other}")
        seen[conversation.id] = conversation.path
    if problems:
        raise ConversationSetError("\n".join(problems))
    return conversations
