"""The `kefu eval` commands: how well the bot does on this project's own data.

`kefu eval` (or `kefu eval nlu`) cross-validates the NLU, `kefu eval model` writes the
held-out report `kefu gate` judges, `kefu eval kb` scores retrieval on a query file, and
`readers` and `conversations` score the message readers and replayed customer conversations.
Speed and public datasets are `kefu bench`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.editor import evaluate_command
from bot.cli.kb import eval_command as kb_eval_command
from bot.core.settings import get_settings

MIN_MACRO_F1 = 0.90
"""`kefu eval nlu` fails below this cross-validated macro-F1."""

_FOLDS = click.option("--folds", default=5, show_default=True)
_OUT = click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of the reports  [default: var/eval/nlu]",
)


def _cross_validate(folds: int, out: Path | None) -> None:
    from bot.editor.cross_validation import cross_validate

    summary = cross_validate(get_settings(), folds, out)
    click.echo(summary.table())
    if summary.macro_f1 < MIN_MACRO_F1:
        raise click.ClickException(f"macro-F1 {summary.macro_f1:.3f} is below {MIN_MACRO_F1:.2f}")


@click.group("eval", invoke_without_command=True)
@_FOLDS
@_OUT
@click.pass_context
def evaluation(context: click.Context, folds: int, out: Path | None) -> None:
    """Quality on this project's own data: NLU, model, knowledge base, conversations.

    Without a command: the NLU cross-validation (`kefu eval nlu`). Speed and public
    datasets: `kefu bench`.
    """
    if context.invoked_subcommand is None:
        _cross_validate(folds, out)


@evaluation.command("nlu")
@_FOLDS
@_OUT
def evaluate_nlu(folds: int, out: Path | None) -> None:
    """Cross-validate the NLU on the demo data (intent report; fails below macro-F1 0.90)."""
    _cross_validate(folds, out)


evaluation.add_command(evaluate_command, "model")
evaluation.add_command(kb_eval_command, "kb")


@evaluation.command("readers")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2))
def evaluate_readers(folds: int) -> None:
    """Cross-validate the message readers on data/service/understanding.yml."""
    from bot.knowledge.index import knowledge_settings
    from bot.understanding import UnderstandingError, load_examples
    from bot.understanding.evaluation import cross_validate
    from knowledge_index import load_encoder

    try:
        examples = load_examples()
    except UnderstandingError as error:
        raise click.ClickException(str(error)) from None
    settings = knowledge_settings(get_settings())
    scores = cross_validate(load_encoder(settings.model), examples, folds)
    report = {block.block: block.to_dict() for block in scores}
    path = get_settings().var_dir / "bench" / "readers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for block in scores:
        labels = ", ".join(
            f"{label} P {100 * block.precision[label]:.0f}% R {100 * block.recall[label]:.0f}%"
            for label in block.precision
        )
        click.echo(
            f"{block.block:<10} {block.examples:>4} examples  accuracy "
            f"{100 * block.accuracy:.1f} %  ({labels})"
        )
    click.echo(f"Wrote {path}")


@evaluation.command("conversations")
@click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True)
@click.option("--url", default="", help="A running Rasa (default: start a fresh stack).")
@click.option(
    "--every",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Replay every N-th conversation only (a fixed, faster sample).",
)
@click.option(
    "--show",
    type=click.Choice(["none", "failed", "wrong"]),
    default="none",
    show_default=True,
    help="Also print the turns that were not acceptable.",
)
@click.option("--fail-on-wrong", is_flag=True, help="Exit 1 when any turn is wrong-confident.")
def evaluate_conversations(
    split: str, url: str, every: int, show: str, fail_on_wrong: bool
) -> None:
    """Replay the customer conversation set live and judge every turn (table by category)."""
    from bot.bench.conversations import run_conversation_eval
    from bot.conversation_eval.dataset import ConversationSetError
    from bot.conversation_eval.judge import Verdict
    from bot.conversation_eval.report import table

    try:
        summary, report = run_conversation_eval(
            get_settings(), "test" if split == "test" else "dev", url=url, every=every
        )
    except ConversationSetError as error:
        raise click.ClickException(str(error)) from None
    if show != "none":
        for turn in summary.turns:
            if turn.verdict is Verdict.acceptable:
                continue
            if show == "wrong" and turn.verdict is not Verdict.wrong_confident:
                continue
            click.echo(
                f"[{turn.verdict.value}] {turn.conversation}#{turn.number} {turn.say!r}"
                f" intent={turn.intent}:{turn.confidence:.2f}\n"
                f"    expected {list(turn.expected)}\n    observed {list(turn.observed)}\n"
                f"    why: {'; '.join(turn.reasons)}\n    bot: {' | '.join(turn.texts)[:300]!r}"
            )
    click.echo(table(summary))
    click.echo(f"Wrote {report.path}")
    if fail_on_wrong and summary.results["total"]["wrong_confident"]:
        raise click.ClickException(
            f"{summary.results['total']['wrong_confident']} wrong-confident turn(s)"
        )
