"""Findings at the desk: who sees what, appeals, decisions, rescoring, the drill-down page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from bot.core.db import Agent, AgentRole, Conversation, DeskAlert, QaScore, session_factory
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.appeals import QualityDesk
from bot.supervision.errors import QaConflict, QaError, QaForbidden, QaNotFound
from bot.supervision.rules import QaRules, load_qa_rules
from bot.supervision.scoring import Inspector
from tests.app.supervision.test_scoring import (
    AGENT_OPENING,
    RUDE,
    T0,
    Line,
    add_agent,
    add_conversation,
)

NOW = T0 + timedelta(hours=2)

SLOW: list[Line] = [
    *AGENT_OPENING,
    (100, "customer", "换货要多久"),
    (400, "agent:li.na", "三天左右"),
    (410, "agent:li.na", "具体时间我帮您转给售后同事确认"),
    (430, "agent:wang.lei", "您好，我是售后王磊"),
    (440, "customer", "到底要多久"),
    (700, "agent:wang.lei", "三天左右"),
    (720, "agent:wang.lei", "请问还有什么可以帮您？请为本次服务打分"),
]


@pytest.fixture(scope="module")
def rules() -> QaRules:
    return load_qa_rules()


@pytest.fixture
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def people(engine: Engine) -> dict[str, Agent]:
    add_agent(engine, "supervisor", AgentRole.supervisor, email="sup@example.com")
    add_agent(engine, "admin", AgentRole.admin)
    add_agent(engine, "editor", AgentRole.editor)
    add_agent(engine, "li.na")
    add_agent(engine, "wang.lei")
    with session_factory(engine)() as session:
        return {a.username: a for a in session.scalars(select(Agent))}


@pytest.fixture
def scored(
    engine: Engine, rules: QaRules, policy: ServicePolicy, people: dict[str, Agent]
) -> dict[str, int]:
    """A rude conversation of li.na (red card) and a slow one of li.na and wang.lei, scored."""
    pks = {
        "rude": add_conversation(engine, RUDE),
        "slow": add_conversation(engine, SLOW, offset=600),
    }
    Inspector(engine, rules, policy).score_due(T0 + timedelta(hours=1))
    return pks


def desk(engine: Engine, rules: QaRules) -> QualityDesk:
    return QualityDesk(engine, rules, clock=lambda: NOW)


def test_agents_see_only_their_own_findings_overseers_all_editors_none(
    engine: Engine, rules: QaRules, people: dict[str, Agent], scored: dict[str, int]
) -> None:
    qa = desk(engine, rules)
    mine = qa.findings(people["li.na"])
    assert mine and {f["agent"] for f in mine} == {"li.na"}
    assert qa.findings(people["li.na"], agent="wang.lei") == []
    theirs = qa.findings(people["wang.lei"])
    assert theirs and {f["agent"] for f in theirs} == {"wang.lei"}
    everything = qa.findings(people["supervisor"])
    assert {f["subject_key"] for f in everything} >= {"agent:li.na", "agent:wang.lei"}
    assert qa.findings(people["admin"], agent="wang.lei") == theirs
    with pytest.raises(QaForbidden):
        qa.findings(people["editor"])
    fatal = qa.findings(people["supervisor"], rule="forbidden_words")
    [view] = fatal
    assert view["conversation_link"] == f"/desk/conversations/{scored['rude']}"
    assert view["red_card"] and view["severity"] == "fatal" and "有完没完" in view["message_text"]
    assert set(view) >= {
        "id", "conversation_pk", "subject_key", "agent", "rule_id", "title", "points",
        "severity", "detail", "created_at", "appeal_status", "appeal_text", "appealed_by",
        "decided_by", "decision_note", "message_text",
    }  # fmt: skip
    with pytest.raises(QaError):
        qa.findings(people["supervisor"], status="maybe")
    assert qa.findings(people["supervisor"], since=NOW) == []


def test_appeal_then_overturn_restores_the_score_and_lifts_the_red_card(
    engine: Engine, rules: QaRules, people: dict[str, Agent], scored: dict[str, int]
) -> None:
    qa = desk(engine, rules)
    [fatal] = qa.findings(people["li.na"], rule="forbidden_words")
    with pytest.raises(QaNotFound):
        qa.appeal(people["wang.lei"], fatal["id"], "不是我说的")  # not theirs: not even there
    with pytest.raises(QaForbidden):
        qa.appeal(people["supervisor"], fatal["id"], "代为申诉")  # sees it, but it is li.na's
    with pytest.raises(QaError):
        qa.appeal(people["li.na"], fatal["id"], "   ")
    with pytest.raises(QaError):
        qa.appeal(people["li.na"], fatal["id"], "长" * 1001)
    appealed = qa.appeal(people["li.na"], fatal["id"], "客户先辱骂，我引用的是客户原话")
    assert (appealed["appeal_status"], appealed["appealed_by"]) == ("pending", "li.na")
    with pytest.raises(QaConflict):
        qa.appeal(people["li.na"], fatal["id"], "再申诉一次")
    assert [f["id"] for f in qa.findings(people["supervisor"], status="pending")] == [fatal["id"]]

    with pytest.raises(QaForbidden):
        qa.decide(people["li.na"], fatal["id"], "overturned", "自己批准")
    with pytest.raises(QaError):
        qa.decide(people["supervisor"], fatal["id"], "maybe", "")
    with session_factory(engine)() as session:
        before = session.scalar(
            select(QaScore.score).where(
                QaScore.conversation_pk == scored["rude"], QaScore.subject_key == "agent:li.na"
            )
        )
    decided = qa.decide(people["supervisor"], fatal["id"], "overturned", "查看记录属实，撤销")
    assert (decided["appeal_status"], decided["decided_by"]) == ("overturned", "supervisor")
    assert decided["decision_note"] == "查看记录属实，撤销"
    with pytest.raises(QaConflict):
        qa.decide(people["admin"], fatal["id"], "upheld", "")
    with session_factory(engine)() as session:
        score = session.scalars(
            select(QaScore).where(
                QaScore.conversation_pk == scored["rude"], QaScore.subject_key == "agent:li.na"
            )
        ).one()
        conversation = session.get(Conversation, scored["rude"])
        [alert] = session.scalars(select(DeskAlert).where(DeskAlert.kind == "qa_red_card")).all()
    assert before is not None and score.score == before + fatal["points"]
    assert score.score >= rules.red_card_below and not score.red_card
    assert conversation is not None and conversation.red_cards == 0
    assert conversation.agent_score == score.score
    assert (alert.acknowledged_at, alert.acknowledged_by) == (NOW, "qa-appeal")


def test_an_upheld_appeal_changes_nothing(
    engine: Engine, rules: QaRules, people: dict[str, Agent], scored: dict[str, int]
) -> None:
    qa = desk(engine, rules)
    [slow] = qa.findings(people["wang.lei"], rule="slow_reply_no_apology")
    qa.appeal(people["wang.lei"], slow["id"], "系统卡顿，消息发不出去")
    upheld = qa.decide(people["admin"], slow["id"], "upheld", None)
    assert upheld["appeal_status"] == "upheld" and upheld["decision_note"] is None
    with session_factory(engine)() as session:
        score = session.scalars(
            select(QaScore).where(QaScore.subject_key == "agent:wang.lei")
        ).one()
    assert score.score == 100 - score.points and score.points >= slow["points"]


def test_the_conversation_page_for_overseers_and_the_agents_who_wrote(
    engine: Engine, rules: QaRules, people: dict[str, Agent], scored: dict[str, int]
) -> None:
    qa = desk(engine, rules)
    page = qa.conversation(people["supervisor"], scored["slow"])
    assert page["pk"] == scored["slow"] and page["link"] == f"/desk/conversations/{scored['slow']}"
    assert [m["role"] for m in page["transcript"]][:3] == ["customer", "bot", "agent"]
    assert {s["subject_key"] for s in page["scores"]} == {"bot", "agent:li.na", "agent:wang.lei"}
    assert page["ticket"] is None and page["handoff"] is None
    flagged = [m for m in page["transcript"] if m["findings"]]
    shown = {f["id"] for f in page["findings"]}
    assert flagged and all(set(m["findings"]) <= shown for m in flagged)

    mine = qa.conversation(people["li.na"], scored["slow"])
    assert {s["subject_key"] for s in mine["scores"]} == {"bot", "agent:li.na"}
    assert all(f["subject_key"] in ("bot", "agent:li.na") for f in mine["findings"])
    with pytest.raises(QaNotFound):
        qa.conversation(people["wang.lei"], scored["rude"])  # did not write in it
    with pytest.raises(QaNotFound):
        qa.conversation(people["supervisor"], 999_999)
    with pytest.raises(QaForbidden):
        qa.conversation(people["editor"], scored["rude"])
