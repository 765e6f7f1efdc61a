from collections.abc import Iterator
from unittest.mock import AsyncMock, patch

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import (
    ActionFallback,
    consecutive_misses,
    rejected_loop,
    suggestion_buttons,
)
from actions.knowledge import KbResult
from bot.core.db import KbOutcome
from tests.app.conftest import make_tracker, user_event

NO_ANSWER = SlotSet("kb_outcome", "no_answer")


@pytest.fixture(autouse=True)
def kb_without_answer() -> Iterator[AsyncMock]:
    result = KbResult(KbOutcome.no_answer, [], "v1")
    with patch("actions.fallback.answer_from_kb", AsyncMock(return_value=result)) as mock:
        yield mock


async def test_first_miss_asks_to_rephrase_with_suggestions() -> None:
    dispatcher = CollectingDispatcher()
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.45},
        {"name": "invoice", "confidence": 0.3},
        {"name": "greet", "confidence": 0.1},
    ]
    tracker = make_tracker("开个那个票", "nlu_fallback", 0.45, ranking=ranking)
    events = await ActionFallback().run(dispatcher, tracker, {})
    assert events == [NO_ANSWER]
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ask_rephrase"
    assert [b["payload"] for b in message["buttons"]] == [
        "/invoice",
        "/order_status",
        "/return_refund",
    ]


async def test_second_miss_in_a_row_hands_over_to_a_human() -> None:
    earlier = [user_event("嗯嗯那个", "nlu_fallback", 0.45), {"event": "bot", "text": "?"}]
    tracker = make_tracker("就是那个啊", "nlu_fallback", 0.45, events=earlier)
    events = await ActionFallback().run(CollectingDispatcher(), tracker, {})
    assert events == [
        NO_ANSWER,
        SlotSet("handoff_reason", "consecutive_misses"),
        FollowupAction("action_handoff"),
    ]


async def test_a_miss_after_an_understood_message_starts_over() -> None:
    earlier = [user_event("?", "nlu_fallback", 0.4), user_event("你好", "greet")]
    assert consecutive_misses([*earlier, user_event("?", "nlu_fallback", 0.4)]) == 1


def test_suggestions_are_in_the_customer_language() -> None:
    buttons = suggestion_buttons([{"name": "payment_issue"}], "en")
    assert buttons[0] == {"title": "Payment problem", "payload": "/payment_issue"}
    assert len(buttons) == 3


async def test_a_knowledge_answer_ends_the_fallback(kb_without_answer: AsyncMock) -> None:
    kb_without_answer.return_value = KbResult(KbOutcome.answered, [], "v1")
    dispatcher = CollectingDispatcher()
    events = await ActionFallback().run(
        dispatcher, make_tracker("那个保修咋弄", "nlu_fallback", 0.45), {}
    )
    assert events == [SlotSet("kb_outcome", "answered")]
    assert dispatcher.messages == []  # the knowledge answer was uttered by answer_from_kb


def test_a_knowledge_miss_counts_like_an_nlu_miss() -> None:
    events = [
        user_event("保修卡丢了还能修吗", "product_question"),
        {"event": "slot", "name": "kb_outcome", "value": "no_answer"},
        user_event("?", "nlu_fallback", 0.4),
    ]
    assert consecutive_misses(events) == 2
    answered = [events[0], {"event": "slot", "name": "kb_outcome", "value": "answered"}, events[2]]
    assert consecutive_misses(answered) == 1


def form_refused(text: str, intent: str) -> Tracker:
    """The order form is asking for the number and refused `text` (no rule covers it)."""
    base = make_tracker(text, intent)
    return Tracker(
        base.sender_id,
        base.slots,
        base.latest_message,
        [*base.events, {"event": "action_execution_rejected", "name": "order_status_form"}],
        False,
        None,
        {"name": "order_status_form"},
        "action_execution_rejected",
    )


async def test_a_message_a_form_refused_lets_the_form_ask_again() -> None:
    """Without the follow-up Rasa ran the fallback ten times in a row (circuit breaker)."""
    dispatcher = CollectingDispatcher()
    tracker = form_refused("我的订单到哪了", "order_status")
    events = await ActionFallback().run(dispatcher, tracker, {})
    assert events == [NO_ANSWER, FollowupAction("order_status_form")]
    assert dispatcher.messages == []  # no "please rephrase": the form's question follows


def test_only_a_refusal_after_the_latest_message_counts() -> None:
    assert rejected_loop(form_refused("我的订单到哪了", "order_status")) == "order_status_form"
    earlier = [{"event": "action_execution_rejected", "name": "order_status_form"}]
    assert rejected_loop(make_tracker("?", "nlu_fallback", events=earlier)) is None
