import pytest
from rasa.shared.nlu.training_data.message import Message

from rasa_addons.nlu.language import LanguageDetector, detect_language


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
        ("order KF202611200001", None),
        ("where is order KF202611200001", "en"),
        ("ok", None),
        ("haode", None),
        ("yes pls", None),
        ("haode xiexie", None),
        ("fa piao zen me kai a", "zh"),
        ("gongsi de taitou ne", "zh"),
        ("you can change it", "en"),
        ("how long does a refund take", "en"),
        ("hi", "en"),
        ("hello there", "en"),
        ("good morning", "en"),
        ("/greet", None),
        ("😀", None),
        ("", None),
        ("12345", None),
        ("Привет", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_entity_is_added_only_when_the_language_is_clear() -> None:
    english = Message(data={"text": "hi there", "entities": [{"entity": "order_number"}]})
    unclear = Message(data={"text": "👍"})
    LanguageDetector().process([english, unclear])
    assert english.get("entities")[-1]["value"] == "en"
    assert english.get("entities")[0] == {"entity": "order_number"}
    assert not unclear.get("entities")
