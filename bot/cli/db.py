"""The `kefu db` commands: migrate the app database, load the demo shop."""

from __future__ import annotations

import click

from bot.core.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def db() -> None:
    """The app database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the app database to the newest schema."""
    from bot.core.db import upgrade

    upgrade(get_settings().database_url)
    click.echo("Database is up to date.")


@db.command("seed")
def db_seed() -> None:
    """Load the demo shop's orders (KF202611200001 ... KF202611200020) and the demo agent."""
    from bot.accounts import seed_demo_agent, seed_demo_editor
    from bot.core.db import make_engine, upgrade
    from bot.service.orders import seed_demo_orders

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    count = seed_demo_orders(engine)
    click.echo(f"Seeded {count} demo orders.")
    if settings.demo_agent_password:
        for seed in (seed_demo_agent, seed_demo_editor):
            username = seed(engine, settings)
            click.echo(f"Seeded desk login {username} / {settings.demo_agent_password}.")
