"""The `kefu demo` command: everything the demo needs, running until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time

import click

from bot.channels.status import channel_status
from bot.core.settings import get_settings


@click.command("demo")
def demo() -> None:
    """Migrate, seed, train if needed, then run bot, desk and scheduler until Ctrl-C."""
    from bot.accounts import seed_demo_agent, seed_demo_editor, seed_demo_supervisor
    from bot.core.db import make_engine, upgrade
    from bot.core.processes import ServiceError, ServiceGroup, kefu_services
    from bot.core.training import ensure_model
    from bot.knowledge.index import ensure_index
    from bot.service.orders import seed_demo_orders

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    seed_demo_orders(engine)
    desk_login = editor_login = supervisor_login = ""
    if settings.demo_agent_password:
        supervisor_login = (
            f"  (login {seed_demo_supervisor(engine, settings)} / {settings.demo_agent_password})"
        )
        desk_login = (
            f"  (login {seed_demo_agent(engine, settings)} / {settings.demo_agent_password})"
        )
        editor_login = (
            f"  (login {seed_demo_editor(engine, settings)} / {settings.demo_agent_password})"
        )
    if settings.demo_day:  # yesterday and today so far, for the dashboard (KEFU_DEMO_DAY=0: off)
        from bot.cli.demo_day import load_demo_days

        for line in load_demo_days(settings, engine):
            click.echo(line)
    folder, built = ensure_index(settings)
    click.echo(f"Knowledge base: {'built' if built else 'using'} {folder.name}")
    click.echo("Checking the model (training takes a few minutes the first time)...")
    model, trained = ensure_model(settings)
    click.echo(f"{'Trained' if trained else 'Using'} {model.name}")
    group = ServiceGroup(kefu_services(settings, model), settings)
    # Ctrl-C and SIGTERM both stop every child, even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo("Starting Rasa, the action server, the web chat, the follow-up scheduler and QA...")
    try:
        group.start()
        click.echo(
            "\nKefu is running:\n"
            f"  Web chat        {settings.web_url}\n"
            f"  Agent desk      http://{settings.host}:{settings.web_port}/desk{desk_login}\n"
            f"  Tickets         http://{settings.host}:{settings.web_port}/desk/tickets"
            f"{supervisor_login}\n"
            f"  Review queue    http://{settings.host}:{settings.web_port}/desk/review"
            f"{editor_login}\n"
            f"  Dashboard       http://{settings.host}:{settings.web_port}/desk/dashboard"
            f"{supervisor_login}\n"
            f"  Rasa REST       {settings.rasa_url}/webhooks/rest/webhook\n"
            f"  Rasa HTTP API   {settings.rasa_url} (token: KEFU_RASA_TOKEN)\n"
            f"  Action server   http://{settings.host}:{settings.actions_port}/health\n"
            "  Follow-ups      scheduler running (progress notices, results, satisfaction,\n"
            "                  SLA alerts); see them with: kefu followups list\n"
            "  Quality (QA)    every ended conversation scored, red cards alerted, the daily\n"
            "                  report each morning; see: kefu qa findings, kefu report daily\n"
            f"  Logs            {settings.var_dir / 'logs'}"
        )
        for name, enabled, detail in channel_status(settings):
            webhook = f"{settings.rasa_url}/webhooks/{name}/webhook" if enabled else detail
            click.echo(f"  {name.capitalize():<15} {'on: ' if enabled else 'off: '}{webhook}")
        click.echo("Press Ctrl-C to stop.")
        while True:
            group.check_running()
            time.sleep(1)
    except ServiceError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        group.stop()
