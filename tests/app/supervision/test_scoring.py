"""QA scoring: every check type fires and stays quiet, scores and red cards, alerts and emails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from bot.casework import CaseWork
from bot.core.db import (
    Agent,
    AgentRole,
    Conversation,
    ConversationMessage,
    DeskAlert,
    Notice,
    QaFinding,
    QaScore,
    make_engine,
    session_factory,
    upgrade,
)
from bot.core.settings import Settings
from bot.followups.delivery import Deliverer
from bot.handoff.rasa_api import RasaClient
from bot.service.outbox import STAFF
from bot.service.policy import ServicePolicy, load_policy
from bot.service.reading import normalise
from bot.supervision.checks import run_checks
from bot.supervision.facts import ConversationFacts, Message, load_facts
from bot.supervision.rules import QaRules, load_qa_rules
from bot.supervision.scoring import Inspector, ScoreReport, judge
from tests.app.followups.support import Inbox, add_agent
from tests.app.postgres import postgres_server, postgres_url  # noqa: F401

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
"""10:00 in Shanghai."""

Line = tuple[float, str, str]
"""(seconds after T0, `customer` | `bot` | `system` | `system:<username>` | `agent:<username>`,
text)."""


@pytest.fixture(scope="module")
def rules() -> QaRules:
    return load_qa_rules()


@pytest.fixture
def policy() -> ServicePolicy:
    return load_policy()


# ---------------------------------------------------------------- building conversations
def _role(who: str) -> tuple[str, str | None]:
    if who.startswith("agent:"):
        return "agent", who.removeprefix("agent:")
    if who.startswith("system:"):  # a desk notice in an agent's name ("客服 X 已接入")
        return "system", who.removeprefix("system:")
    return who, None


def make_facts(lines: Sequence[Line], **values: Any) -> ConversationFacts:
    """Facts of a conversation made of `lines` (no database)."""
    messages = []
    for n, (seconds, who, text) in enumerate(lines, start=1):
        role, author = _role(who)
        action = values.pop(f"action_{n}", None)
        messages.append(
            Message(n, T0 + timedelta(seconds=seconds), role, author, text, action, normalise(text))
        )
    agents = list(dict.fromkeys(m.author for m in messages if m.role == "agent" and m.author))
    defaults: dict[str, Any] = {
        "pk": 1,
        "conversation_id": "web:c1",
        "channel": "socketio",
        "language": "zh",
        "started_at": T0,
        "ended_at": messages[-1].at if messages else T0,
        "outcome": "handoff" if agents else "self_service",
        "messages": tuple(messages),
        "agents": tuple(agents),
        "bot_messages": sum(1 for m in messages if m.role == "bot"),
    }
    defaults.update(values)
    return ConversationFacts(**defaults)


def findings_of(rules: QaRules, facts: ConversationFacts, rule_id: str) -> dict[str, str]:
    """subject key -> detail of the findings of one rule."""
    rule = rules.by_id(rule_id)
    assert rule is not None, rule_id
    return {f.subject_key: f.detail for f in run_checks([rule], facts)}


AGENT_OPENING: list[Line] = [
    (0, "customer", "我的耳机左耳没声音了，要换货"),
    (2, "bot", "正在为您转接人工客服，请稍候。"),
    (60, "agent:li.na", "您好，我是客服李娜，很高兴为您服务。"),
]


# ---------------------------------------------------------------- each check type
def test_first_response_over_by_tier(rules: QaRules) -> None:
    lines: list[Line] = [(0, "customer", "转人工"), (200, "agent:li.na", "您好，我来帮您处理")]
    slow = make_facts(lines, handoff_requested_at=T0)
    assert "agent:li.na" in findings_of(rules, slow, "first_response_slow")
    quick = make_facts(
        [(0, "customer", "转人工"), (100, "agent:li.na", "您好")], handoff_requested_at=T0
    )
    assert findings_of(rules, quick, "first_response_slow") == {}
    urgent = make_facts(
        [(0, "customer", "转人工"), (100, "agent:li.na", "您好")],
        handoff_requested_at=T0,
        tier="urgent",
    )
    assert "urgent" in findings_of(rules, urgent, "first_response_slow")["agent:li.na"]
    assert findings_of(rules, make_facts(lines), "first_response_slow") == {}  # no handoff


def test_sla_missed_late_answer_or_none_past_due(rules: QaRules) -> None:
    due = T0 + timedelta(hours=1)
    late = make_facts(
        AGENT_OPENING, response_due_at=due, first_responded_at=due + timedelta(hours=1)
    )
    assert set(findings_of(rules, late, "sla_missed")) == {"agent:li.na"}
    on_time = make_facts(AGENT_OPENING, response_due_at=due, first_responded_at=T0)
    assert findings_of(rules, on_time, "sla_missed") == {}
    waiting = [(0, "customer", "转人工"), (1, "bot", "正在为您转接人工客服")]
    claimed = {"handoff_agent": "li.na", "response_due_at": due}
    pending = make_facts(waiting, checked_at=due + timedelta(minutes=1), **claimed)
    assert set(findings_of(rules, pending, "sla_missed")) == {"agent:li.na"}
    not_yet = make_facts(waiting, checked_at=due - timedelta(minutes=1), **claimed)
    assert findings_of(rules, not_yet, "sla_missed") == {}
    bot_only = [(0, "customer", "我要投诉"), (1, "bot", "已为您登记工单 TK202612060001")]
    desk_late = make_facts(bot_only, response_due_at=due, checked_at=due + timedelta(hours=5))
    assert findings_of(rules, desk_late, "sla_missed") == {}  # the reports' SLA, not the bot


def test_no_greeting(rules: QaRules) -> None:
    rude = make_facts([(0, "customer", "订单到哪了"), (30, "agent:li.na", "订单已经发货了")])
    assert "订单已经发货了" in findings_of(rules, rude, "no_greeting")["agent:li.na"]
    polite = make_facts(AGENT_OPENING)
    assert findings_of(rules, polite, "no_greeting") == {}
    english = make_facts([(0, "customer", "hi"), (30, "agent:amy", "Hello, this is Amy.")])
    assert findings_of(rules, english, "no_greeting") == {}
    assert rules.by_id("bot_no_greeting") is not None
    assert not rules.by_id("bot_no_greeting").enabled  # type: ignore[union-attr]


def test_no_closing_only_for_the_last_agent(rules: QaRules) -> None:
    lines = [
        *AGENT_OPENING,
        (90, "agent:li.na", "这个需要售后专员处理，我帮您转接"),
        (120, "agent:wang.lei", "您好，我是售后专员王磊，已经为您登记换货"),
        (150, "customer", "好的"),
        (160, "agent:wang.lei", "好的"),
    ]
    found = findings_of(rules, make_facts(lines), "no_closing")
    assert set(found) == {"agent:wang.lei"}
    closed = [*lines, (170, "agent:wang.lei", "请问还有什么可以帮您的吗？")]
    assert findings_of(rules, make_facts(closed), "no_closing") == {}


def test_forbidden_words_show_the_message(rules: QaRules) -> None:
    lines = [
        *AGENT_OPENING,
        (90, "customer", "你们怎么回事"),
        (100, "agent:li.na", "你有病吧，说了你也不懂"),
    ]
    facts = make_facts(lines)
    [finding] = [f for f in run_checks(rules.enabled, facts) if f.rule.id == "forbidden_words"]
    assert finding.message_id == 5 and finding.rule.red_card
    assert "你有病" in finding.detail and "说了你也不懂" in finding.detail
    washer = [*AGENT_OPENING, (90, "agent:li.na", "滚筒洗衣机的滚筒可以拆下来清洗")]
    assert findings_of(rules, make_facts(washer), "forbidden_words") == {}


def test_customer_repeats_is_charged_to_whoever_spoke_before(rules: QaRules) -> None:
    lines = [
        (0, "customer", "我要退货，订单号 KF202611200001"),
        (1, "bot", "请问您的订单号是？"),
        (20, "customer", "我刚说过了，KF202611200001"),
        (25, "agent:li.na", "您好，请提供一下订单号"),
        (40, "customer", "I already told you!"),
    ]
    assert set(findings_of(rules, make_facts(lines), "customer_repeats")) == {
        "bot",
        "agent:li.na",
    }
    calm = [
        (0, "customer", "我要退货"),
        (1, "bot", "请问您的订单号是？"),
        (5, "customer", "KF202611200001"),
    ]
    assert findings_of(rules, make_facts(calm), "customer_repeats") == {}
    joined = [
        (0, "customer", "转人工"),
        (1, "bot", "已为您转接人工客服，无需重复描述"),
        (30, "system:li.na", "客服 李娜 已接入，正在查看您的问题，请稍候。"),
        (40, "customer", "充电座指示灯不亮，我刚说过了"),
    ]
    claimed = make_facts(joined, handoff_agent="li.na")  # she claimed it; the desk said so
    assert set(findings_of(rules, claimed, "customer_repeats")) == {"agent:li.na"}


def test_slow_reply_without_apology(rules: QaRules) -> None:
    slow = [*AGENT_OPENING, (100, "customer", "换货要多久"), (400, "agent:li.na", "三天左右")]
    assert "agent:li.na" in findings_of(rules, make_facts(slow), "slow_reply_no_apology")
    sorry = [
        *AGENT_OPENING,
        (100, "customer", "换货要多久"),
        (400, "agent:li.na", "抱歉久等了，三天左右"),
    ]
    assert findings_of(rules, make_facts(sorry), "slow_reply_no_apology") == {}
    quick = [*AGENT_OPENING, (100, "customer", "换货要多久"), (160, "agent:li.na", "三天左右")]
    assert findings_of(rules, make_facts(quick), "slow_reply_no_apology") == {}


def test_wait_not_kept(rules: QaRules) -> None:
    promise = [*AGENT_OPENING, (100, "agent:li.na", "好的，请您稍等，我查一下物流")]
    broken = [
        *promise,
        (700, "customer", "还在吗？"),
        (1200, "agent:li.na", "抱歉久等了，已经查到"),
    ]
    assert "agent:li.na" in findings_of(rules, make_facts(broken), "wait_not_kept")
    kept = [*promise, (400, "agent:li.na", "查到了，包裹明天送达")]
    assert findings_of(rules, make_facts(kept), "wait_not_kept") == {}
    left = [*promise, (130, "customer", "好的")]
    assert "agent:li.na" in findings_of(rules, make_facts(left), "wait_not_kept")  # never came back
    english = [
        (0, "customer", "where is my parcel"),
        (30, "agent:amy", "Hello, one moment please, let me check."),
        (2000, "agent:amy", "It arrives tomorrow."),
    ]
    assert "agent:amy" in findings_of(rules, make_facts(english, language="en"), "wait_not_kept")


def test_no_rating_invitation(rules: QaRules) -> None:
    done = [*AGENT_OPENING, (200, "agent:li.na", "已为您登记换货，请问还有什么可以帮您？")]
    assert "agent:li.na" in findings_of(rules, make_facts(done), "no_rating_invitation")
    asked = [
        *done,
        (
            210,
            "agent:li.na",
            "本次服务已完成，感谢您的耐心。请为本次服务打分（1-5 分，5 分最满意）：",
        ),
    ]
    assert findings_of(rules, make_facts(asked), "no_rating_invitation") == {}
    notice = [*done, (300, "system", "您对工单 TK202612060001 的处理满意吗？请点选 1-5 分。")]
    assert findings_of(rules, make_facts(notice), "no_rating_invitation") == {}
    rated = make_facts(done, rating=5)
    assert findings_of(rules, rated, "no_rating_invitation") == {}
    bot_only = make_facts([(0, "customer", "退货政策"), (1, "bot", "签收后 7 天内可以无理由退货")])
    assert findings_of(rules, bot_only, "no_rating_invitation") == {}


def test_negative_end(rules: QaRules) -> None:
    angry = [
        (0, "customer", "怎么申请退款"),
        (1, "bot", "抱歉，我没有理解您的意思"),
        (10, "customer", "什么破机器人，一点用都没有"),
    ]
    assert set(findings_of(rules, make_facts(angry), "negative_end")) == {"bot"}
    fine = [
        (0, "customer", "怎么申请退款"),
        (1, "bot", "在 我的订单 > 申请售后 中提交"),
        (9, "customer", "好的谢谢"),
    ]
    assert findings_of(rules, make_facts(fine), "negative_end") == {}


def test_handoff_no_human_reply(rules: QaRules) -> None:
    waiting = [
        (0, "customer", "转人工"),
        (1, "bot", "正在为您转接人工客服"),
        (900, "customer", "人呢？？"),
    ]
    nobody = make_facts(waiting, handoff_requested_at=T0)
    assert set(findings_of(rules, nobody, "handoff_no_human_reply")) == {"bot"}
    claimed = make_facts(waiting, handoff_requested_at=T0, handoff_agent="li.na")
    assert set(findings_of(rules, claimed, "handoff_no_human_reply")) == {"agent:li.na"}
    answered = make_facts(AGENT_OPENING, handoff_requested_at=T0)
    assert findings_of(rules, answered, "handoff_no_human_reply") == {}
    gave_up = make_facts(waiting[:2], handoff_requested_at=T0)  # left after a second
    assert findings_of(rules, gave_up, "handoff_no_human_reply") == {}


def test_waits_for_a_person_count_from_when_the_team_is_at_work(
    engine: Engine, rules: QaRules, policy: ServicePolicy, team: dict[str, int]
) -> None:
    """A customer who asks at 23:00 is answered at 09:01: not the morning shift's slow reply."""
    night = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai; agents start at 09:00
    morning = (datetime(2026, 12, 6, 1, 1, tzinfo=UTC) - night).total_seconds()  # 09:01
    lines: list[Line] = [
        (-(T0 - night).total_seconds(), "customer", "转人工"),
        (-(T0 - night).total_seconds() + 1, "bot", "正在为您转接人工客服"),
        (morning - (T0 - night).total_seconds(), "agent:li.na", "您好，久等了，我是客服李娜"),
    ]
    facts = make_facts(lines, handoff_requested_at=night, started_at=night)
    assert findings_of(rules, facts, "first_response_slow")  # on the clock: 10 hours
    pk = add_conversation(engine, lines, handoff_requested_at=night)
    Inspector(engine, rules, policy).score_due(T0 + timedelta(hours=1))
    with session_factory(engine)() as session:
        found = set(
            session.scalars(select(QaFinding.rule_id).where(QaFinding.conversation_pk == pk))
        )
    assert not found & {"first_response_slow", "handoff_no_human_reply"}, found


