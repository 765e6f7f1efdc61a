"""The `kefu kb` commands: build, search and evaluate the knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import click

from knowledge_index import KnowledgeIndexError, KnowledgeSettings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def kb() -> None:
    """Knowledge base: build the index, search it, evaluate retrieval."""


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
        folder = build(KnowledgeSettings(), source=source, progress=True)
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

    settings = KnowledgeSettings()
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


@kb.command("eval")
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
    """Build an in-memory index from KB and print hybrid/dense/lexical metrics as JSON."""
    from knowledge_index import evaluate_files

    try:
        report = evaluate_files(kb_path, queries, KnowledgeSettings(), progress=True)
    except (KnowledgeIndexError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))
