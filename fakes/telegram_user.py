"""Telegram updates as the Bot API delivers them to a webhook: texts, commands, button presses.

`telegram_update(1, 42, text="你好")` is a private chat's text message;
`telegram_update(2, 42, callback_data="/order_status")` a press of an inline button that the
bot's message offered; `telegram_update(3, 42, attachment="photo")` a photo. Stdlib only.
"""

from __future__ import annotations

import time
from typing import Any

BOT_USERNAME = "kefu_test_bot"

_ATTACHMENTS: dict[str, Any] = {
    "photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}],
    "sticker": {
        "file_id": "s1",
        "file_unique_id": "u2",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    },
    "voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 2},
    "document": {"file_id": "d1", "file_unique_id": "u4", "file_name": "invoice.pdf"},
    "location": {"latitude": 31.2304, "longitude": 121.4737},
}
"""Minimal attachments, keyed by their Message field."""


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"}


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "测试"}


def telegram_update(
    update_id: int,
    chat_id: int,
    text: str | None = None,
    callback_data: str | None = None,
    message_id: int = 1,
    *,
    attachment: str | None = None,
    edited: bool = False,
) -> dict[str, Any]:
    """One update of a private chat with the user `chat_id` (the chat id is the user id).

    Args:
        update_id: Telegram's update counter.
        chat_id: the chat (and user) id.
        text: a text message; `/command ...` texts carry a `bot_command` entity.
        callback_data: a press of an inline button carrying this data, on the bot's message
            `message_id` (whose keyboard offered that button).
        message_id: the message's id (the bot's message for a button press).
        attachment: a message without text: "photo", "sticker", "voice", "document" or
            "location".
        edited: deliver the text message as an `edited_message`.
    """
    if sum(value is not None for value in (text, callback_data, attachment)) != 1:
        raise ValueError("Give exactly one of text, callback_data and attachment.")
    now = int(time.time())
    if callback_data is not None:
        bot_message = {
            "message_id": message_id,
            "from": {"id": 1, "is_bot": True, "first_name": "Kefu", "username": BOT_USERNAME},
            "chat": _chat(chat_id),
            "date": now,
            "text": "请选择",
            "reply_markup": {
                "inline_keyboard": [[{"text": "选项", "callback_data": callback_data}]]
            },
        }
        return {
            "update_id": update_id,
            "callback_query": {
                "id": f"{chat_id}{update_id}",
                "from": _user(chat_id),
                "message": bot_message,
                "chat_instance": f"ci{chat_id}",
                "data": callback_data,
            },
        }
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": _user(chat_id),
        "chat": _chat(chat_id),
        "date": now,
    }
    if attachment is not None:
        if attachment not in _ATTACHMENTS:
            raise ValueError(f"Unknown attachment {attachment!r}: one of {sorted(_ATTACHMENTS)}")
        message[attachment] = _ATTACHMENTS[attachment]
    else:
        assert text is not None
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_length(command)}
            ]
    if edited:
        message["edit_date"] = now
    return {"update_id": update_id, "edited_message" if edited else "message": message}
