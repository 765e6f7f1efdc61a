"""Guided decision flows (data/service/flows.yml) for logistics problems and returns.

`guided_flow_form` has one slot, `flow_reply`, asked again and again: each answer moves the
walk to the next question (`flow_node`) until an outcome is reached. Facts come from the order
when the customer gives its number (at any question), else from their answers. An answer
outcome ends the flow; a ticket outcome hands the need, already half known, to the SPIN form.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.knowledge import answer_entry
from actions.orders import order_number_attempt, order_store
from actions.service_plan import flow_book, local_today
from actions.spin import customer_text, entity_value, is_interruption
from bot.flows.schema import Flow, FlowError
from bot.flows.walking import Outcome, Question, Step, answer, facts_for_order, start, step_at
from bot.service.orders import InvalidOrderNumber, normalize_order_number

REPLY_SLOT = "flow_reply"
NODE_SLOT = "flow_node"
FACTS_SLOT = "flow_facts"
FLOW_SLOT = "flow_name"
RESET_FLOW = (FLOW_SLOT, NODE_SLOT, REPLY_SLOT, FACTS_SLOT)
STOPPED = "stopped"
"""`flow_reply` when the customer left the flow before an outcome."""


def _flow(tracker: Tracker) -> Flow:
    return flow_book().get(tracker.get_slot(FLOW_SLOT) or "logistics")


def _order_facts(number: str | None) -> dict[str, Any]:
    order = order_store().find(number) if number else None
    return facts_for_order(order, local_today())


def _arrive(step: Step, facts: dict[str, Any]) -> dict[str, Any]:
    """Slots for having arrived at `step`: a question to ask, or the outcome (form done)."""
    updates: dict[str, Any] = {NODE_SLOT: step.node, FACTS_SLOT: facts}
    updates[REPLY_SLOT] = step.node if isinstance(step, Outcome) else None
    return updates


def _order_number_in(tracker: Tracker) -> str | None:
    candidate = entity_value(tracker, "order_number") or order_number_attempt(
        customer_text(tracker)
    )
    try:
        return normalize_order_number(candidate) if candidate else None
    except InvalidOrderNumber:
        return None


async def read_flow_turn(tracker: Tracker, dispatcher: CollectingDispatcher) -> dict[str, Any]:
    """Starts the walk, or applies the customer's reply to the current question.

    Returns `{}` when the message is about something else (the form then steps aside).
    """
    flow = _flow(tracker)
    language = tracker.get_slot("language") or "zh"
    requested = tracker.get_slot("requested_slot")
    number = _order_number_in(tracker) or (
        tracker.get_slot("order_number") if requested is None else None
    )
    if requested is None or number:  # start, or start again from the order's facts
        facts = await asyncio.to_thread(_order_facts, number)
        step, _ = start(flow, facts, language)
        updates = _arrive(step, facts)
        if number:
            updates["order_number"] = number
        return updates
    reply = entity_value(tracker, "choice") or customer_text(tracker)
    intent = tracker.get_intent_of_latest_message()
    if intent in ("affirm", "deny") and not entity_value(tracker, "choice"):
        reply = intent
    facts = dict(tracker.get_slot(FACTS_SLOT) or {})
    try:
        advance = answer(flow, tracker.get_slot(NODE_SLOT) or "", reply, facts, language)
    except FlowError:  # the flow file changed under the conversation: start again
        step, _ = start(flow, facts, language)
        return _arrive(step, facts)
    if advance is None:
        if intent in ("deny", "skip"):  # "算了" at a question without a "no" option: stop
            return {REPLY_SLOT: STOPPED}
        if is_interruption(tracker) or not reply:
            return {}
        dispatcher.utter_message(response="utter_flow_invalid_choice")
        return {NODE_SLOT: tracker.get_slot(NODE_SLOT)}
    return _arrive(advance.step, advance.facts)


class ValidateGuidedFlowForm(FormValidationAction):
    """Walks the decision tree one reply at a time."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "validate_guided_flow_form"

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """The walk's new position (see `read_flow_turn`)."""
        updates = await read_flow_turn(tracker, dispatcher)
        return [SlotSet(slot, value) for slot, value in updates.items()]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """The extracted values are already validated; pass them on."""
        return [SlotSet(slot, value) for slot, value in tracker.slots_to_validate().items()]


def question_message(question: Question) -> dict[str, Any]:
    """The question with one button per option (`/choose{"choice": id}`)."""
    buttons = [
        {"title": option.title, "payload": "/choose" + json.dumps({"choice": option.id})}
        for option in question.options
    ]
    return {"text": question.text, "buttons": buttons}


class ActionAskFlowReply(Action):
    """Asks the current question of the flow (also after an interruption)."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ask_flow_reply"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Adds a hint to send the order number while the order is unknown."""
        language = tracker.get_slot("language") or "zh"
        step = step_at(_flow(tracker), tracker.get_slot(NODE_SLOT), language)
        if not isinstance(step, Question):
            return []
        facts = tracker.get_slot(FACTS_SLOT) or {}
        if not facts.get("order_known"):
            dispatcher.utter_message(response="utter_flow_order_hint")
        dispatcher.utter_message(**question_message(step))
        return []


class ActionFlowOutcome(Action):
    """Ends the flow: an answer, or a ticket whose need the SPIN form completes."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_flow_outcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Answer outcomes may cite a knowledge entry; ticket outcomes prefill the SPIN slots."""
        language = tracker.get_slot("language") or "zh"
        flow = _flow(tracker)
        step = step_at(flow, tracker.get_slot(NODE_SLOT), language)
        events: list[EventType] = [SlotSet(slot, None) for slot in RESET_FLOW]
        if not isinstance(step, Outcome):  # the customer stopped the flow
            dispatcher.utter_message(response="utter_anything_else")
            return [*events, SlotSet("flow_outcome_kind", None)]
        dispatcher.utter_message(text=step.message)
        if step.kind == "answer":
            if step.kb_entry:
                await answer_entry(dispatcher, tracker, step.kb_entry)
            return [*events, SlotSet("flow_outcome_kind", None)]
        number = tracker.get_slot("order_number")
        hints = [f"complaint:{step.complaint}"] if step.complaint else []
        if step.complaint:
            hints.append("complaint")
        if step.urgency:
            hints.append(f"urgency:{step.urgency}")
        return [
            *events,
            SlotSet("spin_category", step.category),
            SlotSet("spin_situation", number),
            SlotSet("spin_problem", step.problem),
            SlotSet("spin_need_payoff", step.need_payoff),
            SlotSet("spin_hints", hints),
            SlotSet("spin_notes", _flow_notes(tracker)),
            SlotSet("flow_outcome_kind", "ticket"),
        ]


def _flow_notes(tracker: Tracker) -> list[str]:
    """The customer's messages since the question the flow grew from."""
    texts = [
        str(e.get("text"))
        for e in tracker.events
        if e.get("event") == "user" and e.get("text") and not str(e.get("text")).startswith("/")
    ]
    return texts[-6:]
