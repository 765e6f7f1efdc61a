import pytest
from rasa.shared.nlu.training_data.message import Message

from rasa_addons.nlu.input_guard import InputGuard, is_unreadable


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "？？！", "Привет, как дела", "こんにちは"])
def test_unreadable(text: str) -> None:
    assert is_unreadable(text)


@pytest.mark.parametrize(
    "text",
    ["你好", "hello", "我的order到哪了", "KF202611200001", "ok 👍", "123 456", "退货 Привет"],
)
def test_readable(text: str) -> None:
    assert not is_unreadable(text)


def test_process_overrides_the_intent_only_for_unreadable_text() -> None:
    guard = InputGuard()
    unreadable = Message(data={"text": "😀", "intent": {"name": "greet", "confidence": 0.9}})
    readable = Message(data={"text": "你好", "intent": {"name": "greet", "confidence": 0.9}})
    payload = Message(data={"text": "/greet", "intent": {"name": "greet", "confidence": 1.0}})
    guard.process([unreadable, readable, payload])
    assert unreadable.get("intent") == {"name": "unreadable_input", "confidence": 1.0}
    assert readable.get("intent")["name"] == "greet"
    assert payload.get("intent")["name"] == "greet"


@pytest.mark.parametrize("text", ["?", "？？", "。。。", "...", "？！", " ? "])
def test_question_marks_and_dots_alone_get_their_own_intent(text: str) -> None:
    message = Message(data={"text": text, "intent": {"name": "greet", "confidence": 0.9}})
    InputGuard().process([message])
    assert message.get("intent") == {"name": "punctuation", "confidence": 1.0}


@pytest.mark.parametrize("text", ["😀", "!!!", "👍👍", "Привет"])
def test_emoji_and_other_scripts_stay_unreadable(text: str) -> None:
    message = Message(data={"text": text, "intent": {"name": "greet", "confidence": 0.9}})
    InputGuard().process([message])
    assert message.get("intent")["name"] == "unreadable_input"
