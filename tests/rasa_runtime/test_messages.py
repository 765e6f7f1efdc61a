import pytest

from connectors.messages import (
    MAX_MESSAGE_CHARS,
    TRUNCATION_METADATA_KEY,
    is_valid_sender_id,
    prepare_text,
)


def test_short_text_is_kept_and_stripped() -> None:
    prepared = prepare_text("  你好\u0007 ")
    assert prepared.text == "你好"
    assert prepared.truncated_from is None
    assert prepared.metadata({"a": 1}) == {"a": 1}


def test_long_text_is_cut_and_marked() -> None:
    prepared = prepare_text("长" * 10_000)
    assert len(prepared.text) == MAX_MESSAGE_CHARS
    assert prepared.metadata() == {TRUNCATION_METADATA_KEY: 10_000}


def test_clients_cannot_forge_the_truncation_marker() -> None:
    assert prepare_text("hi").metadata({TRUNCATION_METADATA_KEY: 5}) == {}


@pytest.mark.parametrize("value", ["abc", "user_1", "wx:o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "a" * 128])
def test_valid_sender_ids(value: str) -> None:
    assert is_valid_sender_id(value)


@pytest.mark.parametrize("value", ["", "a b", "../etc", "a" * 129, None, 42, "<script>"])
def test_invalid_sender_ids(value: object) -> None:
    assert not is_valid_sender_id(value)
