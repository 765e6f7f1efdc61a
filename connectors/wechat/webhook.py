"""What the WeChat webhook does with a request, without a web framework.

`WeChatWebhook.receive(query, body)` verifies and parses the request (`WeChatCodec`),
drops WeChat's retries (`ChannelState.claim`; a retry whose original was never answered,
because the process that took it died, is handled once: `LOST_AFTER_SECONDS`), routes
the message (text and recognised voice to the bot, menu clicks through the menu table,
subscriptions as `/greet`, other media a fixed reply) and applies the 5-second rule: the
bot's answer goes back in the HTTP reply when it is ready within `passive_reply_seconds`;
otherwise WeChat gets `success` at once and the answer follows through the
customer-service message API. When the bot fails on a message without having said
anything, the customer gets the system-busy apology (in the message's language) the same
way, never silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import UserMessage

from connectors.channel_state import DAY_SECONDS, ChannelState
from connectors.logs import mask_user_id
from connectors.messages import is_valid_sender_id, namespaced_sender, prepare_text
from connectors.wechat.protocol import (
    MAX_BODY_BYTES,
    InboundMessage,
    WeChatCodec,
    WeChatRequestError,
)
from connectors.wechat.sending import ReplyWindow, WeChatOutput, options_key
from connectors.wechat.text import (
    SYSTEM_BUSY,
    UNHEARD_VOICE,
    UNKNOWN_MENU_ITEM,
    UNSUPPORTED_MESSAGE,
    chosen_number,
    chosen_payload,
    join_messages,
    split_text,
)
from rasa_addons.nlu.language import detect_language

logger = logging.getLogger(__name__)

GREET = "/greet"
"""What a new follower is taken to have said: the bot's own greeting answers."""
SUBSCRIBE_EVENTS = frozenset({"subscribe", "subscribe_scan"})
LOST_AFTER_SECONDS = 6.0
"""A copy of a message this old (by its CreateTime) whose original was never answered was lost.

WeChat retries after 5 s without an answer. A live process answers within
`passive_reply_seconds` (under 5 s) and marks the message answered first, so a copy this old
without the mark means the process that took the original died (a crashed or killed Rasa
instance): the copy is handled, once. Younger copies are plain duplicates.
"""


def system_busy(text: str) -> str:
    """The apology for a message the bot failed on, in the message's language (else Chinese)."""
    return SYSTEM_BUSY[detect_language(text) or "zh"]


@dataclass(frozen=True)
class WebhookReply:
    """The HTTP response to give: status, body and content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


SUCCESS = WebhookReply(200, "success")
"""WeChat's acknowledgement: no passive reply, and no retries."""


@dataclass(frozen=True)
class BotTurn:
    """What to send to the bot for an incoming message."""

    text: str
    metadata: dict[str, Any] | None = None


def _answered_key(message: InboundMessage) -> str:
    return f"{message.dedup_key}:answered"


