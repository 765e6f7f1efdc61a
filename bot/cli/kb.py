"""The `kefu kb` commands: build and search the knowledge base, report self-service.

`kefu eval kb` (retrieval metrics on a query file) is defined here too.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.core.settings import get_settings
from bot.knowledge.index import knowledge_settings
from knowledge_index import KnowledgeIndexError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def kb() -> None:
    """Knowledge base: build the index, search it, report self-service."""


@kb.command("build")
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="YAML folder/file or JSONL file (default: KEFU_KB_SOURCE_DIR, data/knowledge).",
)
def build_command(source: Path | None) -> None:
    """Validate the sources, build a new index version and put it in service."""
    from knowledge_index import build

    try:
        folder = build(knowledge_settings(get_settings()), source=source, progress=True)
    except KnowledgeIndexError as error:
        raise click.ClickException(f"{error} (the previous index stays in service)") from error
    click.echo(f"Published {folder}")


@kb.command("search")
@click.argument("query")
@click.option("--k", default=5, show_default=True, help="Most hits.")
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True
)
def search_command(query: str, k: int, mode: str) -> None:
    """Search the index in service; print the decision band and hits as JSON."""
    from knowledge_index import MODES, KnowledgeBase, decide

    settings = knowledge_settings(get_settings())
    base = KnowledgeBase(settings)
    selected = next(m for m in MODES if m == mode)
    try:
        hits = base.search(query, k, selected)
    except KnowledgeIndexError as error:
        raise click.ClickException(str(error)) from error
    band = decide(
        hits,
        settings.answer_threshold,
        settings.suggest_threshold,
        settings.max_suggestions,
        suggest_mass=settings.suggest_mass,
    ).band
    payload = {"version": base.version, "band": band, "hits": hits}
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@click.command("kb")
@click.option(
    "--kb",
    "kb_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="JSONL KB, YAML file or YAML folder.",
)
@click.option(
    "--queries",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL {"query", "expected_id"} (null: unanswerable).',
)
def eval_command(kb_path: Path, queries: Path) -> None:
    """Retrieval metrics on a query file (KB indexed in memory): hybrid, dense, lexical."""
    from knowledge_index import evaluate_files

    try:
        report = evaluate_files(kb_path, queries, knowledge_settings(get_settings()), progress=True)
    except (KnowledgeIndexError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@kb.command("report")
@click.option("--days", type=int, default=None, help="Only the last N days.")
@click.option("--misses", type=int, default=10, show_default=True, help="Latest misses to list.")
def kb_report(days: int | None, misses: int) -> None:
    """Self-service rate and the latest questions the bot could not answer (JSON)."""
    from datetime import datetime, timedelta

    from bot.core.db import make_engine, upgrade
    from bot.knowledge.query_log import KbLog

    settings = get_settings()
    upgrade(settings.database_url)
    log = KbLog(make_engine(settings.database_url))
    since = datetime.utcnow() - timedelta(days=days) if days else None
    report = log.self_service(since).as_dict()
    report["latest_misses"] = [
        {
            "query": miss.query,
            "outcome": miss.outcome.value,
            "feedback": miss.feedback.value if miss.feedback else None,
            "top_hits": miss.top_hits,
            "channel": miss.channel,
            "at": miss.created_at.isoformat(timespec="seconds"),
        }
        for miss in log.misses(misses)
    ]
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))
