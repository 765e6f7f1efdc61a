"""Guided decision flows: decision trees in `data/service/flows.yml` and the engine that walks them.

A flow is a tree (strictly: an acyclic graph) of nodes that non-programmers edit:

- `check` reads a fact the bot already knows (see `FACT_NAMES`) and branches on it;
- `ask` asks the customer a question with options (an option may also state a fact);
- `outcome` ends the flow with an answer or a ticket for the agents.

`load_flows` validates the whole file up front (every problem is a `FlowError` naming the file, the
line and the node), so the engine itself never meets a dangling reference. The engine is made of
pure functions: `start` walks from the flow's start to the first question or outcome, `answer`
applies the customer's reply to a question and walks on. The caller (a Rasa action) keeps the
current node and the facts between turns.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from bot.core.db import Order, OrderStatus
from bot.core.settings import PROJECT_ROOT

__all__ = [
    "FACT_NAMES",
    "LANGUAGES",
    "Advance",
    "AskNode",
    "CheckNode",
    "Condition",
    "Flow",
    "FlowBook",
    "FlowError",
    "Option",
    "OptionSpec",
    "Outcome",
    "OutcomeNode",
    "Question",
    "Step",
    "Text",
    "answer",
    "default_flows_path",
    "facts_for_order",
    "load_flows",
    "start",
    "step_at",
]

Language: TypeAlias = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
"""The languages every customer-facing text of a flow must be written in."""

ORDER_STATUSES: tuple[str, ...] = tuple(status.value for status in OrderStatus)
"""The values of the `order_status` fact (besides None: no order known)."""

NODE_TYPES = ("check", "ask", "outcome")
RESERVED_REPLIES = ("affirm", "deny")
"""Replies that pick an ask node's `affirm` / `deny` option; no option may use them as its id."""

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RULE = "use lower-case letters, digits and '_', starting with a letter"
_EDGE_PUNCTUATION = " \t\r\n.,;:!?'\"。，、；：！？…“”‘’()（）[]【】"


@dataclass(frozen=True)
class _Fact:
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


