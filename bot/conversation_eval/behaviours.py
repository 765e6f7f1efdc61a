"""What the customer saw in one turn, named as behaviours (the README's vocabulary).

A turn is the tracker's events from one customer message up to the next. Responses are
recognised by the `utter_action` Rasa stores in each bot message's metadata, knowledge
answers by the `kb_entry_id` the action server adds, forms by the active loop after the turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Kind(str, Enum):
    """How a behaviour counts when it was not expected."""

    confident = "confident"
    """It answered, asked or acted on a reading of the message: wrong when misread."""
    hedge = "hedge"
    """It admitted doubt or offered a way out: unhelpful at worst."""
    guarded = "guarded"
    """Wrong whenever the turn does not expect it (a confident behaviour with consequences)."""


KINDS: dict[str, Kind] = {
    "greet": Kind.confident,
    "goodbye": Kind.guarded,
    "welcome": Kind.confident,
    "anything_else": Kind.hedge,
    "wait_ack": Kind.hedge,
    "bot_identity": Kind.confident,
    "order_status": Kind.confident,
    "order_not_found": Kind.confident,
    "ask_order_number": Kind.hedge,
    "invalid_order_number": Kind.confident,
    "kb_answer": Kind.guarded,
    "kb_suggest": Kind.hedge,
    "topic_help": Kind.hedge,
    "clarify": Kind.hedge,
    "ask_which": Kind.hedge,
    "out_of_scope": Kind.hedge,
    "unsupported_input": Kind.hedge,
    "complaint_form": Kind.hedge,
    "spin_ask": Kind.hedge,
    "confirm_product": Kind.hedge,
    "complaint_ack": Kind.confident,
    "urgent_ack": Kind.confident,
    "safety_warning": Kind.guarded,
    "need_confirmation": Kind.confident,
    "ask_correction": Kind.hedge,
    "ticket_opened": Kind.guarded,
    "ticket_progress": Kind.confident,
    "flow": Kind.confident,
    "handoff": Kind.hedge,
    "offer_human": Kind.hedge,
    "ask_rating": Kind.confident,
    "rating_thanks": Kind.guarded,
    "silent": Kind.hedge,
}
"""Every behaviour of the README's table and its kind. `family:detail` labels share the
family's kind (`kb_answer:returns-refund-time`, `spin_ask:problem`, `flow:logistics`)."""

PARAMETRISED = frozenset({"kb_answer", "kb_suggest", "topic_help", "spin_ask", "flow"})
"""Families written with a detail after a colon."""

SPIN_STAGES = ("situation", "problem", "implication", "need_payoff", "contact_time")

FORM_START = "complaint_form_start"
"""Internal label: the SPIN form became active in this turn (guarded: a form for a question)."""

