"""The bot and the state that one Telegram channel's input and output share."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from telegram.ext import AIORateLimiter, ExtBot

from connectors.channel_state import DAY_SECONDS, ChannelState, recent_undelivered
from connectors.logs import mask_user_id

logger = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 64
"""Telegram's limit on a button's callback_data; longer payloads are sent as a hash."""

HASHED_CALLBACK_PREFIX = "k:"
CALLBACK_TTL_SECONDS = 30 * DAY_SECONDS


class TelegramConnection:
    """The bot and the state that one Telegram channel's input and output share.

    The `ExtBot` is created and initialised (getMe) on first use, once, under a lock.
    """

    def __init__(self, token: str, api_base_url: str, state: ChannelState) -> None:
        self.token = token
        self.api_base_url = api_base_url.rstrip("/")
        self.state = state
        self.retry_delay_seconds = 1.0
        """Wait before the 2nd attempt (doubled before the 3rd); tests set 0."""
        self._bot: ExtBot[Any] | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def username(self) -> str | None:
        """The bot's username once initialised (never calls the network)."""
        return self._bot.username if self._bot is not None else None

    async def bot(self) -> ExtBot[Any]:
        """The initialised bot (initialises it on the first call)."""
        if self._bot is not None:
            return self._bot
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._bot is None:
                bot: ExtBot[Any] = ExtBot(
                    self.token,
                    base_url=f"{self.api_base_url}/bot",
                    base_file_url=f"{self.api_base_url}/file/bot",
                    rate_limiter=AIORateLimiter(max_retries=3),
                )
                try:
                    await bot.initialize()
                except BaseException:
                    await bot.shutdown()
                    raise
                self._bot = bot
                logger.info("telegram_ready bot=%s api=%s", bot.username, self.api_base_url)
        return self._bot

    async def close(self) -> None:
        """Closes the bot's HTTP connections (a later call initialises it again)."""
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.shutdown()

    async def callback_data(self, payload: str) -> str:
        """The button's callback_data: the payload itself, or `k:<hash>` when too long."""
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_BYTES and not payload.startswith(
            HASHED_CALLBACK_PREFIX
        ):
            return payload
        digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
        await asyncio.to_thread(
            self.state.set, f"telegram:callback:{digest}", payload, CALLBACK_TTL_SECONDS
        )
        return HASHED_CALLBACK_PREFIX + digest

    async def payload(self, callback_data: str) -> str | None:
        """The payload behind a button's callback_data (None when its hash has expired)."""
        if not callback_data.startswith(HASHED_CALLBACK_PREFIX):
            return callback_data
        digest = callback_data.removeprefix(HASHED_CALLBACK_PREFIX)
        return await asyncio.to_thread(self.state.get, f"telegram:callback:{digest}")

    async def record_undelivered(self, recipient_id: str, text: str, error: Exception) -> None:
        """Logs a message Telegram did not take and keeps it for an agent to follow up."""
        reason = f"{type(error).__name__}: {error}"
        logger.warning("telegram_undelivered user=%s error=%s", mask_user_id(recipient_id), reason)
        record = {"channel": "telegram", "recipient": recipient_id, "text": text, "error": reason}
        try:
            await asyncio.to_thread(self.state.record_undelivered, record)
        except Exception:
            logger.exception(
                "telegram_undelivered_not_recorded user=%s", mask_user_id(recipient_id)
            )

    async def undelivered_today(self) -> int | None:
        """How many Telegram messages were recorded undelivered in the last 24 hours."""
        try:
            return await asyncio.to_thread(
                recent_undelivered, self.state, "telegram", time.time() - DAY_SECONDS
            )
        except Exception:
            logger.exception("telegram_state_unavailable")
            return None
