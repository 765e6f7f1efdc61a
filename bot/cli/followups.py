"""The `kefu followups` commands: one scheduler pass at a given time, the service, the outbox."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import click
from sqlalchemy import select

from bot.core.db import Notice, NoticeStatus, Ticket, make_engine, session_factory
from bot.core.settings import get_settings
from bot.service.policy import load_policy

STATUSES = [status.value for status in NoticeStatus]


def parse_moment(text: str) -> datetime:
    """An ISO date-time; without a zone it is read in the service policy's time zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(
            f"{text!r} is not an ISO date-time like 2026-12-10T09:00", param_hint="--at"
        ) from error
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=load_policy().zone)
    return moment.astimezone(timezone.utc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def followups() -> None:
    """The service loop's scheduler: progress notices, results, satisfaction visits, SLA alerts."""


@followups.command("run")
@click.option(
    "--at",
    "at",
    default=None,
    help="Run as if it were this moment (ISO; no zone = the policy's zone). Default: now.",
)
@click.option("--worker", default=None, help="Name of this worker in claims (default host:pid).")
def run_command(at: str | None, worker: str | None) -> None:
    """Plan and deliver what is due at --at, once; print what was sent as JSON."""
    from bot.followups.worker import run_once

    now = parse_moment(at) if at else datetime.now(timezone.utc)
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        report = run_once(settings, engine, now, worker)
    finally:
        engine.dispose()
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@followups.command("serve")
@click.option("--worker", default=None, help="Name of this worker in claims (default host:pid).")
def serve_command(worker: str | None) -> None:
    """Run the scheduler every KEFU_FOLLOWUPS_INTERVAL_SECONDS until stopped."""
    from bot.followups.worker import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(get_settings(), worker)


@followups.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def list_command(status: str | None, limit: int) -> None:
    """The outbox, newest first: id, status, kind, ticket, via, due / sent time, error."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_factory(engine)() as session:
            query = (
                select(Notice, Ticket.number)
                .outerjoin(Ticket, Ticket.id == Notice.ticket_id)
                .order_by(Notice.id.desc())
                .limit(limit)
            )
            if status:
                query = query.where(Notice.status == NoticeStatus(status))
            rows = session.execute(query).all()
    finally:
        engine.dispose()
    for notice, number in rows:
        when = notice.sent_at or notice.due_at
        error = f"  ({notice.error[:80]})" if notice.error else ""
        click.echo(
            f"{notice.id:>6}  {notice.status.value:<13} {notice.kind:<16} {number or '-':<16} "
            f"{notice.via or '-':<5} {when.strftime('%Y-%m-%d %H:%M UTC')}{error}"
        )
    click.echo(f"{len(rows)} notices shown")
