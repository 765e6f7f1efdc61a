"""The flow file's schema: facts, nodes, flows and the error that names the place of a mistake.

A flow is a tree (strictly: an acyclic graph) of nodes that non-programmers edit in
`data/service/flows.yml`:

- `check` reads a fact the bot already knows (see `FACT_NAMES`) and branches on it;
- `ask` asks the customer a question with options (an option may also state a fact);
- `outcome` ends the flow with an answer or a ticket for the agents.

`bot.flows.loading` reads and checks the file; `bot.flows.walking` walks a loaded flow.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from bot.core.db import OrderStatus

Language: TypeAlias = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
"""The languages every customer-facing text of a flow must be written in."""

ORDER_STATUSES: tuple[str, ...] = tuple(status.value for status in OrderStatus)
"""The values of the `order_status` fact (besides None: no order known)."""

RESERVED_REPLIES = ("affirm", "deny")
"""Replies that pick an ask node's `affirm` / `deny` option; no option may use them as its id."""
_EDGE_PUNCTUATION = " \t\r\n.,;:!?'\"。，、；：！？…“”‘’()（）[]【】"


@dataclass(frozen=True)
class Fact:
    """What values a fact takes (every fact may also be None: unknown)."""

    kind: Literal["status", "int", "bool"]

    def accepts(self, value: object) -> bool:
        """Whether `value` (not None) is a value of this fact."""
        if self.kind == "status":
            return isinstance(value, str) and value in ORDER_STATUSES
        if self.kind == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, bool)

    def domain(self) -> tuple[object, ...] | None:
        """Every value including None, or None when there are too many to list."""
        if self.kind == "status":
            return (*ORDER_STATUSES, None)
        if self.kind == "bool":
            return (True, False, None)
        return None

    def describe(self) -> str:
        """The values in words, for error messages."""
        if self.kind == "status":
            return "one of " + ", ".join(ORDER_STATUSES)
        if self.kind == "int":
            return "a whole number"
        return "true or false"


FACTS: Mapping[str, Fact] = MappingProxyType(
    {
        "order_status": Fact("status"),
        "days_since_delivery": Fact("int"),
        "days_past_eta": Fact("int"),
        "order_known": Fact("bool"),
    }
)
FACT_NAMES: tuple[str, ...] = tuple(FACTS)
"""The facts a `check` node may read and an option may set (see `facts_for_order`)."""