_FACTS: Mapping[str, _Fact] = MappingProxyType(
    {
        "order_status": _Fact("status"),
        "days_since_delivery": _Fact("int"),
        "days_past_eta": _Fact("int"),
        "order_known": _Fact("bool"),
    }
)
FACT_NAMES: tuple[str, ...] = tuple(_FACTS)
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A customer-facing text in both languages."""

    zh: _NonEmpty
    en: _NonEmpty

    def get(self, language: str) -> str:
        """The text in `language` (`zh` or `en`)."""
        return self.zh if _language(language) == "zh" else self.en


class KbEntries(_Model):
    """The knowledge-base entry (`data/knowledge`) behind an answer, per language; both optional."""

    zh: _NonEmpty | None = None
    en: _NonEmpty | None = None

    def get(self, language: str) -> str | None:
        """The entry id for `language`, or None."""
        return self.zh if _language(language) == "zh" else self.en


class Condition(_Model):
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


class CheckNode(_Model):
    """Branches on a fact: first matching condition, else `unknown` (if None), else `otherwise`."""

    type: Literal["check"]
    fact: StrictStr
    conditions: list[Condition] = Field(default_factory=list)
    unknown: StrictStr | None = None
    otherwise: StrictStr | None = None


class OptionSpec(_Model):
    """One answer the customer can pick at an ask node."""

    id: StrictStr
    title: Text
    next: StrictStr
    sets: dict[StrictStr, _Scalar] = Field(default_factory=dict)


class AskNode(_Model):
    """A question to the customer."""

    type: Literal["ask"]
    text: Text
    options: list[OptionSpec] = Field(min_length=2)
    affirm: StrictStr | None = None
    deny: StrictStr | None = None


class OutcomeNode(_Model):
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
_NODE_MODELS: Mapping[str, type[Node]] = MappingProxyType(
    {"check": CheckNode, "ask": AskNode, "outcome": OutcomeNode}
)
_TICKET_ONLY = ("category", "need_payoff", "problem", "complaint", "urgency")
_TICKET_REQUIRED = ("category", "need_payoff", "problem")


class _FlowHead(_Model):
    title: Text
    start: StrictStr
    nodes: dict[StrictStr, Any]


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


# --- what the engine hands back -------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """An option of a question, with its title in the requested language."""

    id: str
    title: str


@dataclass(frozen=True)
class Question:
    """An ask node to put to the customer."""

    node: str
    text: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Outcome:
    """Where a flow ended; texts in the requested language, ticket fields None for answers."""

    node: str
    kind: Literal["answer", "ticket"]
    message: str
    kb_entry: str | None
    category: str | None
    need_payoff: str | None
    problem: str | None
    complaint: str | None
    urgency: str | None


Step: TypeAlias = Question | Outcome


@dataclass(frozen=True)
class Advance:
    """What `answer` returns: the next step, how the walk got there and the facts after the reply.

    Attributes:
        step: The next question, or the outcome.
        path: The node ids visited: the answered ask node, the check nodes, then `step.node`.
        facts: The facts the walk used: the caller's facts (normalised) updated with those the
            chosen option sets. Keep them for the next `answer` call.
        option: The option the reply picked (title in the requested language).
    """

    step: Step
    path: list[str]
    facts: dict[str, Any]
    option: Option


# --- loading --------------------------------------------------------------------------------------


def default_flows_path() -> Path:
    """`<project root>/data/service/flows.yml`."""
    return PROJECT_ROOT / "data" / "service" / "flows.yml"


def load_flows(path: Path | None = None) -> FlowBook:
    """Loads and validates a flow file (default: `default_flows_path()`).

    Checks, besides YAML syntax and duplicate keys: unknown keys, texts missing `zh` or `en`, `next`
    (and `start`, `unknown`, `otherwise`, `affirm`, `deny`) naming unknown nodes or options, cycles,
    nodes unreachable from `start`, unknown facts and values, check nodes without a branch for some
    value, tickets without `category` / `need_payoff` / `problem`, duplicated option ids or titles.

    Raises:
        FlowError: The first problem, naming the file, the line and the node.
    """
    path = path or default_flows_path()
    source = _display(path)
    raw = _read_yaml(path, source)
    located = _Located(source, raw)
    if raw is None:
        raise FlowError(source, "", "no flows in the file")
    if not isinstance(raw, dict):
        raise located.error((), "the file must be a mapping of flow names to flows")
    data = _plain(raw)
    flows: dict[str, Flow] = {}
    for name, body in data.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise located.error((name,), f"invalid flow name {name!r}: {_ID_RULE}")
        flows[name] = _load_flow(name, body, located)
    if not flows:
        raise FlowError(source, "", "no flows in the file")
    return FlowBook(flows=flows, source=source)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise FlowError(source, "", f"cannot read the file: {error.strerror}") from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise FlowError(source, "", "not valid UTF-8; save the file as UTF-8", line) from error
    try:
        return YAML(typ="rt", pure=True).load(text)
    except DuplicateKeyError as error:
        mark = error.problem_mark
        found = re.search(r'duplicate key "(.*?)" with value', str(error.problem))
        key = found.group(1) if found else "?"
        raise FlowError(
            source,
            "",
            f"duplicate key {key!r}: each name may appear only once in the same mapping",
            mark.line + 1 if mark else None,
        ) from error
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        reason = " ".join(part for part in (error.context, error.problem) if part)
        raise FlowError(
            source, "", f"YAML syntax error: {reason}", mark.line + 1 if mark else None
        ) from error
    except YAMLError as error:
        raise FlowError(source, "", f"YAML error: {error}") from error


def _plain(value: Any) -> Any:
    """Round-trip YAML data as plain dicts, lists, str, int, float and bool."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


Loc: TypeAlias = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)