def test_transfers_over_charges_those_who_passed_on(rules: QaRules) -> None:
    lines = [
        *AGENT_OPENING,
        (90, "agent:li.na", "我帮您转给售后"),
        (120, "agent:wang.lei", "您好，我是售后，这个要转给物流组"),
        (150, "agent:chen.jie", "您好，我是物流组陈洁"),
    ]
    assert set(findings_of(rules, make_facts(lines, transfers=2), "transfers_over")) == {
        "agent:li.na",
        "agent:wang.lei",
    }
    assert findings_of(rules, make_facts(lines[:4], transfers=1), "transfers_over") == {}


def test_bot_fallbacks_and_kb_rejections(rules: QaRules) -> None:
    lines: list[Line] = [
        (0, "customer", "asdf"),
        (1, "bot", "抱歉，我没听懂"),
        (5, "customer", "qwer"),
        (6, "bot", "抱歉，我没听懂"),
        (9, "customer", "zxcv"),
        (10, "bot", "抱歉，我没听懂"),
    ]
    many = make_facts(
        lines,
        fallbacks=3,  # stored as the recorder stores them: the response name first
        action_2="utter_ask_rephrase",
        action_4="utter_default",
        action_6="utter_kb_clarify",
    )
    [finding] = [f for f in run_checks(rules.enabled, many) if f.rule.id == "bot_fallbacks"]
    assert finding.message_id == 6
    assert findings_of(rules, make_facts(lines, fallbacks=2), "bot_fallbacks") == {}
    rejected = make_facts(lines[:2], kb_rejected=True)
    assert set(findings_of(rules, rejected, "bot_kb_rejected")) == {"bot"}
    assert findings_of(rules, make_facts(lines[:2]), "bot_kb_rejected") == {}


