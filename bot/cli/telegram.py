"""The `kefu telegram` commands: register the bot's webhook, or poll Telegram locally.

In production Telegram POSTs each update to Rasa's `/webhooks/telegram/webhook` with the
secret token (`kefu telegram webhook set https://your.host`). Without a public URL,
`kefu telegram poll` forwards the polled updates to the local Rasa webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from bot.channels.telegram import ALLOWED_UPDATES, WEBHOOK_PATH, Forwarder, make_bot, webhook_url
from bot.core.settings import Settings, get_settings

if TYPE_CHECKING:  # imported when a command runs: `kefu` starts faster
    from telegram import Bot

T = TypeVar("T")


def _require(settings: Settings, secret: bool = True) -> None:
    """Exits with code 2 when the token (or the secret token) is not configured."""
    missing = [] if settings.telegram_token else ["TELEGRAM_TOKEN"]
    if secret and not settings.telegram_secret_token:
        missing.append("TELEGRAM_SECRET_TOKEN")
    if missing:
        click.echo(
            f"Set {' and '.join(missing)} first (environment or .env): the Telegram channel "
            "needs the bot's token, and every webhook request carries the secret token.",
            err=True,
        )
        raise SystemExit(2)


def _run(work: Callable[[Bot], Coroutine[Any, Any, T]]) -> T:
    """Runs `work` with an initialised bot; Telegram's refusals become a clear error."""
    from telegram.error import TelegramError

    async def with_bot() -> T:
        async with make_bot(get_settings()) as bot:
            return await work(bot)

    try:
        return asyncio.run(with_bot())
    except TelegramError as error:
        raise click.ClickException(f"Telegram refused: {error}") from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def telegram() -> None:
    """The Telegram bot: its webhook, or polling for local development."""


@telegram.group()
def webhook() -> None:
    """Where Telegram delivers the bot's updates."""


@webhook.command("set")
@click.argument("public_base_url")
@click.option("--allow-http", is_flag=True, help="Accept an http:// URL (local testing only).")
def webhook_set(public_base_url: str, allow_http: bool) -> None:
    """Register PUBLIC_BASE_URL/webhooks/telegram/webhook with the secret token."""
    settings = get_settings()
    _require(settings)
    url = webhook_url(public_base_url)
    parts = urlsplit(url)
    if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not parts.netloc:
        click.echo(
            f"{public_base_url!r} is not an https:// URL: Telegram only delivers to https "
            "(--allow-http accepts http:// for local testing).",
            err=True,
        )
        raise SystemExit(2)
    secret = settings.telegram_secret_token
    _run(
        lambda bot: bot.set_webhook(
            url=url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
    )
    click.echo(f"Webhook set: {url}")


@webhook.command("delete")
def webhook_delete() -> None:
    """Stop webhook delivery (pending updates are kept, e.g. for `kefu telegram poll`)."""
    _require(get_settings(), secret=False)
    _run(lambda bot: bot.delete_webhook(drop_pending_updates=False))
    click.echo("Webhook deleted.")


@webhook.command("info")
def webhook_info() -> None:
    """The registered webhook, its pending updates and Telegram's last delivery error."""
    _require(get_settings(), secret=False)
    info = _run(lambda bot: bot.get_webhook_info())
    click.echo(f"url:             {info.url or '(none)'}")
    click.echo(f"pending updates: {info.pending_update_count}")
    if info.last_error_date is not None:
        when = f"{info.last_error_date:%Y-%m-%d %H:%M:%S %Z}".strip()
        click.echo(f"last error:      {when}  {info.last_error_message}")
    else:
        click.echo("last error:      none")
    if info.allowed_updates:
        click.echo(f"allowed updates: {', '.join(info.allowed_updates)}")


@telegram.command("poll")
@click.option("--once", is_flag=True, help="Forward one batch of updates, then stop.")
@click.option("--rasa-url", default="", help="Rasa server (default http://HOST:RASA_PORT).")
@click.option("--timeout", default=30, show_default=True, help="Long-poll seconds per request.")
def poll(once: bool, rasa_url: str, timeout: int) -> None:
    """Local development without a public URL: forward Telegram's updates to Rasa.

    Deletes the webhook, long-polls getUpdates and POSTs each update to the local Rasa
    webhook with the secret header; an update is confirmed only once Rasa answered 2xx.
    """
    settings = get_settings()
    _require(settings)
    target = (rasa_url or settings.rasa_url).rstrip("/") + WEBHOOK_PATH
    click.echo(f"Polling Telegram; forwarding updates to {target}. Ctrl-C stops.")
    forwarder = Forwarder(target, settings.telegram_secret_token, click.echo)
    try:
        count = _run(lambda bot: forwarder.run(bot, once=once, timeout=timeout))
    except KeyboardInterrupt:
        click.echo("Stopped.")
        return
    if forwarder.failed:
        raise click.ClickException("Rasa did not take every update: they stay queued.")
    click.echo(f"Forwarded {count} update(s).")
