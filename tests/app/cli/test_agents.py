"""The `kefu agents` commands for supervisors: add with role, email and lead; set-supervisor."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import patch

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import Engine

from bot.accounts import AgentStore
from bot.cli.main import main
from bot.core.db import AgentRole

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def store(engine: Engine) -> Iterator[AgentStore]:
    agents = AgentStore(engine, hasher=FAST)
    with patch("bot.cli.agents._store", return_value=agents):
        yield agents


def _run(*args: str, password: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["agents", *args], input=f"{PASSWORD}\n" if password else None
    )
    return result.exit_code, result.output


def test_add_a_supervisor_and_an_agent_on_their_team(store: AgentStore) -> None:
    code, output = _run(
        "add", "lead", "--name", "主管", "--role", "supervisor", "--email", "lead@example.com",
        "--password-stdin", password=True,
    )  # fmt: skip
    assert code == 0 and "Created supervisor lead" in output, output
    code, output = _run(
        "add", "li.na", "--name", "李娜", "--supervisor", "lead", "--password-stdin", password=True
    )
    assert code == 0 and "supervised by lead" in output, output
    lead = store.supervisor_of("li.na")
    assert lead is not None and lead.email == "lead@example.com"
    listed = _run("list")[1]
    line = next(line for line in listed.splitlines() if line.startswith("li.na"))
    assert "lead: lead" in line
    assert "<lead@example.com>" in listed


def test_set_supervisor_and_email(store: AgentStore) -> None:
    store.create("lead", "Lead", AgentRole.supervisor, PASSWORD)
    store.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    store.create("editor", "Ed", AgentRole.editor, PASSWORD)
    assert _run("set-supervisor", "li.na", "lead") == (0, "Supervisor of li.na: lead.\n")
    code, output = _run("set-supervisor", "li.na", "editor")
    assert code == 1 and "only a supervisor or admin" in output
    code, output = _run("set-supervisor", "nobody", "lead")
    assert code == 1 and "No agent" in output
    assert _run("set-supervisor", "li.na", "")[0] == 0
    assert store.supervisor_of("li.na") is None
    assert _run("email", "lead", "Lead@Example.com") == (0, "Email of lead: lead@example.com.\n")
    code, output = _run("email", "lead", "nope")
    assert code == 1 and "not an email address" in output
    code, output = _run("add", "zhao", "--name", "Zhao", "--supervisor", "nobody",
                        "--password-stdin", password=True)  # fmt: skip
    assert code == 1 and "No agent" in output
    assert store.get("zhao") is None  # nothing half made
