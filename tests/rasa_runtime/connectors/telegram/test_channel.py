"""The Telegram channel against the fake Bot API, without Sanic (TelegramUpdates is plain async)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from connectors.channel_state import SqliteChannelState
from connectors.messages import TRUNCATION_METADATA_KEY
from connectors.telegram.channel import TelegramConfigurationError, TelegramInput
from connectors.telegram.sending import TelegramOutput
from connectors.telegram.text import EXPIRED_OPTION_REPLY, NON_TEXT_REPLY, split_text, text_for_rasa
from connectors.telegram.updates import MAX_BODY_BYTES, TelegramUpdates, WebhookAnswer
from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update

TOKEN = "123456:kefu-unit-test-token"
SECRET = "kefu-unit-test-secret"
CHAT = 424242


class Rasa:
    """Stands in for Rasa's agent: records messages and answers `echo: <text>`."""

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

    @property
    def texts(self) -> list[str]:
        return [message.text or "" for message in self.messages]


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI(TOKEN) as api:
        yield api


@pytest.fixture
def state(tmp_path: Path) -> SqliteChannelState:
    return SqliteChannelState(tmp_path / "channels.db")


@pytest.fixture
async def channel(api: FakeTelegramAPI, state: SqliteChannelState) -> AsyncIterator[TelegramInput]:
    channel = TelegramInput(TOKEN, SECRET, api.url, state)
    assert channel.connection is not None
    channel.connection.retry_delay_seconds = 0
    yield channel
    await channel.connection.close()


@pytest.fixture
def rasa() -> Rasa:
    return Rasa()


@pytest.fixture
def updates(channel: TelegramInput, rasa: Rasa) -> TelegramUpdates:
    return channel.updates(rasa)


@pytest.fixture
def output(channel: TelegramInput) -> TelegramOutput:
    output = channel.get_output_channel()
    assert output is not None
    return output


async def post(
    updates: TelegramUpdates, update: dict[str, Any], secret: str | None = SECRET
) -> WebhookAnswer:
    return await updates.handle(secret, json.dumps(update).encode())


# ---------------------------------------------------------------- the webhook's guards


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", "秘密"])
async def test_a_missing_or_wrong_secret_is_refused(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI, secret: str | None
) -> None:
    answer = await post(updates, telegram_update(1, CHAT, text="你好"), secret=secret)
    assert answer.status == 403
    assert rasa.messages == [] and api.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"update"',
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "7"}',
        b'{"update_id": 7, "message": {"text": "no chat, no date"}}',
    ],
    ids=["text", "binary", "array", "string", "no-update-id", "string-id", "bad-message"],
)
async def test_a_body_that_is_not_an_update_is_a_400(
    updates: TelegramUpdates, rasa: Rasa, body: bytes
) -> None:
    answer = await updates.handle(SECRET, body)
    assert answer.status == 400 and "error" in answer.body
    assert rasa.messages == []


async def test_bodies_over_64_kb_are_refused(updates: TelegramUpdates, rasa: Rasa) -> None:
    update = telegram_update(1, CHAT, text="x" * (MAX_BODY_BYTES + 1))
    assert (await post(updates, update)).status == 413
    small = json.dumps(telegram_update(2, CHAT, text="hi")).encode()
    assert (await updates.handle(SECRET, small, content_length=str(10**6))).status == 413
    assert rasa.messages == []


