"""The `kefu agents` commands: desk accounts (add, list, password, disable, enable)."""

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
    """Agent desk accounts: add one, list them, reset a password, disable or enable one."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@agents.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Name shown on the desk.")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add_command(username: str, display_name: str, role: str, password_stdin: bool) -> None:
    """Create a desk account (password: prompted, hidden, or from --password-stdin)."""
    password = _read_password(password_stdin)
    try:
        agent = _store().create(username, display_name, AgentRole(role), password)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Created {agent.role.value} {agent.username} ({agent.display_name}).")


@agents.command("list")
def list_command() -> None:
    """Every desk account: username, role, active or disabled, display name."""
    rows = _store().list()
    for agent in rows:
        state = "active" if agent.active else "disabled"
        click.echo(f"{agent.username:<20} {agent.role.value:<7} {state:<8} {agent.display_name}")
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