def test_a_good_agent_conversation_scores_100(rules: QaRules) -> None:
    lines = [
        (0, "customer", "您好，耳机左耳没声音"),
        (1, "bot", "正在为您转接人工客服，请稍候。"),
        (40, "agent:li.na", "您好，我是客服李娜，很高兴为您服务。"),
        (60, "customer", "订单号 KF202611200001"),
        (80, "agent:li.na", "好的，请您稍等，我查一下"),
        (200, "agent:li.na", "感谢您的耐心等待，已为您登记换货，新耳机 1-2 个工作日内发出"),
        (230, "customer", "好的，谢谢"),
        (
            240,
            "agent:li.na",
            "本次服务已完成，感谢您的耐心。请为本次服务打分（1-5 分，5 分最满意）：",
        ),
    ]
    verdicts = judge(make_facts(lines, handoff_requested_at=T0), rules)
    assert [(v.key, v.score, v.red_card) for v in verdicts] == [
        ("bot", 100.0, False),
        ("agent:li.na", 100.0, False),
    ]


# ---------------------------------------------------------------- the database
def add_conversation(
    engine: Engine, lines: Sequence[Line], *, ended: bool = True, **values: Any
) -> int:
    """A recorded conversation made of `lines`; its pk."""
    start = T0 + timedelta(seconds=values.pop("offset", 0))
    roles = [_role(who) for _, who, _ in lines]
    agents = list(dict.fromkeys(author for role, author in roles if role == "agent" and author))
    last = start + timedelta(seconds=lines[-1][0]) if lines else start
    columns: dict[str, Any] = {
        "conversation_id": f"web:{start.timestamp()}:{len(lines)}",
        "channel": "socketio",
        "language": "zh",
        "source": "live",
        "started_at": start,
        "last_message_at": last,
        "ended_at": last if ended else None,
        "customer_messages": sum(1 for role, _ in roles if role == "customer"),
        "bot_messages": sum(1 for role, _ in roles if role == "bot"),
        "agent_messages": sum(1 for role, _ in roles if role == "agent"),
        "agents": agents,
        "outcome": "handoff" if agents else "self_service",
    }
    columns.update(values)
    with session_factory(engine).begin() as session:
        conversation = Conversation(**columns)
        session.add(conversation)
        session.flush()
        for n, ((seconds, _, text), (role, author)) in enumerate(zip(lines, roles, strict=True)):
            session.add(
                ConversationMessage(
                    conversation_pk=conversation.id,
                    at=start + timedelta(seconds=seconds),
                    role=role,
                    author=author,
                    text=text,
                    source_key=f"test:{conversation.id}:{n}",
                )
            )
        return conversation.id


