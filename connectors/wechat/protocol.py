"""WeChat's webhook protocol without a web framework: verify, decrypt, parse, reply.

`WeChatCodec` checks a request's signature (in constant time) and timestamp, decrypts safe-mode
envelopes with wechatpy's `WeChatCrypto`, parses the message XML with entities disabled, and
renders (and in safe mode encrypts) passive replies. Every refusal is a `WeChatRequestError`
carrying the HTTP status to answer: 400 malformed, 403 unauthenticated, 413 too large.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_SECONDS = 300
"""Requests whose timestamp is further than this from our clock are refused."""


class WeChatRequestError(Exception):
    """A request to refuse, with the HTTP status and a short reason for the response body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*values: str) -> str:
    """WeChat's signature: sha1 of the sorted values, concatenated."""
    return hashlib.sha1("".join(sorted(values)).encode("utf-8")).hexdigest()  # noqa: S324


def signature_matches(expected: str, given: str | None) -> bool:
    """Compares a signature in constant time (any non-ASCII or missing value fails)."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def check_encoding_aes_key(key: str) -> None:
    """Raises ValueError unless `key` is a 43-character EncodingAESKey (32 bytes, base64)."""
    try:
        decoded = base64.b64decode(key + "=", validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(key) != 43 or len(decoded) != 32:
        raise ValueError(
            "The WeChat EncodingAESKey must be the 43-character key from the WeChat console."
        )


@dataclass(frozen=True)
class InboundMessage:
    """One message or event from WeChat, reduced to what the channel uses."""

    msg_type: str
    """`text`, `voice`, `image`, ..., or `event` (lower case)."""
    source: str
    """FromUserName: the customer's openid."""
    target: str
    """ToUserName: the official account."""
    create_time: int
    msg_id: str = ""
    """MsgId of messages; empty for events."""
    content: str = ""
    """The text of a text message, or the speech recognition of a voice message."""
    event: str = ""
    """The event of `event` messages (lower case: subscribe, click, ...)."""
    event_key: str = ""

    @property
    def dedup_key(self) -> str:
        """The key WeChat's retries of this message share.

        Events have no MsgId: sender, time and event, plus the menu key, so two different
        menu items clicked within one second are two events.
        """
        if self.msg_type == "event":
            key = f"wechat:event:{self.source}:{self.create_time}:{self.event}"
            return f"{key}:{self.event_key}" if self.event_key else key
        if self.msg_id:
            return f"wechat:msg:{self.msg_id}"
        return f"wechat:msg:{self.source}:{self.create_time}:{self.msg_type}"


def _xml_fields(xml: str | bytes) -> dict[str, str]:
    """The text children of the `<xml>` root; 400 for anything else (entities are refused)."""
    try:
        document = xmltodict.parse(xml, disable_entities=True)
    except (ExpatError, ValueError, TypeError) as error:  # ValueError: entities are disabled
        raise WeChatRequestError(400, "The body must be WeChat's XML.") from error
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise WeChatRequestError(400, "The body must be an <xml> element with fields.")
    return {key: value for key, value in root.items() if isinstance(value, str)}


def parse_inbound(xml: str | bytes) -> InboundMessage:
    """Parses a (decrypted) message XML; raises `WeChatRequestError` (400) when malformed."""
    fields = _xml_fields(xml)
    try:
        create_time = int(fields.get("CreateTime", ""))
    except ValueError as error:
        raise WeChatRequestError(400, "CreateTime must be a number.") from error
    source, target = fields.get("FromUserName", ""), fields.get("ToUserName", "")
    msg_type = fields.get("MsgType", "").strip().lower()
    if not (source and target and msg_type):
        raise WeChatRequestError(400, "FromUserName, ToUserName and MsgType are required.")
    return InboundMessage(
        msg_type=msg_type,
        source=source,
        target=target,
        create_time=create_time,
        msg_id=fields.get("MsgId", "").strip(),
        content=fields.get("Content", fields.get("Recognition", "")),
        event=fields.get("Event", "").strip().lower(),
        event_key=fields.get("EventKey", "").strip(),
    )


