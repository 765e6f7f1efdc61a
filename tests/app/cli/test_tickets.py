"""The `kefu tickets` commands on a real SQLite app database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from bot.cli.main import main
from bot.core.db import TicketStatus
from bot.service.tickets import TicketStore
from tests.app.conftest import NOW, draft


@pytest.fixture
def store(engine: Engine) -> Iterator[TicketStore]:
    """A ticket store the commands use instead of the configured database."""
    tickets = TicketStore(engine)
    with patch("bot.cli.tickets._store", return_value=tickets):
        yield tickets


def test_list_shows_the_queue_soonest_due_first_and_overdue(store: TicketStore) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    future = datetime(2100, 1, 1, tzinfo=UTC)
    late = store.confirm(store.save_record(draft("a", due_at=past)), at=NOW)
    waiting = store.confirm(store.save_record(draft("b", due_at=future)), at=NOW)
    done = store.confirm(store.save_record(draft("c", due_at=past)), at=NOW)
    store.transition(done.number, TicketStatus.resolved, actor="agent:li")
    output = CliRunner().invoke(main, ["tickets", "list"]).output
    assert output.index(late.number) < output.index(waiting.number)
    assert done.number not in output  # resolved tickets are not queued
    assert f"{late.number}  open" in output and "OVERDUE" in output.splitlines()[0]
    assert "OVERDUE" not in output.splitlines()[1]
    assert "3 service records, mean completeness 100.0%" in output
    overdue = CliRunner().invoke(main, ["tickets", "list", "--overdue"]).output
    assert late.number in overdue and waiting.number not in overdue
    resolved = CliRunner().invoke(main, ["tickets", "list", "--status", "resolved"]).output
    assert done.number in resolved and late.number not in resolved


def test_show_prints_the_record_and_history(store: TicketStore) -> None:
    ticket = store.confirm(store.save_record(draft()), at=NOW)
    store.transition(ticket.number, TicketStatus.in_progress, actor="agent:li", note="on it")
    output = CliRunner().invoke(main, ["tickets", "show", ticket.number.lower()]).output
    assert "problem: 左耳没有声音" in output
    assert "open -> in_progress  by agent:li  on it" in output


def test_set_status_refuses_a_transition_that_is_not_allowed(store: TicketStore) -> None:
    ticket = store.confirm(store.save_record(draft()), at=NOW)
    runner = CliRunner()
    result = runner.invoke(main, ["tickets", "set-status", ticket.number, "closed"])
    assert result.exit_code == 0 and "closed" in result.output
    result = runner.invoke(main, ["tickets", "set-status", ticket.number, "in_progress"])
    assert result.exit_code == 1 and "closed" in result.output
    result = runner.invoke(main, ["tickets", "show", "TK000000000000"])
    assert result.exit_code == 1 and "No ticket" in result.output


@pytest.mark.parametrize("args", [["list"], ["show", "TK000000000000"]])
def test_a_command_opens_the_database_once(store: TicketStore, args: list[str]) -> None:
    with patch("bot.cli.tickets._store", return_value=store) as opened:
        CliRunner().invoke(main, ["tickets", *args])
    assert opened.call_count == 1


def test_sla_report_prints_a_table_and_json(store: TicketStore, engine: Engine) -> None:
    now = datetime.now(UTC)
    record = draft("a", created_at=now, due_at=now + timedelta(hours=24))
    ticket = store.confirm(store.save_record(record), at=now)
    store.transition(ticket.number, TicketStatus.in_progress, actor="agent:li", at=now)
    with patch("bot.cli.tickets._engine", return_value=engine):
        table = CliRunner().invoke(main, ["tickets", "sla-report", "--days", "7"])
        raw = CliRunner().invoke(main, ["tickets", "sla-report", "--json"])
    assert table.exit_code == 0, table.output
    assert "tier normal" in table.output and "grade general" in table.output
    assert "Satisfaction visits: 0/0" in table.output
    report = json.loads(raw.output)
    assert report["total"]["tickets"] == 1 and report["tiers"]["normal"]["response_overdue"] == 0
