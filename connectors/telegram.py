"""The Telegram bot channel: webhook updates in, Bot API messages out (python-telegram-bot 22).

Telegram POSTs every update to `/webhooks/telegram/webhook` with the secret registered by
`kefu telegram webhook set`; requests without it get a 403. Each update reaches Rasa once
(deduplicated by `update_id` in the shared channel state), as the chat's text: `/start`
greets, no other text can name a Rasa intent, and inline-button presses send the button's
payload. Rasa's answers go out through one lazily initialised, rate-limited `ExtBot`; what
Telegram refuses (a blocked bot, an unknown chat) is logged and recorded, never raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter, ExtBot

from connectors.channel_state import (
    DAY_SECONDS,
    DEFAULT_STATE_URL,
    ChannelState,
    open_channel_state,
    recent_undelivered,
)
from connectors.logs import mask_personal_data, mask_user_id
from connectors.messages import announcing_truncation, prepare_text

logger = logging.getLogger(__name__)

API_BASE_URL = "https://api.telegram.org"

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_UNITS = 4096
"""Telegram's limit on one message's text (counted in UTF-16 code units)."""

MAX_CALLBACK_BYTES = 64
"""Telegram's limit on a button's callback_data; longer payloads are sent as a hash."""

HASHED_CALLBACK_PREFIX = "k:"
CALLBACK_TTL_SECONDS = 30 * DAY_SECONDS
SEND_ATTEMPTS = 3
"""Attempts per message on network errors (RetryAfter is retried by the rate limiter)."""

NON_TEXT_REPLY = (
    "抱歉，我目前只能看懂文字消息，请用文字描述您的问题。\n"
    "Sorry, I can only read text messages: please type your question."
)
EXPIRED_OPTION_REPLY = (
    "这个选项已经过期了，请重新告诉我您需要什么帮助。\n"
    "This option has expired: please tell me again what you need."
)
BUTTONS_FALLBACK_TEXT = "请选择 / Please choose:"

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_START = re.compile(r"^/start(?:@\w+)?(?:\s|$)", re.IGNORECASE)
_COMMAND = re.compile(r"^/(\w+)(?:@\w+)?(?=\s|$)")


class TelegramConfigurationError(RasaException):
    """The Telegram credentials cannot run safely (e.g. a token without a secret)."""


def text_for_rasa(text: str) -> str:
    """What a customer's text means to Rasa: `/start` greets, nothing else names an intent.

    `/start`, `/start payload` and `/start@Bot` become `/greet`; other commands lose their
    slash and bot name (`/help@Bot` -> `help`); any other leading slash is dropped, so a
    customer cannot send Rasa intents such as `/order_status` or `/choose{...}`.
    """
    if _START.match(text):
        return "/greet"
    command = _COMMAND.match(text)
    if command:
        text = command.group(1) + text[command.end() :]
    while text.startswith("/"):
        text = text[1:].lstrip()
    return text


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """`text` in parts Telegram accepts, cut at a line break or space where one is near."""
    parts: list[str] = []
    rest = text.strip()
    while _utf16_units(rest) > limit:
        cut = _fitting_chars(rest, limit)
        space = max(rest.rfind("\n", 0, cut), rest.rfind(" ", 0, cut))
        if space > cut // 2:
            cut = space
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_chars(text: str, limit: int) -> int:
    """How many leading characters of `text` fit in `limit` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _is_transient(error: Exception) -> bool:
    """Network trouble worth another attempt (Telegram's refusals are not)."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


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
        for part in split_text(text):
            await self._deliver(recipient_id, part, _send_message(recipient_id, part))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Sends `text` with an inline keyboard, one button per row."""
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
            UserMessage(text, self.output, chat_id, input_channel="telegram", metadata=metadata)
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