RUDE: list[Line] = [
    *AGENT_OPENING,
    (90, "customer", "怎么还没好"),
    (100, "agent:li.na", "有完没完，你去投诉吧"),
    (130, "customer", "太差了，我要投诉"),
]


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def team(engine: Engine) -> dict[str, int]:
    """The default supervisor, a second supervisor, an agent under each, an admin."""
    ids = {
        "supervisor": add_agent(
            engine, "supervisor", AgentRole.supervisor, email="sup@example.com"
        ),
        "boss2": add_agent(engine, "boss2", AgentRole.supervisor, email="boss2@example.com"),
        "admin": add_agent(engine, "admin", AgentRole.admin),
    }
    ids["li.na"] = add_agent(engine, "li.na", supervisor_id=ids["boss2"])
    ids["wang.lei"] = add_agent(engine, "wang.lei")
    return ids


def test_scores_findings_and_conversation_columns(
    engine: Engine, rules: QaRules, policy: ServicePolicy, team: dict[str, int]
) -> None:
    good = add_conversation(
        engine, [(0, "customer", "退货政策"), (1, "bot", "签收后 7 天内可以无理由退货")]
    )
    rude = add_conversation(engine, RUDE, handoff_requested_at=T0, offset=10)
    open_one = add_conversation(engine, RUDE, ended=False, offset=20)
    report = Inspector(engine, rules, policy).score_due(T0 + timedelta(hours=1))
    assert report == ScoreReport(scored=2, subjects=3, findings=report.findings, red_cards=1)
    with session_factory(engine)() as session:
        scores = {(s.conversation_pk, s.subject_key): s for s in session.scalars(select(QaScore))}
        assert scores[(good, "bot")].score == 100 and not scores[(good, "bot")].red_card
        agent = scores[(rude, "agent:li.na")]
        assert agent.red_card and agent.agent_id == team["li.na"] and agent.score <= 50
        rows = session.scalars(select(QaFinding).where(QaFinding.score_id == agent.id)).all()
        assert {f.rule_id for f in rows} >= {
            "forbidden_words",
            "negative_end",
            "no_rating_invitation",
        }
        fatal = next(f for f in rows if f.rule_id == "forbidden_words")
        assert fatal.red_card and fatal.severity == "fatal" and fatal.appeal_status == "none"
        evidence = session.get(ConversationMessage, fatal.message_id)
        assert evidence is not None and "有完没完" in evidence.text
        assert agent.points == sum(f.points for f in rows) and agent.findings == len(rows)
        conversation = session.get(Conversation, rude)
        assert conversation is not None
        assert conversation.agent_score == agent.score and conversation.red_cards == 1
        assert conversation.bot_score == 100 and conversation.scored_at is not None
        assert session.get(Conversation, open_one).scored_at is None  # type: ignore[union-attr]


