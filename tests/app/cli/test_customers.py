"""`kefu customers vip`: VIPs and their dedicated advisor, on a real SQLite app database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.cli.main import main
from bot.core.db import Agent, AgentRole, Customer
from bot.handoff.store import HandoffStore


@pytest.fixture
def store(engine: Engine) -> Iterator[HandoffStore]:
    handoffs = HandoffStore(engine)
    with Session(engine) as session, session.begin():
        for username, role in (("li", AgentRole.agent), ("ed", AgentRole.editor)):
            session.add(Agent(username=username, display_name=username, role=role,
                              password_hash="x", active=True,
                              created_at=datetime(2026, 12, 1, tzinfo=UTC)))  # fmt: skip
    with patch("bot.cli.handoffs._store", return_value=handoffs):
        yield handoffs


def test_a_vip_gets_an_advisor_and_loses_them_when_unmarked(
    store: HandoffStore, engine: Engine
) -> None:
    done = CliRunner().invoke(main, ["customers", "vip", "web:ann", "--advisor", "li"])
    assert done.exit_code == 0 and "VIP, advisor li" in done.output
    with Session(engine) as session:
        customer = session.get(Customer, "web:ann")
        assert customer is not None and customer.vip and customer.advisor_id is not None
    refused = CliRunner().invoke(main, ["customers", "vip", "web:ann", "--advisor", "ed"])
    assert refused.exit_code != 0 and "No active agent 'ed'" in refused.output
    CliRunner().invoke(main, ["customers", "vip", "web:ann", "--off"])
    with Session(engine) as session:
        customer = session.get(Customer, "web:ann")
        assert customer is not None and not customer.vip and customer.advisor_id is None
