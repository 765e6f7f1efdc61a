"""The `kefu tickets` commands: the queue, one ticket and its history, status, SLA report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from sqlalchemy import Engine

from bot.core.db import TicketStatus, make_engine
from bot.core.settings import get_settings
from bot.service.sla_report import overdue_rates
from bot.service.tickets import TicketError, TicketStore

STATUSES = [status.value for status in TicketStatus]


def _store() -> TicketStore:
    return TicketStore(make_engine(get_settings().database_url))


def _engine() -> Engine:
    return make_engine(get_settings().database_url)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def tickets() -> None:
    """Tickets: the queue by due time, one ticket's record and history, status changes."""


@tickets.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--overdue", is_flag=True, help="Only tickets past their due time.")
@click.option("--limit", default=50, show_default=True)
def list_command(status: str | None, overdue: bool, limit: int) -> None:
    """Unfinished tickets (or those in --status), soonest due first."""
    now = datetime.now(UTC)
    store = _store()
    rows = store.queue(
        status=TicketStatus(status) if status else None,
        due_before=now if overdue else None,
        limit=limit,
    )
    for ticket in rows:
        late = (
            "  OVERDUE"
            if ticket.due_at < now
            and ticket.status.value
            not in (
                "resolved",
                "closed",
            )
            else ""
        )
        grade = f"/{ticket.complaint_grade.value}" if ticket.complaint_grade else ""
        click.echo(
            f"{ticket.number}  {ticket.status.value:<16} {ticket.urgency.value}{grade:<9} "
            f"due {_when(ticket.due_at)}{late}  {ticket.summary}"
        )
    count, mean = store.record_completeness()
    click.echo(f"{len(rows)} tickets shown; {count} service records, mean completeness {mean:.1%}")


@tickets.command("show")
@click.argument("number")
def show_command(number: str) -> None:
    """One ticket: its service record and every status change."""
    store = _store()
    ticket = store.find(number)
    if ticket is None:
        raise click.ClickException(f"No ticket has number {number!r}.")
    record = store.get_record(ticket.record_id)
    click.echo(f"{ticket.number}: {ticket.status.value}, due {_when(ticket.due_at)}")
    if record is not None:
        for name in (
            "customer_id", "channel", "language", "category", "order_number", "product",
            "problem", "problem_since", "implication", "impacts", "need_payoff", "need_points",
            "preferences", "special_requests", "skipped", "urgency", "complaint_grade",
            "classification_reasons", "correction_rounds", "completeness", "email",
        ):  # fmt: skip
            value = getattr(record, name)
            click.echo(f"  {name}: {getattr(value, 'value', value)}")
    for event in store.history(ticket.number):
        change = (
            f"{event.from_status.value if event.from_status else '-'} -> {event.to_status.value}"
        )
        kind = "" if event.kind.value == "status" else f"[{event.kind.value}] "
        click.echo(f"  {_when(event.at)}  {change}  by {event.actor}  {kind}{event.note or ''}")


@tickets.command("set-status")
@click.argument("number")
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--actor", default="agent:cli", show_default=True)
@click.option("--note", default=None)
def set_status_command(number: str, status: str, actor: str, note: str | None) -> None:
    """Moves a ticket to STATUS (only the allowed transitions), recording who and why."""
    try:
        ticket = _store().transition(number, TicketStatus(status), actor=actor, note=note)
    except TicketError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{ticket.number}: {ticket.status.value}")


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


@tickets.command("sla-report")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sla_report_command(days: int, as_json: bool) -> None:
    """Overdue rates per tier and complaint grade of the tickets created in the last --days."""
    now = datetime.now(UTC)
    report = overdue_rates(_engine(), now - timedelta(days=days), now, now)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    click.echo(f"Tickets created {report['since'][:16]} .. {report['until'][:16]} (UTC)")
    click.echo(f"{'':<20}{'tickets':>8}{'response late':>16}{'resolution late':>18}")
    buckets: list[tuple[str, dict[str, Any]]] = [
        *((f"tier {name}", row) for name, row in report["tiers"].items()),
        *((f"grade {name}", row) for name, row in report["grades"].items()),
        ("all", report["total"]),
    ]
    for name, row in buckets:
        click.echo(
            f"{name:<20}{row['tickets']:>8}"
            f"{row['response_overdue']:>6} {_percent(row['response_overdue_rate']):>9}"
            f"{row['resolution_overdue']:>8} {_percent(row['resolution_overdue_rate']):>9}"
        )
    csat, second = report["csat"], report["second_followup"]
    click.echo(
        f"Satisfaction visits: {csat['asked']}/{csat['resolved']} resolved tickets asked "
        f"({_percent(csat['coverage'])}), {csat['rated']} rated"
    )
    click.echo(
        f"Second follow-ups: {second['solved']}/{second['done']} done solved "
        f"({_percent(second['solved_rate'])}), {second['tasks']} opened"
    )
