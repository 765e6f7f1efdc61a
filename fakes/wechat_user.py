"""A simulated WeChat server sending one user's messages to Kefu's webhook, and reading replies.

    user = WeChatUser(token, app_id, encoding_aes_key, openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    query, body = user.signed_query(user.text_xml("你好", msg_id=1))
    response = httpx.post(f"{rasa}/webhooks/wechat/webhook", params=query, content=body)
    reply = user.read_reply(response.content, query)  # {"MsgType": "text", "Content": ...} or None

Signs (sha1 of the sorted token/timestamp/nonce[/Encrypt]) and, in safe mode (an
EncodingAESKey given), encrypts like WeChat: AES-256-CBC with the key's first 16 bytes as IV,
over 16 random bytes + the 4-byte big-endian length + the XML + the app id, PKCS#7-padded to
32-byte blocks. hashlib and `cryptography` only (no wechatpy): the app runtime uses it too;
`cryptography` is imported only in safe mode.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from typing import Any

_BLOCK = 32


def wechat_signature(*values: str) -> str:
    """sha1 of the sorted values, concatenated (WeChat's request and reply signature)."""
    return hashlib.sha1("".join(sorted(values)).encode("utf-8")).hexdigest()  # noqa: S324


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _fields(xml: str | bytes) -> dict[str, str]:
    """The children of an `<xml>` root as {tag: text} (only ever our own server's replies)."""
    root = ElementTree.fromstring(xml)  # noqa: S314
    return {child.tag: child.text or "" for child in root}


def _aes_cbc(key: bytes) -> Any:
    """WeChat's cipher: AES-256-CBC, the IV being the key's first 16 bytes."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as error:
        raise ImportError(
            "WeChat's safe mode needs the `cryptography` package in this environment."
        ) from error
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


class WeChatUser:
    """One WeChat user of an official account, as WeChat's servers present them to the webhook.

    `encoding_aes_key` None or "" means plain mode. `clock` gives the Unix time for timestamps.
    """

    def __init__(
        self,
        token: str,
        app_id: str,
        encoding_aes_key: str | None,
        openid: str,
        account: str = "gh_kefu",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.openid = openid
        self.account = account
        self.clock = clock
        self.key = base64.b64decode(encoding_aes_key + "=") if encoding_aes_key else None
        if self.key is not None and len(self.key) != _BLOCK:
            raise ValueError("The EncodingAESKey must decode to 32 bytes (43 characters).")

    # ------------------------------------------------------------ messages

    def _message_xml(self, msg_type: str, fields: str) -> str:
        return (
            f"<xml><ToUserName>{_cdata(self.account)}</ToUserName>"
            f"<FromUserName>{_cdata(self.openid)}</FromUserName>"
            f"<CreateTime>{int(self.clock())}</CreateTime>"
            f"<MsgType>{_cdata(msg_type)}</MsgType>{fields}</xml>"
        )

    def text_xml(self, content: str, msg_id: int | str) -> str:
        """A text message."""
        return self._message_xml(
            "text", f"<Content>{_cdata(content)}</Content><MsgId>{msg_id}</MsgId>"
        )

    def voice_xml(self, recognition: str, msg_id: int | str) -> str:
        """A voice message with WeChat's speech recognition ("" for none)."""
        return self._message_xml(
            "voice",
            f"<MediaId>{_cdata('media_' + str(msg_id))}</MediaId><Format>{_cdata('amr')}</Format>"
            f"<Recognition>{_cdata(recognition)}</Recognition><MsgId>{msg_id}</MsgId>",
        )

    def image_xml(self, msg_id: int | str) -> str:
        """An image message."""
        return self._message_xml(
            "image",
            f"<PicUrl>{_cdata('https://mmbiz.qpic.cn/' + str(msg_id))}</PicUrl>"
            f"<MediaId>{_cdata('media_' + str(msg_id))}</MediaId><MsgId>{msg_id}</MsgId>",
        )

    def event_xml(self, event: str, key: str = "") -> str:
        """An event (`subscribe`, `unsubscribe`, `CLICK` with its EventKey, ...)."""
        fields = f"<Event>{_cdata(event)}</Event>"
        if key:
            fields += f"<EventKey>{_cdata(key)}</EventKey>"
        return self._message_xml("event", fields)

    # ------------------------------------------------------------ signing and encryption

    def encrypt(self, plaintext: str, random_prefix: bytes | None = None) -> str:
        """WeChat's `Encrypt` value for `plaintext` (`random_prefix`: 16 bytes, for vectors)."""
        key = self._require_key()
        data = plaintext.encode("utf-8")
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        message = prefix + struct.pack(">I", len(data)) + data + self.app_id.encode("utf-8")
        padding = _BLOCK - len(message) % _BLOCK
        message += bytes([padding]) * padding
        encryptor = _aes_cbc(key).encryptor()
        return base64.b64encode(encryptor.update(message) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The plaintext of an `Encrypt` value; ValueError if it is not for this app id."""
        decryptor = _aes_cbc(self._require_key()).decryptor()
        plain: bytes = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
        padding = plain[-1]
        if not 1 <= padding <= _BLOCK:
            raise ValueError("Bad padding.")
        content = plain[16:-padding]
        length = int(struct.unpack(">I", content[:4])[0])
        if content[4 + length :].decode("utf-8") != self.app_id:
            raise ValueError("The message is for another app id.")
        return content[4 : 4 + length].decode("utf-8")

    def _require_key(self) -> bytes:
        if self.key is None:
            raise ValueError("Plain mode: this user has no EncodingAESKey.")
        return self.key

    def signed_query(
        self, body_xml: str, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query parameters and body WeChat would POST for `body_xml`.

        Plain mode: `signature`, `timestamp`, `nonce`, `openid` and the XML itself. Safe mode
        adds `encrypt_type=aes` and `msg_signature`, and the body is the encrypted envelope.
        For WeChat's GET check, add `echostr` to the query.
        """
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or str(secrets.randbelow(10**9))
        query = {
            "signature": wechat_signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": self.openid,
        }
        if self.key is None:
            return query, body_xml.encode("utf-8")
        encrypted = self.encrypt(body_xml)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = wechat_signature(self.token, timestamp, nonce, encrypted)
        envelope = (
            f"<xml><ToUserName>{_cdata(self.account)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
        )
        return query, envelope.encode("utf-8")

    def read_reply(self, body: bytes, query: dict[str, str]) -> dict[str, str] | None:
        """The passive reply's fields ({"MsgType", "Content", ...}); None for `success` or empty.

        In safe mode the reply's `MsgSignature` is checked (ValueError if wrong) and its
        `Encrypt` decrypted. `query` is what `signed_query` returned for the request.
        """
        text = body.decode("utf-8").strip()
        if text in ("", "success"):
            return None
        fields = _fields(text)
        if self.key is None or "Encrypt" not in fields:
            if self.key is not None:
                raise ValueError("Safe mode: the reply is not encrypted.")
            return fields
        expected = wechat_signature(
            self.token, fields.get("TimeStamp", ""), fields.get("Nonce", ""), fields["Encrypt"]
        )
        if not hmac.compare_digest(expected, fields.get("MsgSignature", "")):
            raise ValueError("The reply's MsgSignature is wrong.")
        if fields.get("Nonce") != query.get("nonce"):
            raise ValueError("The reply's Nonce is not the request's.")
        return _fields(self.decrypt(fields["Encrypt"]))