_RESPONSES: dict[str, tuple[str, ...]] = {
    "utter_greet": ("greet",),
    "utter_greet_again": ("greet",),
    "utter_goodbye": ("goodbye",),
    "utter_youre_welcome": ("welcome",),
    "utter_thanks_for_praise": ("welcome",),
    "utter_anything_else": ("anything_else",),
    "utter_anything_else_skip": ("anything_else",),
    "utter_kb_glad": ("anything_else",),
    "utter_wait": ("wait_ack",),
    "utter_iamabot": ("bot_identity",),
    "utter_order_not_found": ("order_not_found",),
    "utter_ask_order_number": ("ask_order_number",),
    "utter_invalid_order_number": ("invalid_order_number",),
    "utter_invalid_order_number_offer_human": ("invalid_order_number", "offer_human"),
    "utter_kb_clarify": ("clarify",),
    "utter_ask_rephrase": ("clarify",),
    "utter_clarify_number": ("clarify",),
    "utter_spin_need_payoff_unclear": ("clarify",),
    "utter_flow_invalid_choice": ("clarify",),
    "utter_ask_which": ("ask_which",),
    "utter_out_of_scope": ("out_of_scope",),
    "utter_unsupported_input": ("unsupported_input",),
    "utter_confirm_product": ("confirm_product",),
    "utter_ask_spin_order_check": ("confirm_product",),
    "utter_complain_ack": ("complaint_ack",),
    "utter_problem_ack": ("complaint_ack",),
    "utter_spin_intro_problem": ("complaint_ack",),
    "utter_urgent_ack": ("urgent_ack",),
    "utter_safety_warning": ("safety_warning", "urgent_ack"),
    "utter_need_confirmation": ("need_confirmation",),
    "utter_ask_correction_field": ("ask_correction",),
    "utter_ticket_opened": ("ticket_opened",),
    "utter_correction_limit": ("ticket_opened", "handoff"),
    "utter_ticket_status": ("ticket_progress",),
    "utter_no_tickets": ("ticket_progress",),
    "utter_ticket_not_found": ("ticket_progress",),
    "utter_ticket_info_added": ("ticket_progress",),
    "utter_ticket_closed": ("ticket_progress",),
    "utter_ticket_reopened": ("ticket_progress",),
    "utter_ticket_not_changed": ("ticket_progress",),
    "utter_ticket_info_cancelled": ("anything_else",),
    "utter_ticket_unchanged": ("anything_else",),
    "utter_ask_ticket_info": ("clarify",),
    "utter_handoff_queued": ("handoff",),
    "utter_handoff_offline": ("handoff",),
    "utter_offer_human": ("offer_human",),
    "utter_kb_not_solved": ("offer_human",),
    "utter_ask_rating_again": ("ask_rating",),
    "utter_rating_thanks": ("rating_thanks",),
    "utter_rate_thanks": ("rating_thanks",),
    "utter_rating_sorry": ("rating_thanks",),
    "utter_flow_intro": ("flow",),
}
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("utter_order_status_", "order_status"),
    ("utter_out_of_scope_", "out_of_scope"),
    ("utter_ask_spin_", "spin_ask:"),
    ("utter_clarify_", "clarify"),
)
TOPIC_HELP = {
    "utter_return_policy": "return_refund",
    "utter_invoice_help": "invoice",
    "utter_payment_help": "payment_issue",
    "utter_account_help": "account_membership",
    "utter_product_help": "product_question",
    "utter_logistics_help": "logistics_issue",
}
_SAFETY_ADVICE = re.compile(r"安全第一|safety comes first", re.IGNORECASE)
"""The safety advice inside a message (an older model said it in `utter_urgent_ack`)."""
_KB_SELECT = re.compile(r"^/kb_select(\{.*\})$")
FORMS = {"spin_form": "complaint_form", "guided_flow_form": "flow"}


def family(label: str) -> str:
    """`kb_answer:returns-refund-time` -> `kb_answer`."""
    return label.split(":", 1)[0]


def kind_of(label: str) -> Kind:
    """The kind of a behaviour; raw response and action names count as confident."""
    if label == FORM_START:
        return Kind.guarded
    return KINDS.get(family(label), Kind.confident)


def is_known(label: str) -> bool:
    """Whether a label is in the vocabulary (raw `utter_*` / `action_*` names pass too)."""
    name = family(label)
    if label.startswith(("utter_", "action_")):
        return True
    if name not in KINDS:
        return False
    if ":" in label:
        detail = label.split(":", 1)[1]
        return (
            name in PARAMETRISED and bool(detail) and (name != "spin_ask" or detail in SPIN_STAGES)
        )
    return True


