import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.language import ActionAnnounceTruncation, ActionDetectLanguage, detect_language
from tests.app.conftest import make_tracker


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh"),
        ("我的order到哪了", "zh"),
        ("能开invoice吗", "zh"),
        ("where is my order", "en"),
        ("where is my 耳机 order", "en"),
        ("KF202611200001", None),
        ("订单KF202611200001", "zh"),
        ("order KF202611200001", "en"),
        ("😀", None),
        ("", None),
        ("12345", None),
        ("Привет", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


async def test_language_slot_changes_only_when_needed() -> None:
    action = ActionDetectLanguage()
    english = make_tracker("where is my parcel", "order_status", slots={"language": "zh"})
    assert await action.run(CollectingDispatcher(), english, {}) == [SlotSet("language", "en")]
    chinese = make_tracker("你好", "greet", slots={"language": "zh"})
    assert await action.run(CollectingDispatcher(), chinese, {}) == []
    emoji = make_tracker("👍", "nlu_fallback", slots={"language": "en"})
    assert await action.run(CollectingDispatcher(), emoji, {}) == []
    button = make_tracker("/order_status", "order_status", slots={"language": "zh"})
    assert await action.run(CollectingDispatcher(), button, {}) == []


async def test_truncation_notice() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("长" * 1000, "complain", metadata={"kefu_truncated_from": 10000})
    await ActionAnnounceTruncation().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_message_truncated"
    assert dispatcher.messages[0]["original_length"] == 10000
    quiet = CollectingDispatcher()
    await ActionAnnounceTruncation().run(quiet, make_tracker("hi", "greet"), {})
    assert quiet.messages == []
