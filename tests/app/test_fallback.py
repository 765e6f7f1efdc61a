from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionFallback, consecutive_misses, suggestion_buttons
from tests.app.conftest import make_tracker, user_event


async def test_first_miss_asks_to_rephrase_with_suggestions() -> None:
    dispatcher = CollectingDispatcher()
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.45},
        {"name": "invoice", "confidence": 0.3},
        {"name": "greet", "confidence": 0.1},
    ]
    tracker = make_tracker("开个那个票", "nlu_fallback", 0.45, ranking=ranking)
    events = await ActionFallback().run(dispatcher, tracker, {})
    assert events == []
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ask_rephrase"
    assert [b["payload"] for b in message["buttons"]] == [
        "/invoice",
        "/order_status",
        "/return_refund",
    ]


async def test_second_miss_in_a_row_offers_a_human() -> None:
    earlier = [user_event("嗯嗯那个", "nlu_fallback", 0.45), {"event": "bot", "text": "?"}]
    tracker = make_tracker("就是那个啊", "nlu_fallback", 0.45, events=earlier)
    events = await ActionFallback().run(CollectingDispatcher(), tracker, {})
    assert events == [FollowupAction("utter_offer_human")]


async def test_a_miss_after_an_understood_message_starts_over() -> None:
    earlier = [user_event("?", "nlu_fallback", 0.4), user_event("你好", "greet")]
    assert consecutive_misses([*earlier, user_event("?", "nlu_fallback", 0.4)]) == 1


def test_suggestions_are_in_the_customer_language() -> None:
    buttons = suggestion_buttons([{"name": "payment_issue"}], "en")
    assert buttons[0] == {"title": "Payment problem", "payload": "/payment_issue"}
    assert len(buttons) == 3
