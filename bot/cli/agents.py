"""The `kefu agents` commands: desk accounts and their team leads.

add, list, password, disable, enable, email, set-supervisor.
"""

from __future__ import annotations

import sys

import click

from bot.accounts import AccountError, AgentStore
from bot.core.db import AgentRole, make_engine
from bot.core.settings import get_settings

ROLES = [role.value for role in AgentRole]


def _store() -> AgentStore:
    return AgentStore(make_engine(get_settings().database_url))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def agents() -> None:
    """Agent desk accounts: add, list, reset a password, disable, enable, email, team lead."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@agents.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Name shown on the desk.")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--email", default="", help="Where SLA alerts and follow-up tasks are emailed.")
@click.option("--supervisor", default="", help="The account's team lead (a supervisor).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add_command(
    username: str, display_name: str, role: str, email: str, supervisor: str, password_stdin: bool
) -> None:
    """Create a desk account (password: prompted, hidden, or from --password-stdin).

    Roles: agent (serves customers), supervisor (every ticket, SLA alerts, follow-ups),
    editor (knowledge review), admin (everything).
    """
    password = _read_password(password_stdin)
    try:
        agent = _store().create(
            username, display_name, AgentRole(role), password, email, supervisor
        )
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    lead = f", supervised by {supervisor}" if supervisor else ""
    click.echo(f"Created {agent.role.value} {agent.username} ({agent.display_name}){lead}.")


@agents.command("list")
def list_command() -> None:
    """Every desk account: username, role, active or disabled, display name, email, lead."""
    rows = _store().list()
    names = {agent.id: agent.username for agent in rows}
    for agent in rows:
        state = "active" if agent.active else "disabled"
        extra = "".join(
            [
                f"  <{agent.email}>" if agent.email else "",
                f"  lead: {names.get(agent.supervisor_id, '?')}" if agent.supervisor_id else "",
            ]
        )
        click.echo(
            f"{agent.username:<20} {agent.role.value:<10} {state:<8} {agent.display_name}{extra}"
        )
    click.echo(f"{len(rows)} agents")


@agents.command("disable")
@click.argument("username")
def disable_command(username: str) -> None:
    """Disable a desk account: it can no longer sign in, and its sessions end."""
    try:
        _store().set_active(username, False)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Disabled {username}.")


@agents.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def password_command(username: str, password_stdin: bool) -> None:
    """Reset a desk account's password; every session of the account ends."""
    password = _read_password(password_stdin)
    try:
        _store().set_password(username, password)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Changed the password of {username}; its desk sessions have ended.")


@agents.command("enable")
@click.argument("username")
def enable_command(username: str) -> None:
    """Enable a disabled desk account again (it signs in afresh)."""
    try:
        _store().set_active(username, True)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Enabled {username}.")


@agents.command("email")
@click.argument("username")
@click.argument("email")
def email_command(username: str, email: str) -> None:
    """Set where an account's SLA alerts and follow-up tasks are emailed ("" clears it)."""
    try:
        _store().set_email(username, email)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Email of {username}: {email.strip().lower() or 'none'}.")


@agents.command("set-supervisor")
@click.argument("username")
@click.argument("supervisor")
def set_supervisor_command(username: str, supervisor: str) -> None:
    """Make SUPERVISOR (a supervisor or admin) USERNAME's team lead ("" clears it).

    The team lead supervises the tickets assigned to USERNAME from then on.
    """
    try:
        _store().set_supervisor(username, supervisor)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Supervisor of {username}: {supervisor or 'none'}.")
