"""The supervision worker: one pass records, ends, scores; yesterday's report is built and
emailed once; last week's list and last month's audit once; the rules file reloads."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from bot.bench.common import free_port
from bot.core.db import AgentRole, Conversation, QaFinding, ReportRun, session_factory
from bot.core.settings import Settings
from bot.handoff.broker import SqlEventSource
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision import worker
from bot.supervision.recording import ConversationRecorder
from bot.supervision.rules import default_rules_path, load_qa_rules
from bot.supervision.worker import RulesFile, due_reports, run_once
from tests.app.followups.support import add_agent
from tests.app.supervision.test_recording import Broker

SHANGHAI = timezone(timedelta(hours=8))
UTC = timezone.utc
MORNING = datetime(2026, 12, 9, 5, 0, tzinfo=SHANGHAI)
"""A Wednesday before the report time (07:00 in the policy zone)."""


class Inbox:
    """aiosmtpd handler keeping (recipients, message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.port = 0

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    return Broker(tmp_path)


def settings_for(tmp_path: Path, broker: Broker, inbox: Inbox | None = None) -> Settings:
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": inbox.port} if inbox else {}
    return Settings(
        var_dir=tmp_path / "var",
        event_broker_url=str(broker.engine.url),
        smtp_sender="kefu@shop.example",
        **smtp,
    )


def forbidden_word_conversation(broker: Broker, start: datetime) -> None:
    """A customer, a handoff and an agent who swears at them."""
    broker.user("wx-9", "我要投诉，耳机坏了", start, intent="complain")
    broker.bot("wx-9", "已为您转接人工客服", start, "utter_handoff_queued", "action_handoff")
    broker.pause("wx-9", start)
    broker.agent("wx-9", "li.na", "您好，我是李娜，很高兴为您服务", start + timedelta(minutes=1))
    broker.agent("wx-9", "li.na", "你是不是傻", start + timedelta(minutes=2))
    broker.user("wx-9", "太差了", start + timedelta(minutes=3))


def test_a_pass_records_ends_and_scores_each_conversation_once(
    engine: Engine, tmp_path: Path, broker: Broker, policy: ServicePolicy
) -> None:
    add_agent(engine, "li.na")
    forbidden_word_conversation(broker, MORNING)
    settings = settings_for(tmp_path, broker)
    early = MORNING + timedelta(minutes=20)
    first = run_once(settings, engine, early, policy=policy)
    assert (first["recorded"], first["closed"], first["scored"]["scored"]) == (7, 0, 0)
    assert first["at"] == "2026-12-08T21:20:00+00:00" and first["reports"] == []

    later = MORNING + timedelta(minutes=40)  # 30 minutes after the last message
    second = run_once(settings, engine, later, policy=policy)
    assert (second["recorded"], second["closed"], second["scored"]["scored"]) == (0, 1, 1)
    assert second["scored"]["findings"] >= 1 and second["scored"]["red_cards"] >= 1
    assert run_once(settings, engine, later, policy=policy)["scored"]["scored"] == 0
    with session_factory(engine)() as session:
        [conversation] = session.scalars(select(Conversation))
        rules = set(session.scalars(select(QaFinding.rule_id)))
    assert conversation.outcome == "handoff" and conversation.scored_at == later
    assert conversation.agent_score is not None and conversation.red_cards >= 1
    assert any("forbidden" in rule for rule in rules)


def test_a_naive_moment_is_refused(engine: Engine, tmp_path: Path, broker: Broker) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        run_once(settings_for(tmp_path, broker), engine, datetime(2026, 12, 9, 10))


def test_a_given_recorder_is_used(
    engine: Engine, tmp_path: Path, broker: Broker, policy: ServicePolicy
) -> None:
    forbidden_word_conversation(broker, MORNING)
    recorder = ConversationRecorder(engine, SqlEventSource(broker.engine), policy)
    settings = Settings(var_dir=tmp_path / "var")  # its own broker is empty
    report = run_once(settings, engine, MORNING, policy=policy, recorder=recorder)
    assert report["recorded"] == 7


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 12, 9, 6, 59, tzinfo=SHANGHAI), []),
        (
            datetime(2026, 12, 9, 7, 0, tzinfo=SHANGHAI),
            ["daily:2026-12-08", "weekly:2026-11-30", "monthly:2026-11"],
        ),
        (
            datetime(2026, 12, 7, 23, 30, tzinfo=UTC),  # Tuesday 07:30 in Shanghai
            ["daily:2026-12-07", "weekly:2026-11-30", "monthly:2026-11"],
        ),
        (
            datetime(2027, 1, 1, 8, 0, tzinfo=SHANGHAI),  # a Friday, the 1st
            ["daily:2026-12-31", "weekly:2026-12-21", "monthly:2026-12"],
        ),
    ],
)
def test_what_is_due_and_when(policy: ServicePolicy, moment: datetime, expected: list[str]) -> None:
    assert [due.key for due in due_reports(policy, moment)] == expected