@dataclass
class Turn:
    """The tracker events of one customer message and what followed it."""

    user: Mapping[str, Any]
    events: list[Mapping[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    """Every slot's value after the turn."""
    loop_before: str | None = None
    loop_after: str | None = None


def split_turns(events: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """The tracker's events cut at each customer message, with slot values and forms."""
    slots: dict[str, Any] = {}
    loop: str | None = None
    turns: list[Turn] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if turns:
                turns[-1].slots = dict(slots)
                turns[-1].loop_after = loop
            turns.append(Turn(user=event, loop_before=loop))
            continue
        if kind == "slot":
            slots[str(event.get("name"))] = event.get("value")
        elif kind == "active_loop":
            loop = event.get("name") or None
        elif kind == "restart":
            slots, loop = {}, None
        if turns:
            turns[-1].events.append(event)
    if turns:
        turns[-1].slots = dict(slots)
        turns[-1].loop_after = loop
    return turns


@dataclass(frozen=True)
class Observation:
    """What the customer saw in one turn, as behaviour labels, and the facts behind them."""

    intent: str
    confidence: float
    behaviours: frozenset[str]
    responses: tuple[str, ...]
    texts: tuple[str, ...]
    slots: Mapping[str, Any]
    messages: int

    @property
    def silent(self) -> bool:
        """The bot sent nothing."""
        return self.messages == 0


def _kb_entries(buttons: Iterable[Mapping[str, Any]]) -> list[str]:
    entries = []
    for button in buttons:
        match = _KB_SELECT.match(str(button.get("payload") or ""))
        if match:
            try:
                entry = json.loads(match[1]).get("kb_entry_id")
            except (ValueError, AttributeError):
                continue
            if entry:
                entries.append(str(entry))
    return entries


def _response_labels(response: str, text: str) -> list[str]:
    labels = list(_RESPONSES.get(response, ()))
    for prefix, label in () if labels else _PREFIXES:
        if response.startswith(prefix):
            labels.append(label + response[len(prefix) :] if label.endswith(":") else label)
    if response in TOPIC_HELP:
        labels += ["topic_help", f"topic_help:{TOPIC_HELP[response]}"]
    if _SAFETY_ADVICE.search(text):
        labels.append("safety_warning")
    return labels


def observe(turn: Turn) -> Observation:
    """The behaviours of one turn (see the README's table)."""
    parse = turn.user.get("parse_data") or {}
    intent = parse.get("intent") or {}
    labels: set[str] = set()
    responses: list[str] = []
    texts: list[str] = []
    messages = 0
    for event in turn.events:
        kind = event.get("event")
        if kind == "action":
            name = str(event.get("name") or "")
            if name and name != "action_listen":
                labels.add(name)
            if name == "action_handoff":
                labels.add("handoff")
        elif kind == "pause":
            labels.add("handoff")
        elif kind == "bot":
            messages += 1
            metadata = event.get("metadata") or {}
            data = event.get("data") or {}
            text = str(event.get("text") or "")
            texts.append(text)
            response = str(metadata.get("utter_action") or "")
            if response:
                responses.append(response)
                labels.add(response)
                labels.update(_response_labels(response, text))
            elif _SAFETY_ADVICE.search(text):
                labels.add("safety_warning")
            entry = metadata.get("kb_entry_id")
            if entry and response != "utter_kb_suggestions":
                labels.update(("kb_answer", f"kb_answer:{entry}"))
            if response == "utter_kb_answer" and not entry:
                labels.add("kb_answer")
            suggested = _kb_entries(data.get("buttons") or [])
            if response == "utter_kb_suggestions" or suggested:
                labels.add("kb_suggest")
                labels.update(f"kb_suggest:{entry}" for entry in suggested)
    loops = {str(e.get("name")) for e in turn.events if e.get("event") == "active_loop"}
    loops |= {turn.loop_after} if turn.loop_after else set()
    for loop in loops & set(FORMS):
        labels.add(FORMS[loop])
        if loop == "guided_flow_form" and turn.slots.get("flow_name"):
            labels.add(f"flow:{turn.slots['flow_name']}")
    if "spin_form" in loops and turn.loop_before != "spin_form":
        labels.add(FORM_START)
    if any(label.startswith("spin_ask:") for label in labels):
        labels.add("complaint_form")
        if turn.loop_before != "spin_form":
            labels.add(FORM_START)
    if messages == 0:
        labels.add("silent")
    return Observation(
        intent=str(intent.get("name") or ""),
        confidence=float(intent.get("confidence") or 0.0),
        behaviours=frozenset(labels),
        responses=tuple(responses),
        texts=tuple(texts),
        slots=turn.slots,
        messages=messages,
    )