class FlowError(ValueError):
    """A flow file or a flow reference is invalid; names the file, the line when known and the node.

    Attributes:
        source: The flow file as shown to people (relative to the project root when inside it).
        line: The 1-based line of the problem, or None.
        location: The dotted place in the file, e.g. `returns.nodes.ask_reason.options[1].next`.
        reason: What is wrong, without the location.
    """

    def __init__(self, source: str, location: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.location = location
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {location}: {reason}" if location else f"{where}: {reason}")


# --- the file's schema --------------------------------------------------------------------------

_NonEmpty = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
_Scalar: TypeAlias = StrictStr | StrictInt | StrictBool


class Model(BaseModel):
    """A part of the flow file: unknown keys refused, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Model):
    """A customer-facing text in both languages."""

    zh: _NonEmpty
    en: _NonEmpty

    def get(self, language: str) -> str:
        """The text in `language` (`zh` or `en`)."""
        return self.zh if checked_language(language) == "zh" else self.en


class KbEntries(Model):
    """The knowledge-base entry (`data/knowledge`) behind an answer, per language; both optional."""

    zh: _NonEmpty | None = None
    en: _NonEmpty | None = None

    def get(self, language: str) -> str | None:
        """The entry id for `language`, or None."""
        return self.zh if checked_language(language) == "zh" else self.en


class Condition(Model):
    """One branch of a check node: exactly one test, and where to go when it holds."""

    equals: _Scalar | None = None
    in_: list[_Scalar] | None = Field(default=None, alias="in")
    at_most: StrictInt | None = None
    at_least: StrictInt | None = None
    is_known: StrictBool | None = None
    next: StrictStr

    def tests(self) -> list[tuple[str, Any]]:
        """The tests given, as (key in the file, value) pairs; a valid condition has exactly one."""
        given = {
            "equals": self.equals,
            "in": self.in_,
            "at_most": self.at_most,
            "at_least": self.at_least,
            "is_known": self.is_known,
        }
        return [(key, value) for key, value in given.items() if value is not None]

    def matches(self, value: Any) -> bool:
        """Whether the condition holds for a fact value (None: unknown)."""
        if self.is_known is not None:
            return (value is not None) == self.is_known
        if value is None:
            return False
        if self.equals is not None:
            return _same(value, self.equals)
        if self.in_ is not None:
            return any(_same(value, candidate) for candidate in self.in_)
        if self.at_most is not None:
            return bool(value <= self.at_most)
        if self.at_least is not None:
            return bool(value >= self.at_least)
        return False


class CheckNode(Model):
    """Branches on a fact: first matching condition, else `unknown` (if None), else `otherwise`."""

    type: Literal["check"]
    fact: StrictStr
    conditions: list[Condition] = Field(default_factory=list)
    unknown: StrictStr | None = None
    otherwise: StrictStr | None = None


class OptionSpec(Model):
    """One answer the customer can pick at an ask node."""

    id: StrictStr
    title: Text
    next: StrictStr
    sets: dict[StrictStr, _Scalar] = Field(default_factory=dict)


class AskNode(Model):
    """A question to the customer."""

    type: Literal["ask"]
    text: Text
    options: list[OptionSpec] = Field(min_length=2)
    affirm: StrictStr | None = None
    deny: StrictStr | None = None


class OutcomeNode(Model):
    """The end of a flow: an answer, or a ticket for the agents."""

    type: Literal["outcome"]
    kind: Literal["answer", "ticket"]
    message: Text
    kb_entry: KbEntries | None = None
    category: Literal["logistics", "returns"] | None = None
    need_payoff: Literal["refund", "replacement", "repair", "information", "call_back"] | None = (
        None
    )
    problem: Text | None = None
    complaint: Literal["general", "major"] | None = None
    urgency: Literal["urgent", "normal", "consultation"] | None = None


Node: TypeAlias = CheckNode | AskNode | OutcomeNode


@dataclass(frozen=True)
class Flow:
    """One validated flow.

    Attributes:
        name: The flow's key in the file (`logistics`, `returns`).
        title: Its title in both languages.
        start: The id of the first node.
        nodes: Every node by id.
        source: The file it came from, as shown in error messages.
    """

    name: str
    title: Text
    start: str
    nodes: Mapping[str, Node]
    source: str

    def node(self, node_id: str) -> Node:
        """The node with this id; raises `FlowError` when there is none."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise FlowError(self.source, f"{self.name}.nodes", f"no node {node_id!r}") from None


@dataclass(frozen=True)
class FlowBook:
    """Every flow of one file, by name."""

    flows: dict[str, Flow]
    source: str

    def get(self, name: str) -> Flow:
        """The flow called `name`; raises `FlowError` when there is none."""
        try:
            return self.flows[name]
        except KeyError:
            known = ", ".join(self.flows)
            raise FlowError(self.source, name, f"no such flow (known: {known})") from None


class FlowHead(Model):
    """A flow before its nodes are checked: title, start and the nodes as written."""

    title: Text
    start: StrictStr
    nodes: dict[StrictStr, Any]


def normalized_reply(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII), no edge blanks or punctuation, casefolded."""
    return unicodedata.normalize("NFKC", text).strip(_EDGE_PUNCTUATION).casefold()


def checked_language(language: str) -> Language:
    """`language` when it is `zh` or `en`; raises `ValueError` otherwise."""
    if language == "zh":
        return "zh"
    if language == "en":
        return "en"
    raise ValueError(f"language must be 'zh' or 'en', not {language!r}")


def _same(value: Any, expected: Any) -> bool:
    """Equality that keeps True apart from 1."""
    return type(value) is type(expected) and bool(value == expected)
