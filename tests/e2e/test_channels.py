"""WeChat (safe mode) and Telegram against the live Rasa server, with local fakes of their clouds.

The WeChat side is signed and encrypted exactly as WeChat's servers do it (fakes/wechat_user.py);
the bot's late answers and agents' replies arrive at the fake customer-service message API.
Telegram updates carry the secret token header; the bot's replies arrive at the fake Bot API.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.core.processes import ServiceGroup
from bot.core.settings import Settings
from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update
from fakes.wechat_api import FakeWeChatAPI
from fakes.wechat_user import WeChatUser
from tests.e2e.conftest import (
    TELEGRAM_SECRET,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_TOKEN,
)
from tests.e2e.desk_client import DeskClient, ensure_agent, open_handoff_with
from tests.hostile_bodies import HOSTILE_WECHAT_BODIES

pytestmark = pytest.mark.e2e

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_ids = itertools.count(int(time.time() * 1000))


def next_id() -> int:
    """A fresh MsgId / update_id / chat id."""
    return next(_ids)


class WeChatCustomer:
    """A WeChat user whose messages reach the webhook as WeChat's servers send them."""

    def __init__(self, stack: Settings, api: FakeWeChatAPI) -> None:
        self.url = f"{stack.rasa_url}/webhooks/wechat/webhook"
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        self.user = WeChatUser(WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_AES_KEY, self.openid)
        self.api = api

    def post(self, xml: str) -> tuple[httpx.Response, dict[str, Any] | None, float]:
        """Posts one message; returns the response, the passive reply and the seconds taken."""
        query, body = self.user.signed_query(xml)
        started = time.monotonic()
        response = httpx.post(self.url, params=query, content=body, timeout=30)
        elapsed = time.monotonic() - started
        reply = self.user.read_reply(response.content, query) if response.is_success else None
        return response, reply, elapsed

    def say(self, text: str) -> str:
        """Sends `text`; returns the answer (passive, or pushed through the API within 15 s)."""
        before = len(self.api.texts_to(self.openid))
        response, reply, _ = self.post(self.user.text_xml(text, next_id()))
        assert response.status_code == 200, response.text
        if reply is not None:
            return str(reply["Content"])
        self.api.wait_for(lambda m: m["touser"] == self.openid, timeout=15)
        time.sleep(0.5)  # the rest of a split answer
        return "\n".join(self.api.texts_to(self.openid)[before:])

    def pushed(self, predicate: Any, timeout: float = 15) -> str:
        """The first customer-service message to this user whose text matches."""
        message = self.api.wait_for(
            lambda m: m["touser"] == self.openid and predicate(m["text"]["content"]),
            timeout=timeout,
        )
        return str(message["text"]["content"])


@pytest.fixture
def customer(stack: Settings, wechat_api: FakeWeChatAPI) -> WeChatCustomer:
    return WeChatCustomer(stack, wechat_api)


# ---------------------------------------------------------------- WeChat


def test_handshake_echoes_only_for_a_valid_signature(stack: Settings) -> None:
    user = WeChatUser(WECHAT_TOKEN, WECHAT_APP_ID, None, "o-handshake")
    query, _ = user.signed_query("")
    url = f"{stack.rasa_url}/webhooks/wechat/webhook"
    ok = httpx.get(url, params={**query, "echostr": "4711"})
    assert ok.status_code == 200 and ok.text == "4711"
    forged = httpx.get(url, params={**query, "signature": "0" * 40, "echostr": "4711"})
    assert forged.status_code == 403 and "4711" not in forged.text


def test_encrypted_text_gets_the_bots_answer_in_time(customer: WeChatCustomer) -> None:
    response, reply, elapsed = customer.post(customer.user.text_xml("怎么开发票", next_id()))
    assert response.status_code == 200 and elapsed < 5
    answer = (
        reply["Content"]
        if reply
        else customer.pushed(lambda text: "发票" in text)  # answered after the window
    )
    assert "发票" in answer


