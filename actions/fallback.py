"""The fallback: try the knowledge base, else ask to rephrase; after repeated misses, a human.

How many misses in a row hand the conversation over is `triggers.consecutive_misses.count`
in data/service/handoff.yml.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.knowledge import answer_from_kb
from actions.service_plan import handoff_policy
from bot.core.db import KbOutcome
from bot.handoff.policy import HandoffReason

FALLBACK_INTENT = "nlu_fallback"
MAX_SUGGESTIONS = 3

SUGGESTIONS: dict[str, tuple[str, str]] = {
    "order_status": ("查询订单", "Track an order"),
    "logistics_issue": ("物流问题", "Delivery problem"),
    "return_refund": ("退换货/退款", "Returns and refunds"),
    "invoice": ("开发票", "Invoices"),
    "payment_issue": ("支付问题", "Payment problem"),
    "account_membership": ("账户与会员", "Account and membership"),
    "product_question": ("商品咨询", "Product question"),
    "ask_ticket_progress": ("工单进度", "Ticket progress"),
    "complain": ("我要投诉", "Make a complaint"),
    "ask_human": ("转人工", "Talk to a person"),
}
"""Intents worth suggesting, with their button titles (Chinese, English)."""

DEFAULT_SUGGESTIONS = ["order_status", "return_refund", "ask_human"]


def consecutive_misses(events: list[dict[str, Any]]) -> int:
    """How many of the latest customer messages in a row the bot could not help with.

    A miss is a message the NLU was unsure about (`nlu_fallback`) or one the knowledge
    base had no answer for (`kb_outcome` set to `no_answer` after it).
    """
    misses = 0
    missed = False
    for event in reversed(events):
        if event.get("event") == "slot" and event.get("name") == "kb_outcome":
            missed = missed or event.get("value") == "no_answer"
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if not (missed or intent.get("name") == FALLBACK_INTENT):
            break
        misses += 1
        missed = False
    return misses


def rejected_loop(tracker: Tracker) -> str | None:
    """The active form that refused the latest message, if that is why the fallback runs.

    Rasa runs the fallback when a form cannot use a message and no rule covers it.
    """
    loop = (tracker.active_loop or {}).get("name")
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return None
        if event.get("event") == "action_execution_rejected" and event.get("name") == loop:
            return str(loop)
    return None


def suggestion_buttons(intent_ranking: list[dict[str, Any]], language: str) -> list[dict[str, str]]:
    """Up to three likely topics from the NLU ranking, padded with common ones."""
    ranked = [item.get("name") for item in intent_ranking]
    chosen: list[str] = []
    for name in [*ranked, *DEFAULT_SUGGESTIONS]:
        if name in SUGGESTIONS and name not in chosen:
            chosen.append(name)
        if len(chosen) == MAX_SUGGESTIONS:
            break
    index = 1 if language == "en" else 0
    return [{"title": SUGGESTIONS[name][index], "payload": f"/{name}"} for name in chosen]


class ActionFallback(Action):
    """A miss: rephrase with suggestions; the policy's number of misses in a row: a human."""

    def name(self) -> str:
        """Action name used in domain.yml and config.yml."""
        return "action_fallback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Answers from the knowledge base if it can; otherwise picks the fallback stage.

        After a form refused the message, the form goes on (it asks its question again):
        without that, Rasa would run this fallback again and again.
        """
        result = await answer_from_kb(dispatcher, tracker, utter_when_none=False)
        loop = rejected_loop(tracker)
        if loop is not None:
            return [SlotSet("kb_outcome", result.outcome.value), FollowupAction(loop)]
        if result.outcome != KbOutcome.no_answer:
            return [SlotSet("kb_outcome", result.outcome.value)]
        if consecutive_misses(tracker.events) >= handoff_policy().triggers.consecutive_misses.count:
            return [
                SlotSet("kb_outcome", result.outcome.value),
                SlotSet("handoff_reason", HandoffReason.consecutive_misses.value),
                FollowupAction("action_handoff"),
            ]
        dispatcher.utter_message(
            response="utter_ask_rephrase",
            buttons=suggestion_buttons(
                tracker.latest_message.get("intent_ranking") or [],
                tracker.get_slot("language") or "zh",
            ),
        )
        return [SlotSet("kb_outcome", result.outcome.value)]
