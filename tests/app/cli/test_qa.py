"""The `kefu qa` commands: check the rules, one pass at a given moment, the findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from bot.cli.main import main
from bot.core.settings import get_settings
from bot.supervision.rules import load_qa_rules
from tests.app.followups.support import add_agent
from tests.app.supervision.test_recording import Broker
from tests.app.supervision.test_worker import forbidden_word_conversation

SHANGHAI = timezone(timedelta(hours=8))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def configured(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """The commands use the test database and a broker with one conversation."""
    broker = Broker(tmp_path)
    monkeypatch.setenv("KEFU_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KEFU_EVENT_BROKER_URL", str(broker.engine.url))
    get_settings.cache_clear()
    yield broker
    get_settings.cache_clear()
    broker.engine.dispose()


def test_the_group_lists_its_commands() -> None:
    result = invoke("qa", "--help")
    assert result.exit_code == 0
    for command in ("check", "run", "serve", "findings"):
        assert f"  {command} " in result.output


def test_check_counts_the_shipped_rules() -> None:
    result = invoke("qa", "check")
    rules = load_qa_rules()
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"qa_rules.yml: {len(rules.rules)} rules OK")


def test_check_names_file_and_line_of_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "mine.yml"
    broken.write_text(
        "version: 1\nrules:\n  - id: x\n    title: {zh: 甲, en: A}\n    subject: bot\n"
        "    check: no_greetin\n    points: 1\n    severity: minor\n",
        "utf-8",
    )
    result = invoke("qa", "check", str(broken))
    assert result.exit_code == 1
    assert "mine.yml:6" in result.stderr and "no_greeting" in result.stderr
    missing = invoke("qa", "check", str(tmp_path / "none.yml"))
    assert missing.exit_code == 1 and "none.yml" in missing.stderr


def test_run_refuses_a_bad_moment(configured: Broker) -> None:
    result = invoke("qa", "run", "--at", "next tuesday")
    assert result.exit_code == 2 and "not an ISO date-time" in result.output


def test_run_at_prints_the_pass_and_findings_lists_what_it_found(
    configured: Broker, engine: Engine
) -> None:
    add_agent(engine, "li.na")
    forbidden_word_conversation(configured, datetime(2026, 12, 9, 5, 0, tzinfo=SHANGHAI))
    result = invoke("qa", "run", "--at", "2026-12-09T05:40")  # no zone: the policy's
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["at"] == "2026-12-08T21:40:00+00:00"
    assert (report["recorded"], report["closed"], report["scored"]["scored"]) == (7, 1, 1)
    assert report["reports"] == []  # before 07:00

    listed = invoke("qa", "findings")
    assert listed.exit_code == 0
    assert "agent:li.na" in listed.output and "forbidden_words" in listed.output
    assert " RED " in listed.output and "wx-9" in listed.output
    assert invoke("qa", "findings", "--agent", "wang").output.strip() == "0 findings shown"
    assert invoke("qa", "findings", "--pending").output.strip() == "0 findings shown"
