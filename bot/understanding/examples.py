"""The labelled examples the readers learn from: `data/service/understanding.yml`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.core.data_file import Problem, load_data_file
from bot.core.settings import PROJECT_ROOT

Example = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Examples = tuple[Example, ...]

ROLES = ("situation", "problem", "impact", "outcome", "other")
"""What one clause of a message tells about a problem."""
IMPACTS = ("money", "time", "safety", "business", "none")
"""Kinds of impact (`none`: the customer says there is no particular impact)."""
OUTCOMES = ("refund", "replacement", "repair", "information", "call_back")
"""Outcomes a customer may want (the policy's need payoffs)."""


class UnderstandingError(ValueError):
    """The examples file is broken; the message names the file and line of each mistake."""


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def labelled(self) -> dict[str, Examples]:
        """Label -> examples, in the file's order."""
        return {name: tuple(value) for name, value in self}


class Binary(_Block):
    """Examples that are (positive) or are not (negative) what the block is about."""

    positive: Examples = Field(min_length=5)
    negative: Examples = Field(min_length=5)


class Roles(_Block):
    """Clauses by what they tell about a problem."""

    situation: Examples = Field(min_length=5)
    problem: Examples = Field(min_length=5)
    impact: Examples = Field(min_length=5)
    outcome: Examples = Field(min_length=5)
    other: Examples = Field(min_length=5)


class Impacts(_Block):
    """Impact clauses by kind."""

    money: Examples = Field(min_length=5)
    time: Examples = Field(min_length=5)
    safety: Examples = Field(min_length=5)
    business: Examples = Field(min_length=5)
    none: Examples = Field(min_length=5)


class Outcomes(_Block):
    """Outcome clauses by the outcome wanted."""

    refund: Examples = Field(min_length=5)
    replacement: Examples = Field(min_length=5)
    repair: Examples = Field(min_length=5)
    information: Examples = Field(min_length=5)
    call_back: Examples = Field(min_length=5)


class UnderstandingExamples(BaseModel):
    """Every block of the examples file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    hazard: Binary
    urgent: Binary
    complaint: Binary
    role: Roles
    impact: Impacts
    outcome: Outcomes

    def blocks(self) -> dict[str, dict[str, Examples]]:
        """Block name -> label -> examples."""
        return {name: block.labelled() for name, block in self if isinstance(block, _Block)}


def default_path() -> Path:
    """The shipped examples: `data/service/understanding.yml`."""
    return PROJECT_ROOT / "data" / "service" / "understanding.yml"


def _check(loaded: UnderstandingExamples) -> Iterator[Problem]:
    """An example listed twice in a block, or under two labels of it."""
    for block, labels in loaded.blocks().items():
        seen: dict[str, str] = {}
        for label, examples in labels.items():
            for number, example in enumerate(examples):
                key = example.casefold()
                if key in seen:
                    other = seen[key]
                    where = "twice" if other == label else f"also under {other!r}"
                    yield (block, label, number), f"{example!r} is listed {where}"
                seen[key] = label


def load_examples(path: Path | None = None) -> UnderstandingExamples:
    """Reads and checks the examples file; raises `UnderstandingError` with file:line."""
    return load_data_file(path or default_path(), UnderstandingExamples, UnderstandingError, _check)
