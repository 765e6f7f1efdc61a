"""The generated day: deterministic, realistic, scored by the QA rules, and without side effects."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from bot.cli.main import main
from bot.core.db import (
    Agent,
    Conversation,
    ConversationMessage,
    DeskAlert,
    FollowupTask,
    Handoff,
    HandoffMessage,
    KbOutcome,
    KbQuery,
    Notice,
    NoticeStatus,
    QaFinding,
    QaScore,
    ReviewItem,
    ServiceRecord,
    Ticket,
    TicketEvent,
    make_engine,
    session_factory,
    upgrade,
)
from bot.core.settings import Settings
from bot.editor.review import collect
from bot.followups.planner import Planner
from bot.handoff.packet import HandoffPacket
from bot.knowledge.query_log import KbLog
from bot.service.policy import ServicePolicy, load_policy
from bot.service.tickets import TICKET_NUMBER
from bot.supervision.audit import frequent_problems
from bot.supervision.daygen import (
    GENERATED,
    delete_day,
    generate_day,
    generated_conversations,
)
from bot.supervision.daygen_material import load_material
from bot.supervision.metrics import day_bounds
from bot.supervision.rules import load_qa_rules
from bot.supervision.scoring import Inspector
from tests.app.postgres import postgres_server, postgres_url  # noqa: F401

DAY = date(2026, 12, 6)
COUNT = 1500
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True, scope="module")
def fast_hashes() -> Iterator[None]:
    """Generated agents get their (unusable or demo) passwords hashed cheaply."""
    with patch("bot.accounts.agents.PasswordHasher", return_value=FAST):
        yield


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture(scope="module")
def now(policy: ServicePolicy) -> datetime:
    """The next morning at 10:00 in the policy zone."""
    return datetime.combine(DAY + timedelta(days=1), time(10), tzinfo=policy.zone).astimezone(UTC)


def _fresh(folder: Path) -> Engine:
    url = f"sqlite:///{folder}/kefu.db"
    upgrade(url)
    return make_engine(url)


@pytest.fixture(scope="module")
def day(
    tmp_path_factory: pytest.TempPathFactory, policy: ServicePolicy, now: datetime
) -> Iterator[tuple[Engine, dict[str, object]]]:
    """One generated day of 1,500 conversations, scored (shared by the read-only tests)."""
    engine = _fresh(tmp_path_factory.mktemp("day"))
    stats = generate_day(engine, policy, DAY, COUNT, now=now)
    inspector = Inspector(engine, load_qa_rules(), policy)
    while inspector.score_due(now, limit=2000).scored:
        pass
    yield engine, stats
    engine.dispose()


def _count(engine: Engine, model: type, *where: object) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _transcripts(engine: Engine) -> list[tuple[str, str, str]]:
    with session_factory(engine)() as session:
        rows = session.execute(
            select(ConversationMessage.at, ConversationMessage.role, ConversationMessage.text)
            .order_by(ConversationMessage.id)
            .limit(3000)
        ).all()
    return [(at.isoformat(), role, text) for at, role, text in rows]


# ---------------------------------------------------------------------- shape of the day
def test_the_day_has_realistic_shares(day: tuple[Engine, dict[str, object]]) -> None:
    engine, stats = day
    total = stats["conversations"]
    assert isinstance(total, int) and 0.95 * COUNT <= total <= COUNT
    outcomes = Counter(stats["outcomes"])  # type: ignore[arg-type]
    assert 0.62 <= outcomes["self_service"] / total <= 0.76
    assert 0.12 <= outcomes["handoff"] / total <= 0.26
    assert outcomes["ticket"] > 0 and outcomes["unresolved"] > 0 and outcomes["abandoned"] > 0
    languages = Counter(stats["languages"])  # type: ignore[arg-type]
    assert 0.68 <= languages["zh"] / total <= 0.82 and languages["en"] > 0
    assert set(stats["channels"]) == {"wechat", "socketio", "telegram", "rest"}  # type: ignore[arg-type]
    assert _count(engine, Conversation, Conversation.source == GENERATED) == total


def test_the_load_follows_the_shop_s_day(
    day: tuple[Engine, dict[str, object]], policy: ServicePolicy
) -> None:
    engine, _ = day
    with session_factory(engine)() as session:
        starts = session.scalars(select(Conversation.started_at)).all()
    hours = Counter(moment.astimezone(policy.zone).hour for moment in starts)
    assert {moment.astimezone(policy.zone).date() for moment in starts} == {DAY}
    for peak in (10, 15, 21):
        assert hours[peak] > 3 * hours[4]


def test_the_texts_are_the_project_s_own(day: tuple[Engine, dict[str, object]]) -> None:
    engine, _ = day
    material = load_material()
    answers = {item.answer for items in material.kb.values() for item in items}
    with session_factory(engine)() as session:
        bot = session.scalars(
            select(ConversationMessage.text).where(ConversationMessage.action == "utter_kb_answer")
        ).all()
        agents = session.scalars(
            select(ConversationMessage.text).where(ConversationMessage.role == "agent")
        ).all()
        customers = session.scalars(
            select(ConversationMessage.text).where(ConversationMessage.role == "customer")
        ).all()
    assert all(any(text.startswith(answer) for answer in answers) for text in bot[:50])
    canned = set(material.canned.values())
    assert sum(text in canned for text in agents) > len(agents) / 3
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", text)) for text in customers) > len(customers) / 2
    assert _count(
        engine, ConversationMessage, ConversationMessage.text.like("%已为您创建工单 TK9%")
    )
    assert not _count(engine, ConversationMessage, ConversationMessage.text.like("%{%}%"))


def test_agents_work_with_tickets_and_handoffs(day: tuple[Engine, dict[str, object]]) -> None:
    engine, stats = day
    with session_factory(engine)() as session:
        numbers = session.scalars(select(Ticket.number)).all()
        packets = session.scalars(select(Handoff.packet)).all()
        agents = session.scalars(select(Agent).where(Agent.username == "li.na")).all()
        ratings = Counter(session.scalars(select(Ticket.satisfaction)).all())
        handoff_convs = session.scalars(
            select(Conversation).where(Conversation.outcome == "handoff")
        ).all()
    assert len(numbers) == stats["tickets"] and len(packets) == stats["handoffs"]
    assert all(TICKET_NUMBER.match(n) and n.startswith("TK9261206") for n in numbers)
    for packet in packets[:20]:
        HandoffPacket.model_validate(packet)
    assert len(agents) == 1 and not agents[0].active  # created disabled: no login
    rated = sum(n for score, n in ratings.items() if score is not None)
    assert ratings[5] > rated / 2 and ratings[1] > 0
    assert all(c.agents and c.first_response_seconds for c in handoff_convs)
    assert _count(engine, HandoffMessage) > 5 * len(packets)
    assert _count(engine, KbQuery, KbQuery.index_version == GENERATED) == stats["kb_queries"]


# ---------------------------------------------------------------------- QA and side effects
def test_qa_finds_something_but_not_everywhere(day: tuple[Engine, dict[str, object]]) -> None:
    engine, stats = day
    total = int(stats["conversations"])  # type: ignore[call-overload]
    assert _count(engine, Conversation, Conversation.scored_at.is_(None)) == 0
    with session_factory(engine)() as session:
        flagged = session.scalar(select(func.count(func.distinct(QaFinding.conversation_pk))))
        rules = set(session.scalars(select(QaFinding.rule_id)))
    assert flagged is not None and 0.05 * total <= flagged <= 0.5 * total
    assert {"bot_kb_rejected", "wait_not_kept", "customer_repeats"} <= rules
    red = _count(engine, Conversation, Conversation.red_cards > 0)
    assert 0 < red < 0.1 * total


def test_nothing_is_left_to_send_or_plan(
    day: tuple[Engine, dict[str, object]], policy: ServicePolicy, now: datetime
) -> None:
    engine, _ = day
    planner = Planner(engine, policy)
    for later in (timedelta(0), timedelta(days=2), timedelta(days=10)):
        assert planner.plan(now + later).total == 0
    assert _count(engine, Notice, Notice.status == NoticeStatus.pending) == 0
    assert _count(engine, Notice, Notice.audience == "staff") == 0
    assert _count(engine, DeskAlert) == 0
    assert _count(engine, Ticket, Ticket.sla_check_at.is_not(None)) == 0
    assert _count(engine, Ticket, Ticket.next_progress_at.is_not(None)) == 0
    assert _count(engine, FollowupTask, FollowupTask.done_at.is_(None)) == 0


def test_generated_rows_never_reach_the_knowledge_editors(
    day: tuple[Engine, dict[str, object]], policy: ServicePolicy
) -> None:
    """The review queue, `kefu kb report` and the audit's frequent problems skip a generated day."""
    engine, _ = day
    with session_factory(engine)() as session:
        misses = _count(engine, KbQuery, KbQuery.outcome == KbOutcome.no_answer)
        start, end = day_bounds(policy, DAY)
        assert misses > 0 and frequent_problems(session, start, end, 1) == []
    assert collect(engine) == 0 and _count(engine, ReviewItem) == 0
    assert KbLog(engine).self_service().questions == 0 and KbLog(engine).misses() == []


