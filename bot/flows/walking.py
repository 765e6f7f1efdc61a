"""Walking a flow: the pure engine behind a guided conversation.

`start` walks from the flow's start to the first question or outcome, `answer` applies the
customer's reply to a question and walks on, `step_at` shows a node again. The caller (a Rasa
action) keeps the current node and the facts (`facts_for_order`) between turns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, Literal, TypeAlias

from bot.core.db import Order, OrderStatus
from bot.flows.schema import (
    FACTS,
    RESERVED_REPLIES,
    AskNode,
    CheckNode,
    Flow,
    FlowError,
    OptionSpec,
    OutcomeNode,
    checked_language,
    normalized_reply,
)


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
    checked_language(language)
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
    checked_language(language)
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
    checked_language(language)
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
    text = normalized_reply(reply)
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
        if text in (normalized_reply(option.title.zh), normalized_reply(option.title.en)):
            return option
    return None


def _normalized_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(facts)
    for name, fact in FACTS.items():
        value = facts.get(name)
        if isinstance(value, Enum):
            value = value.value
        if value is not None and not fact.accepts(value):
            raise ValueError(f"fact {name!r} must be {fact.describe()} or None, not {value!r}")
        result[name] = value
    return result