class WeChatWebhook:
    """Handles WeChat's webhook requests; `on_new_message` is Rasa's message handler."""

    def __init__(
        self,
        codec: WeChatCodec,
        state: ChannelState,
        output: WeChatOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        menu: Mapping[str, str] | None = None,
        passive_reply_seconds: float = 4.0,
        input_channel: str = "wechat",
    ) -> None:
        self.codec = codec
        self.state = state
        self.output = output
        self.on_new_message = on_new_message
        self.menu = dict(menu or {})
        self.passive_reply_seconds = passive_reply_seconds
        self.input_channel = input_channel
        self._background: set[asyncio.Task[None]] = set()

    def handshake(self, query: Mapping[str, str]) -> WebhookReply:
        """WeChat's GET check of the server URL: echo `echostr` when the signature is valid."""
        try:
            return WebhookReply(200, self.codec.handshake(query))
        except WeChatRequestError as error:
            return WebhookReply(error.status, error.reason)

    async def receive(
        self, query: Mapping[str, str], body: bytes, content_length: str | None = None
    ) -> WebhookReply:
        """Answers a webhook POST: 4xx for bad requests, `success` or a passive reply otherwise."""
        deadline = time.monotonic() + self.passive_reply_seconds
        try:
            if content_length and content_length.isdigit() and int(content_length) > MAX_BODY_BYTES:
                raise WeChatRequestError(413, "The body is too large.")
            message = self.codec.open(query, body)
        except WeChatRequestError as error:
            logger.info("wechat_refused status=%d reason=%s", error.status, error.reason)
            return WebhookReply(error.status, error.reason)
        except Exception:  # never a 500
            logger.exception("wechat_unreadable")
            return WebhookReply(400, "The request could not be read.")
        try:
            return await self._handle(message, query, deadline)
        except Exception:  # WeChat shows customers an error page for anything but 200
            logger.exception("wechat_error user=%s", mask_user_id(message.source))
            return self._apology(message, query)

    async def _handle(
        self, message: InboundMessage, query: Mapping[str, str], deadline: float
    ) -> WebhookReply:
        if not is_valid_sender_id(message.source):
            return WebhookReply(400, "FromUserName is not a valid openid.")
        user = mask_user_id(message.source)
        if not await self._claim(message.dedup_key):
            if not await self._original_was_lost(message):
                logger.info("wechat_duplicate user=%s type=%s", user, message.msg_type)
                return SUCCESS
            logger.warning("wechat_retry_of_lost_message user=%s", user)
        route = await self._route(message)
        logger.info(
            "wechat_message user=%s type=%s event=%s route=%s",
            user,
            message.msg_type,
            message.event or "-",
            "bot" if isinstance(route, BotTurn) else "fixed" if route else "ack",
        )
        if route is None:
            return SUCCESS
        if isinstance(route, str):
            return self._passive(message, route, query)
        try:
            reply = await self._ask_bot(message, route, query, deadline)
        except asyncio.CancelledError:  # WeChat went away; this process still pushes the answer
            self._spawn(self._mark_answered(message))
            raise
        await self._mark_answered(message)
        return reply

    async def _original_was_lost(self, message: InboundMessage) -> bool:
        """Whether this copy's original was taken but never answered (see LOST_AFTER_SECONDS)."""
        if self.codec.clock() - message.create_time < LOST_AFTER_SECONDS:
            return False
        try:
            answered = await asyncio.to_thread(self.state.get, _answered_key(message))
        except Exception:
            logger.exception("wechat_dedup_unavailable")
            return False
        return answered is None and await self._claim(f"{message.dedup_key}:retry")

    async def _mark_answered(self, message: InboundMessage) -> None:
        try:
            await asyncio.to_thread(self.state.set, _answered_key(message), "1", DAY_SECONDS)
        except Exception:
            logger.exception("wechat_dedup_unavailable")

    async def _claim(self, key: str) -> bool:
        """True the first time `key` is seen (also True when the state store fails)."""
        try:
            return await asyncio.to_thread(self.state.claim, key)
        except Exception:
            logger.exception("wechat_dedup_unavailable")
            return True

    async def _route(self, message: InboundMessage) -> BotTurn | str | None:
        """A turn for the bot, a fixed reply, or None to just acknowledge."""
        if message.msg_type == "event":
            if message.event in SUBSCRIBE_EVENTS:
                return BotTurn(GREET)
            if message.event == "click":
                text = self.menu.get(message.event_key)
                return BotTurn(text) if text else UNKNOWN_MENU_ITEM
            return None
        if message.msg_type not in ("text", "voice"):
            return UNSUPPORTED_MESSAGE
        if not message.content.strip():
            return UNHEARD_VOICE if message.msg_type == "voice" else None
        payload = await self._chosen_option(message.source, message.content)
        if payload is not None:
            return BotTurn(payload)
        prepared = prepare_text(message.content)
        return BotTurn(prepared.text, prepared.metadata()) if prepared.text else None

    async def _chosen_option(self, openid: str, text: str) -> str | None:
        """The payload a numeric reply picks from the options last sent (then forgotten)."""
        if chosen_number(text) is None:
            return None
        try:
            stored = await asyncio.to_thread(self.state.get, options_key(openid))
        except Exception:  # the state store is down: the number reaches the bot as text
            logger.exception("wechat_options_unavailable user=%s", mask_user_id(openid))
            return None
        try:
            payloads = json.loads(stored) if stored else []
        except ValueError:
            payloads = []
        payload = chosen_payload(text, [str(p) for p in payloads])
        if payload is not None:
            try:
                await asyncio.to_thread(self.state.delete, options_key(openid))
            except Exception:
                logger.exception("wechat_options_unavailable user=%s", mask_user_id(openid))
        return payload

    def _apology(self, message: InboundMessage, query: Mapping[str, str]) -> WebhookReply:
        """The system-busy apology as the passive reply to a message (`success` for events)."""
        if message.msg_type not in ("text", "voice"):
            return SUCCESS
        try:
            return self._passive(message, system_busy(message.content), query)
        except Exception:
            logger.exception("wechat_apology_failed user=%s", mask_user_id(message.source))
            return SUCCESS

    def _passive(
        self, message: InboundMessage, text: str, query: Mapping[str, str]
    ) -> WebhookReply:
        return WebhookReply(
            200, self.codec.render_reply(message, text, query), "application/xml; charset=utf-8"
        )

    async def _ask_bot(
        self, message: InboundMessage, turn: BotTurn, query: Mapping[str, str], deadline: float
    ) -> WebhookReply:
        """Runs the bot; answers passively if it is done by `deadline`, else acknowledges.

        The bot's task is shielded: a timeout never cancels it, and what it says after the
        deadline is pushed through the customer-service message API.
        """
        openid = message.source
        window = ReplyWindow(self.output)
        user_message = UserMessage(
            turn.text,
            window,
            namespaced_sender("wechat", openid),
            input_channel=self.input_channel,
            message_id=message.msg_id or None,
            metadata=turn.metadata,
        )
        started = time.monotonic()
        failed = False
        task = asyncio.ensure_future(self.on_new_message(user_message))
        try:
            await asyncio.wait_for(asyncio.shield(task), max(deadline - time.monotonic(), 0))
        except asyncio.TimeoutError:
            self._spawn(self._push_when_done(task, window, openid, turn.text))
            logger.info(
                "wechat_reply user=%s mode=deferred elapsed_ms=%d",
                mask_user_id(openid),
                (time.monotonic() - started) * 1000,
            )
            return SUCCESS
        except asyncio.CancelledError:  # the request was dropped: the answer still goes out
            self._spawn(self._push_when_done(task, window, openid, turn.text))
            raise
        except Exception:
            failed = True
            logger.exception("wechat_bot_failed user=%s", mask_user_id(openid))
        said = window.close()
        if failed and not said:
            said = [system_busy(turn.text)]
        parts = split_text(join_messages(said))
        logger.info(
            "wechat_reply user=%s mode=passive parts=%d elapsed_ms=%d",
            mask_user_id(openid),
            len(parts),
            (time.monotonic() - started) * 1000,
        )
        if not parts:
            return SUCCESS
        if len(parts) > 1:
            self._spawn(window.push(openid, parts[1:]))
        return self._passive(message, parts[0], query)

    async def _push_when_done(
        self, task: asyncio.Future[Any], window: ReplyWindow, openid: str, asked: str
    ) -> None:
        """Waits for the bot, then pushes what it said (or the apology if it failed)."""
        failed = False
        try:
            await task
        except Exception:
            failed = True
            logger.exception("wechat_bot_failed user=%s", mask_user_id(openid))
        said = window.close()
        if failed and not said:
            said = [system_busy(asked)]
        text = join_messages(said)
        if text:
            await window.push(openid, [text])

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Runs `coroutine` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for the background pushes (tests and shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