async def test_a_redelivered_update_reaches_rasa_once(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    update = telegram_update(10, CHAT, text="退货运费谁出")
    first, again = await post(updates, update), await post(updates, update)
    assert (first.status, again.status) == (200, 200)
    assert again.body == {"status": "duplicate"}
    assert rasa.texts == ["退货运费谁出"]
    assert api.texts_to(CHAT) == ["echo: 退货运费谁出"]


async def test_concurrent_copies_reach_rasa_once(updates: TelegramUpdates, rasa: Rasa) -> None:
    update = telegram_update(11, CHAT, text="你好")
    answers = await asyncio.gather(*(post(updates, update) for _ in range(4)))
    assert [answer.status for answer in answers] == [200] * 4
    assert rasa.texts == ["你好"]


# ---------------------------------------------------------------- messages to Rasa


async def test_text_reaches_rasa_and_the_answer_reaches_the_chat(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    assert (
        await post(updates, telegram_update(1, CHAT, text="  我的订单到哪了\u0007 "))
    ).status == 200
    (message,) = rasa.messages
    assert message.text == "我的订单到哪了"
    assert message.sender_id == f"telegram:{CHAT}" and message.input_channel == "telegram"
    assert isinstance(message.output_channel, TelegramOutput)
    assert api.texts_to(CHAT) == ["echo: 我的订单到哪了"]


@pytest.mark.parametrize("text", ["/start", "/start promo-2026", "/start@kefu_test_bot"])
async def test_start_greets(updates: TelegramUpdates, rasa: Rasa, text: str) -> None:
    await post(updates, telegram_update(1, CHAT, text=text))
    assert rasa.texts == ["/greet"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/order_status", "order_status"),
        ('/choose{"choice": "refund"}', 'choose{"choice": "refund"}'),
        ("/ /restart", "restart"),
        ("//greet", "greet"),
        ("/help", "help"),
        ("/help@kefu_test_bot 怎么退货", "help 怎么退货"),
    ],
)
async def test_customers_cannot_send_rasa_intents(
    updates: TelegramUpdates, rasa: Rasa, text: str, expected: str
) -> None:
    await post(updates, telegram_update(1, CHAT, text=text))
    assert rasa.texts == [expected]
    assert not rasa.texts[0].startswith("/")


def test_text_for_rasa_leaves_ordinary_text_alone() -> None:
    assert text_for_rasa("订单 KF202611200001 / 退款") == "订单 KF202611200001 / 退款"
    assert text_for_rasa("/") == ""


async def test_a_bare_slash_is_not_sent_to_rasa(updates: TelegramUpdates, rasa: Rasa) -> None:
    assert (await post(updates, telegram_update(1, CHAT, text="/"))).status == 200
    assert rasa.messages == []


async def test_long_text_is_cut_and_announced(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    await post(updates, telegram_update(1, CHAT, text="长" * 3000))
    (message,) = rasa.messages
    assert message.metadata == {TRUNCATION_METADATA_KEY: 3000}
    notice, answer = api.texts_to(CHAT)
    assert "3000" in notice and answer.startswith("echo: 长")


@pytest.mark.parametrize("attachment", ["photo", "sticker", "voice", "document", "location"])
async def test_non_text_messages_get_a_polite_reply_not_rasa(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI, attachment: str
) -> None:
    assert (await post(updates, telegram_update(1, CHAT, attachment=attachment))).status == 200
    assert rasa.messages == []
    assert api.texts_to(CHAT) == [NON_TEXT_REPLY]
    assert NON_TEXT_REPLY.startswith("抱歉") and "Sorry" in NON_TEXT_REPLY


@pytest.mark.parametrize(
    "update",
    [
        telegram_update(1, CHAT, text="edited", edited=True),
        {"update_id": 2, "channel_post": telegram_update(2, -100, text="news")["message"]},
        {"update_id": 3, "my_chat_member": {"unknown": "shape"}},
        {
            "update_id": 4,
            "message": {"message_id": 1, "date": 0, "chat": {"id": CHAT, "type": "private"}},
        },
    ],
    ids=["edited", "channel-post", "other-kind", "service-message"],
)
async def test_other_updates_are_acknowledged_and_ignored(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI, update: dict[str, Any]
) -> None:
    assert (await post(updates, update)).status == 200
    assert rasa.messages == [] and api.calls == []


async def test_a_failing_bot_still_answers_200(
    channel: TelegramInput, api: FakeTelegramAPI
) -> None:
    async def broken(message: UserMessage) -> None:
        raise RuntimeError("the model is not loaded")

    answer = await post(channel.updates(broken), telegram_update(1, CHAT, text="hi"))
    assert answer.status == 200


# ---------------------------------------------------------------- buttons


async def test_buttons_become_an_inline_keyboard(
    output: TelegramOutput, api: FakeTelegramAPI, state: SqliteChannelState
) -> None:
    long_payload = '/choose{"choice": "' + "退" * 30 + '"}'
    buttons = [
        {"title": "查订单", "payload": "/order_status"},
        {"title": "退款", "payload": long_payload},
        {"title": "帮助中心", "url": "https://example.com/help"},
    ]
    await output.send_text_with_buttons(str(CHAT), "请选择：", buttons)
    (sent,) = api.sent_messages(CHAT)
    assert sent["text"] == "请选择："
    rows = sent["reply_markup"]["inline_keyboard"]
    assert [len(row) for row in rows] == [1, 1, 1]
    assert rows[0][0] == {"text": "查订单", "callback_data": "/order_status"}
    hashed = rows[1][0]["callback_data"]
    assert hashed.startswith("k:") and len(hashed.encode()) <= 64
    assert state.get(f"telegram:callback:{hashed[2:]}") == long_payload
    assert rows[2][0] == {"text": "帮助中心", "url": "https://example.com/help"}


async def test_a_button_press_round_trip(
    output: TelegramOutput, updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    long_payload = '/choose{"choice": "' + "换货" * 20 + '"}'
    await output.send_text_with_buttons(
        str(CHAT), "请选择：", [{"title": "换", "payload": long_payload}]
    )
    (sent,) = api.sent_messages(CHAT)
    data = sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    press = telegram_update(20, CHAT, callback_data=data, message_id=7)
    assert (await post(updates, press)).status == 200
    assert rasa.texts == [long_payload]
    answered = api.wait_for(lambda call: call[0] == "answerCallbackQuery")
    assert answered["callback_query_id"] == press["callback_query"]["id"]
    edited = api.wait_for(lambda call: call[0] == "editMessageReplyMarkup")
    assert (edited["chat_id"], edited["message_id"]) == (CHAT, 7)
    assert "reply_markup" not in edited
    methods = api.methods()
    assert methods.index("answerCallbackQuery") < methods.index("editMessageReplyMarkup")


async def test_a_short_payload_is_its_own_callback_data(
    updates: TelegramUpdates, rasa: Rasa
) -> None:
    await post(updates, telegram_update(1, CHAT, callback_data="/order_status"))
    assert rasa.texts == ["/order_status"]


@pytest.mark.parametrize("data", ["k:" + "0" * 32, "k:"], ids=["unknown-hash", "empty-hash"])
async def test_an_expired_option_is_explained_not_sent(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI, data: str
) -> None:
    await post(updates, telegram_update(1, CHAT, callback_data=data))
    assert rasa.messages == []
    assert api.texts_to(CHAT) == [EXPIRED_OPTION_REPLY]
    assert "answerCallbackQuery" in api.methods()  # the spinner still stops


async def test_callback_data_the_keyboard_did_not_offer_is_not_trusted(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    forged = telegram_update(1, CHAT, callback_data="/order_status")
    forged["callback_query"]["data"] = "/restart"
    await post(updates, forged)
    assert rasa.messages == []
    assert api.texts_to(CHAT) == [EXPIRED_OPTION_REPLY]


async def test_a_failed_keyboard_removal_does_not_lose_the_press(
    updates: TelegramUpdates, rasa: Rasa, api: FakeTelegramAPI
) -> None:
    api.fail_next(
        1,
        code=400,
        description="Bad Request: message can't be edited",
        method="editMessageReplyMarkup",
    )
    await post(updates, telegram_update(1, CHAT, callback_data="/order_status"))
    assert rasa.texts == ["/order_status"]


# ---------------------------------------------------------------- sending


def test_split_text_respects_the_limit_and_keeps_everything() -> None:
    text = "\n".join(f"第{i}行：" + "字" * 50 for i in range(300))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(part) <= 4096 for part in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert all(part.startswith("第") for part in parts)  # cut at line breaks
    emoji = split_text("😀" * 3000)  # two UTF-16 code units each
    assert [len(part) for part in emoji] == [2048, 952]
    assert split_text("  ") == [] and split_text("短") == ["短"]


async def test_long_messages_are_split_over_4096_characters(
    output: TelegramOutput, api: FakeTelegramAPI
) -> None:
    text = "售后" * 5000
    await output.send_text_message(str(CHAT), text)
    texts = api.texts_to(CHAT)
    assert [len(part) for part in texts] == [4096, 4096, 1808]
    assert "".join(texts) == text
    assert api.errors == []


async def test_a_long_text_with_buttons_keeps_the_keyboard_on_its_last_part(
    output: TelegramOutput, api: FakeTelegramAPI
) -> None:
    buttons = [{"title": "好的", "payload": "/affirm"}]
    await output.send_text_with_buttons(str(CHAT), "说明" * 3000, buttons)
    first, last = api.sent_messages(CHAT)
    assert "reply_markup" not in first
    assert last["reply_markup"]["inline_keyboard"] == [
        [{"text": "好的", "callback_data": "/affirm"}]
    ]


@pytest.mark.parametrize(
    ("code", "description"),
    [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")],
    ids=["blocked", "chat-not-found"],
)
async def test_undeliverable_messages_are_recorded_not_raised(
    output: TelegramOutput,
    api: FakeTelegramAPI,
    state: SqliteChannelState,
    caplog: pytest.LogCaptureFixture,
    code: int,
    description: str,
) -> None:
    api.block(CHAT, code=code, description=description)
    with caplog.at_level(logging.INFO, logger="connectors.telegram"):
        await output.send_text_message(str(CHAT), "您的退款已到账")
        await output.send_image_url(str(CHAT), "https://example.com/a.png")
    assert api.sent_messages(CHAT) == []
    assert [error[2] for error in api.errors] == [code, code]  # not retried
    text, image = state.undelivered()[::-1]
    assert text["channel"] == "telegram" and text["recipient"] == str(CHAT)
    assert text["text"] == "您的退款已到账"
    assert description.split(": ")[-1].lower() in text["error"].lower()
    assert image["text"] == "https://example.com/a.png"
    assert str(CHAT) not in caplog.text and "telegram_undelivered user=424…" in caplog.text


async def test_network_errors_are_retried(output: TelegramOutput, api: FakeTelegramAPI) -> None:
    api.fail_next(2)  # 502 Bad Gateway twice
    await output.send_text_message(str(CHAT), "稍等")
    assert api.texts_to(CHAT) == ["稍等"]
    assert len(api.errors) == 2


async def test_flood_control_is_waited_out(output: TelegramOutput, api: FakeTelegramAPI) -> None:
    api.fail_next(1, retry_after=1)
    await output.send_text_message(str(CHAT), "稍等")
    assert api.texts_to(CHAT) == ["稍等"]


async def test_persistent_network_errors_are_recorded(
    output: TelegramOutput, api: FakeTelegramAPI, state: SqliteChannelState
) -> None:
    api.fail_next(3)
    await output.send_text_message(str(CHAT), "稍等")
    assert api.texts_to(CHAT) == [] and len(api.errors) == 3
    assert "Bad Gateway" in state.undelivered()[0]["error"]


async def test_a_wrong_token_is_recorded_not_raised(
    api: FakeTelegramAPI, state: SqliteChannelState
) -> None:
    channel = TelegramInput("999:wrong", SECRET, api.url, state)
    output = channel.get_output_channel()
    assert output is not None
    await output.send_text_message(str(CHAT), "hi")
    assert "InvalidToken" in state.undelivered()[0]["error"]


async def test_images_and_custom_json(output: TelegramOutput, api: FakeTelegramAPI) -> None:
    await output.send_image_url(str(CHAT), "https://example.com/receipt.png")
    await output.send_custom_json(str(CHAT), {"text": "自定义消息"})
    await output.send_custom_json(str(CHAT), {"blocks": []})  # nothing to say: ignored
    photo = api.wait_for(lambda call: call[0] == "sendPhoto")
    assert photo["photo"] == "https://example.com/receipt.png"
    assert api.texts_to(CHAT) == ["自定义消息"]


async def test_the_rasa_sender_telegram_chat_id_reaches_the_chat(
    output: TelegramOutput, api: FakeTelegramAPI
) -> None:
    """Rasa's sender is `telegram:<chat id>` (also for agent replies through Rasa's API)."""
    await output.send_text_message(f"telegram:{CHAT}", "您好")
    await output.send_text_with_buttons(
        f"telegram:{CHAT}", "请选择：", [{"title": "查订单", "payload": "/order_status"}]
    )
    await output.send_image_url(f"telegram:{CHAT}", "https://example.com/receipt.png")
    assert api.texts_to(CHAT) == ["您好", "请选择："]
    photo = api.wait_for(lambda call: call[0] == "sendPhoto")
    assert str(photo["chat_id"]) == str(CHAT)


async def test_rasa_responses_go_through_send_response(
    output: TelegramOutput, api: FakeTelegramAPI
) -> None:
    await output.send_response(
        str(CHAT), {"text": "您好", "buttons": [{"title": "订单", "payload": "/order_status"}]}
    )
    (sent,) = api.sent_messages(CHAT)
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "/order_status"


# ---------------------------------------------------------------- the channel


async def test_the_output_channel_reaches_the_api_and_shares_one_bot(
    channel: TelegramInput, updates: TelegramUpdates, api: FakeTelegramAPI
) -> None:
    output = channel.get_output_channel()
    assert isinstance(output, TelegramOutput) and output.name() == "telegram"
    assert channel.connection is not None and channel.connection.username is None
    await asyncio.gather(*(output.send_text_message(str(CHAT + i), "您好") for i in range(5)))
    await post(updates, telegram_update(1, CHAT, text="hi"))
    assert api.methods().count("getMe") == 1
    assert channel.connection.username == "kefu_test_bot"
    assert len(api.sent_messages()) == 6


def test_an_empty_token_disables_the_channel() -> None:
    channel = TelegramInput.from_credentials(
        {"token": "", "secret_token": "", "api_base_url": "", "state_url": ""}
    )
    assert not channel.enabled and channel.get_output_channel() is None
    assert not TelegramInput.from_credentials(None).enabled


def test_from_credentials_reads_the_keys(tmp_path: Path) -> None:
    channel = TelegramInput.from_credentials(
        {
            "token": TOKEN,
            "secret_token": SECRET,
            "api_base_url": "http://127.0.0.1:9/",
            "state_url": f"sqlite:///{tmp_path}/channels.db",
        }
    )
    assert channel.enabled and channel.connection is not None
    assert channel.connection.api_base_url == "http://127.0.0.1:9"
    assert isinstance(channel.connection.state, SqliteChannelState)


@pytest.mark.parametrize("secret", ["", None, "has spaces", "x" * 257, "abc\n"])
def test_a_token_without_a_valid_secret_refuses_to_start(secret: str | None) -> None:
    with pytest.raises(TelegramConfigurationError, match="TELEGRAM_SECRET_TOKEN"):
        TelegramInput.from_credentials({"token": TOKEN, "secret_token": secret})
