"""Sending to WeChat users: the customer-service message API and the channel's output channels.

- `CustomerServiceSender`: sends texts off the event loop, retries transient failures, and
  records what cannot be delivered (48-hour window closed, quota reached) instead of raising.
- `WeChatOutput`: the output channel that pushes through the API (agents' replies, late answers).
- `ReplyWindow`: collects the bot's messages while the passive reply is pending, then pushes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import requests
from rasa.core.channels.channel import OutputChannel
from wechatpy.exceptions import WeChatClientException

from connectors.channel_state import DAY_SECONDS, ChannelState
from connectors.logs import mask_user_id
from connectors.messages import platform_id
from connectors.wechat.client import KefuWeChatClient
from connectors.wechat.text import number_options, split_text

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
"""Rasa senders of this channel are `wechat:<openid>`; the API gets the bare openid."""

RETRY_DELAYS = (0.5, 1.0, 2.0)
"""Pauses before each retry of a transient failure (so at most 4 attempts)."""
NOT_RETRIED = {
    45015: "48-hour window closed: follow up another way",
    45047: "customer-service message quota reached: follow up another way",
}
"""Errors that retrying cannot fix, with the reason recorded for the agents."""


def options_key(openid: str) -> str:
    """The `ChannelState` key of the numbered options last sent to `openid`."""
    return f"wechat:options:{openid}"


def _is_transient(error: WeChatClientException) -> bool:
    """System busy (-1) and HTTP 5xx (or no response at all) are worth retrying."""
    if error.errcode is not None:
        return bool(error.errcode == -1)
    response = getattr(error, "response", None)
    return response is None or response.status_code >= 500


def _describe(error: WeChatClientException) -> tuple[int | None, str]:
    """The errcode and errmsg of a failure (HTTP errors have no errcode)."""
    if error.errcode is not None:
        return int(error.errcode), str(error.errmsg)
    response = getattr(error, "response", None)
    return None, f"HTTP {response.status_code}" if response is not None else "no response"


class CustomerServiceSender:
    """Sends texts through the customer-service message API; never raises for delivery failures.

    Transient failures (errcode -1, HTTP 5xx, network errors) are retried after
    `retry_delays`; anything else, and a transient failure that persists, is logged
    (user masked) and recorded with `ChannelState.record_undelivered`.
    """

    def __init__(
        self,
        client: KefuWeChatClient,
        state: ChannelState,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.client = client
        self.state = state
        self.retry_delays = tuple(retry_delays)

    async def send_text(self, openid: str, text: str) -> bool:
        """Sends `text` (split under WeChat's byte limit); False if some of it was not delivered."""
        parts = split_text(text)
        for index, part in enumerate(parts):
            failure = await self._send_part(openid, part)
            if failure is not None:
                await self._record(openid, "\n\n".join(parts[index:]), *failure)
                return False
        return True

    async def _send_part(self, openid: str, text: str) -> tuple[int | None, str, str] | None:
        """Sends one piece with retries; None on success, else (errcode, errmsg, reason)."""
        failure: tuple[int | None, str, str] | None = None
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self.client.message.send_text, openid, text)
                return None
            except WeChatClientException as error:
                errcode, errmsg = _describe(error)
                transient = _is_transient(error)
                reason = NOT_RETRIED.get(errcode or 0, "WeChat API error")
            except requests.RequestException as error:
                errcode, errmsg, transient = None, type(error).__name__, True
                reason = "network error"
            except Exception as error:  # never raise into Rasa
                logger.exception("wechat_send_error user=%s", mask_user_id(openid))
                errcode, errmsg, transient = None, type(error).__name__, False
                reason = "unexpected error"
            failure = (errcode, errmsg, reason)
            logger.warning(
                "wechat_send_failed user=%s attempt=%d errcode=%s errmsg=%s retry=%s",
                mask_user_id(openid),
                attempt,
                errcode,
                errmsg,
                transient,
            )
            if not transient:
                break
        return failure

    async def _record(
        self, openid: str, text: str, errcode: int | None, errmsg: str, reason: str
    ) -> None:
        """Keeps an undelivered message for the agents (never raises)."""
        record = {
            "channel": "wechat",
            "recipient": openid,
            "text": text,
            "errcode": errcode,
            "errmsg": errmsg,
            "reason": reason,
        }
        try:
            await asyncio.to_thread(self.state.record_undelivered, record)
        except Exception:
            logger.exception("wechat_record_failed user=%s", mask_user_id(openid))
            return
        logger.warning(
            "wechat_undelivered user=%s errcode=%s reason=%s",
            mask_user_id(openid),
            errcode,
            reason,
        )


class WeChatOutput(OutputChannel):
    """Pushes the bot's messages through the customer-service message API.

    Buttons become numbered lines; the payloads are kept under `wechat:options:<openid>`
    so that a reply of just the number maps back. Images are sent as their URL.
    """

    def __init__(self, sender: CustomerServiceSender, state: ChannelState) -> None:
        self.sender = sender
        self.state = state

    @classmethod
    def name(cls) -> str:
        """The channel name."""
        return "wechat"

    async def deliver(self, recipient_id: str, text: str) -> None:
        """Sends one text to the user."""
        await self.sender.send_text(recipient_id, text)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends a text (`recipient_id` is the Rasa sender `wechat:<openid>` or an openid)."""
        if text and text.strip():
            await self.deliver(platform_id(CHANNEL, recipient_id), text)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Sends the text with the buttons as numbered options."""
        recipient_id = platform_id(CHANNEL, recipient_id)
        rendered, payloads = number_options(text, buttons)
        if payloads:
            try:
                await asyncio.to_thread(
                    self.state.set,
                    options_key(recipient_id),
                    json.dumps(payloads, ensure_ascii=False),
                    DAY_SECONDS,
                )
            except Exception:  # the numbers then reach the bot as text: still usable
                logger.exception("wechat_options_not_saved user=%s", mask_user_id(recipient_id))
        await self.send_text_message(recipient_id, rendered)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Sends the image's URL as text."""
        await self.send_text_message(recipient_id, image)

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """Sends the attachment (a URL or text) as text."""
        await self.send_text_message(recipient_id, str(attachment))

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Sends the `text` field of a custom message; other custom messages are skipped."""
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str) and text.strip():
            await self.send_text_message(recipient_id, text)
        else:
            logger.info("wechat_custom_skipped user=%s", mask_user_id(recipient_id))


class ReplyWindow(WeChatOutput):
    """The output channel of one incoming message: collects texts until `close()`.

    While open, the bot's texts are kept for the passive reply. After `close()` every text
    goes through the API, in order (a lock keeps pushes of this window sequential).
    """

    def __init__(self, output: WeChatOutput) -> None:
        super().__init__(output.sender, output.state)
        self.is_open = True
        self._pending: list[str] = []
        self._lock = asyncio.Lock()

    async def deliver(self, recipient_id: str, text: str) -> None:
        """Keeps the text while open, else pushes it."""
        if self.is_open:
            self._pending.append(text)
            return
        async with self._lock:
            await super().deliver(recipient_id, text)

    def close(self) -> list[str]:
        """Ends collecting; returns the texts collected so far."""
        self.is_open = False
        pending, self._pending = self._pending, []
        return pending

    async def push(self, recipient_id: str, texts: Sequence[str]) -> None:
        """Pushes `texts` in order through the API."""
        async with self._lock:
            for text in texts:
                await super().deliver(recipient_id, text)
