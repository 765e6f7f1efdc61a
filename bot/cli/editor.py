"""The editor's release commands: `kefu eval model`, `gate`, `deploy`, `rollback`, `deployments`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from bot.editor.evaluation import Evaluation


def _refuse_broken_data(settings: Settings) -> None:
    """Stops with each file:line when YAML is broken or stories name unknown intents/actions."""
    from bot.editor.validation.runner import structure_findings

    errors = [f for f in structure_findings(settings) if f.severity == "error"]
    for finding in errors:
        click.echo(finding.format(), err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} error(s) in the data (`make validate`)")


def _evaluate(settings: Settings, force: bool, kb_queries: Path | None = None) -> Evaluation:
    from bot.editor.evaluation import EvaluationError, evaluate

    _refuse_broken_data(settings)
    click.echo("Evaluating the NLU on the held-out examples (about a minute)...", err=True)
    try:
        return evaluate(settings, force=force, kb_queries=kb_queries)
    except EvaluationError as error:
        raise click.ClickException(str(error)) from error


@click.command("model")
@click.option("--force", is_flag=True, help="Evaluate again even if the data did not change.")
@click.option(
    "--kb-queries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSONL test queries of the knowledge base  [default: data/kb_test_queries.jsonl]",
)
def evaluate_command(force: bool, kb_queries: Path | None) -> None:
    """Held-out NLU and knowledge-base evaluation: the report `kefu gate` judges.

    Writes report.html, report.md, confusion.png and misclassified.jsonl under
    var/eval/editor/<data hash>/.
    """
    evaluation = _evaluate(get_settings(), force, kb_queries)
    click.echo(
        f"macro-F1 {evaluation.macro_f1:.3f}  accuracy {evaluation.accuracy:.3f}  "
        f"fallbacks {evaluation.fallback_rate:.1%}  "
        f"({evaluation.train_examples} trained, {evaluation.test_examples} held out)"
    )
    for result in sorted(evaluation.intents, key=lambda r: (r.f1, r.intent))[:5]:
        click.echo(f"  {result.intent:<24} F1 {result.f1:.3f} ({result.support} held out)")
    knowledge = evaluation.knowledge
    if knowledge and "error" not in knowledge:
        click.echo(
            f"knowledge base: hit@1 {knowledge.get('hit@1')}  answered precision "
            f"{knowledge.get('answered_precision')}  ({knowledge['n_queries']} test queries)"
        )
    elif knowledge:
        click.echo(f"knowledge base: {knowledge['error']}")
    click.echo(f"{len(evaluation.misses)} misclassified; report: {evaluation.folder}/report.html")


def _gate(settings: Settings, force: bool) -> tuple[Evaluation, bool]:
    """Evaluates (cached) and judges against the deployed model; prints the verdict."""
    from bot.editor.deployment import DeploymentError, deployed_evaluation
    from bot.editor.gate import judge_with_settings, save_verdict

    evaluation = _evaluate(settings, force)
    try:
        baseline = deployed_evaluation(settings)
    except DeploymentError as error:
        raise click.ClickException(str(error)) from error
    verdict = judge_with_settings(settings, evaluation, baseline)
    save_verdict(verdict, Path(evaluation.folder))
    click.echo(verdict.text())
    return evaluation, verdict.passed


@click.command("gate")
@click.option("--force", is_flag=True, help="Evaluate again even if the data did not change.")
def gate_command(force: bool) -> None:
    """Refuse the current data's model if its NLU got worse than the deployed model's.

    Exit 1 when refused: macro-F1 dropped more than KEFU_GATE_MAX_MACRO_F1_DROP, or an
    intent fell below KEFU_GATE_INTENT_F1_FLOOR (KEFU_GATE_INTENT_FLOORS per intent).
    """
    _, passed = _gate(get_settings(), force)
    if not passed:
        raise SystemExit(1)


@click.command("deploy")
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Deploy this model file instead of the current data's (not gated).",
)
def deploy_command(model: Path | None) -> None:
    """Gate the current data's model, then swap it and the knowledge index into the running bot.

    The running Rasa loads the model while the old one keeps answering; the knowledge index
    is swapped atomically. Needs `make train` first and a running bot (`make demo`).
    """
    from bot.core.training import model_path
    from bot.editor.deployment import DeploymentError, deploy, rasa_status, stage_index
    from knowledge_index import KnowledgeIndexError

    settings = get_settings()
    try:
        rasa_status(settings)  # before a minute of evaluation: is the bot running at all?
    except DeploymentError as error:
        raise click.ClickException(f"{error} (nothing was deployed)") from error
    evaluation: Evaluation | None = None
    if model is None:
        model = model_path(settings)
        if not model.is_file():
            raise click.ClickException(f"{model.name} is not trained yet: run `make train` first")
        evaluation, passed = _gate(settings, force=False)
        if not passed:
            raise click.ClickException("the gate refused this model; nothing was deployed")
    else:
        click.echo(f"Deploying {model} as given (not gated).")
    try:
        version = stage_index(settings)
        deployment = deploy(settings, model, version, evaluation)
    except (DeploymentError, KnowledgeIndexError) as error:
        raise click.ClickException(f"{error} (nothing was deployed)") from error
    click.echo(f"Deployed {Path(deployment.model).name} with knowledge index {version}.")


@click.command("rollback")
def rollback_command() -> None:
    """Put the previous model and knowledge index back into the running bot."""
    from bot.editor.deployment import DeploymentError, rollback

    try:
        deployment = rollback(get_settings())
    except DeploymentError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Rolled back to {Path(deployment.model).name} with knowledge index "
        f"{deployment.index_version or '(unchanged)'}."
    )


@click.command("deployments")
def deployments_command() -> None:
    """The deployments, newest first: model, knowledge index, status."""
    from bot.editor.deployment import DeploymentError, DeploymentLog

    try:
        history = DeploymentLog.of(get_settings()).read()
    except DeploymentError as error:
        raise click.ClickException(str(error)) from error
    if not history:
        click.echo("Nothing deployed yet (`make deploy`).")
    for item in reversed(history):
        click.echo(
            f"{item.deployed_at}  {item.status:<11} {Path(item.model).name}  "
            f"index {item.index_version or '-'}"
        )


EDITOR_COMMANDS = (
    gate_command,
    deploy_command,
    rollback_command,
    deployments_command,
)
"""Registered on the `kefu` group by `bot.cli.main` (`evaluate_command` is `kefu eval model`)."""
