"""The `kefu` command: run the demo, train, manage the database, benchmark."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from bot.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kefu (客服): customer-service bot with human handoff."""


@main.command()
def train() -> None:
    """Train the Rasa model if config, domain or data changed."""
    from bot.training import ensure_model

    model, trained = ensure_model(get_settings())
    click.echo(f"{'Trained' if trained else 'Up to date'}: {model}")


@main.group()
def db() -> None:
    """The app database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the app database to the newest schema."""
    from bot.db import upgrade

    upgrade(get_settings().database_url)
    click.echo("Database is up to date.")


@db.command("seed")
def db_seed() -> None:
    """Load the demo shop's orders (KF202611200001 ... KF202611200020)."""
    from bot.db import make_engine, upgrade
    from bot.orders import seed_demo_orders

    settings = get_settings()
    upgrade(settings.database_url)
    count = seed_demo_orders(make_engine(settings.database_url))
    click.echo(f"Seeded {count} demo orders.")


@main.command()
def demo() -> None:
    """Migrate, seed, train if needed, then run Rasa, actions and the web chat until Ctrl-C."""
    from bot.db import make_engine, upgrade
    from bot.orders import seed_demo_orders
    from bot.services import ServiceError, ServiceGroup, kefu_services
    from bot.training import ensure_model

    settings = get_settings()
    upgrade(settings.database_url)
    seed_demo_orders(make_engine(settings.database_url))
    click.echo("Checking the model (training takes a few minutes the first time)...")
    model, trained = ensure_model(settings)
    click.echo(f"{'Trained' if trained else 'Using'} {model.name}")
    group = ServiceGroup(kefu_services(settings, model), settings)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo("Starting Rasa, the action server and the web chat...")
    try:
        group.start()
        click.echo(
            "\nKefu is running:\n"
            f"  Web chat        {settings.web_url}\n"
            f"  Rasa REST       {settings.rasa_url}/webhooks/rest/webhook\n"
            f"  Rasa HTTP API   {settings.rasa_url} (token: KEFU_RASA_TOKEN)\n"
            f"  Action server   http://{settings.host}:{settings.actions_port}/health\n"
            f"  Logs            {settings.var_dir / 'logs'}\n"
            "Press Ctrl-C to stop."
        )
        while True:
            group.check_running()
            time.sleep(1)
    except ServiceError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        group.stop()


@main.group()
def bench() -> None:
    """Benchmarks (print a table, write JSON under var/bench/)."""


@bench.command("chat")
@click.option("--messages", default=200, show_default=True, help="Sequential messages.")
@click.option("--conversations", default=20, show_default=True, help="Concurrent conversations.")
@click.option("--per-conversation", default=10, show_default=True, help="Messages each.")
@click.option("--url", default="", help="A running Rasa (default: start a fresh stack).")
def bench_chat(messages: int, conversations: int, per_conversation: int, url: str) -> None:
    """Reply latency over REST and throughput with concurrent conversations."""
    from bot.bench.chat import run_chat_benchmark

    report = run_chat_benchmark(get_settings(), messages, conversations, per_conversation, url)
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@main.command("eval")
@click.option("--folds", default=5, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def evaluate(folds: int, out: Path | None) -> None:
    """Cross-validate the NLU on the demo data and print the intent report."""
    from bot.evaluation import cross_validate

    summary = cross_validate(get_settings(), folds, out)
    click.echo(summary.table())
    if summary.macro_f1 < 0.90:
        raise click.ClickException(f"macro-F1 {summary.macro_f1:.3f} is below 0.90")


if __name__ == "__main__":
    main()
