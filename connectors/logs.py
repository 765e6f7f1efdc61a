"""Masking for channel logs: user ids become short stable tags, texts lose personal data.

Log lines are key=value pairs with the user masked, e.g.
`logger.info("wechat_reply user=%s mode=%s", mask_user_id(openid), "passive")`. Prefer not
logging customer text at all; when you must, pass it through `mask_personal_data`. Error
texts of HTTP clients can hold URLs with tokens (Telegram's `bot<id>:<secret>`): pass them
through `mask_secrets`. (In the Rasa process every log handler also masks both, and httpx and
httpcore log at WARNING only: `rasa_addons.api_guard` and `rasa_addons.launch`.)
"""

from __future__ import annotations

import hashlib

from kefu_shared.masking import mask_personal_data, mask_secrets

__all__ = ["mask_personal_data", "mask_secrets", "mask_user_id"]


def mask_user_id(value: object) -> str:
    """A WeChat openid or Telegram chat id as its first 3 characters, "…" and 6 hex of sha256.

    The tag is stable (the same user always gets the same tag), so log lines of one
    conversation can be followed without exposing the id.
    """
    text = str(value)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return f"{text[:3]}…{digest}"
