"""The real Rasa server, action server and stores, chatting over REST in Chinese and English."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from bot.core.processes import ServiceGroup
from bot.core.settings import Settings
from tests.e2e.chat_client import Chat

pytestmark = pytest.mark.e2e


def test_chinese_conversation_with_order_lookup(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    greeting = chat.send("你好")
    assert "您好" in greeting[0]["text"]
    assert any(button["payload"] == "/order_status" for button in greeting[0]["buttons"])
    assert "订单号" in chat.say("我的订单到哪了")
    reply = chat.say("KF202611200001")
    assert "KF202611200001" in reply and "已发货" in reply
    assert "顺丰" not in reply and "后四位" in reply  # details only after the check
    assert "顺丰" in chat.say("0001")  # the last four digits of the order's phone
    assert "KF202611200002" in chat.say("帮我查一下订单KF202611200002")


def test_english_conversation_replies_in_english(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    assert "Hi" in chat.say("hello there") or "Hello" in chat.say("hello")
    reply = chat.say("where is my order KF202611200001")
    assert "KF202611200001" in reply and "shipped" in reply and "SF Express" not in reply
    assert "SF Express" in chat.say("0001")  # the last four digits of the order's phone
    assert "return" in chat.say_all("how do I return an item I bought?").lower()


def test_language_follows_each_message(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    assert "Hi" in chat.say("hi") or "Hello" in chat.say("hello")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chat.say("怎么开发票"))


def test_unknown_order_and_malformed_numbers(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    assert "KF209912319999" in chat.say("查订单KF209912319999")
    chat.say("我的订单到哪了")
    first = chat.send("12345")
    assert "KF" in first[0]["text"]  # explains the expected format
    second = chat.send("订单号是678910")
    assert any(b["payload"] == "/ask_human" for m in second for b in m.get("buttons", []))


def test_two_misses_in_a_row_hand_over_to_a_person(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    chat.say("hello")
    # `/nlu_fallback` is what the FallbackClassifier outputs for unclear messages
    first = chat.send("/nlu_fallback")
    assert "rephrase" in first[0]["text"] and len(first[0]["buttons"]) == 3
    second = chat.say("/nlu_fallback")  # two misses in a row: handed to a person
    assert "human agent" in second or "agents" in second
    assert chat.say("hello") == ""  # paused: an agent owns the conversation now


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "Привет, как дела?", "\u0000\u0007"])
def test_unreadable_messages_get_a_polite_answer(stack: Settings, text: str) -> None:
    reply = Chat(stack.rasa_url).say(text)
    assert "中文" in reply and "English" in reply


def test_very_long_message_is_truncated_with_notice(stack: Settings) -> None:
    reply = Chat(stack.rasa_url).send("我想退货。" + "很长的描述" * 2000)
    assert "10005" in reply[0]["text"]  # the notice names the original length
    assert len(reply) >= 2  # and the bot still answers


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b"\xff\xfe\xfa", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"message": "hi"}', "application/json"),
        (b'{"sender": "a b/c", "message": "hi"}', "application/json"),
        (b'{"sender": "ok", "message": 42}', "application/json"),
        (b'{"sender": "ok", "message": "hi", "metadata": [1]}', "application/json"),
    ],
)
def test_malformed_rest_requests_get_400(stack: Settings, body: bytes, content_type: str) -> None:
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        content=body,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400, response.text


def test_rasa_api_requires_the_token(stack: Settings) -> None:
    assert httpx.get(f"{stack.rasa_url}/status").status_code in (401, 403)
    assert httpx.get(f"{stack.rasa_url}/status", params={"token": "wrong"}).status_code in (
        401,
        403,
    )
    ok = httpx.get(f"{stack.rasa_url}/status", params={"token": stack.rasa_token})
    assert ok.status_code == 200


def test_conversations_are_stored_and_published(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    chat.say("你好")
    tracker_db = stack.tracker_store_url.removeprefix("sqlite:///")
    broker_db = stack.event_broker_url.removeprefix("sqlite:///")
    with sqlite3.connect(tracker_db) as db:
        (stored,) = db.execute(
            "SELECT count(*) FROM events WHERE sender_id = ?", (chat.sender,)
        ).fetchone()
    published, deadline = 0, time.monotonic() + 10
    while published < stored and time.monotonic() < deadline:  # published after the reply
        with sqlite3.connect(broker_db) as db:
            (published,) = db.execute(
                "SELECT count(*) FROM events WHERE sender_id = ?", (chat.sender,)
            ).fetchone()
        time.sleep(0.05)
    assert stored > 0 and published == stored


def test_web_service_health_and_page(stack: Settings) -> None:
    web = f"http://{stack.host}:{stack.web_port}"
    assert httpx.get(f"{web}/healthz").json() == {"status": "ok"}
    page = httpx.get(f"{web}/")
    assert page.status_code == 200 and stack.rasa_public_url in page.text
    widget = httpx.get(f"{web}/vendor/webchat/webchat.js")
    assert widget.status_code == 200 and b"fonts.googleapis.com" not in widget.content


def test_conversations_survive_a_rasa_restart(stack_group: ServiceGroup) -> None:
    stack = stack_group.settings
    chat = Chat(stack.rasa_url)
    chat.say("where is my order")  # the bot now waits for the order number
    stack_group.restart("rasa")
    reply = chat.say("KF202611200001")  # answered in English, inside the same order lookup
    assert "shipped" in reply and "last four digits" in reply
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{chat.sender}/tracker",
        params={"token": stack.rasa_token},
    ).json()
    texts = [e.get("text") for e in tracker["events"] if e["event"] == "user"]
    assert texts == ["where is my order", "KF202611200001"]


def test_asking_again_while_the_order_form_waits_for_the_number(stack: Settings) -> None:
    """The form refuses the repeated question: it asks for the number again, once."""
    chat = Chat(stack.rasa_url)
    assert "订单号" in chat.say("我的订单到哪了")
    again = chat.send("我的订单到哪了")
    assert 1 <= len(again) <= 2 and "订单号" in again[-1]["text"], again
    reply = chat.say("KF202611200001")
    assert "KF202611200001" in reply and "已发货" in reply


def test_order_details_need_the_phone_check_and_three_wrong_answers_end_it(
    stack: Settings,
) -> None:
    chat = Chat(stack.rasa_url)
    assert "后四位" in chat.say("帮我查下订单KF202611200008到哪了")  # phone 13800000008
    assert "还可以再试 2 次" in chat.say("1234")
    assert "还可以再试 1 次" in chat.say("后四位是5678")
    locked = chat.say("9999")
    assert "无法显示" in locked and "顺丰" not in locked
    again = chat.say("0008")  # right, but too late for this conversation
    assert "无法显示" in again and "京东" not in again and "顺丰" not in again


def test_rest_metadata_is_capped(stack: Settings) -> None:
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": "meta-test", "message": "hi", "metadata": {"channel": "x" * 2000}},
    )
    assert response.status_code == 413, response.text
