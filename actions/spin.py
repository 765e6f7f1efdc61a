"""SPIN need elicitation: Situation, Problem, Implication, Need-payoff, asked only when unknown.

`spin_form` asks the SPIN slots in order; `ValidateSpinForm` reads every customer message for
whatever it answers (an order number or product, the problem and since when, the impact, the
outcome wanted), so a stage the customer already covered is never asked. "不知道" / "skip"
records the stage as declined; questions about something else are answered and the form
resumes where it was.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.orders import ATTEMPTS_SLOT, order_number_attempt
from actions.service_plan import SKIPPED, local_today, service_policy
from bot.orders import InvalidOrderNumber, normalize_order_number
from bot.service_policy import (
    FutureDate,
    is_generic_request,
    read_impacts,
    read_need_payoff,
    read_product,
    read_since,
)

SPIN_SLOTS = ("spin_situation", "spin_problem", "spin_implication", "spin_need_payoff")
CONTACT_TIME_SLOT = "spin_contact_time"
CATEGORY_BY_INTENT = {"complain": "complaint", "urgent_issue": "urgent"}
NO_IMPACT = ("无特别影响", "no particular impact")
MAX_TEXT = 500
"""Longest answer kept in a SPIN slot (longer answers are cut, the full text stays in Rasa)."""

INTERRUPTING_INTENTS = frozenset(
    {
        "order_status",
        "invoice",
        "account_membership",
        "ask_ticket_progress",
        "bot_challenge",
        "greet",
        "thank",
        "goodbye",
        "rate_service",
        "kb_select",
        "out_of_scope",
        "ask_human",
    }
)
"""Intents that are a different question, not an answer, when the model is confident."""
INTERRUPTION_CONFIDENCE = 0.75
_BUTTON_PAYLOAD = re.compile(r"^/\w+")
_WANTS = re.compile(r"要|想|希望|请|麻烦|want|would like|'d like|please|need|can you", re.I)
"""A wish, as opposed to a description: "我要换货" states an outcome, "说好回电话" does not."""


def is_interruption(tracker: Tracker) -> bool:
    """The latest message asks something else (confidently), so the form should step aside."""
    intent = tracker.latest_message.get("intent") or {}
    if intent.get("name") == "ask_human":
        return True
    return (
        intent.get("name") in INTERRUPTING_INTENTS
        and float(intent.get("confidence") or 0) >= INTERRUPTION_CONFIDENCE
    )


def customer_text(tracker: Tracker) -> str:
    """The latest message's text, empty for button payloads such as `/choose{...}`."""
    text = (tracker.latest_message.get("text") or "").strip()
    return "" if _BUTTON_PAYLOAD.match(text) else text[:MAX_TEXT]


def entity_value(tracker: Tracker, entity: str) -> str | None:
    """The first value of `entity` in the latest message."""
    return next(tracker.get_latest_entity_values(entity), None)


def _skip(updates: dict[str, Any], tracker: Tracker, slot: str) -> None:
    skipped = list(updates.get("spin_skipped") or tracker.get_slot("spin_skipped") or [])
    if slot not in skipped:
        skipped.append(slot)
    updates["spin_skipped"] = skipped
    updates[slot] = SKIPPED


def _answered(updates: dict[str, Any], tracker: Tracker, slot: str, value: Any) -> None:
    updates[slot] = value
    skipped = list(updates.get("spin_skipped") or tracker.get_slot("spin_skipped") or [])
    if slot in skipped:
        skipped.remove(slot)
        updates["spin_skipped"] = skipped