# ---------------------------------------------------------------------- its own database
def test_the_same_seed_gives_the_same_day(
    tmp_path: Path, policy: ServicePolicy, now: datetime
) -> None:
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
    first, second, other = (_fresh(tmp_path / name) for name in ("a", "b", "c"))
    try:
        for engine, seed in ((first, 7), (second, 7), (other, 8)):
            generate_day(engine, policy, DAY, 150, seed=seed, now=now)
        assert _transcripts(first) == _transcripts(second)
        assert _transcripts(first) != _transcripts(other)
    finally:
        for engine in (first, second, other):
            engine.dispose()


def test_today_holds_what_has_happened_and_a_day_can_be_replaced(
    engine: Engine, policy: ServicePolicy
) -> None:
    noon = datetime.combine(DAY, time(12), tzinfo=policy.zone).astimezone(UTC)
    stats = generate_day(engine, policy, DAY, 400, now=noon)
    assert 0 < stats["conversations"] < 0.5 * 400
    with session_factory(engine)() as session:
        last = session.scalar(select(func.max(Conversation.ended_at)))
    idle = timedelta(minutes=policy.supervision.conversation_idle_minutes)
    assert last is not None and last <= noon - idle
    assert generated_conversations(engine, policy, DAY) == stats["conversations"]
    assert generated_conversations(engine, policy, DAY + timedelta(days=1)) == 0
    assert delete_day(engine, policy, DAY) == stats["conversations"]
    for model in (Conversation, ConversationMessage, Handoff, HandoffMessage, Ticket,
                  TicketEvent, ServiceRecord, Notice, KbQuery, QaScore):  # fmt: skip
        assert _count(engine, model) == 0, model


