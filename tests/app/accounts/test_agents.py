"""Desk accounts (argon2), the login lockout, sessions and the `kefu agents` commands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.accounts import (
    DEMO_AGENT_USERNAME,
    DEMO_EDITOR_USERNAME,
    DEMO_SUPERVISOR_USERNAME,
    AccountError,
    AgentStore,
    LoginOutcome,
    SessionStore,
    hash_token,
    seed_demo_agent,
    seed_demo_editor,
    seed_demo_supervisor,
)
from bot.accounts.agents import CLIENT_FAILURE_FACTOR
from bot.cli.main import main
from bot.core.db import Agent, AgentRole, DeskSession, LoginAttempt
from bot.core.settings import Settings
from tests.app.conftest import PRODUCTION

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def agents(engine: Engine) -> AgentStore:
    return AgentStore(engine, hasher=FAST)


def stored_hash(engine: Engine, username: str) -> str:
    with Session(engine) as session:
        return session.scalars(select(Agent.password_hash).where(Agent.username == username)).one()


def test_the_password_is_stored_as_an_argon2_hash(agents: AgentStore, engine: Engine) -> None:
    agent = agents.create("li.na", "李娜 Li Na", AgentRole.editor, PASSWORD)
    assert agent.role is AgentRole.editor and agent.active
    hashed = stored_hash(engine, "li.na")
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed


def test_authenticate_right_wrong_unknown_and_inactive(agents: AgentStore, engine: Engine) -> None:
    agents.create("li.na", "Li Na", "agent", PASSWORD)
    ok = agents.authenticate("li.na", PASSWORD, "10.0.0.1", NOW)
    assert ok is not None and ok.username == "li.na"
    assert agents.authenticate("li.na", "wrong password!", "10.0.0.1", NOW) is None
    assert agents.authenticate("nobody", PASSWORD, "10.0.0.1", NOW) is None
    agents.set_active("li.na", False)
    assert agents.authenticate("li.na", PASSWORD, "10.0.0.1", NOW) is None
    agents.set_active("li.na", True)
    agents.set_password("li.na", "another long one")
    assert agents.authenticate("li.na", PASSWORD, "10.0.0.1", NOW) is None
    assert agents.authenticate("li.na", "another long one", "10.0.0.1", NOW) is not None
    with Session(engine) as session:
        attempts = session.scalars(select(LoginAttempt).order_by(LoginAttempt.id)).all()
    assert [a.succeeded for a in attempts] == [True, False, False, False, False, True]
    assert attempts[2].username == "nobody" and attempts[0].client == "10.0.0.1"


class CountingHasher(PasswordHasher):
    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def test_unknown_users_cost_a_hash_verification(engine: Engine) -> None:
    agents = AgentStore(engine, hasher=CountingHasher(time_cost=1, memory_cost=8, parallelism=1))
    assert agents.authenticate("nobody", PASSWORD, "10.0.0.1", NOW) is None
    assert agents.authenticate("nobody", PASSWORD, "10.0.0.1", NOW) is None
    assert CountingHasher.verified == 2


def test_an_outdated_hash_is_replaced_on_login(engine: Engine) -> None:
    AgentStore(engine, hasher=FAST).create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    old = stored_hash(engine, "li.na")
    strong = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert AgentStore(engine, hasher=strong).authenticate("li.na", PASSWORD, "c", NOW)
    new = stored_hash(engine, "li.na")
    assert new != old and "m=16,t=2,p=1" in new
    assert not strong.check_needs_rehash(new)
    assert AgentStore(engine, hasher=strong).authenticate("li.na", PASSWORD, "c", NOW)


def test_lockout_by_username_and_client_then_release_after_the_window(
    agents: AgentStore,
) -> None:
    agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    for minute in range(5):
        assert not agents.is_locked("li.na", "10.0.0.1", NOW)
        at = NOW + timedelta(minutes=minute)
        assert not agents.login("li.na", "wrong password!", "10.0.0.1", at).locked
    later = NOW + timedelta(minutes=5)
    assert agents.is_locked("li.na", "10.0.0.1", later)
    assert agents.retry_after("li.na", "10.0.0.1", later) == timedelta(minutes=10)
    refused = agents.login("li.na", PASSWORD, "10.0.0.1", later)
    assert refused.locked and refused.agent is None  # the right password does not help
    # the same user elsewhere and other users from the same address are not locked out
    assert not agents.is_locked("li.na", "10.9.9.9", later)
    assert agents.login("li.na", PASSWORD, "10.9.9.9", later).agent is not None
    assert not agents.is_locked("someone", "10.0.0.1", later)
    assert agents.is_locked("li.na", "10.0.0.1", NOW + timedelta(minutes=14, seconds=59))
    assert not agents.is_locked("li.na", "10.0.0.1", NOW + timedelta(minutes=15, seconds=1))


def test_failures_from_many_addresses_never_lock_the_user_out(agents: AgentStore) -> None:
    agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    for number in range(50):
        agents.login("li.na", "wrong password!", f"10.0.1.{number}", NOW)
    assert agents.login("li.na", PASSWORD, "192.168.1.5", NOW).agent is not None


def test_lockout_by_client_across_usernames(agents: AgentStore) -> None:
    limit = agents.max_failures * CLIENT_FAILURE_FACTOR
    for number in range(limit - 1):
        agents.login(f"user{number}", "wrong password!", "10.0.0.7", NOW)
    assert not agents.is_locked("fresh-name", "10.0.0.7", NOW)
    agents.login("user-last", "wrong password!", "10.0.0.7", NOW)
    assert agents.is_locked("fresh-name", "10.0.0.7", NOW)
    assert not agents.is_locked("fresh-name", "10.0.0.8", NOW)
    assert not agents.is_locked("fresh-name", "10.0.0.7", NOW + timedelta(minutes=16))


def test_concurrent_guesses_cannot_pass_the_limit(engine: Engine) -> None:
    agents = AgentStore(engine, hasher=FAST, max_failures=3)
    agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    barrier = threading.Barrier(12)
    outcomes: list[LoginOutcome] = []

    def guess(number: int) -> None:
        barrier.wait()
        outcomes.append(agents.login("li.na", f"wrong password {number}", "10.0.0.3"))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(not outcome.locked for outcome in outcomes) == 3  # the others were refused
    with Session(engine) as session:
        recorded = session.scalars(select(LoginAttempt)).all()
    assert len(recorded) == 3 and not any(attempt.succeeded for attempt in recorded)
    assert agents.login("li.na", PASSWORD, "10.0.0.3").locked


def test_a_password_change_ends_other_sessions_and_disabling_all(
    agents: AgentStore, engine: Engine
) -> None:
    agent = agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    other = agents.create("wang", "Wang", AgentRole.agent, PASSWORD)
    sessions = SessionStore(engine)
    here, _ = sessions.create(agent.id)
    elsewhere, _ = sessions.create(agent.id)
    colleague, _ = sessions.create(other.id)
    agents.set_password("li.na", "a new long password", keep_session=hash_token(here))
    assert sessions.is_live(here) and not sessions.is_live(elsewhere)
    assert sessions.get(elsewhere) is None and sessions.is_live(colleague)
    agents.set_password("li.na", "another new password")  # an admin reset: every session ends
    assert not sessions.is_live(here)
    again, _ = sessions.create(agent.id)
    agents.set_active("li.na", False)
    agents.set_active("li.na", True)
    assert not sessions.is_live(again) and sessions.is_live(colleague)


def test_a_success_clears_earlier_failures(agents: AgentStore) -> None:
    agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    for _ in range(4):
        agents.authenticate("li.na", "wrong password!", "c", NOW)
    agents.authenticate("li.na", PASSWORD, "c", NOW + timedelta(seconds=1))
    agents.authenticate("li.na", "wrong password!", "c", NOW + timedelta(seconds=2))
    assert not agents.is_locked("li.na", "c", NOW + timedelta(seconds=3))


@pytest.mark.parametrize("username", ["ab", "Li.Na", "li na", "李娜", "x" * 41, ""])
def test_bad_usernames_are_refused(agents: AgentStore, username: str) -> None:
    with pytest.raises(AccountError, match="Username"):
        agents.create(username, "Li Na", AgentRole.agent, PASSWORD)


def test_short_passwords_duplicates_and_unknown_roles_are_refused(agents: AgentStore) -> None:
    with pytest.raises(AccountError, match="at least 10"):
        agents.create("li.na", "Li Na", AgentRole.agent, "short")
    agents.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    with pytest.raises(AccountError, match="taken"):
        agents.create("li.na", "Li Na again", AgentRole.agent, PASSWORD)
    with pytest.raises(AccountError, match="Unknown role"):
        agents.create("wang_2", "Wang", "boss", PASSWORD)
    with pytest.raises(AccountError, match="No agent"):
        agents.set_active("nobody", False)
    with pytest.raises(AccountError, match="at least 10"):
        agents.set_password("li.na", "short")
    assert [a.username for a in agents.list()] == ["li.na"]


def test_sessions_create_get_expire_and_revoke(agents: AgentStore, engine: Engine) -> None:
    agent = agents.create("li.na", "Li Na", AgentRole.admin, PASSWORD)
    sessions = SessionStore(engine, timedelta(hours=12))
    token, csrf = sessions.create(agent.id, NOW)
    assert token != csrf and len(token) >= 40
    with Session(engine) as session:
        row = session.scalars(select(DeskSession)).one()
    assert row.token_hash == hash_token(token) and len(row.token_hash) == 64
    assert token not in row.token_hash
    live = sessions.get(token, NOW + timedelta(hours=1))
    assert live is not None and live.agent.username == "li.na" and live.csrf_token == csrf
    assert live.last_seen_at == NOW + timedelta(hours=1)
    assert sessions.get("not-a-token", NOW) is None and sessions.get("", NOW) is None
    assert sessions.get(token, NOW + timedelta(hours=12, seconds=1)) is None
    agents.set_active("li.na", False)
    assert sessions.get(token, NOW) is None
    agents.set_active("li.na", True)
    sessions.revoke(token)
    assert sessions.get(token, NOW) is None


def test_seed_demo_agent_is_idempotent(engine: Engine, tmp_path: object) -> None:
    settings = Settings(demo_agent_password="demo-password-1")
    assert seed_demo_agent(engine, settings) == DEMO_AGENT_USERNAME
    store = AgentStore(engine)
    store.set_active(DEMO_AGENT_USERNAME, False)
    assert seed_demo_agent(engine, Settings(demo_agent_password="demo-password-2"))
    agent = store.authenticate(DEMO_AGENT_USERNAME, "demo-password-2", "c")
    assert agent is not None and agent.display_name == "演示客服 Demo Agent"
    assert agent.role is AgentRole.agent and len(store.list()) == 1
    with pytest.raises(AccountError, match="demo agent password"):
        seed_demo_agent(engine, Settings(demo_agent_password=""))


def test_the_demo_editor_is_a_knowledge_editor(engine: Engine) -> None:
    settings = Settings(demo_agent_password="demo-password-1")
    assert seed_demo_editor(engine, settings) == DEMO_EDITOR_USERNAME
    assert seed_demo_editor(engine, settings) == DEMO_EDITOR_USERNAME  # idempotent
    agent = AgentStore(engine).authenticate(DEMO_EDITOR_USERNAME, "demo-password-1", "c")
    assert agent is not None and agent.role is AgentRole.editor


def test_production_has_no_published_demo_password() -> None:
    production = Settings(**PRODUCTION)
    assert production.demo_agent_password == ""
    with pytest.raises(ValueError, match="KEFU_DEMO_AGENT_PASSWORD"):
        Settings(**PRODUCTION, demo_agent_password="kefu-demo-agent")
    own = Settings(**PRODUCTION, demo_agent_password="x" * 20)
    assert own.demo_agent_password == "x" * 20


@pytest.fixture
def cli_store(agents: AgentStore) -> Iterator[AgentStore]:
    with patch("bot.cli.agents._store", return_value=agents):
        yield agents


def test_cli_add_list_and_disable(cli_store: AgentStore) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["agents", "add", "li.na", "--name", "李娜", "--role", "editor", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created editor li.na" in result.output
    assert cli_store.authenticate("li.na", PASSWORD, "c") is not None
    prompted = runner.invoke(
        main, ["agents", "add", "wang", "--name", "Wang"], input="another long one\n" * 2
    )
    assert prompted.exit_code == 0, prompted.output
    short = runner.invoke(
        main, ["agents", "add", "zhao", "--name", "Zhao", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 10" in short.output
    listed = runner.invoke(main, ["agents", "list"]).output
    assert "li.na" in listed and "editor" in listed and "李娜" in listed and "2 agents" in listed
    assert runner.invoke(main, ["agents", "disable", "li.na"]).exit_code == 0
    listed = runner.invoke(main, ["agents", "list"]).output
    assert any("li.na" in line and "disabled" in line for line in listed.splitlines())
    missing = runner.invoke(main, ["agents", "disable", "nobody"])
    assert missing.exit_code == 1 and "No agent" in missing.output


def test_cli_password_reset_ends_every_session(cli_store: AgentStore, engine: Engine) -> None:
    agent = cli_store.create("li.na", "Li Na", AgentRole.agent, PASSWORD)
    sessions = SessionStore(engine)
    token, _ = sessions.create(agent.id)
    runner = CliRunner()
    result = runner.invoke(
        main, ["agents", "password", "li.na", "--password-stdin"], input="a brand new password\n"
    )
    assert result.exit_code == 0, result.output
    assert not sessions.is_live(token)
    assert cli_store.authenticate("li.na", "a brand new password", "c") is not None
    short = runner.invoke(main, ["agents", "password", "li.na", "--password-stdin"], input="x\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    missing = runner.invoke(main, ["agents", "password", "nobody"], input=f"{PASSWORD}\n" * 2)
    assert missing.exit_code == 1 and "No agent" in missing.output
    assert runner.invoke(main, ["agents", "disable", "li.na"]).exit_code == 0
    assert runner.invoke(main, ["agents", "enable", "li.na"]).exit_code == 0
    assert cli_store.authenticate("li.na", "a brand new password", "c") is not None


def test_supervisors_lead_teams_and_have_an_email(agents: AgentStore) -> None:
    lead = agents.create("lead", "主管", AgentRole.supervisor, PASSWORD, " Lead@Example.COM ")
    assert lead.role is AgentRole.supervisor and lead.email == "lead@example.com"
    agents.create("li.na", "李娜", AgentRole.agent, PASSWORD)
    agents.create("editor", "Editor", AgentRole.editor, PASSWORD)
    assert agents.supervisor_of("li.na") is None
    agents.set_supervisor("li.na", "lead")
    found = agents.supervisor_of("li.na")
    assert found is not None and found.username == "lead"
    with pytest.raises(AccountError, match="only a supervisor or admin"):
        agents.set_supervisor("li.na", "editor")
    with pytest.raises(AccountError, match="own supervisor"):
        agents.set_supervisor("lead", "lead")
    with pytest.raises(AccountError, match="No agent"):
        agents.set_supervisor("li.na", "nobody")
    agents.set_supervisor("li.na", "")
    assert agents.supervisor_of("li.na") is None
    with pytest.raises(AccountError, match="not an email address"):
        agents.set_email("lead", "not-an-address")
    with pytest.raises(AccountError, match="not an email address"):
        agents.create("zhao", "Zhao", AgentRole.agent, PASSWORD, "a@b")
    assert agents.set_email("lead", "").email is None


def test_the_demo_supervisor_leads_the_demo_agent(engine: Engine) -> None:
    settings = Settings(demo_agent_password="demo-password-1")
    assert seed_demo_supervisor(engine, settings) == DEMO_SUPERVISOR_USERNAME
    assert seed_demo_supervisor(engine, settings) == DEMO_SUPERVISOR_USERNAME  # idempotent
    store = AgentStore(engine)
    lead = store.authenticate(DEMO_SUPERVISOR_USERNAME, "demo-password-1", "c")
    assert lead is not None and lead.role is AgentRole.supervisor
    found = store.supervisor_of(DEMO_AGENT_USERNAME)
    assert found is not None and found.username == DEMO_SUPERVISOR_USERNAME