def test_a_slow_answer_is_acknowledged_and_pushed_later(
    stack_group: ServiceGroup, customer: WeChatCustomer
) -> None:
    """The action server stalls (SIGSTOP): WeChat gets `success` in time, the answer follows."""
    actions = next(s for s in stack_group.services if s.name == "actions").process
    assert actions is not None
    os.killpg(actions.pid, signal.SIGSTOP)
    try:
        response, reply, elapsed = customer.post(customer.user.text_xml("你好", next_id()))
    finally:
        os.killpg(actions.pid, signal.SIGCONT)
    assert response.status_code == 200 and reply is None and elapsed < 5
    assert "您好" in customer.pushed(lambda text: "您好" in text)


def test_four_copies_of_one_message_get_one_answer(customer: WeChatCustomer) -> None:
    xml = customer.user.text_xml("退货运费谁出", next_id())
    results: list[tuple[httpx.Response, dict[str, Any] | None, float]] = []
    threads = [
        threading.Thread(target=lambda: results.append(customer.post(xml))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r, _, _ in results] == [200] * 4
    passive = [reply for _, reply, _ in results if reply is not None]
    time.sleep(6)  # a deferred answer would have been pushed by now
    pushed = customer.api.texts_to(customer.openid)
    assert len(passive) + (1 if pushed else 0) == 1, (passive, pushed)


def test_buttons_become_numbers_that_map_back(customer: WeChatCustomer) -> None:
    greeting = customer.say("你好")
    option = re.search(r"(\d+)\.\s*[^\n]*订单", greeting)
    assert option, greeting
    assert "订单号" in customer.say(option.group(1))


def test_images_and_subscriptions(customer: WeChatCustomer) -> None:
    response, reply, _ = customer.post(customer.user.image_xml(next_id()))
    assert response.status_code == 200 and reply and "文字" in reply["Content"]
    response, reply, _ = customer.post(customer.user.event_xml("subscribe"))
    welcome = reply["Content"] if reply else customer.pushed(lambda text: "您好" in text)
    assert "您好" in welcome


def test_menu_clicks_map_to_what_the_customer_wants(customer: WeChatCustomer) -> None:
    response, reply, _ = customer.post(customer.user.event_xml("CLICK", "ORDER_STATUS"))
    answer = reply["Content"] if reply else customer.pushed(lambda text: "订单号" in text)
    assert "订单号" in answer
    response, reply, _ = customer.post(customer.user.event_xml("CLICK", "NO_SUCH_ITEM"))
    assert response.status_code == 200 and reply and "菜单" in reply["Content"], reply


@pytest.mark.parametrize(("body", "status"), HOSTILE_WECHAT_BODIES)
def test_hostile_bodies_are_refused(customer: WeChatCustomer, body: bytes, status: int) -> None:
    query, _ = customer.user.signed_query(customer.user.text_xml("hi", next_id()))
    response = httpx.post(customer.url, params=query, content=body)
    assert response.status_code == status, response.text


def test_forged_signature_is_refused(customer: WeChatCustomer) -> None:
    query, body = customer.user.signed_query(customer.user.text_xml("你好", next_id()))
    forged = {**query, "msg_signature": "0" * 40, "signature": "0" * 40}
    response = httpx.post(customer.url, params=forged, content=body)
    assert response.status_code == 403
    assert customer.api.texts_to(customer.openid) == []


def test_agent_replies_from_the_desk_reach_wechat(
    stack: Settings, customer: WeChatCustomer
) -> None:
    username = ensure_agent(stack, "wechat.agent", "客服小王", "wechat-agent-password")
    marker = f"耳机{uuid.uuid4().hex[:6]}"
    customer.say(f"我的{marker}左耳没声音")
    assert "人工" in customer.say("转人工")
    handoff = open_handoff_with(stack, marker)
    desk = DeskClient(stack, username, "wechat-agent-password")
    desk.post(f"/desk/api/handoffs/{handoff.id}/claim")
    assert "客服小王" in customer.pushed(lambda text: "已接入" in text)
    desk.post(f"/desk/api/handoffs/{handoff.id}/messages", {"text": "您好，请问耳机是哪天买的？"})
    customer.pushed(lambda text: text == "您好，请问耳机是哪天买的？")


def test_a_closed_48_hour_window_is_recorded(
    stack: Settings, customer: WeChatCustomer, wechat_api: FakeWeChatAPI
) -> None:
    customer.say("你好")
    wechat_api.expire(customer.openid)
    append_bot_message(stack, f"wechat:{customer.openid}", "您的退款已到账")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        health = httpx.get(f"{stack.rasa_url}/webhooks/wechat/").json()
        if health["undelivered"]:
            break
        time.sleep(0.3)
    assert health["status"] == "ok" and health["undelivered"] >= 1


def append_bot_message(stack: Settings, sender: str, text: str) -> None:
    """An agent's message through Rasa's HTTP API, delivered on the customer's own channel."""
    response = httpx.post(
        f"{stack.rasa_url}/conversations/{sender}/tracker/events",
        params={
            "output_channel": "latest",
            "execute_side_effects": "true",
            "token": stack.rasa_token,
        },
        json=[{"event": "bot", "text": text}],
        timeout=30,
    )
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- Telegram


class TelegramChat:
    """A Telegram chat whose updates reach the webhook as Telegram delivers them."""

    def __init__(self, stack: Settings, api: FakeTelegramAPI) -> None:
        self.url = f"{stack.rasa_url}/webhooks/telegram/webhook"
        self.chat_id = next_id() % 10**9
        self.api = api

    def post(self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return httpx.post(self.url, json=update, headers=headers, timeout=30)

    def send(self, text: str | None = None, callback_data: str | None = None) -> dict[str, Any]:
        """Sends a message or a button press; returns the update."""
        update = telegram_update(next_id(), self.chat_id, text=text, callback_data=callback_data)
        assert self.post(update).status_code == 200
        return update

    def replies(self) -> list[dict[str, Any]]:
        return self.api.sent_messages(chat_id=self.chat_id)

    def wait_reply(self, predicate: Any, timeout: float = 15) -> dict[str, Any]:
        return self.api.wait_for(
            lambda call: (
                call[0] == "sendMessage"
                and str(call[1].get("chat_id")) == str(self.chat_id)
                and predicate(call[1])
            ),
            timeout=timeout,
        )


@pytest.fixture
def chat(stack: Settings, telegram_api: FakeTelegramAPI) -> Iterator[TelegramChat]:
    yield TelegramChat(stack, telegram_api)


@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["missing", "wrong"])
def test_telegram_refuses_requests_without_the_secret(
    chat: TelegramChat, secret: str | None
) -> None:
    response = chat.post(telegram_update(next_id(), chat.chat_id, text="你好"), secret=secret)
    assert response.status_code == 403
    time.sleep(1)
    assert chat.replies() == []


def test_telegram_text_buttons_and_duplicates(chat: TelegramChat) -> None:
    update = chat.send("你好")
    assert chat.post(update).status_code == 200  # Telegram redelivers: one answer only
    chat.wait_reply(lambda params: "您好" in params["text"])
    time.sleep(1)
    greetings = [m for m in chat.replies() if "您好" in m["text"]]
    assert len(greetings) == 1
    keyboard = greetings[0]["reply_markup"]["inline_keyboard"]
    payloads = [row[0]["callback_data"] for row in keyboard]
    assert "/order_status" in payloads
    chat.send(callback_data="/order_status")
    chat.wait_reply(lambda params: "订单号" in params["text"])


def test_agent_reply_reaches_telegram(stack: Settings, chat: TelegramChat) -> None:
    chat.send("hello")
    chat.wait_reply(lambda params: True)
    append_bot_message(
        stack, f"telegram:{chat.chat_id}", "An agent here: your refund is on its way."
    )
    chat.wait_reply(lambda params: params["text"] == "An agent here: your refund is on its way.")


def test_channel_health_routes(stack: Settings) -> None:
    for name in ("wechat", "telegram"):
        health = httpx.get(f"{stack.rasa_url}/webhooks/{name}/")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text


def test_channel_conversations_are_namespaced(
    stack: Settings, customer: WeChatCustomer, chat: TelegramChat
) -> None:
    """Rasa's sender ids name the channel that verified them: wechat:<openid>, telegram:<id>."""
    customer.say("你好")
    chat.send("hello")
    chat.wait_reply(lambda params: True)
    for sender in (f"wechat:{customer.openid}", f"telegram:{chat.chat_id}"):
        tracker = httpx.get(
            f"{stack.rasa_url}/conversations/{sender}/tracker",
            params={"token": stack.rasa_token},
            timeout=30,
        ).json()
        assert any(event["event"] == "user" for event in tracker["events"]), sender
