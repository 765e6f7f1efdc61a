"""Which messaging channels are on, from the settings alone."""

from __future__ import annotations

from bot.core.settings import Settings


def channel_status(settings: Settings) -> list[tuple[str, bool, str]]:
    """(channel, enabled, detail) for WeChat and Telegram, from the settings alone."""
    wechat_mode = "safe mode (AES)" if settings.wechat_encoding_aes_key else "plain mode"
    return [
        (
            "wechat",
            bool(settings.wechat_token),
            f"{wechat_mode}, API {settings.wechat_api_base_url}"
            if settings.wechat_token
            else "set WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET to enable",
        ),
        (
            "telegram",
            bool(settings.telegram_token),
            f"API {settings.telegram_api_base_url}"
            if settings.telegram_token
            else "set TELEGRAM_TOKEN and TELEGRAM_SECRET_TOKEN to enable",
        ),
    ]
