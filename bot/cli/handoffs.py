"""The `kefu handoffs` and `kefu customers` commands: the queue, the packet schema, VIPs."""

from __future__ import annotations

import json

import click

from bot.core.db import make_engine
from bot.core.settings import get_settings
from bot.handoff.packet import SCHEMA_PATH, packet_schema, write_schema
from bot.handoff.store import HandoffStore


def _store() -> HandoffStore:
    return HandoffStore(make_engine(get_settings().database_url))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def handoffs() -> None:
    """Conversations handed to the agent desk."""


@handoffs.command("list")
def list_command() -> None:
    """The open handoffs, the earliest SLA due time first."""
    store = _store()
    rows = store.queue()
    if not rows:
        click.echo("No open handoffs.")
    for handoff in rows:
        agent = handoff.agent.username if handoff.agent else "-"
        click.echo(
            f"{handoff.id:>5}  {handoff.status.value:<8} {handoff.ticket.number}  "
            f"due {handoff.due_at:%Y-%m-%d %H:%M}Z  {handoff.reason:<20} {agent:<16} "
            f"{handoff.conversation_id}"
        )


@handoffs.command("show")
@click.argument("handoff_id", type=int)
def show_command(handoff_id: int) -> None:
    """One handoff's packet as JSON."""
    handoff = _store().get(handoff_id)
    if handoff is None:
        raise click.ClickException(f"No handoff {handoff_id}.")
    click.echo(json.dumps(handoff.packet, ensure_ascii=False, indent=2))


@handoffs.command("schema")
@click.option("--check", is_flag=True, help="Fail if the committed schema file is out of date.")
def schema_command(check: bool) -> None:
    """Write (or check) bot/handoff/packet.schema.json from the packet model."""
    if check:
        current = json.loads(SCHEMA_PATH.read_text()) if SCHEMA_PATH.exists() else None
        if current != packet_schema():
            raise click.ClickException(f"{SCHEMA_PATH} is out of date: run `kefu handoffs schema`.")
        click.echo(f"{SCHEMA_PATH.name}: up to date")
        return
    click.echo(f"Wrote {write_schema()}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def customers() -> None:
    """Customers: mark VIPs (they go straight to an agent when handoff.yml says so)."""


@customers.command("vip")
@click.argument("customer_id")
@click.option("--off", is_flag=True, help="Remove the VIP mark.")
@click.option("--channel", default="unknown", show_default=True, help="Channel of a new customer.")
@click.option("--advisor", default="", help="Username of the VIP's dedicated advisor.")
def vip_command(customer_id: str, off: bool, channel: str, advisor: str) -> None:
    """Mark CUSTOMER_ID (their conversation id) as VIP, or unmark it with --off.

    A VIP hears from their advisor every month (the policy's `vip_checkin_every_days`).
    """
    store = _store()
    agent = store.agent(advisor) if advisor else None
    if advisor and (agent is None or not agent.active or agent.role.value == "editor"):
        raise click.ClickException(f"No active agent {advisor!r} to be the advisor.")
    customer = store.set_vip(customer_id, not off, channel, agent)
    text = "VIP" if customer.vip else "not VIP"
    if customer.vip and agent is not None:
        text += f", advisor {agent.username}"
    click.echo(f"{customer.id}: {text}")