def test_the_reports_are_built_once_and_the_daily_one_emailed_once(
    engine: Engine,
    tmp_path: Path,
    broker: Broker,
    policy: ServicePolicy,
    inbox: Inbox,
) -> None:
    boss = add_agent(engine, "boss", AgentRole.supervisor, email="boss@shop.example")
    add_agent(engine, "li.na", supervisor_id=boss)
    add_agent(engine, "admin", AgentRole.admin, email="admin@shop.example")
    add_agent(engine, "no.mail", AgentRole.supervisor)
    forbidden_word_conversation(broker, MORNING)
    settings = settings_for(tmp_path, broker, inbox)
    run_once(settings, engine, MORNING + timedelta(hours=1), policy=policy)
    report_time = datetime(2026, 12, 10, 7, 0, tzinfo=SHANGHAI)

    first = run_once(settings, engine, report_time - timedelta(minutes=1), policy=policy)
    assert first["reports"] == []
    second = run_once(settings, engine, report_time, policy=policy)
    built = {r["kind"]: r for r in second["reports"]}
    assert set(built) == {"daily", "weekly", "monthly"}, second["reports"]
    assert not any("error" in r for r in second["reports"]), second["reports"]
    daily = built["daily"]
    assert daily["period"] == "2026-12-09"
    assert sorted(daily["emailed"]) == ["admin@shop.example", "boss@shop.example"]
    assert Path(daily["path"]).exists()
    assert (tmp_path / "var" / "reports" / "daily" / "2026-12-09" / "report.html").exists()
    assert Path(built["weekly"]["path"]).is_relative_to(tmp_path / "var" / "reports" / "weekly")
    assert Path(built["monthly"]["path"]).is_relative_to(tmp_path / "var" / "reports" / "monthly")

    emailed = len(inbox.messages)
    assert emailed >= 1
    assert sorted(r for to, _ in inbox.messages for r in to) == [
        "admin@shop.example",
        "boss@shop.example",
    ]
    third = run_once(settings, engine, report_time + timedelta(hours=3), policy=policy)
    assert third["reports"] == [] and len(inbox.messages) == emailed
    with session_factory(engine)() as session:
        runs = {run.key: run for run in session.scalars(select(ReportRun))}
    assert set(runs) == {"daily:2026-12-09", "weekly:2026-11-30", "monthly:2026-11"}
    assert runs["daily:2026-12-09"].emailed_at is not None


def test_a_daily_report_built_without_smtp_is_emailed_once_smtp_is_set_up(
    engine: Engine,
    tmp_path: Path,
    broker: Broker,
    policy: ServicePolicy,
    inbox: Inbox,
) -> None:
    add_agent(engine, "boss", AgentRole.supervisor, email="boss@shop.example")
    moment = datetime(2026, 12, 10, 8, 0, tzinfo=SHANGHAI)
    quiet = run_once(settings_for(tmp_path, broker), engine, moment, policy=policy)
    assert [r["emailed"] for r in quiet["reports"] if r["kind"] == "daily"] == [[]]
    assert inbox.messages == []
    mailing = settings_for(tmp_path, broker, inbox)
    later = run_once(mailing, engine, moment + timedelta(minutes=1), policy=policy)
    assert [(r["kind"], r["emailed"]) for r in later["reports"]] == [
        ("daily", ["boss@shop.example"])
    ]
    assert len(inbox.messages) == 1
    again = run_once(mailing, engine, moment + timedelta(minutes=2), policy=policy)
    assert again["reports"] == [] and len(inbox.messages) == 1


def test_a_failing_report_is_listed_and_the_others_still_built(
    engine: Engine, tmp_path: Path, broker: Broker, policy: ServicePolicy, monkeypatch: Any
) -> None:
    from bot.supervision import review_list

    def broken(*args: Any) -> Path:
        raise RuntimeError("disk full")

    monkeypatch.setattr(review_list, "build_weekly", broken)
    moment = datetime(2026, 12, 10, 8, 0, tzinfo=SHANGHAI)
    settings = settings_for(tmp_path, broker)
    reports = run_once(settings, engine, moment, policy=policy)["reports"]
    assert [(r["kind"], r.get("error")) for r in reports] == [
        ("daily", None),
        ("weekly", "disk full"),
        ("monthly", None),
    ]
    monkeypatch.undo()
    retried = run_once(settings, engine, moment + timedelta(minutes=1), policy=policy)
    assert [r["kind"] for r in retried["reports"]] == ["weekly"]


def test_the_rules_file_reloads_when_changed_and_keeps_the_last_good_rules(
    tmp_path: Path,
) -> None:
    path = tmp_path / "qa_rules.yml"
    original = default_rules_path().read_text("utf-8")
    path.write_text(original, "utf-8")
    rules = RulesFile(path)
    count = len(rules.current().rules)
    assert count == len(load_qa_rules().rules)
    path.write_text("version: 1\nrules: []\n", "utf-8")
    _touch_later(path)
    assert len(rules.current().rules) == 0
    path.write_text("version: 1\nrules: [{id: x, check: nonsense}]\n", "utf-8")
    _touch_later(path)
    assert len(rules.current().rules) == 0  # broken: the last good rules stay


def _touch_later(path: Path) -> None:
    import os

    stamp = path.stat().st_mtime + 5
    os.utime(path, (stamp, stamp))


def test_reports_go_under_the_reports_folder(tmp_path: Path, policy: ServicePolicy) -> None:
    settings = Settings(var_dir=tmp_path / "var", reports_dir=tmp_path / "r")
    [daily, *_] = due_reports(policy, datetime(2026, 12, 10, 8, 0, tzinfo=SHANGHAI))
    assert worker.report_dir(settings, daily) == tmp_path / "r" / "daily" / "2026-12-09"
    assert daily.start == date(2026, 12, 9)