def test_a_red_card_alerts_and_emails_the_supervisor_once(
    engine: Engine, rules: QaRules, policy: ServicePolicy, team: dict[str, int]
) -> None:
    rude = add_conversation(engine, RUDE)
    generated = add_conversation(engine, RUDE, source="generated", offset=5)
    inspector = Inspector(engine, rules, policy, desk_url="http://desk.example/")
    now = T0 + timedelta(hours=1)
    assert inspector.score_due(now).red_cards == 2
    assert inspector.score_due(now + timedelta(minutes=1)) == ScoreReport()  # once only
    with session_factory(engine)() as session:
        [alert] = session.scalars(select(DeskAlert)).all()
        [notice] = session.scalars(select(Notice)).all()
        score_id = session.scalar(
            select(QaScore.id).where(
                QaScore.conversation_pk == rude, QaScore.subject_key == "agent:li.na"
            )
        )
    assert alert.key == notice.key == f"qa_red_card:{score_id}"
    assert (alert.kind, alert.severity, alert.ticket_id) == ("qa_red_card", "critical", None)
    assert alert.agent_id == team["boss2"]  # li.na's own supervisor
    assert f"http://desk.example/desk/conversations/{rude}" in alert.text
    assert "质检红牌" in alert.text and "QA red card" in alert.text and "li.na" in alert.text
    assert f"#{generated}" not in alert.text
    assert (notice.audience, notice.recipient_agent_id, notice.ticket_id) == (
        STAFF,
        team["boss2"],
        None,
    )
    assert notice.text == alert.text and notice.due_at == now


