"""Web chat customer sessions and shop identities: one implementation for both runtimes.

The web service issues a session token (`POST /chat/session`); Rasa's socket.io channel
verifies it and uses the token's sender, never an id the browser names. Standard library only.

Token format: `v1.<sender>.<expiry unix seconds>.<hex HMAC-SHA256(secret, "v1.<sender>.<expiry>")>`.
Senders are namespaced by the channel that verified them (`web:<hex>`, `shop:<user id>`) and
never contain '.', so the token splits unambiguously.

A shop's logged-in user is proven by `user_hash = hex HMAC-SHA256(shop secret, user_id)`,
computed by the shop's server (like Chatwoot's identity validation).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _secrets

VERSION = "v1"
MAX_TOKEN_CHARS = 256
"""Longer strings are refused before any parsing or hashing."""
MAX_SHOP_USER_ID_CHARS = 64
_SENDER = re.compile(r"^(web:[0-9a-f]{32}|shop:[A-Za-z0-9_@-]{1,64})$")
_SHOP_USER_ID = re.compile(rf"^[A-Za-z0-9_@-]{{1,{MAX_SHOP_USER_ID_CHARS}}}$")
_EXPIRY = re.compile(r"^[0-9]{1,12}$")
_MAC = re.compile(r"^[0-9a-f]{64}$")
_HASH = re.compile(r"^[0-9a-fA-F]{64}$")


def is_session_sender(sender: object) -> bool:
    """True for a sender a session token may carry: `web:<32 hex>` or `shop:<user id>`."""
    return isinstance(sender, str) and bool(_SENDER.match(sender))


def new_web_sender() -> str:
    """A fresh anonymous web chat sender, `web:<uuid4-sized random hex>`."""
    return f"web:{_secrets.token_hex(16)}"


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def issue(sender: str, secret: str, lifetime: float, now: float) -> str:
    """A token for `sender` valid for `lifetime` seconds from `now` (unix seconds)."""
    if not is_session_sender(sender):
        raise ValueError(f"Not a session sender: {sender!r}")
    if not secret:
        raise ValueError("The customer session secret is empty.")
    if lifetime <= 0:
        raise ValueError("The session lifetime must be positive.")
    payload = f"{VERSION}.{sender}.{int(now + lifetime)}"
    return f"{payload}.{_mac(secret, payload)}"


def expiry(token: str) -> int:
    """The expiry (unix seconds) of a token `verify` accepted."""
    return int(token.split(".")[2])


def verify(token: object, secret: str, now: float) -> str | None:
    """The token's sender when it is well formed, signed with `secret` and not expired."""
    if not secret or not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 4:
        return None
    version, sender, expires, mac = parts
    if version != VERSION or not is_session_sender(sender) or not _EXPIRY.match(expires):
        return None
    if not _MAC.match(mac):
        return None
    expected = _mac(secret, f"{version}.{sender}.{expires}")
    if not hmac.compare_digest(expected, mac):
        return None
    if int(expires) <= now:
        return None
    return sender


def is_shop_user_id(user_id: object) -> bool:
    """True for a shop user id Kefu accepts: 1-64 letters, digits or `_@-`."""
    return isinstance(user_id, str) and bool(_SHOP_USER_ID.match(user_id))


def shop_user_hash(user_id: str, secret: str) -> str:
    """What the shop's server computes for its logged-in user: hex HMAC-SHA256(secret, id)."""
    return _mac(secret, user_id)


def shop_sender(user_id: object, user_hash: object, secret: str) -> str | None:
    """`shop:<user_id>` when `user_hash` proves the shop signed `user_id`, else None.

    None as well when shop identities are off (empty secret) or either value is malformed.
    """
    if not secret or not is_shop_user_id(user_id) or not isinstance(user_hash, str):
        return None
    if not _HASH.match(user_hash):
        return None
    assert isinstance(user_id, str)  # narrowed by is_shop_user_id
    if not hmac.compare_digest(shop_user_hash(user_id, secret), user_hash.lower()):
        return None
    return f"shop:{user_id}"
