"""The fake Bot API answers python-telegram-bot like Telegram does (tests rely on it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken

from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update

TOKEN = "4242:fake-api-test"


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI(TOKEN) as api:
        yield api


@pytest.fixture
async def bot(api: FakeTelegramAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=f"{api.url}/bot") as bot:
        yield bot


def raw(api: FakeTelegramAPI, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{api.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_form_values_are_decoded_like_telegram_does(bot: Bot, api: FakeTelegramAPI) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("好", callback_data="/affirm")]])
    message = await bot.send_message(chat_id="42", text="123", reply_markup=keyboard)
    assert message.chat.id == 42 and message.text == "123" and message.message_id == 1
    (sent,) = api.sent_messages(chat_id=42)
    assert sent["text"] == "123" and sent["chat_id"] == 42
    assert sent["reply_markup"] == {
        "inline_keyboard": [[{"text": "好", "callback_data": "/affirm"}]]
    }
    assert bot.username == "kefu_test_bot" and api.methods() == ["getMe", "sendMessage"]


async def test_json_and_multipart_bodies(bot: Bot, api: FakeTelegramAPI) -> None:
    assert raw(api, f"/bot{TOKEN}/sendMessage", {"chat_id": 7, "text": "json"})[0] == 200
    await bot.send_photo(chat_id=7, photo=b"\x89PNG fake image bytes", caption="收据")
    photo = api.wait_for(lambda call: call[0] == "sendPhoto")
    assert photo["caption"] == "收据" and photo["photo"]["size"] == 21
    assert api.texts_to(7) == ["json"]


async def test_telegrams_refusals(bot: Bot, api: FakeTelegramAPI) -> None:
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(chat_id=1, text="x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        button = InlineKeyboardButton("x", callback_data="y" * 65)
        await bot.send_message(chat_id=1, text="x", reply_markup=InlineKeyboardMarkup([[button]]))
    api.block(5)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(chat_id=5, text="hi")
    assert [error[2] for error in api.errors] == [400, 400, 403]
    assert api.sent_messages() == []


async def test_a_wrong_token_and_an_unknown_method(api: FakeTelegramAPI) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=f"{api.url}/bot"):
            pass
    assert raw(api, f"/bot{TOKEN}/sendDice", {})[0] == 404
    assert raw(api, "/elsewhere", {})[0] == 404


async def test_get_updates_honours_the_offset_and_the_webhook(
    bot: Bot, api: FakeTelegramAPI
) -> None:
    for update_id in (1, 2, 3):
        api.push_update(telegram_update(update_id, 42, text=f"m{update_id}"))
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [1, 2, 3]
    assert [u.update_id for u in await bot.get_updates(offset=3, timeout=0)] == [3]
    assert await bot.set_webhook("https://example.com/hook", secret_token="s-1")
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    info = await bot.get_webhook_info()
    assert info.url == "https://example.com/hook" and info.pending_update_count == 1
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == ()


async def test_other_methods_kefu_uses(bot: Bot, api: FakeTelegramAPI) -> None:
    assert await bot.send_chat_action(chat_id=1, action="typing")
    assert await bot.answer_callback_query("123")
    assert await bot.set_my_commands([("start", "开始")])
    sent = await bot.send_message(chat_id=1, text="选")
    edited = await bot.edit_message_reply_markup(chat_id=1, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "选"


def test_wait_for_names_what_was_recorded(api: FakeTelegramAPI) -> None:
    with pytest.raises(AssertionError, match="No matching Telegram call"):
        api.wait_for(lambda call: call[0] == "sendMessage", timeout=0.1)


def test_the_update_builder_refuses_ambiguous_updates() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        telegram_update(1, 2, text="a", callback_data="b")
    with pytest.raises(ValueError, match="Unknown attachment"):
        telegram_update(1, 2, attachment="hologram")
    command = telegram_update(1, 2, text="/start@kefu_test_bot 你好")["message"]
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 20}]
