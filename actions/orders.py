"""Order lookup: the order number form's validation and the status answer."""

from __future__ import annotations

import asyncio
import hmac
import re
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.customers import customer_directory
from actions.needs import start_record_instead
from actions.service_plan import app_engine
from bot.core.db import Order, OrderStatus
from bot.service.orders import InvalidOrderNumber, OrderStore, normalize_order_number

ORDER_NUMBER_SLOT = "order_number"
ATTEMPTS_SLOT = "invalid_order_number_attempts"
_ATTEMPT = re.compile(r"[Kk][Ff][\s-]*\d[\d\s-]*|[\d\s-]{4,}\d")
_INTENTS_GIVING_NUMBERS = {"inform", "order_status", "nlu_fallback"}

CHECK_SLOT = "order_check"
"""The ownership check of this conversation: `{"pending": number | None, "passed": [numbers],
"failures": {number: wrong answers}}` (not featurized; read by `action_order_status` only)."""
CHECK_ATTEMPTS = 3
"""Wrong answers after which an order's details stay hidden for the conversation."""
_CHECK_REPLY = re.compile(r"^\D*?(\d{4})\D*$")
_STATUS_LABELS = {
    "zh": {
        "pending_payment": "待付款",
        "paid": "已付款，正在备货",
        "shipped": "已发货",
        "delivered": "已签收",
        "cancelled": "已取消",
        "refunding": "退款中",
    },
    "en": {
        "pending_payment": "waiting for payment",
        "paid": "paid, being prepared for shipping",
        "shipped": "shipped",
        "delivered": "delivered",
        "cancelled": "cancelled",
        "refunding": "refund in progress",
    },
}


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


def check_reply(text: str) -> str | None:
    """The four digits of a reply to the ownership check ("1234", "后四位是 1234"), else None."""
    match = _CHECK_REPLY.match(text.strip())
    return match.group(1) if match else None


def _check_state(tracker: Tracker) -> dict[str, Any]:
    state = tracker.get_slot(CHECK_SLOT)
    state = state if isinstance(state, dict) else {}
    failures = state.get("failures")
    return {
        "pending": state.get("pending"),
        "passed": [str(n) for n in state.get("passed") or []],
        "failures": {str(k): int(v) for k, v in (failures or {}).items()}
        if isinstance(failures, dict)
        else {},
    }


def owns_order(sender_id: str, order: Order) -> bool:
    """Whether the caller's customer has the order's phone as verified phone (blocking)."""
    phone = customer_directory().verified_phone(sender_id)
    return bool(phone) and hmac.compare_digest(str(phone).encode(), order.customer_phone.encode())


class ActionOrderStatus(Action):
    """Tells the customer where the order in the `order_number` slot is.

    Order numbers are guessable, so the details (product, amount, carrier, tracking number,
    ETA) go only to the order's owner (the caller's verified phone is the order's) or to a
    caller who gave the last four digits of the order's phone in this conversation; others
    get the status and the question. Three wrong answers hide the order's details for the
    rest of the conversation. The order's phone is never copied into the caller's profile.
    """

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
        language = "en" if tracker.get_slot("language") == "en" else "zh"
        check = _check_state(tracker)
        digits = None
        if check["pending"] == number and tracker.get_intent_of_latest_message() in (
            _INTENTS_GIVING_NUMBERS
        ):
            digits = check_reply(tracker.latest_message.get("text") or "")
        if digits is None and tracker.get_intent_of_latest_message() == "inform":
            # "KF… 前天到的 到手就这样": an order number with a problem is a need to record
            record = await start_record_instead(dispatcher, tracker, wants_something=False)
            if record:
                return record
        order = await asyncio.to_thread(order_store().find, number)
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            return [SlotSet(ORDER_NUMBER_SLOT, None)]  # an unknown number is not remembered
        if digits is not None:
            return self._answer_check(dispatcher, order, digits, check, language)
        # The number stays known: "when will it arrive?" and a later complaint refer to it.
        if (
            order.number in check["passed"]
            or order.status == OrderStatus.cancelled  # nothing to hide
            or await asyncio.to_thread(owns_order, tracker.sender_id, order)
        ):
            self._details(dispatcher, order, language)
            return []
        status = _STATUS_LABELS[language][order.status.value]
        if check["failures"].get(order.number, 0) >= CHECK_ATTEMPTS:
            dispatcher.utter_message(
                response="utter_order_check_locked", order_number=order.number, status=status
            )
            return []
        dispatcher.utter_message(
            response="utter_order_status_brief", order_number=order.number, status=status
        )
        return [SlotSet(CHECK_SLOT, {**check, "pending": order.number})]

    @staticmethod
    def _details(dispatcher: CollectingDispatcher, order: Order, language: str) -> None:
        dispatcher.utter_message(
            response=f"utter_order_status_{order.status.value}", **order_facts(order, language)
        )

    def _answer_check(
        self,
        dispatcher: CollectingDispatcher,
        order: Order,
        digits: str,
        check: dict[str, Any],
        language: str,
    ) -> list[EventType]:
        """Compares the reply with the order's phone (constant time) and answers."""
        if hmac.compare_digest(digits.encode(), order.customer_phone[-4:].encode()):
            self._details(dispatcher, order, language)
            passed = sorted({*check["passed"], order.number})
            return [SlotSet(CHECK_SLOT, {**check, "pending": None, "passed": passed})]
        failures = {**check["failures"], order.number: check["failures"].get(order.number, 0) + 1}
        left = CHECK_ATTEMPTS - failures[order.number]
        if left <= 0:
            dispatcher.utter_message(
                response="utter_order_check_locked",
                order_number=order.number,
                status=_STATUS_LABELS[language][order.status.value],
            )
            return [SlotSet(CHECK_SLOT, {**check, "pending": None, "failures": failures})]
        dispatcher.utter_message(response="utter_order_check_wrong", attempts_left=str(left))
        return [SlotSet(CHECK_SLOT, {**check, "failures": failures})]