def test_the_default_supervisor_gets_red_cards_of_agents_without_one_and_of_the_bot(
    engine: Engine, rules: QaRules, policy: ServicePolicy, team: dict[str, int]
) -> None:
    lines: list[Line] = [
        (0, "customer", "电池鼓包了"),
        (1, "bot", "正在为您转接人工客服"),
        (30, "agent:wang.lei", "您好，我是王磊。这个不归我管，你自己去找厂家"),
        (60, "customer", "垃圾，气死了"),
    ]
    pk = add_conversation(engine, lines)
    lonely = [
        (0, "customer", "转人工"),
        (1, "bot", "正在为您转接人工客服"),
        (1300, "customer", "人呢？太差了"),
    ]
    waiting = add_conversation(engine, lonely, handoff_requested_at=T0, offset=100)
    bot_rules = QaRules(
        version=1,
        red_card_below=85,
        rules=tuple(
            r for r in rules.rules if r.id in ("handoff_no_human_reply", "forbidden_words")
        ),
    )
    report = Inspector(engine, bot_rules, policy).score_due(T0 + timedelta(hours=1))
    assert report.red_cards == 2
    with session_factory(engine)() as session:
        alerts = {a.text.split("\n")[1]: a for a in session.scalars(select(DeskAlert))}
    assert all(a.agent_id == team["supervisor"] for a in alerts.values())
    assert any(f"#{pk} (agent wang.lei)" in text for text in alerts)
    assert any(f"#{waiting} (the bot) scored 80: score below 85" in text for text in alerts)


