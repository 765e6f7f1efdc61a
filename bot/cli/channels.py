"""The `kefu channels` commands: which channels are on, and what could not be delivered."""

from __future__ import annotations

import datetime as dt

import click

from bot.channels.status import channel_status
from bot.core.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def channels() -> None:
    """WeChat and Telegram channels."""


@channels.command("status")
def status_command() -> None:
    """Which channels are enabled and the webhook URL each platform must call."""
    settings = get_settings()
    for name, enabled, detail in channel_status(settings):
        state = "on " if enabled else "off"
        click.echo(f"{name:<9} {state}  {detail}")
        if enabled:
            click.echo(f"          webhook: https://<public host>/webhooks/{name}/webhook")


@channels.command("undelivered")
@click.option("--limit", default=50, show_default=True, help="How many records to show.")
def undelivered_command(limit: int) -> None:
    """Messages a channel could not deliver (e.g. WeChat's 48-hour window had closed)."""
    from connectors.channel_state import open_channel_state

    records = open_channel_state(get_settings().channel_state_url).undelivered(limit)
    if not records:
        click.echo("Every message was delivered.")
    for record in records:
        when = dt.datetime.fromtimestamp(float(record.get("recorded_at", 0)))
        reason = record.get("reason") or record.get("errmsg") or record.get("error") or ""
        click.echo(
            f"{when:%Y-%m-%d %H:%M:%S}  {record.get('channel', '?'):<8} "
            f"{record.get('recipient', '?')}  {reason}\n    {record.get('text', '')}"
        )
