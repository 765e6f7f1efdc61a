"""Web chat session tokens and shop identities (kefu_shared.customer_session)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from kefu_shared.customer_session import (
    MAX_TOKEN_CHARS,
    expiry,
    is_session_sender,
    issue,
    new_web_sender,
    shop_sender,
    verify,
)

SECRET = "s" * 32
NOW = 1_800_000_000.0


def test_a_token_verifies_to_its_sender_until_it_expires() -> None:
    sender = new_web_sender()
    token = issue(sender, SECRET, 3600, NOW)
    assert token.startswith(f"v1.{sender}.") and expiry(token) == int(NOW + 3600)
    assert verify(token, SECRET, NOW) == sender
    assert verify(token, SECRET, NOW + 3599) == sender
    assert verify(token, SECRET, NOW + 3600) is None  # expired
    shop = issue("shop:u-42", SECRET, 60, NOW)
    assert verify(shop, SECRET, NOW) == "shop:u-42"


def test_forged_and_malformed_tokens_are_refused() -> None:
    sender = new_web_sender()
    token = issue(sender, SECRET, 3600, NOW)
    version, who, expires, mac = token.split(".")
    other = new_web_sender()
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    for bad in [
        None,
        42,
        "",
        sender,
        token + ".x",
        f"{version}.{other}.{expires}.{mac}",  # another sender with this signature
        f"{version}.{who}.{int(expires) + 10**6}.{mac}",  # a later expiry
        f"{version}.{who}.{expires}.{flipped}",
        f"v2.{who}.{expires}.{mac}",
        f"{version}.{who}.-1.{mac}",
        f"{version}.{who}.{expires}.{mac.upper()}",
        f"{version}.web:../etc.{expires}.{mac}",
        "v1." + "a" * MAX_TOKEN_CHARS,
    ]:
        assert verify(bad, SECRET, NOW) is None, bad
    assert verify(token, "another secret of some length", NOW) is None
    assert verify(token, "", NOW) is None


def test_issue_refuses_senders_a_token_must_not_carry() -> None:
    for bad in ["abc", "web:xyz", "shop:a.b", "wechat:o123", "web:" + "0" * 31, ""]:
        assert not is_session_sender(bad)
        with pytest.raises(ValueError):
            issue(bad, SECRET, 60, NOW)
    with pytest.raises(ValueError):
        issue(new_web_sender(), "", 60, NOW)
    assert new_web_sender() != new_web_sender()


def test_shop_identity_needs_the_shops_hmac() -> None:
    user_hash = hmac.new(SECRET.encode(), b"user-7", hashlib.sha256).hexdigest()
    assert shop_sender("user-7", user_hash, SECRET) == "shop:user-7"
    assert shop_sender("user-7", user_hash.upper(), SECRET) == "shop:user-7"
    assert shop_sender("user-8", user_hash, SECRET) is None
    assert shop_sender("user-7", "0" * 64, SECRET) is None
    assert shop_sender("user-7", user_hash, "") is None  # shop identities off
    assert shop_sender("user-7", user_hash[:-1], SECRET) is None
    assert shop_sender("a.b", user_hash, SECRET) is None
    assert shop_sender("x" * 65, user_hash, SECRET) is None
    assert shop_sender(7, user_hash, SECRET) is None
    assert shop_sender("user-7", None, SECRET) is None
