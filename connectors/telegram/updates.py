"""Telegram's webhook requests in, Rasa messages out: everything the route does, without Sanic.

Each update reaches Rasa once (deduplicated by `update_id` in the shared channel state), as
the chat's text: `/start` greets, no other text can name a Rasa intent, and inline-button
presses send the button's payload (only when the keyboard offered it).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import UserMessage
from telegram import CallbackQuery, Message, Update
from telegram.ext import ExtBot

from connectors.logs import mask_personal_data, mask_user_id
from connectors.messages import announcing_truncation, namespaced_sender, prepare_text
from connectors.telegram.connection import TelegramConnection
from connectors.telegram.sending import TelegramOutput
from connectors.telegram.text import EXPIRED_OPTION_REPLY, NON_TEXT_REPLY, text_for_rasa

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP answer to one webhook request."""

    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"status": "ok"})


def _declared_length(content_length: str | None) -> int:
    try:
        return int(content_length or 0)
    except ValueError:
        return 0


def parse_update(body: bytes) -> Update | None:
    """The update in a webhook body, or None when it is not one."""
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return None
    try:
        return Update.de_json(data)
    except Exception:  # python-telegram-bot raises many types for malformed objects
        return None


def _update_kind(update: Update) -> str:
    return next((key for key in update.to_dict() if key != "update_id"), "empty")


class TelegramUpdates:
    """Webhook requests in, Rasa messages out: everything the route does, without Sanic."""

    def __init__(
        self,
        connection: TelegramConnection,
        secret_token: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        self.connection = connection
        self.secret_token = secret_token
        self.output = TelegramOutput(connection)
        self.on_new_message = announcing_truncation(on_new_message)

    async def handle(
        self, secret: str | None, body: bytes, content_length: str | None = None
    ) -> WebhookAnswer:
        """Checks, deduplicates and handles one webhook request; never raises."""
        if secret is None or not hmac.compare_digest(
            secret.encode("utf-8"), self.secret_token.encode("utf-8")
        ):
            logger.warning("telegram_refused reason=secret_token")
            return WebhookAnswer(403, {"error": "Missing or wrong secret token."})
        if _declared_length(content_length) > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
            return WebhookAnswer(413, {"error": "The update is larger than 64 KB."})
        update = parse_update(body)
        if update is None:
            return WebhookAnswer(400, {"error": "The body must be a Telegram Update object."})
        try:
            first = await asyncio.to_thread(
                self.connection.state.claim, f"telegram:update:{update.update_id}"
            )
        except Exception:
            logger.exception("telegram_state_unavailable update=%s", update.update_id)
            return WebhookAnswer(503, {"error": "Try again later."})
        if not first:
            logger.info("telegram_duplicate update=%s", update.update_id)
            return WebhookAnswer(200, {"status": "duplicate"})
        try:
            await self.dispatch(update)
        except Exception:  # Telegram would redeliver a failed update forever: log, answer 200
            logger.exception("telegram_update_failed update=%s", update.update_id)
        return WebhookAnswer(200)

    async def dispatch(self, update: Update) -> None:
        """Handles a new update: messages and button presses; other kinds are ignored."""
        if update.callback_query is not None:
            await self._on_button(update.callback_query)
        elif update.message is not None:
            await self._on_message(update.message)
        else:
            logger.info(
                "telegram_ignored update=%s kind=%s", update.update_id, _update_kind(update)
            )

    async def _on_message(self, message: Message) -> None:
        chat_id = str(message.chat.id)
        if message.text is None:
            if message.effective_attachment is None:  # service messages: joins, pins...
                logger.info("telegram_ignored user=%s kind=service", mask_user_id(chat_id))
                return
            logger.info("telegram_non_text user=%s", mask_user_id(chat_id))
            await self.output.send_text_message(chat_id, NON_TEXT_REPLY)
            return
        prepared = prepare_text(message.text)
        text = text_for_rasa(prepared.text)
        logger.info("telegram_text user=%s chars=%d", mask_user_id(chat_id), len(text))
        logger.debug(
            "telegram_text user=%s text=%s", mask_user_id(chat_id), mask_personal_data(text)
        )
        if text:
            await self._to_rasa(chat_id, text, prepared.metadata())

    async def _on_button(self, query: CallbackQuery) -> None:
        message = query.message if isinstance(query.message, Message) else None
        chat_id = str(message.chat.id if message is not None else query.from_user.id)
        await self._best_effort("answer_callback", lambda bot: bot.answer_callback_query(query.id))
        if message is not None and message.reply_markup is not None:
            await self._best_effort(
                "remove_keyboard",
                lambda bot: bot.edit_message_reply_markup(
                    chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
                ),
            )
        offered = message is not None and _offers(message, query.data)
        payload = await self.connection.payload(query.data) if offered and query.data else None
        logger.info("telegram_button user=%s known=%s", mask_user_id(chat_id), payload is not None)
        if payload is None:
            await self.output.send_text_message(chat_id, EXPIRED_OPTION_REPLY)
            return
        await self._to_rasa(chat_id, payload, {})

    async def _to_rasa(self, chat_id: str, text: str, metadata: dict[str, Any]) -> None:
        await self.on_new_message(
            UserMessage(
                text,
                self.output,
                namespaced_sender("telegram", chat_id),
                input_channel="telegram",
                metadata=metadata,
            )
        )

    async def _best_effort(
        self, action: str, call: Callable[[ExtBot[Any]], Awaitable[Any]]
    ) -> None:
        try:
            await call(await self.connection.bot())
        except Exception as error:
            logger.info("telegram_best_effort_failed action=%s error=%s", action, error)


def _offers(message: Message, data: str | None) -> bool:
    """True when the bot's message still shows a button with this callback data.

    Clients can send any callback data; only what the keyboard offered is trusted.
    """
    keyboard = message.reply_markup.inline_keyboard if message.reply_markup else ()
    return data is not None and any(
        button.callback_data == data for row in keyboard for button in row
    )
