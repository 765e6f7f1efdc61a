"""The Telegram bot channel: webhook updates in, Bot API messages out (python-telegram-bot 22).

Telegram POSTs every update to `/webhooks/telegram/webhook` with the secret registered by
`kefu telegram webhook set`; requests without it get a 403. Each update reaches Rasa once
(deduplicated by `update_id` in the shared channel state), as the chat's text: `/start`
greets, no other text can name a Rasa intent, and inline-button presses send the button's
payload. Rasa's answers go out through one lazily initialised, rate-limited `ExtBot`; what
Telegram refuses (a blocked bot, an unknown chat) is logged and recorded, never raised.

This module is the Rasa-facing adapter; the work lives in `updates` (requests in), `sending`
(messages out), `connection` (the bot and shared state) and `text` (no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.channel_state import DEFAULT_STATE_URL, ChannelState, open_channel_state
from connectors.telegram.connection import TelegramConnection
from connectors.telegram.sending import TelegramOutput
from connectors.telegram.updates import TelegramUpdates

API_BASE_URL = "https://api.telegram.org"

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramConfigurationError(RasaException):
    """The Telegram credentials cannot run safely (e.g. a token without a secret)."""


class TelegramInput(InputChannel):
    """`POST /webhooks/telegram/webhook` (Telegram's webhook) and `GET /webhooks/telegram/`."""

    @classmethod
    def name(cls) -> str:
        """The URL prefix and the name `output_channel=latest` matches."""
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TelegramInput:
        """Builds the channel from credentials.yml: token, secret_token, api_base_url, state_url."""
        credentials = credentials or {}
        token = str(credentials.get("token") or "")
        state_url = str(credentials.get("state_url") or DEFAULT_STATE_URL)
        return cls(
            token,
            str(credentials.get("secret_token") or ""),
            str(credentials.get("api_base_url") or API_BASE_URL),
            open_channel_state(state_url) if token else None,
        )

    def __init__(
        self,
        token: str,
        secret_token: str,
        api_base_url: str = API_BASE_URL,
        state: ChannelState | None = None,
    ) -> None:
        """An empty `token` leaves the channel disabled; an enabled one needs `secret_token`.

        Raises:
            TelegramConfigurationError: a token without a valid secret token.
        """
        self.secret_token = secret_token
        self.connection: TelegramConnection | None = None
        if not token:
            return
        if not secret_token:
            raise TelegramConfigurationError(
                "TELEGRAM_SECRET_TOKEN must be set when TELEGRAM_TOKEN is: every webhook "
                "request must carry it (1-256 characters of A-Z, a-z, 0-9, _ and -)."
            )
        if not _SECRET_TOKEN.fullmatch(secret_token):
            raise TelegramConfigurationError(
                "TELEGRAM_SECRET_TOKEN may only contain A-Z, a-z, 0-9, _ and - (1-256 characters)."
            )
        self.connection = TelegramConnection(
            token, api_base_url, state or open_channel_state(DEFAULT_STATE_URL)
        )

    @property
    def enabled(self) -> bool:
        """False when no token is configured."""
        return self.connection is not None

    def updates(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> TelegramUpdates:
        """The webhook's request handler (the channel must be enabled)."""
        if self.connection is None:
            raise TelegramConfigurationError("The telegram channel is not configured.")
        return TelegramUpdates(self.connection, self.secret_token, on_new_message)

    async def health(self) -> dict[str, Any]:
        """The health answer: the bot's username (once initialised) and recent failures."""
        if self.connection is None:
            return {"status": "disabled", "channel": "telegram"}
        return {
            "status": "ok",
            "channel": "telegram",
            "bot": self.connection.username,
            "undelivered": await self.connection.undelivered_today(),
        }

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The health and webhook routes: a thin adapter around `TelegramUpdates`."""
        telegram_webhook = Blueprint("telegram_webhook", __name__)
        connection = self.connection
        updates = self.updates(on_new_message) if connection is not None else None

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json(await self.health())

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if updates is None:
                return response.json(
                    {"error": "The telegram channel is not configured."}, status=404
                )
            answer = await updates.handle(
                request.headers.get(SECRET_HEADER),
                request.body or b"",
                request.headers.get("content-length"),
            )
            return response.json(answer.body, status=answer.status)

        @telegram_webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            if connection is not None:
                await connection.close()

        return telegram_webhook

    def get_output_channel(self) -> TelegramOutput | None:
        """An output channel for messages sent later (agents' replies); None when disabled."""
        return TelegramOutput(self.connection) if self.connection is not None else None
