"""The `kefu tickets` commands: the queue, one ticket with its history, status changes."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from bot.core.db import TicketStatus, make_engine
from bot.core.settings import get_settings
from bot.service.tickets import TicketError, TicketStore

STATUSES = [status.value for status in TicketStatus]


def _store() -> TicketStore:
    return TicketStore(make_engine(get_settings().database_url))


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
        click.echo(f"  {_when(event.at)}  {change}  by {event.actor}  {event.note or ''}")


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
