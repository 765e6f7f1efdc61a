"""The WeChat official-account (公众号) channel: `connectors.wechat.WeChatInput` in credentials.yml.

Routes under `/webhooks/wechat/`: `GET /` health, `GET /webhook` WeChat's server-URL check,
`POST /webhook` messages and events (plain or safe mode). The Sanic handlers only adapt
requests: the protocol lives in `protocol` (verify, decrypt, parse, reply), `webhook`
(dedup, routing, the 5-second rule), `client` (the API client and its shared access token),
`sending` (customer-service messages, output channels) and `text` (splitting, numbered
options).

Credentials: token (empty = channel not enabled), app_id, app_secret, encoding_aes_key
(empty = plain mode), api_base_url, state_url, passive_reply_seconds, menu (CLICK
EventKey -> text sent to the bot).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.channel_state import (
    DAY_SECONDS,
    DEFAULT_STATE_URL,
    ChannelState,
    open_channel_state,
    recent_undelivered,
)
from connectors.messages import announcing_truncation
from connectors.wechat.client import DEFAULT_API_BASE_URL, ChannelStateSession, KefuWeChatClient
from connectors.wechat.protocol import WeChatCodec, check_encoding_aes_key
from connectors.wechat.sending import RETRY_DELAYS, CustomerServiceSender, WeChatOutput
from connectors.wechat.webhook import WebhookReply, WeChatWebhook

logger = logging.getLogger(__name__)

DEFAULT_PASSIVE_REPLY_SECONDS = 4.0
WECHAT_TIMEOUT_SECONDS = 5.0
"""WeChat drops the HTTP request (and retries) after this long."""


def _text(credentials: Mapping[str, Any], key: str, default: str = "") -> str:
    """A credentials value as a stripped string ("" and None give `default`)."""
    value = credentials.get(key)
    return str(value).strip() if value not in (None, "") else default


@dataclass(frozen=True)
class WeChatSettings:
    """The channel's credentials, validated."""

    token: str = field(default="", repr=False)
    app_id: str = ""
    app_secret: str = field(default="", repr=False)
    encoding_aes_key: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    state_url: str = DEFAULT_STATE_URL
    passive_reply_seconds: float = DEFAULT_PASSIVE_REPLY_SECONDS
    menu: Mapping[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """Whether the channel is on (a token is set)."""
        return bool(self.token)

    @property
    def mode(self) -> str:
        """`aes` (safe mode) or `plain`."""
        return "aes" if self.encoding_aes_key else "plain"

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> WeChatSettings:
        """Reads credentials.yml's values; raises ValueError for an unusable configuration."""
        credentials = credentials or {}
        menu = credentials.get("menu") or {}
        if not isinstance(menu, Mapping):
            raise ValueError("WeChat `menu` must map CLICK event keys to texts.")
        seconds = _text(credentials, "passive_reply_seconds")
        try:
            passive_reply_seconds = float(seconds) if seconds else DEFAULT_PASSIVE_REPLY_SECONDS
        except ValueError as error:
            raise ValueError("WeChat `passive_reply_seconds` must be a number.") from error
        settings = cls(
            token=_text(credentials, "token"),
            app_id=_text(credentials, "app_id"),
            app_secret=_text(credentials, "app_secret"),
            encoding_aes_key=_text(credentials, "encoding_aes_key"),
            api_base_url=_text(credentials, "api_base_url", DEFAULT_API_BASE_URL).rstrip("/"),
            state_url=_text(credentials, "state_url", DEFAULT_STATE_URL),
            passive_reply_seconds=passive_reply_seconds,
            menu={str(key): str(value) for key, value in menu.items() if value},
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raises ValueError when an enabled channel could not work."""
        if not self.enabled:
            return
        if not (self.app_id and self.app_secret):
            raise ValueError(
                "WeChat is enabled (WECHAT_TOKEN is set) but WECHAT_APP_ID or "
                "WECHAT_APP_SECRET is empty: both are needed to send messages."
            )
        if self.encoding_aes_key:
            check_encoding_aes_key(self.encoding_aes_key)
        if not 0 < self.passive_reply_seconds < WECHAT_TIMEOUT_SECONDS:
            raise ValueError(
                f"WeChat `passive_reply_seconds` must be between 0 and {WECHAT_TIMEOUT_SECONDS}"
                " (WeChat waits 5 s for the reply)."
            )


def _query(request: Request) -> dict[str, str]:
    """The request's query parameters (first value of each)."""
    return {key: values[0] for key, values in request.args.items() if values}


def _respond(reply: WebhookReply) -> HTTPResponse:
    return response.text(reply.body, status=reply.status, content_type=reply.content_type)


class WeChatInput(InputChannel):
    """The WeChat official-account input channel.

    `state`, `clock` and `retry_delays` can be injected (tests); by default the state store
    is opened from `settings.state_url` when first needed.
    """

    def __init__(
        self,
        settings: WeChatSettings,
        state: ChannelState | None = None,
        clock: Callable[[], float] = time.time,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        settings.validate()
        self.settings = settings
        self.clock = clock
        self.retry_delays = retry_delays
        self._state = state
        self._output: WeChatOutput | None = None

    @classmethod
    def name(cls) -> str:
        """The channel name: routes live under /webhooks/wechat/."""
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        """Builds the channel from credentials.yml (see the module docstring for the keys)."""
        return cls(WeChatSettings.from_credentials(credentials))

    @property
    def state(self) -> ChannelState:
        """The shared channel state (opened lazily; no I/O until first used)."""
        if self._state is None:
            self._state = open_channel_state(self.settings.state_url)
        return self._state

    @property
    def output(self) -> WeChatOutput:
        """The API-pushing output channel, shared by every request (created lazily)."""
        if self._output is None:
            client = KefuWeChatClient(
                self.settings.app_id,
                self.settings.app_secret,
                self.settings.api_base_url,
                session=ChannelStateSession(self.state),
            )
            sender = CustomerServiceSender(client, self.state, self.retry_delays)
            self._output = WeChatOutput(sender, self.state)
        return self._output

    def get_output_channel(self) -> WeChatOutput | None:
        """The output channel for messages sent outside a request (agents' replies)."""
        return self.output if self.settings.enabled else None

    def webhook(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> WeChatWebhook:
        """The framework-free request handler."""
        codec = WeChatCodec(
            self.settings.token,
            self.settings.app_id,
            self.settings.encoding_aes_key,
            clock=self.clock,
        )
        return WeChatWebhook(
            codec,
            self.state,
            self.output,
            on_new_message,
            menu=self.settings.menu,
            passive_reply_seconds=self.settings.passive_reply_seconds,
            input_channel=self.name(),
        )

    async def health(self) -> dict[str, Any]:
        """The health answer: status, mode and how many messages were undelivered lately."""
        if not self.settings.enabled:
            return {"status": "disabled", "channel": self.name()}
        try:
            undelivered: int | None = await asyncio.to_thread(
                recent_undelivered, self.state, self.name(), self.clock() - DAY_SECONDS
            )
        except Exception:
            logger.exception("wechat_state_unavailable")
            undelivered = None
        return {
            "status": "ok",
            "channel": self.name(),
            "mode": self.settings.mode,
            "undelivered": undelivered,
        }

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The Sanic routes: a thin adapter over `WeChatWebhook`."""
        blueprint = Blueprint("wechat_webhook", __name__)
        webhook = (
            self.webhook(announcing_truncation(on_new_message)) if self.settings.enabled else None
        )
        not_configured = {"error": "The wechat channel is not configured (WECHAT_TOKEN)."}

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json(await self.health())

        @blueprint.route("/webhook", methods=["GET"])
        async def handshake(request: Request) -> HTTPResponse:
            if webhook is None:
                return response.json(not_configured, status=404)
            return _respond(webhook.handshake(_query(request)))

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if webhook is None:
                return response.json(not_configured, status=404)
            reply = await webhook.receive(
                _query(request), request.body or b"", request.headers.get("content-length")
            )
            return _respond(reply)

        return blueprint