def read_spin_turn(
    tracker: Tracker, dispatcher: CollectingDispatcher, today: date
) -> dict[str, Any]:
    """The slot values the latest message gives, with prompts for invalid answers.

    Returns `{}` when the message is about something else (the form then steps aside).
    """
    policy = service_policy()
    requested = tracker.get_slot("requested_slot")
    intent = tracker.get_intent_of_latest_message() or ""
    text = customer_text(tracker)
    language = tracker.get_slot("language") or "zh"
    updates: dict[str, Any] = {}

    def known(slot: str) -> bool:
        return updates.get(slot, tracker.get_slot(slot)) not in (None, "")

    if requested is None:  # the form starts: remember why, read the opening message
        updates["flow_outcome_kind"] = None
        updates["record_need"] = None
        if not tracker.get_slot("spin_category"):
            updates["spin_category"] = CATEGORY_BY_INTENT.get(intent, "problem")
        if text and intent in CATEGORY_BY_INTENT and not is_generic_request(policy, text):
            updates["spin_problem"] = text
    if text:
        updates["spin_notes"] = [*(tracker.get_slot("spin_notes") or []), text]

    # Situation: an order number (a new one corrects the old one), else a product named.
    number = entity_value(tracker, "order_number")
    if number:
        try:
            _answered(updates, tracker, "spin_situation", normalize_order_number(number))
            updates["order_number"] = normalize_order_number(number)
        except InvalidOrderNumber:
            pass
    elif text and not known("spin_situation"):
        product = read_product(policy, text)
        if product:
            updates["spin_situation"] = product

    if text and not known("spin_implication") and read_impacts(policy, text):
        updates["spin_implication"] = text
    if (
        text
        and not known("spin_need_payoff")
        and (requested == "spin_need_payoff" or _WANTS.search(text))
    ):
        payoff = read_need_payoff(policy, text)
        if payoff is not None:
            updates["spin_need_payoff"] = payoff.value

    if requested is None or requested in updates:
        return updates
    if number and intent == "inform":  # just the order number: ask the open question again
        return updates
    return _answer_requested(requested, tracker, dispatcher, updates, text, intent, language, today)


def _answer_requested(
    requested: str,
    tracker: Tracker,
    dispatcher: CollectingDispatcher,
    updates: dict[str, Any],
    text: str,
    intent: str,
    language: str,
    today: date,
) -> dict[str, Any]:
    """Reads the answer to the question the bot just asked."""
    choice = entity_value(tracker, "choice")
    if intent == "skip" or (intent == "deny" and requested != "spin_implication"):
        _skip(updates, tracker, requested)
        return updates
    if requested == "spin_implication" and intent == "deny":
        _answered(updates, tracker, requested, NO_IMPACT[1] if language == "en" else NO_IMPACT[0])
        return updates
    if requested == "spin_need_payoff":
        if choice:
            _answered(updates, tracker, requested, choice)
            return updates
        if is_interruption(tracker) or not text:
            return _unless_nothing(updates)
        dispatcher.utter_message(response="utter_spin_need_payoff_unclear")
        return updates
    if not text or is_interruption(tracker):
        return _unless_nothing(updates)
    if requested == "spin_situation":
        if order_number_attempt(text) is not None:  # a malformed order number
            attempts = int(tracker.get_slot(ATTEMPTS_SLOT) or 0) + 1
            dispatcher.utter_message(
                response="utter_invalid_order_number_offer_human"
                if attempts >= 2
                else "utter_invalid_order_number"
            )
            updates[ATTEMPTS_SLOT] = attempts
            return updates
        _answered(updates, tracker, requested, text)
    elif requested == "spin_problem":
        try:
            since = read_since(text, today)
        except FutureDate:
            dispatcher.utter_message(response="utter_spin_future_date")
            return updates
        _answered(updates, tracker, requested, text)
        if since is not None:
            updates["spin_problem_since"] = since.isoformat()
    else:
        _answered(updates, tracker, requested, text)
    return updates


def _unless_nothing(updates: dict[str, Any]) -> dict[str, Any]:
    """`updates` if the message gave the form anything; else `{}` so the form steps aside."""
    return updates if set(updates) - {"spin_notes"} else {}


class ValidateSpinForm(FormValidationAction):
    """Fills the SPIN slots from whatever the customer says; asks a call-back time if needed."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "validate_spin_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """The four SPIN stages, plus the call-back time when a call back is wanted."""
        slots = list(SPIN_SLOTS)
        if tracker.get_slot("spin_need_payoff") == "call_back":
            slots.append(CONTACT_TIME_SLOT)
        return slots

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Everything the latest message answers, validated (see `read_spin_turn`)."""
        updates = read_spin_turn(tracker, dispatcher, local_today())
        return [SlotSet(slot, value) for slot, value in updates.items()]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """The extracted values are already validated; pass them on."""
        return [SlotSet(slot, value) for slot, value in tracker.slots_to_validate().items()]
