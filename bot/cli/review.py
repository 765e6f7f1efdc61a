"""The `kefu review` commands: the knowledge editors' review queue from the terminal.

`collect` copies new misses and agents' replies into the queue; `list` shows the pending
groups, the most frequent first; `approve`, `merge`, `examples` and `reject` decide a group
like the desk's review page does (`/desk/review`).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import TypeVar

import click

from bot.core.db import make_engine
from bot.core.settings import get_settings
from bot.editor.data_writer import DataWriteError
from bot.editor.review import SIMILARITY, Decision, ReviewError, ReviewGroup, ReviewQueue

T = TypeVar("T")


def _queue(ctx: click.Context) -> ReviewQueue:
    """The queue in `ctx.obj` (tests pass one), else one over the environment's settings."""
    root = ctx.find_root()
    if not isinstance(root.obj, ReviewQueue):
        settings = get_settings()
        root.obj = ReviewQueue(make_engine(settings.database_url), settings)
    return root.obj


def _attempt(call: Callable[[], T]) -> T:
    try:
        return call()
    except (ReviewError, DataWriteError) as error:
        raise click.ClickException(str(error)) from error


def _who(by: str | None) -> str:
    return (by or f"cli:{getpass.getuser()}")[:40]


def _group(queue: ReviewQueue, group_id: int) -> ReviewGroup:
    group = next((g for g in queue.groups() if g.id == group_id), None)
    if group is None:
        raise click.ClickException(f"No pending review group {group_id} (see `kefu review list`).")
    return group


def _report(decision: Decision) -> None:
    record = decision.record
    target = " · ".join(str(record[k]) for k in ("file", "entry_id", "intent") if record.get(k))
    click.echo(
        f"Group {decision.group_id}: {len(decision.item_ids)} items {decision.status.value}"
        + (f" -> {target}" if target else "")
    )
    if decision.next_step:
        click.echo(decision.next_step)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def review() -> None:
    """The review queue: questions the bot missed and agents' replies, grouped for editors."""


@review.command("collect")
@click.pass_context
def collect_command(ctx: click.Context) -> None:
    """Copy new misses, "did not solve it" answers and agents' replies into the queue."""
    added = _attempt(_queue(ctx).collect)
    click.echo(f"Collected {added} new review items.")


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option("--limit", default=20, show_default=True, help="Most groups shown.")
@click.option(
    "--threshold", default=SIMILARITY, show_default=True, help="Cosine that groups questions."
)
@click.option("--collect/--no-collect", default=True, show_default=True, help="Collect first.")
@click.pass_context
def list_command(
    ctx: click.Context, as_json: bool, limit: int, threshold: float, collect: bool
) -> None:
    """Pending groups, the most frequent first, each with its proposed entry."""
    queue = _queue(ctx)
    queue.threshold = threshold
    if collect:
        _attempt(queue.collect)
    groups = _attempt(queue.groups)
    if as_json:
        data = {"groups": [g.as_dict() for g in groups[:limit]], "total": len(groups)}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for group in groups[:limit]:
        proposal = group.proposal
        sources = ", ".join(f"{k} {n}" for k, n in group.sources.items() if n)
        click.echo(
            f"#{group.id:<5} x{len(group.items):<3} {group.customers} customers  [{sources}]  "
            f"{proposal.question}"
        )
        if proposal.alt_questions:
            click.echo(f"       also: {' | '.join(proposal.alt_questions[:5])}")
        if proposal.answer:
            answer = " ".join(proposal.answer.split())
            click.echo(f"       answer: {answer[:100]}{'…' if len(answer) > 100 else ''}")
        if proposal.topic or proposal.entry_id:
            click.echo(f"       topic: {proposal.topic or '-'}  closest entry: {proposal.entry_id}")
    click.echo(f"{min(limit, len(groups))} of {len(groups)} groups shown.")


@review.command("approve")
@click.argument("group_id", type=int)
@click.option("--topic", required=True, help="Topic file (data/knowledge/<topic>.yml).")
@click.option("--question", default=None, help="Instead of the proposed question.")
@click.option("--alt", "alt_questions", multiple=True, help="Alternative questions (repeat).")
@click.option("--answer", default=None, help="Instead of the proposed answer.")
@click.option("--language", type=click.Choice(["zh", "en"]), default=None)
@click.option("--by", default=None, help="Who decides (default: cli:<user>).")
@click.pass_context
def approve_command(
    ctx: click.Context,
    group_id: int,
    topic: str,
    question: str | None,
    alt_questions: tuple[str, ...],
    answer: str | None,
    language: str | None,
    by: str | None,
) -> None:
    """Approve a group as a new knowledge entry (the proposal, with any edits)."""
    queue = _queue(ctx)
    group = _group(queue, group_id)
    proposal = group.proposal
    decision = _attempt(
        lambda: queue.approve_entry(
            group_id,
            by=_who(by),
            question=question or proposal.question,
            answer=answer if answer is not None else proposal.answer,
            topic=topic,
            alt_questions=alt_questions or proposal.alt_questions,
            language=language or proposal.language,
            item_ids=group.item_ids,
        )
    )
    _report(decision)


@review.command("merge")
@click.argument("group_id", type=int)
@click.argument("entry_id")
@click.option("--by", default=None, help="Who decides (default: cli:<user>).")
@click.pass_context
def merge_command(ctx: click.Context, group_id: int, entry_id: str, by: str | None) -> None:
    """Add a group's questions as alternative questions of an existing entry."""
    queue = _queue(ctx)
    _report(_attempt(lambda: queue.merge(group_id, by=_who(by), entry_id=entry_id)))


@review.command("examples")
@click.argument("group_id", type=int)
@click.argument("intent")
@click.option("--by", default=None, help="Who decides (default: cli:<user>).")
@click.pass_context
def examples_command(ctx: click.Context, group_id: int, intent: str, by: str | None) -> None:
    """Add a group's questions as NLU examples of an intent."""
    queue = _queue(ctx)
    _report(_attempt(lambda: queue.approve_examples(group_id, by=_who(by), intent=intent)))


@review.command("reject")
@click.argument("group_id", type=int)
@click.option("--reason", default="", help="Why (kept with the items).")
@click.option("--by", default=None, help="Who decides (default: cli:<user>).")
@click.pass_context
def reject_command(ctx: click.Context, group_id: int, reason: str, by: str | None) -> None:
    """Reject a group; nothing is written."""
    queue = _queue(ctx)
    _report(_attempt(lambda: queue.reject(group_id, by=_who(by), reason=reason)))