def test_two_inspectors_never_score_a_conversation_twice(
    engine: Engine, rules: QaRules, policy: ServicePolicy
) -> None:
    for n in range(40):
        add_conversation(engine, RUDE, offset=n * 300)
    inspectors = [Inspector(engine, rules, policy, batch_size=7) for _ in range(2)]

    async def both() -> list[ScoreReport]:
        now = T0 + timedelta(hours=5)
        return list(
            await asyncio.gather(*(asyncio.to_thread(i.score_due, now, 100) for i in inspectors))
        )

    reports = asyncio.run(both())
    assert sum(r.scored for r in reports) == 40
    assert _count(engine, QaScore) == 40 * 2  # the bot and li.na, once each
    assert _count(engine, Conversation, Conversation.scored_at.is_(None)) == 0


def test_facts_load_ticket_handoff_and_kb_feedback_in_batches(engine: Engine) -> None:
    pk = add_conversation(engine, AGENT_OPENING, handoff_requested_at=T0, transfers=0)
    [facts] = load_facts(session_factory(engine)(), [pk, 999_999])
    assert facts.pk == pk and facts.agents == ("li.na",) and facts.tier == "normal"
    assert [m.role for m in facts.messages] == ["customer", "bot", "agent"]
    assert facts.subjects() == ["bot", "agent:li.na"] and not facts.kb_rejected


# ---------------------------------------------------------------- delivery and the desk


def test_the_red_card_email_reaches_the_supervisor_without_a_ticket(
    engine: Engine,
    rules: QaRules,
    policy: ServicePolicy,
    team: dict[str, int],
    inbox: Inbox,
    tmp_path: Path,
) -> None:
    pk = add_conversation(engine, RUDE)
    now = T0 + timedelta(hours=1)
    Inspector(engine, rules, policy).score_due(now)
    settings = Settings(
        var_dir=tmp_path / "var",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,  # type: ignore[attr-defined]
    )

    async def deliver() -> list[Any]:
        deliverer = Deliverer(
            settings, engine, policy, RasaClient.from_settings(settings), worker_id="test"
        )
        try:
            return await deliverer.deliver_due(now)
        finally:
            await deliverer.close()

    [done] = asyncio.run(deliver())
    assert (done.kind, done.status, done.via, done.ticket) == ("qa_red_card", "sent", "email", None)
    [(to, message)] = inbox.messages
    assert to == ["boss2@example.com"]
    assert "质检红牌" in str(message["Subject"])
    assert f"/desk/conversations/{pk}" in message.get_content()


def test_the_red_card_alert_shows_to_its_supervisor_and_admins_and_goes_live(
    engine: Engine, rules: QaRules, policy: ServicePolicy, team: dict[str, int]
) -> None:
    from bot.handoff.hub import DeskHub
    from bot.web.live import TicketWatcher

    cases = CaseWork(engine, policy)
    watcher = TicketWatcher(engine, cases, DeskHub())
    watcher.start(T0)
    add_conversation(engine, RUDE)
    Inspector(engine, rules, policy).score_due(T0 + timedelta(hours=1))
    with session_factory(engine)() as session:
        viewers = {a.username: a for a in session.scalars(select(Agent))}
    kinds = {name: [a["kind"] for a in cases.alerts(viewers[name])] for name in viewers}
    assert kinds["boss2"] == kinds["admin"] == ["qa_red_card"]
    assert kinds["li.na"] == kinds["wang.lei"] == []
    [payload] = watcher.poll(T0 + timedelta(hours=1))
    assert payload["type"] == "alert" and payload["alert"]["kind"] == "qa_red_card"
    assert payload["alert"]["ticket"] is None