class _Located:
    """Turns a place in the data (a tuple of keys and indexes) into a dotted location and a line."""

    def __init__(self, source: str, raw: Any) -> None:
        self.source = source
        self.raw = raw

    def error(self, loc: Sequence[Any], reason: str) -> FlowError:
        return FlowError(self.source, _location(loc), reason, self.line(loc))

    def line(self, loc: Sequence[Any]) -> int | None:
        """The 1-based line of the deepest part of `loc` found in the file."""
        node = self.raw
        line: int | None = None
        for part in loc:
            lc = getattr(node, "lc", None)
            if isinstance(node, dict) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def validate(self, model: type[_M], data: Any, loc: Loc) -> _M:
        """`model.model_validate(data)`, its first error turned into a located `FlowError`."""
        try:
            return model.model_validate(data)
        except ValidationError as error:
            errors = error.errors()
            first = errors[0]
            where = [*loc, *(part for part in first["loc"] if part != "[key]")]
            if first["type"] == "extra_forbidden":
                raise self.error(where[:-1], f"unknown key {where[-1]!r}") from None
            if first["type"] == "missing":
                raise self.error(where[:-1], f"missing {where[-1]!r}") from None
            if _is_union_error(first, errors):
                raise self.error(where[:-1], _SCALAR_RULE) from None
            raise self.error(where, _reason(first)) from None


_SCALAR_RULE = "should be a single value: text, a whole number or true/false"
_UNION_TAGS = ("str", "int", "bool")
_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "model_type": "should be a mapping (key: value lines)",
        "dict_type": "should be a mapping (key: value lines)",
        "list_type": "should be a list (lines starting with '- ')",
        "string_type": "should be text",
        "int_type": "should be a whole number",
        "bool_type": "should be true or false",
        "string_too_short": "should not be empty",
    }
)


