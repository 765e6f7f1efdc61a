"""The `kefu train` command: train the Rasa model when its inputs changed."""

from __future__ import annotations

import click

from bot.core.settings import get_settings


@click.command("train")
def train() -> None:
    """Train the Rasa model if config, domain or data changed.

    Broken YAML and stories or rules naming unknown intents or actions are refused first,
    with their file and line (the model in service stays).
    """
    from bot.core.training import TrainingError, ensure_model
    from bot.editor.validation.runner import structure_findings

    settings = get_settings()
    errors = [f for f in structure_findings(settings) if f.severity == "error"]
    if errors:
        for finding in errors:
            click.echo(finding.format(), err=True)
        raise click.ClickException(
            f"{len(errors)} error(s) in the data: nothing was trained "
            "(`make validate` runs every check)"
        )
    try:
        model, trained = ensure_model(settings)
    except TrainingError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{'Trained' if trained else 'Up to date'}: {model}")
