"""The `kefu` command: every command group, assembled (each lives in its own module)."""

from __future__ import annotations

import click

from bot.cli.agents import agents
from bot.cli.aliases import renamed
from bot.cli.bench import bench, bench_nlu_split
from bot.cli.channels import channels
from bot.cli.db import db
from bot.cli.demo import demo
from bot.cli.demo_day import demo_day
from bot.cli.editor import EDITOR_COMMANDS, evaluate_command
from bot.cli.evaluation import evaluation
from bot.cli.followups import followups
from bot.cli.handoffs import customers, handoffs
from bot.cli.kb import eval_command as kb_eval_command
from bot.cli.kb import kb
from bot.cli.qa import qa
from bot.cli.report import report
from bot.cli.review import review
from bot.cli.service import service
from bot.cli.sheet import sheet
from bot.cli.telegram import telegram
from bot.cli.tickets import tickets
from bot.cli.train import train
from bot.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kefu (客服): customer-service bot with human handoff."""


for command in (
    demo,
    demo_day,
    train,
    db,
    kb,
    tickets,
    followups,
    qa,
    report,
    agents,
    handoffs,
    customers,
    channels,
    telegram,
    service,
    validate,
    sheet,
    review,
    evaluation,
    *EDITOR_COMMANDS,
    bench,
):
    main.add_command(command)

# Old names, hidden from --help, kept for one release.
main.add_command(renamed(evaluate_command, "evaluate", "kefu eval model"))
kb.add_command(renamed(kb_eval_command, "eval", "kefu eval kb"))
old_nlu = click.Group(
    "nlu",
    hidden=True,
    help="Old group of `kefu nlu bench` (now `kefu bench nlu-split`), kept for one release.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
old_nlu.add_command(renamed(bench_nlu_split, "bench", "kefu bench nlu-split", hidden=False))
main.add_command(old_nlu)


if __name__ == "__main__":
    main()