def _cdata_safe(text: str) -> str:
    """The text with `]]>` split so that it cannot end wechatpy's CDATA section."""
    return text.replace("]]>", "]]]]><![CDATA[>")


class WeChatCodec:
    """Verifies, decrypts and parses WeChat's requests; renders passive replies.

    Plain mode when `encoding_aes_key` is empty, safe mode (AES) otherwise. `clock` returns
    the current Unix time (inject a fixed one to check old public test vectors).
    """

    def __init__(
        self,
        token: str,
        app_id: str,
        encoding_aes_key: str = "",
        clock: Callable[[], float] = time.time,
        replay_window_seconds: int = REPLAY_WINDOW_SECONDS,
    ) -> None:
        if encoding_aes_key:
            check_encoding_aes_key(encoding_aes_key)
        self.token = token
        self.crypto = WeChatCrypto(token, encoding_aes_key, app_id) if encoding_aes_key else None
        self.clock = clock
        self.replay_window_seconds = replay_window_seconds

    @property
    def mode(self) -> str:
        """`aes` (safe mode) or `plain`."""
        return "aes" if self.crypto else "plain"

    def _check_time_and_signature(self, query: Mapping[str, str], *signed: str) -> None:
        """403 unless the timestamp is recent and `signature` signs token/timestamp/nonce."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        self._check_timestamp(timestamp)
        if not nonce or not signature_matches(
            sign(self.token, timestamp, nonce, *signed),
            query.get("msg_signature" if signed else "signature"),
        ):
            raise WeChatRequestError(403, "Signature check failed.")

    def _check_timestamp(self, timestamp: str) -> None:
        try:
            skew = abs(self.clock() - int(timestamp))
        except (ValueError, OverflowError):
            skew = float("inf")
        if skew > self.replay_window_seconds:
            raise WeChatRequestError(403, "Signature check failed (timestamp out of range).")

    def handshake(self, query: Mapping[str, str]) -> str:
        """The `echostr` to echo for WeChat's GET check of the server URL."""
        self._check_time_and_signature(query)
        echostr = query.get("echostr")
        if not echostr:
            raise WeChatRequestError(400, "echostr is missing.")
        return echostr

    def open(self, query: Mapping[str, str], body: bytes) -> InboundMessage:
        """The verified message of a webhook POST (decrypted in safe mode)."""
        if len(body) > MAX_BODY_BYTES:
            raise WeChatRequestError(413, "The body is too large.")
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if self.crypto is None:
            if encrypted:
                raise WeChatRequestError(400, "Encrypted messages need an EncodingAESKey.")
            self._check_time_and_signature(query)
            return parse_inbound(body)
        if not encrypted:
            raise WeChatRequestError(400, "Safe mode: messages must be encrypted.")
        envelope = _xml_fields(body)
        encrypt = envelope.get("Encrypt")
        if not encrypt:
            raise WeChatRequestError(400, "The envelope has no Encrypt field.")
        self._check_time_and_signature(query, encrypt)
        return parse_inbound(self._decrypt(encrypt, query))

    def _decrypt(self, encrypt: str, query: Mapping[str, str]) -> str:
        """Decrypts a verified `Encrypt` field (400 when it is not valid ciphertext)."""
        assert self.crypto is not None
        try:
            plain: Any = self.crypto.decrypt_message(
                {"Encrypt": encrypt},
                query.get("msg_signature"),
                query.get("timestamp"),
                query.get("nonce"),
            )
        except Exception as error:  # wechatpy raises many types on bad ciphertext
            raise WeChatRequestError(400, "The message could not be decrypted.") from error
        return str(plain)

    def render_reply(self, message: InboundMessage, text: str, query: Mapping[str, str]) -> str:
        """The passive text reply to `message` (encrypted in safe mode)."""
        reply = TextReply(
            source=message.target,
            target=message.source,
            content=_cdata_safe(text),
            time=int(self.clock()),
        ).render()
        if self.crypto is None:
            return str(reply)
        return str(
            self.crypto.encrypt_message(
                reply, query.get("nonce", ""), query.get("timestamp") or str(int(self.clock()))
            )
        )