def test_kefu_demo_day_loads_scores_and_refuses_a_second_load(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", env="local")
    settings.create_sqlite_folders()
    runner = CliRunner()
    with patch("bot.cli.demo_day.get_settings", return_value=settings):
        result = runner.invoke(main, ["demo-day", "--date", "2026-11-20", "--conversations", "60"])
        assert result.exit_code == 0, result.output
        assert "conversations" in result.output and "QA scored" in result.output
        again = runner.invoke(main, ["demo-day", "--date", "2026-11-20", "--conversations", "60"])
        assert again.exit_code != 0 and "--replace" in again.output
        redo = runner.invoke(
            main, ["demo-day", "--date", "2026-11-20", "--conversations", "60", "--replace"]
        )
        assert redo.exit_code == 0 and "Removed" in redo.output, redo.output
        bad = runner.invoke(main, ["demo-day", "--date", "6.12.2026"])
        assert bad.exit_code == 2 and "not a date" in bad.output
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            li_na = session.scalar(select(Agent).where(Agent.username == "li.na"))
        assert li_na is not None and li_na.active  # local runs: the demo login
        assert _count(engine, Conversation, Conversation.scored_at.is_(None)) == 0
    finally:
        engine.dispose()


def test_kefu_demo_loads_yesterday_and_today_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: ServicePolicy
) -> None:
    from bot.cli import demo_day

    monkeypatch.setattr(demo_day, "DEMO_CONVERSATIONS", 80)
    settings = Settings(var_dir=tmp_path / "var", env="local")
    engine = _fresh(tmp_path)
    now = datetime.combine(DAY, time(15), tzinfo=policy.zone).astimezone(UTC)
    try:
        lines = demo_day.load_demo_days(settings, engine, now=now)
        assert [line.split(":")[0] for line in lines] == [
            f"Demo day {DAY}",
            f"Demo day {DAY - timedelta(days=1)}",
        ]
        assert generated_conversations(engine, policy, DAY - timedelta(days=1)) > 70
        assert 0 < generated_conversations(engine, policy, DAY) < 60  # today until 15:00
        assert "already" in demo_day.load_demo_days(settings, engine, now=now)[0]
    finally:
        engine.dispose()


def test_the_demo_loads_just_after_midnight(tmp_path: Path, policy: ServicePolicy) -> None:
    """Yesterday's late conversations run into today: loading today first still works."""
    from bot.cli import demo_day

    settings = Settings(var_dir=tmp_path / "var", env="local")
    engine = _fresh(tmp_path)
    today = date(2026, 12, 8)  # the day whose yesterday ran into it (found by `make demo`)
    now = datetime.combine(today, time(1, 30), tzinfo=policy.zone).astimezone(UTC)
    try:
        lines = demo_day.load_demo_days(settings, engine, now=now)  # the demo's full day
        assert len(lines) == 2
        assert generated_conversations(engine, policy, today - timedelta(days=1)) > 1000
    finally:
        engine.dispose()


def test_the_benchmark_runs_small(tmp_path: Path) -> None:
    from bot.bench.supervision import run_supervision_benchmark

    settings = Settings(var_dir=tmp_path / "var")
    report = run_supervision_benchmark(settings, 150, 240, 3, postgres=False)
    assert report.path.exists() and report.path.parent == tmp_path / "var" / "bench"
    day, month = report.results["day"], report.results["month"]["sqlite"]
    assert day["scored"]["scored"] == day["conversations"] > 100
    assert month["live_overview_calls"] == 20 and month["conversation_rows_total"] > 0
    assert "sqlite: live_overview p95" in report.table()


def test_postgresql_stores_and_removes_a_day(
    postgres_url: str,  # noqa: F811
    policy: ServicePolicy,
    now: datetime,
) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        stats = generate_day(engine, policy, DAY, 120, now=now)
        with session_factory(engine)() as session:
            pairs = session.execute(
                select(Conversation.conversation_id, Ticket.customer_id).join(
                    Ticket, Ticket.id == Conversation.ticket_id
                )
            ).all()
        assert pairs and all(sender == customer for sender, customer in pairs)
        assert Planner(engine, policy).plan(now + timedelta(days=3)).total == 0
        assert delete_day(engine, policy, DAY) == stats["conversations"]
        assert _count(engine, Ticket) == 0 and _count(engine, KbQuery) == 0
    finally:
        engine.dispose()