# ---------------------------------------------------------------- speed
def test_scoring_is_batched_and_fast(engine: Engine, rules: QaRules, policy: ServicePolicy) -> None:
    """2,000 conversations of 10-12 messages score in a few seconds (10,000: well under 30 s)."""
    count = 2000
    start = T0 - timedelta(days=1)
    conversations = [
        {
            "conversation_id": f"web:bulk{n}",
            "channel": "socketio",
            "language": "zh",
            "source": "generated",
            "started_at": start + timedelta(seconds=20 * n),
            "last_message_at": start + timedelta(seconds=20 * n + 600),
            "ended_at": start + timedelta(seconds=20 * n + 600),
            "bot_messages": 2,
            "agent_messages": 5 if n % 3 == 0 else 0,
            "agents": ["li.na"] if n % 3 == 0 else [],
            "handoff_requested_at": start + timedelta(seconds=20 * n + 30) if n % 3 == 0 else None,
            "outcome": "handoff" if n % 3 == 0 else "self_service",
        }
        for n in range(count)
    ]
    with session_factory(engine).begin() as session:
        session.execute(insert(Conversation), conversations)
        pks = list(session.scalars(select(Conversation.id).order_by(Conversation.id)))
        rows = []
        for n, pk in enumerate(pks):
            lines = AGENT_OPENING + RUDE[3:] if n % 3 == 0 else AGENT_OPENING[:2]
            lines = [*lines, *[(300 + i, "customer", f"还有一个问题 {i}") for i in range(6)]]
            for i, (seconds, who, text) in enumerate(lines):
                role, author = _role(who)
                rows.append(
                    {
                        "conversation_pk": pk,
                        "at": conversations[n]["started_at"] + timedelta(seconds=seconds),
                        "role": role,
                        "author": author,
                        "text": text,
                        "source_key": f"bulk:{pk}:{i}",
                    }
                )
        session.execute(insert(ConversationMessage), rows)
    inspector = Inspector(engine, rules, policy)
    began = time.perf_counter()
    total = ScoreReport()
    while True:
        report = inspector.score_due(T0, limit=500)
        if not report.scored:
            break
        total += report
    elapsed = time.perf_counter() - began
    assert total.scored == count
    assert total.red_cards == len(range(0, count, 3))
    assert _count(engine, DeskAlert) == 0  # generated: scored, nobody alerted
    assert elapsed < 6, f"{count} conversations took {elapsed:.1f} s"


def test_the_bots_please_wait_for_a_person_is_left_to_the_handoff_rule(rules: QaRules) -> None:
    lines: list[Line] = [
        (0, "customer", "转人工"),
        (1, "bot", "正在为您转接人工客服，请稍候。"),
        (1300, "customer", "人呢"),
    ]
    facts = make_facts(lines, handoff_requested_at=T0)
    assert {f.rule.id for f in run_checks(rules.enabled, facts)} == {"handoff_no_human_reply"}
    no_handoff = make_facts(lines)  # the bot promised something else and never came back
    assert set(findings_of(rules, no_handoff, "wait_not_kept")) == {"bot"}


def test_two_inspectors_on_postgresql_score_each_conversation_once(
    postgres_url: str,  # noqa: F811
    rules: QaRules,
    policy: ServicePolicy,
) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        add_agent(engine, "supervisor", AgentRole.supervisor, email="sup@example.com")
        add_agent(engine, "li.na")
        for n in range(30):
            add_conversation(engine, RUDE, offset=n * 300)
        inspectors = [Inspector(engine, rules, policy, batch_size=4) for _ in range(2)]

        async def both() -> list[ScoreReport]:
            now = T0 + timedelta(hours=5)
            return list(
                await asyncio.gather(
                    *(asyncio.to_thread(i.score_due, now, 100) for i in inspectors)
                )
            )

        reports = asyncio.run(both())
        assert sum(r.scored for r in reports) == 30
        assert sum(r.red_cards for r in reports) == 30
        assert _count(engine, QaScore) == 60
        assert _count(engine, DeskAlert) == _count(engine, Notice) == 30
    finally:
        engine.dispose()
