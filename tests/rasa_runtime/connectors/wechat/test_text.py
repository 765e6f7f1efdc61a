import pytest

from connectors.wechat.text import (
    MAX_TEXT_BYTES,
    OPTIONS_HINT,
    chosen_number,
    chosen_payload,
    join_messages,
    number_options,
    split_text,
    utf8_len,
)


def _same_text(parts: list[str], original: str) -> bool:
    return "".join("".join(part.split()) for part in parts) == "".join(original.split())


def test_short_text_is_one_piece() -> None:
    assert split_text("  您好  ") == ["您好"]
    assert split_text("   ") == []


def test_chinese_text_is_split_under_the_byte_limit_at_sentences() -> None:
    text = "您的订单已发货，预计三天内送达。" * 300  # 3 bytes a character
    parts = split_text(text)
    assert len(parts) > 1
    assert all(utf8_len(part) <= MAX_TEXT_BYTES for part in parts)
    assert all(part.endswith("。") for part in parts)
    assert _same_text(parts, text)


def test_paragraphs_are_preferred_to_sentences() -> None:
    paragraph = "退货政策：" + "签收后七天内可申请无理由退货。" * 40
    text = "\n\n".join([paragraph] * 4)
    parts = split_text(text)
    assert all(utf8_len(part) <= MAX_TEXT_BYTES for part in parts)
    assert all(part.startswith("退货政策") for part in parts)


def test_unbroken_text_is_cut_between_characters() -> None:
    text = "长" * 1000 + "😀" * 700  # 3-byte then 4-byte characters, no boundaries at all
    parts = split_text(text)
    assert all(utf8_len(part) <= MAX_TEXT_BYTES for part in parts)
    assert "".join(parts) == text
    assert all("\ufffd" not in part for part in parts)


def test_english_text_is_cut_between_words() -> None:
    text = " ".join(["refund"] * 1000)
    parts = split_text(text, limit=100)
    assert all(utf8_len(part) <= 100 for part in parts)
    assert all(word == "refund" for part in parts for word in part.split())


def test_tiny_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        split_text("长长", limit=2)


def test_join_messages_separates_with_a_blank_line() -> None:
    assert join_messages(["您好", " ", "请问有什么可以帮您？\n"]) == "您好\n\n请问有什么可以帮您？"


def test_buttons_become_numbered_lines() -> None:
    text, payloads = number_options(
        "请选择：",
        [
            {"title": "查订单", "payload": "/order_status"},
            {"title": "开发票", "payload": "/invoice"},
            {"title": "", "payload": ""},
        ],
    )
    assert text == f"请选择：\n1. 查订单\n2. 开发票\n{OPTIONS_HINT}"
    assert payloads == ["/order_status", "/invoice"]


def test_no_buttons_no_hint() -> None:
    assert number_options("hi", []) == ("hi", [])


@pytest.mark.parametrize(
    ("text", "number"),
    [("1", 1), (" 2 ", 2), ("２", 2), ("1０", 10), ("\u30003\n", 3)],
)
def test_numbers_in_any_width(text: str, number: int) -> None:
    assert chosen_number(text) == number


@pytest.mark.parametrize("text", ["", "一", "1.", "2个", "-1", "1234", "1.5", "1 2", "٣"])
def test_not_numbers(text: str) -> None:
    assert chosen_number(text) is None


def test_chosen_payload_within_range_only() -> None:
    payloads = ["/order_status", "/invoice"]
    assert chosen_payload("２", payloads) == "/invoice"
    assert chosen_payload("3", payloads) is None
    assert chosen_payload("0", payloads) is None
    assert chosen_payload("1", []) is None
