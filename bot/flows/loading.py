"""Loading a flow file: strict YAML, the schema, then every reference, branch and cycle.

`load_flows` validates the whole file up front (every problem is a `FlowError` naming the file,
the line and the node), so the engine (`bot.flows.walking`) never meets a dangling reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.core.data_file import DataFileError, Loc, YamlDocument, place_text, read_data_file
from bot.core.settings import PROJECT_ROOT
from bot.flows.schema import (
    FACT_NAMES,
    FACTS,
    LANGUAGES,
    RESERVED_REPLIES,
    AskNode,
    CheckNode,
    Flow,
    FlowBook,
    FlowError,
    FlowHead,
    Node,
    OutcomeNode,
    normalized_reply,
)

NODE_TYPES = ("check", "ask", "outcome")
_NODE_MODELS: Mapping[str, type[Node]] = MappingProxyType(
    {"check": CheckNode, "ask": AskNode, "outcome": OutcomeNode}
)
_TICKET_ONLY = ("category", "need_payoff", "problem", "complaint", "urgency")
_TICKET_REQUIRED = ("category", "need_payoff", "problem")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RULE = "use lower-case letters, digits and '_', starting with a letter"
_M = TypeVar("_M", bound=BaseModel)


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
    try:
        document = read_data_file(path or default_flows_path())
    except DataFileError as problem:
        raise FlowError(problem.source, "", problem.reason, problem.line) from problem
    source, data = document.source, document.data
    located = _Located(document)
    if data is None:
        raise FlowError(source, "", "no flows in the file")
    if not isinstance(data, dict):
        raise located.error((), "the file must be a mapping of flow names to flows")
    flows: dict[str, Flow] = {}
    for name, body in data.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise located.error((name,), f"invalid flow name {name!r}: {_ID_RULE}")
        flows[name] = _load_flow(name, body, located)
    if not flows:
        raise FlowError(source, "", "no flows in the file")
    return FlowBook(flows=flows, source=source)


class _Located:
    """Turns a place in the data (a tuple of keys and indexes) into a dotted location and a line."""

    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.source = document.source

    def error(self, loc: Sequence[Any], reason: str) -> FlowError:
        return FlowError(self.source, place_text(loc), reason, self.document.line(loc))

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
    if error["type"] == "string_type" and isinstance(error["input"], bool):
        return 'should be text; yes/no/on/off are read as true/false: put it in quotes ("yes")'
    if error["type"] in _REASONS:
        return _REASONS[error["type"]]
    if error["type"] == "too_short":
        return f"needs at least {error.get('ctx', {}).get('min_length')} items"
    message = str(error["msg"]).removeprefix("Input ")
    return message[:1].lower() + message[1:]


def _load_flow(name: str, body: Any, located: _Located) -> Flow:
    head = located.validate(FlowHead, body, (name,))
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
    fact = FACTS.get(node.fact)
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
            title = normalized_reply(option.title.get(language))
            other = names.setdefault(title, index)
            if other != index:
                raise located.error(
                    (*loc, "options", index, "title", language),
                    f"title {option.title.get(language)!r} is also options[{other}]'s id or title",
                )
        for fact_name, value in option.sets.items():
            fact = FACTS.get(fact_name)
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
