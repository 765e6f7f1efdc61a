"""The `kefu demo` command: everything the demo needs, running until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from bot.channels.status import channel_status
from bot.core.settings import Settings, get_settings


@click.command("demo")
def demo() -> None:
    """Migrate, seed, train if needed, then run bot, desk and scheduler until Ctrl-C.

    With KEFU_RASA_INSTANCES above 1 it runs the scale-out stack instead: PostgreSQL, Redis,
    RabbitMQ and HAProxy started locally (installed from apt when missing, as root), that
    many Rasa instances behind HAProxy (docs/scale-out.md).
    """
    from bot.core.training import ensure_model
    from bot.knowledge.index import ensure_index

    settings = get_settings()
    folder, built = ensure_index(settings)
    click.echo(f"Knowledge base: {'built' if built else 'using'} {folder.name}")
    click.echo("Checking the model (training takes a few minutes the first time)...")
    model, trained = ensure_model(settings)
    click.echo(f"{'Trained' if trained else 'Using'} {model.name}")
    # Ctrl-C and SIGTERM both stop every child, even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if settings.rasa_instances > 1:
        _run_scaleout(settings, model)
    else:
        _run_single(settings, model)


def _seed(settings: Settings) -> list[str]:
    """Migrates and seeds the app database; returns the desk, editor and supervisor logins."""
    from bot.accounts import seed_demo_agent, seed_demo_editor, seed_demo_supervisor
    from bot.core.db import make_engine, upgrade
    from bot.service.orders import seed_demo_orders

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        seed_demo_orders(engine)
        logins = ["", "", ""]
        if settings.demo_agent_password:
            password = settings.demo_agent_password
            logins = [
                f"  (login {seed(engine, settings)} / {password})"
                for seed in (seed_demo_agent, seed_demo_editor, seed_demo_supervisor)
            ]
        # Yesterday and today so far, for the dashboard (KEFU_DEMO_DAY=0: off).
        if settings.demo_day:
            from bot.cli.demo_day import load_demo_days

            for line in load_demo_days(settings, engine):
                click.echo(line)
        return logins
    finally:
        engine.dispose()


def _run_single(settings: Settings, model: Path) -> None:
    """One Rasa process and its SQLite stores."""
    from bot.core.processes import ServiceError, ServiceGroup, kefu_services

    logins = _seed(settings)
    group = ServiceGroup(kefu_services(settings, model), settings)
    click.echo("Starting Rasa, the action server, the web chat, the follow-up scheduler and QA...")
    try:
        group.start()
        _print_running(settings, logins)
        while True:
            group.check_running()
            time.sleep(1)
    except ServiceError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        group.stop()


def _run_scaleout(settings: Settings, model: Path) -> None:
    """The scale-out stack until Ctrl-C; everything stopped on the way out."""
    from bot.core.local_servers import LocalServerError
    from bot.core.processes import ServiceError
    from bot.core.scaleout import ScaleOutStack

    logins: list[str] = []

    def prepare(stack_settings: Settings) -> None:
        logins.extend(_seed(stack_settings))

    stack = ScaleOutStack(settings, model, prepare=prepare)
    click.echo(
        f"Starting PostgreSQL, Redis, RabbitMQ, {settings.rasa_instances} Rasa instances "
        "behind HAProxy, the action workers, the web chat, the scheduler and QA..."
    )
    started = time.monotonic()
    try:
        stack.start()
        _print_running(stack.settings, logins)
        layout = stack.layout
        click.echo(
            f"  Scale-out       ready in {time.monotonic() - started:.0f}s; HAProxy on "
            f"{stack.settings.rasa_url} -> "
            + ", ".join(f"{u.name}:{u.port}" for u in layout.rasa)
            + f"; actions -> {len(layout.actions)} workers\n"
            f"  Engines         "
            + ", ".join(f"{e.name} :{e.port}" for e in stack.engines.all)
            + f"\n  Stack file      {stack.stack_file}"
        )
        click.echo("Press Ctrl-C to stop.")
        while True:
            stack.check_running()
            time.sleep(1)
    except (ServiceError, LocalServerError) as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        stopping = time.monotonic()
        stack.stop()
        click.echo(f"Stopped in {time.monotonic() - stopping:.1f}s.")


def _print_running(settings: Settings, logins: list[str]) -> None:
    """The URLs of the running demo."""
    desk_login, editor_login, supervisor_login = logins or ["", "", ""]
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
