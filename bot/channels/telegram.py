"""Telegram from the app side: the Bot API client and the forwarder of polled updates.

In production Telegram POSTs each update to Rasa's `/webhooks/telegram/webhook` with the
secret token. Without a public URL, `Forwarder` fetches updates with getUpdates and forwards
each one to the local Rasa webhook as Telegram would (`kefu telegram poll`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.core.settings import Settings

if TYPE_CHECKING:  # imported when used: `kefu` starts faster
    import httpx
    from telegram import Bot

WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
ALLOWED_UPDATES = ["message", "callback_query"]
"""The update kinds the channel handles; Telegram sends no others."""

RETRY_SECONDS = 3.0
"""Pause before forwarding again when Rasa did not take an update."""

SKIPPED_STATUSES = frozenset({400, 413})
"""Rasa will never take these updates: they are skipped instead of retried forever."""


def webhook_url(public_base_url: str) -> str:
    """The webhook Telegram must call for a server reachable at `public_base_url`."""
    return public_base_url.rstrip("/") + WEBHOOK_PATH


def make_bot(settings: Settings) -> Bot:
    """A Bot for the configured token and Bot API server."""
    from telegram import Bot

    base = settings.telegram_api_base_url.rstrip("/")
    return Bot(settings.telegram_token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


class Forwarder:
    """Fetches updates with getUpdates and POSTs each to the Rasa webhook, in order."""

    def __init__(self, target: str, secret_token: str, echo: Callable[[str], Any]) -> None:
        self.target = target
        self.secret_token = secret_token
        self.echo = echo
        self.failed = False
        """Whether Rasa did not take an update of the latest batch."""
        self.retry_seconds = RETRY_SECONDS

    async def run(self, bot: Bot, once: bool = False, timeout: int = 30) -> int:
        """Forwards updates until cancelled (one batch with `once`); returns how many."""
        import httpx

        forwarded = 0
        offset: int | None = None
        await bot.delete_webhook(drop_pending_updates=False)
        async with httpx.AsyncClient(timeout=60) as http:
            while True:
                updates = await bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES
                )
                self.failed = False
                for update in updates:
                    if not await self.forward(http, update.update_id, update.to_dict()):
                        self.failed = True
                        break
                    offset = update.update_id + 1
                    forwarded += 1
                if once:
                    if offset is not None:  # confirms the forwarded updates to Telegram
                        await bot.get_updates(offset=offset, timeout=0, limit=1)
                    return forwarded
                if self.failed:
                    await asyncio.sleep(self.retry_seconds)

    async def forward(self, http: httpx.AsyncClient, update_id: int, update: Any) -> bool:
        """POSTs one update; True when Rasa took it (or never will: then it is skipped)."""
        import httpx

        try:
            response = await http.post(
                self.target, json=update, headers={SECRET_HEADER: self.secret_token}
            )
        except httpx.HTTPError as error:
            self.echo(f"update {update_id}: Rasa is not reachable ({type(error).__name__})")
            return False
        if response.is_success:
            self.echo(f"update {update_id}: forwarded")
            return True
        if response.status_code in SKIPPED_STATUSES:
            self.echo(f"update {update_id}: refused with {response.status_code}, skipped")
            return True
        self.echo(f"update {update_id}: Rasa answered {response.status_code} {response.text}")
        return False
