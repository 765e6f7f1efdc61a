"""Rasa's answers out to Telegram: the output channel, with retries and recorded failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError
from telegram.ext import ExtBot

from connectors.logs import mask_user_id
from connectors.messages import platform_id
from connectors.telegram.connection import TelegramConnection
from connectors.telegram.text import BUTTONS_FALLBACK_TEXT, split_text

logger = logging.getLogger(__name__)

SEND_ATTEMPTS = 3
"""Attempts per message on network errors (RetryAfter is retried by the rate limiter)."""


def _is_transient(error: Exception) -> bool:
    """Network trouble worth another attempt (Telegram's refusals are not)."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


class TelegramOutput(OutputChannel):
    """Sends Rasa's messages to a Telegram chat; failures are recorded, never raised."""

    @classmethod
    def name(cls) -> str:
        """Same name as the input channel, so `output_channel=latest` finds it."""
        return "telegram"

    def __init__(self, connection: TelegramConnection) -> None:
        self.connection = connection

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends `text`, split into several messages over 4,096 characters."""
        recipient_id = platform_id("telegram", recipient_id)
        for part in split_text(text):
            await self._deliver(recipient_id, part, _send_message(recipient_id, part))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Sends `text` with an inline keyboard, one button per row."""
        recipient_id = platform_id("telegram", recipient_id)
        rows = [[button] for item in buttons if (button := await self._button(item))]
        parts = split_text(text) or [BUTTONS_FALLBACK_TEXT]
        for part in parts[:-1]:
            await self._deliver(recipient_id, part, _send_message(recipient_id, part))
        keyboard = InlineKeyboardMarkup(rows) if rows else None
        await self._deliver(
            recipient_id, parts[-1], _send_message(recipient_id, parts[-1], keyboard)
        )

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Sends the image at URL `image` as a photo."""
        recipient_id = platform_id("telegram", recipient_id)

        async def send(bot: ExtBot[Any]) -> None:
            await bot.send_photo(chat_id=recipient_id, photo=image)

        await self._deliver(recipient_id, image, send)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Sends the custom message's `text`, if it has one; ignores anything else."""
        text = json_message.get("text")
        if isinstance(text, str) and text.strip():
            await self.send_text_message(recipient_id, text)
        else:
            logger.info(
                "telegram_custom_ignored user=%s keys=%s",
                mask_user_id(recipient_id),
                ",".join(sorted(map(str, json_message))),
            )

    async def _button(self, button: dict[str, Any]) -> InlineKeyboardButton | None:
        title, payload, url = button.get("title"), button.get("payload"), button.get("url")
        if isinstance(url, str) and url:
            return InlineKeyboardButton(str(title or url), url=url)
        if not isinstance(payload, str) or not payload:
            logger.info("telegram_button_skipped reason=no_payload")
            return None
        callback_data = await self.connection.callback_data(payload)
        return InlineKeyboardButton(str(title or payload), callback_data=callback_data)

    async def _deliver(
        self, recipient_id: str, text: str, call: Callable[[ExtBot[Any]], Awaitable[Any]]
    ) -> bool:
        """Runs `call`, retrying network errors; True when Telegram took the message."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await call(await self.connection.bot())
                return True
            except Exception as error:
                if _is_transient(error) and attempt < SEND_ATTEMPTS:
                    logger.info(
                        "telegram_retry user=%s attempt=%d error=%s",
                        mask_user_id(recipient_id),
                        attempt,
                        type(error).__name__,
                    )
                    await asyncio.sleep(self.connection.retry_delay_seconds * attempt)
                    continue
                await self.connection.record_undelivered(recipient_id, text, error)
                return False
        return False


def _send_message(
    chat_id: str, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> Callable[[ExtBot[Any]], Awaitable[Any]]:
    async def send(bot: ExtBot[Any]) -> None:
        await bot.send_message(chat_id=chat_id, text=text, reply_markup=keyboard)

    return send
