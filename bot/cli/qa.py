"""`kefu qa`: the QA rules, recording and scoring conversations, the QA service."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import click
from sqlalchemy import select

from bot.cli.followups import parse_moment
from bot.core.db import Conversation, QaFinding, make_engine, session_factory
from bot.core.settings import get_settings


@click.group("qa", context_settings={"help_option_names": ["-h", "--help"]})
def qa() -> None:
    """Quality inspection: check the rules, score ended conversations, run the QA service."""


@qa.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
def check_command(path: Path | None) -> None:
    """Check the QA rules file (default data/service/qa_rules.yml), naming each mistake."""
    from bot.supervision.rules import QaRulesError, default_rules_path, load_qa_rules

    target = path or default_rules_path()
    try:
        rules = load_qa_rules(target)
    except QaRulesError as error:
        click.echo(str(error), err=True)
        raise SystemExit(1) from None
    disabled = len(rules.rules) - len(rules.enabled)
    note = f" ({disabled} disabled)" if disabled else ""
    click.echo(f"{target.name}: {len(rules.rules)} rules OK{note}")


@qa.command("run")
@click.option(
    "--at",
    "at",
    default=None,
    help="Run as if it were this moment (ISO; no zone = the policy's zone). Default: now.",
)
def run_command(at: str | None) -> None:
    """Record, end quiet conversations, score, build due reports, once; print it as JSON."""
    from bot.supervision.rules import QaRulesError, load_qa_rules
    from bot.supervision.worker import run_once

    now = parse_moment(at) if at else datetime.now(timezone.utc)
    try:
        rules = load_qa_rules()
    except QaRulesError as error:
        raise click.ClickException(f"The QA rules are broken:\n{error}") from None
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        report = run_once(settings, engine, now, rules=rules)
    finally:
        engine.dispose()
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@qa.command("serve")
def serve_command() -> None:
    """Run the QA service every KEFU_SUPERVISION_INTERVAL_SECONDS until stopped."""
    from bot.supervision.rules import QaRulesError
    from bot.supervision.worker import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        serve(get_settings())
    except QaRulesError as error:
        raise click.ClickException(f"The QA rules are broken:\n{error}") from None


@qa.command("findings")
@click.option("--pending", is_flag=True, help="Only findings with a pending appeal.")
@click.option("--agent", default=None, help="Only findings about this agent (username).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def findings_command(pending: bool, agent: str | None, limit: int) -> None:
    """List QA findings, newest first: subject, rule, points, severity, appeal, conversation."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_factory(engine)() as session:
            query = (
                select(QaFinding, Conversation.conversation_id)
                .join(Conversation, Conversation.id == QaFinding.conversation_pk)
                .order_by(QaFinding.id.desc())
                .limit(limit)
            )
            if pending:
                query = query.where(QaFinding.appeal_status == "pending")
            if agent:
                query = query.where(QaFinding.subject_key == f"agent:{agent}")
            rows = session.execute(query).all()
    finally:
        engine.dispose()
    for finding, conversation in rows:
        red = " RED" if finding.red_card else ""
        click.echo(
            f"{finding.id:>6}  {finding.created_at.strftime('%Y-%m-%d %H:%M UTC')}  "
            f"{finding.subject_key:<18} {finding.rule_id:<26} {-finding.points:>4} "
            f"{finding.severity:<5}{red:<4} {finding.appeal_status:<10} "
            f"#{finding.conversation_pk} {conversation}  {finding.detail[:60]}"
        )
    click.echo(f"{len(rows)} findings shown")
