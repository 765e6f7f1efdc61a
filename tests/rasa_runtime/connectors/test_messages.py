import pytest

from connectors.messages import (
    MAX_MESSAGE_CHARS,
    TRUNCATION_METADATA_KEY,
    announcing_truncation,
    is_valid_sender_id,
    prepare_text,
    truncation_notice,
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


def test_truncation_notice_follows_the_message_language() -> None:
    assert "10000" in truncation_notice("长" * 1000, 10000)
    assert truncation_notice("word " * 300, 10000).startswith("Your message was long")


async def test_cut_messages_are_announced_before_the_answer() -> None:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    seen: list[str] = []

    async def bot(message: UserMessage) -> None:
        seen.append(message.text or "")

    collector = CollectingOutputChannel()
    handle = announcing_truncation(bot)
    await handle(UserMessage("长", collector, "s1", metadata={TRUNCATION_METADATA_KEY: 5000}))
    await handle(UserMessage("短", collector, "s1", metadata={}))
    assert len(collector.messages) == 1 and "5000" in collector.messages[0]["text"]
    assert seen == ["长", "短"]


def test_channel_senders_are_namespaced_and_unwrapped() -> None:
    from connectors.messages import namespaced_sender, platform_id

    assert namespaced_sender("wechat", "o6_b") == "wechat:o6_b"
    assert platform_id("wechat", "wechat:o6_b") == "o6_b"
    assert platform_id("telegram", "telegram:-100123") == "-100123"
    assert platform_id("telegram", "424242") == "424242"  # conversations from before


def test_client_metadata_is_whitelisted_and_capped() -> None:
    from connectors.messages import MAX_METADATA_BYTES, MetadataTooLarge, allowed_metadata

    assert allowed_metadata(None) == {}
    assert allowed_metadata({"channel": "web", "kefu": {"agent": 1}, "x": 1}) == {"channel": "web"}
    assert allowed_metadata({"channel": ["web"]}) == {}
    assert allowed_metadata({"channel": "w" * 65}) == {}
    with pytest.raises(MetadataTooLarge):
        allowed_metadata({"other": "x" * MAX_METADATA_BYTES})