def _is_union_error(first: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """Whether pydantic reports one failed `_Scalar` (an error per member, tagged str/int/bool)."""
    parent, tag = first["loc"][:-1], first["loc"][-1] if first["loc"] else None
    return tag in _UNION_TAGS and any(
        other is not first and other["loc"][:-1] == parent and other["loc"][-1] in _UNION_TAGS
        for other in errors
    )


def _reason(error: ErrorDetails) -> str:
    """A pydantic error in words for people who edit YAML, not Python."""
    if error["type"] in _REASONS:
        return _REASONS[error["type"]]
    if error["type"] == "too_short":
        return f"needs at least {error.get('ctx', {}).get('min_length')} items"
    message = str(error["msg"]).removeprefix("Input ")
    return message[:1].lower() + message[1:]


def _location(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _load_flow(name: str, body: Any, located: _Located) -> Flow:
    head = located.validate(_FlowHead, body, (name,))
    nodes: dict[str, Node] = {}
    for node_id, data in head.nodes.items():
        loc: Loc = (name, "nodes", node_id)
        if not _ID.match(node_id):
            raise located.error(loc, f"invalid node id {node_id!r}: {_ID_RULE}")
        if not isinstance(data, dict):
            raise located.error(loc, "a node must be a mapping with a 'type'")
        kind = data.get("type")
        if kind is None:
            raise located.error(loc, f"missing 'type' ({', '.join(NODE_TYPES)})")
        if not isinstance(kind, str) or kind not in _NODE_MODELS:
            raise located.error(
                (*loc, "type"), f"unknown node type {kind!r} ({', '.join(NODE_TYPES)})"
            )
        nodes[node_id] = located.validate(_NODE_MODELS[kind], data, loc)
    flow = Flow(
        name=name,
        title=head.title,
        start=head.start,
        nodes=MappingProxyType(nodes),
        source=located.source,
    )
    _check_flow(flow, located)
    return flow


def _check_flow(flow: Flow, located: _Located) -> None:
    if not flow.nodes:
        raise located.error((flow.name, "nodes"), "no nodes")
    if flow.start not in flow.nodes:
        raise located.error((flow.name, "start"), f"unknown node {flow.start!r}")
    for node_id, node in flow.nodes.items():
        loc: Loc = (flow.name, "nodes", node_id)
        if isinstance(node, CheckNode):
            _check_check(node, loc, located)
        elif isinstance(node, AskNode):
            _check_ask(node, loc, located)
        else:
            _check_outcome(node, loc, located)
        for edge, target in _edges(node):
            if target not in flow.nodes:
                raise located.error((*loc, *edge), f"unknown node {target!r}")
    _check_cycles(flow, located)
    reachable = _reachable(flow)
    for node_id in flow.nodes:
        if node_id not in reachable:
            raise located.error(
                (flow.name, "nodes", node_id), f"unreachable from start {flow.start!r}"
            )


def _edges(node: Node) -> Iterator[tuple[Loc, str]]:
    """(place in the node, target node id) for every way out of `node`."""
    if isinstance(node, CheckNode):
        for index, condition in enumerate(node.conditions):
            yield ("conditions", index, "next"), condition.next
        if node.unknown is not None:
            yield ("unknown",), node.unknown
        if node.otherwise is not None:
            yield ("otherwise",), node.otherwise
    elif isinstance(node, AskNode):
        for index, option in enumerate(node.options):
            yield ("options", index, "next"), option.next


def _check_check(node: CheckNode, loc: Loc, located: _Located) -> None:
    fact = _FACTS.get(node.fact)
    if fact is None:
        raise located.error(
            (*loc, "fact"), f"unknown fact {node.fact!r} (known: {', '.join(FACT_NAMES)})"
        )
    for index, condition in enumerate(node.conditions):
        where: Loc = (*loc, "conditions", index)
        tests = condition.tests()
        if len(tests) != 1:
            raise located.error(
                where, "give exactly one of equals, in, at_most, at_least, is_known (and next)"
            )
        key, value = tests[0]
        if key in ("at_most", "at_least") and fact.kind != "int":
            raise located.error((*where, key), f"{key} needs a number fact; {node.fact} is not one")
        if key in ("equals", "in"):
            values = value if key == "in" else [value]
            if not values:
                raise located.error((*where, key), "the list is empty")
            for item in values:
                if not fact.accepts(item):
                    raise located.error(
                        (*where, key), f"{item!r} is not a value of {node.fact} ({fact.describe()})"
                    )
    domain = fact.domain()
    if node.otherwise is None:
        if domain is None:
            raise located.error(loc, f"missing 'otherwise' ({node.fact} is a number)")
        for value in domain:
            covered = any(condition.matches(value) for condition in node.conditions) or (
                value is None and node.unknown is not None
            )
            if not covered:
                shown = "unknown" if value is None else repr(value)
                raise located.error(
                    loc, f"missing 'otherwise' (no branch when {node.fact} is {shown})"
                )


def _check_ask(node: AskNode, loc: Loc, located: _Located) -> None:
    names: dict[str, int] = {}
    for index, option in enumerate(node.options):
        where: Loc = (*loc, "options", index)
        if not _ID.match(option.id):
            raise located.error((*where, "id"), f"invalid option id {option.id!r}: {_ID_RULE}")
        if option.id in RESERVED_REPLIES:
            raise located.error((*where, "id"), f"{option.id!r} is reserved; use another id")
        if option.id in names:
            raise located.error(
                (*where, "id"),
                f"duplicate option id {option.id!r} (see options[{names[option.id]}])",
            )
        names[option.id] = index
    for index, option in enumerate(node.options):
        for language in LANGUAGES:
            title = _normalized_reply(option.title.get(language))
            other = names.setdefault(title, index)
            if other != index:
                raise located.error(
                    (*loc, "options", index, "title", language),
                    f"title {option.title.get(language)!r} is also options[{other}]'s id or title",
                )
        for fact_name, value in option.sets.items():
            fact = _FACTS.get(fact_name)
            where = (*loc, "options", index, "sets", fact_name)
            if fact is None:
                raise located.error(
                    where, f"unknown fact {fact_name!r} (known: {', '.join(FACT_NAMES)})"
                )
            if not fact.accepts(value):
                raise located.error(
                    where, f"{value!r} is not a value of {fact_name} ({fact.describe()})"
                )
    ids = [option.id for option in node.options]
    for key, chosen in (("affirm", node.affirm), ("deny", node.deny)):
        if chosen is not None and chosen not in ids:
            raise located.error(
                (*loc, key), f"unknown option {chosen!r} (options: {', '.join(ids)})"
            )


def _check_outcome(node: OutcomeNode, loc: Loc, located: _Located) -> None:
    if node.kind == "ticket":
        for key in _TICKET_REQUIRED:
            if getattr(node, key) is None:
                raise located.error(loc, f"missing {key!r} (required for kind ticket)")
    else:
        for key in _TICKET_ONLY:
            if getattr(node, key) is not None:
                raise located.error((*loc, key), f"{key!r} is only for kind ticket")


def _check_cycles(flow: Flow, located: _Located) -> None:
    done: set[str] = set()

    def visit(node_id: str, trail: list[str]) -> None:
        if node_id in trail:
            cycle = [*trail[trail.index(node_id) :], node_id]
            raise located.error((flow.name, "nodes", node_id), "cycle: " + " -> ".join(cycle))
        if node_id in done:
            return
        trail.append(node_id)
        for _, target in _edges(flow.nodes[node_id]):
            visit(target, trail)
        trail.pop()
        done.add(node_id)

    for node_id in flow.nodes:
        visit(node_id, [])


def _reachable(flow: Flow) -> set[str]:
    seen = {flow.start}
    todo = [flow.start]
    while todo:
        for _, target in _edges(flow.nodes[todo.pop()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


# --- walking --------------------------------------------------------------------------------------


def start(flow: Flow, facts: Mapping[str, Any], language: str) -> tuple[Step, list[str]]:
    """Walks from the flow's start through check nodes to the first question or outcome.

    Args:
        flow: A flow from `load_flows`.
        facts: Known facts (see `facts_for_order`); missing names count as unknown.
        language: `zh` or `en`.

    Returns:
        The step and the ids of the nodes visited (the start first, the step's node last).

    Raises:
        ValueError: Unknown language, or a fact of the wrong type.
    """
    _language(language)
    return _walk(flow, flow.start, _normalized_facts(facts), language)


def answer(
    flow: Flow, node: str, reply: str, facts: Mapping[str, Any], language: str
) -> Advance | None:
    """Applies the customer's reply to the question at `node` and walks on.

    A reply picks an option by its id, its 1-based number ("2", also full-width "２"), its title in
    either language (case and surrounding blanks or punctuation ignored), or is "affirm" / "deny"
    for the node's `affirm` / `deny` option.

    Returns:
        The next step with the path from `node` and the facts updated by the option's `sets`, or
        None when the reply picks no option (ask again).

    Raises:
        FlowError: `node` is not an ask node of the flow (e.g. the file changed meanwhile).
        ValueError: Unknown language, or a fact of the wrong type.
    """
    _language(language)
    current = flow.node(node)
    if not isinstance(current, AskNode):
        raise FlowError(flow.source, f"{flow.name}.nodes.{node}", "not an ask node")
    chosen = _choose(current, reply)
    if chosen is None:
        return None
    updated = {**_normalized_facts(facts), **chosen.sets}
    step, path = _walk(flow, chosen.next, updated, language)
    return Advance(
        step=step,
        path=[node, *path],
        facts=updated,
        option=Option(id=chosen.id, title=chosen.title.get(language)),
    )


def step_at(flow: Flow, node: str | None, language: str) -> Step | None:
    """The question or outcome at `node`, without walking (e.g. to ask the current question again).

    Returns:
        None when `node` is None, not in the flow (the file changed since it was stored: start
        the flow again) or a check node (never a stopping point).

    Raises:
        ValueError: Unknown language.
    """
    _language(language)
    if node is None:
        return None
    current = flow.nodes.get(node)
    if current is None or isinstance(current, CheckNode):
        return None
    return _step(node, current, language)


def facts_for_order(order: Order | None, today: date) -> dict[str, Any]:
    """The facts a flow can check, from an order (None: no order known).

    `days_since_delivery` counts calendar days from the delivery date; `days_past_eta` is negative
    while the estimated delivery date is still ahead.
    """
    if order is None:
        return {
            "order_status": None,
            "days_since_delivery": None,
            "days_past_eta": None,
            "order_known": False,
        }
    delivered = order.delivered_at.date() if order.delivered_at is not None else None
    return {
        "order_status": OrderStatus(order.status).value,
        "days_since_delivery": (today - delivered).days if delivered is not None else None,
        "days_past_eta": (today - order.eta).days if order.eta is not None else None,
        "order_known": True,
    }


def _walk(
    flow: Flow, node_id: str, facts: Mapping[str, Any], language: str
) -> tuple[Step, list[str]]:
    path: list[str] = []
    for _ in range(len(flow.nodes)):
        path.append(node_id)
        node = flow.node(node_id)
        if isinstance(node, CheckNode):
            node_id = _route(flow, node_id, node, facts.get(node.fact))
            continue
        return _step(node_id, node, language), path
    raise FlowError(flow.source, flow.name, "the walk does not end: " + " -> ".join(path))


def _route(flow: Flow, node_id: str, node: CheckNode, value: Any) -> str:
    for condition in node.conditions:
        if condition.matches(value):
            return condition.next
    if value is None and node.unknown is not None:
        return node.unknown
    if node.otherwise is None:
        raise FlowError(
            flow.source, f"{flow.name}.nodes.{node_id}", f"no branch for {node.fact} = {value!r}"
        )
    return node.otherwise


def _step(node_id: str, node: AskNode | OutcomeNode, language: str) -> Step:
    if isinstance(node, AskNode):
        return Question(
            node=node_id,
            text=node.text.get(language),
            options=tuple(
                Option(id=option.id, title=option.title.get(language)) for option in node.options
            ),
        )
    return Outcome(
        node=node_id,
        kind=node.kind,
        message=node.message.get(language),
        kb_entry=node.kb_entry.get(language) if node.kb_entry is not None else None,
        category=node.category,
        need_payoff=node.need_payoff,
        problem=node.problem.get(language) if node.problem is not None else None,
        complaint=node.complaint,
        urgency=node.urgency,
    )


def _choose(node: AskNode, reply: str) -> OptionSpec | None:
    text = _normalized_reply(reply)
    if not text:
        return None
    by_id = {option.id: option for option in node.options}
    if text in RESERVED_REPLIES:
        chosen = node.affirm if text == "affirm" else node.deny
        return by_id.get(chosen) if chosen is not None else None
    if text in by_id:
        return by_id[text]
    if text.isascii() and text.isdigit():
        number = int(text)
        return node.options[number - 1] if 1 <= number <= len(node.options) else None
    for option in node.options:
        if text in (_normalized_reply(option.title.zh), _normalized_reply(option.title.en)):
            return option
    return None


def _normalized_reply(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII), no edge blanks or punctuation, casefolded."""
    return unicodedata.normalize("NFKC", text).strip(_EDGE_PUNCTUATION).casefold()


def _normalized_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(facts)
    for name, fact in _FACTS.items():
        value = facts.get(name)
        if isinstance(value, Enum):
            value = value.value
        if value is not None and not fact.accepts(value):
            raise ValueError(f"fact {name!r} must be {fact.describe()} or None, not {value!r}")
        result[name] = value
    return result


def _language(language: str) -> Language:
    if language == "zh":
        return "zh"
    if language == "en":
        return "en"
    raise ValueError(f"language must be 'zh' or 'en', not {language!r}")


def _same(value: Any, expected: Any) -> bool:
    """Equality that keeps True apart from 1."""
    return type(value) is type(expected) and bool(value == expected)
