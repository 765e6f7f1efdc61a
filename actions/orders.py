"""Order lookup: the order number form's validation and the status answer."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.needs import start_record_instead
from actions.service_plan import app_engine
from bot.core.db import Order
from bot.service.orders import InvalidOrderNumber, OrderStore, normalize_order_number

ORDER_NUMBER_SLOT = "order_number"
ATTEMPTS_SLOT = "invalid_order_number_attempts"
_ATTEMPT = re.compile(r"[Kk][Ff][\s-]*\d[\d\s-]*|[\d\s-]{4,}\d")
_INTENTS_GIVING_NUMBERS = {"inform", "order_status", "nlu_fallback"}


@lru_cache(maxsize=1)
def order_store() -> OrderStore:
    """The order store on the app database, created on first use."""
    return OrderStore(app_engine())


def order_number_attempt(text: str) -> str | None:
    """The part of `text` that looks like an attempt at an order number, if any.

    Twelve bare digits get the `KF` prefix, so customers may omit it.
    """
    match = _ATTEMPT.search(text)
    if match is None:
        return None
    attempt = match.group(0).strip()
    digits = re.sub(r"[\s-]", "", attempt)
    return f"KF{digits}" if re.fullmatch(r"\d{12}", digits) else attempt


class ValidateOrderStatusForm(FormValidationAction):
    """Accepts only well-formed order numbers; offers a human after two bad ones."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "validate_order_status_form"

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Takes malformed numbers too, so that validation can explain the format.

        At the form's start (nothing requested yet) a number the customer typed with blanks
        or a missing digit is read too: "KF 2026 1120 0007" is found, "KF20261120003" is
        explained instead of asking for a number the customer just gave.
        """
        if tracker.get_slot("requested_slot") not in (ORDER_NUMBER_SLOT, None):
            return {}
        entities = tracker.latest_message.get("entities") or []
        given = [e for e in entities if e.get("entity") == ORDER_NUMBER_SLOT]
        if given:
            return {ORDER_NUMBER_SLOT: given[-1].get("value")}
        if tracker.get_intent_of_latest_message() not in _INTENTS_GIVING_NUMBERS:
            return {}
        attempt = order_number_attempt(tracker.latest_message.get("text") or "")
        starting = tracker.get_slot("requested_slot") is None
        if not attempt or (starting and not attempt.upper().startswith("KF")):
            return {}  # at the start only a KF number counts (not a phone number or "12345")
        return {ORDER_NUMBER_SLOT: attempt}

    def validate_order_number(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Canonicalises the number or explains the expected format."""
        try:
            number = normalize_order_number(str(value))
        except InvalidOrderNumber:
            attempts = int(tracker.get_slot(ATTEMPTS_SLOT) or 0) + 1
            dispatcher.utter_message(
                response="utter_invalid_order_number_offer_human"
                if attempts >= 2
                else "utter_invalid_order_number"
            )
            return {ORDER_NUMBER_SLOT: None, ATTEMPTS_SLOT: attempts}
        return {ORDER_NUMBER_SLOT: number, ATTEMPTS_SLOT: 0}


def order_facts(order: Order, language: str) -> dict[str, str]:
    """The values the order status responses interpolate, in the customer's language."""
    english = language == "en"
    return {
        "order_number": order.number,
        "product": order.product_en if english else order.product_zh,
        "amount": f"¥{order.amount_cents / 100:,.2f}",
        "carrier": (order.carrier_en if english else order.carrier_zh) or "",
        "tracking_number": order.tracking_number or "",
        "eta": order.eta.isoformat() if order.eta else "",
        "delivered_at": order.delivered_at.strftime("%Y-%m-%d %H:%M") if order.delivered_at else "",
    }


class ActionOrderStatus(Action):
    """Tells the customer where the order in the `order_number` slot is."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_order_status"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Looks the order up (in a worker thread) and utters its status response."""
        number = tracker.get_slot(ORDER_NUMBER_SLOT)
        if not number:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        if tracker.get_intent_of_latest_message() == "inform":
            # "KF… 前天到的 到手就这样": an order number with a problem is a need to record
            record = await start_record_instead(dispatcher, tracker, wants_something=False)
            if record:
                return record
        order = await asyncio.to_thread(order_store().find, number)
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            return [SlotSet(ORDER_NUMBER_SLOT, None)]  # an unknown number is not remembered
        else:
            dispatcher.utter_message(
                response=f"utter_order_status_{order.status.value}",
                **order_facts(order, tracker.get_slot("language") or "zh"),
            )
        # The number stays known: "when will it arrive?" and a later complaint refer to it.
        return []
