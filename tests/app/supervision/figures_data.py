"""A hand-built day of conversations, tickets, QA scores and KB queries (figures tests).

The day is 2026-12-06 in Asia/Shanghai (UTC+8): 2026-12-05T16:00Z to 2026-12-06T16:00Z.
Every expected figure in test_metrics.py is worked out by hand from these rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    AgentRole,
    ComplaintGrade,
    Conversation,
    DeskAlert,
    Handoff,
    HandoffStatus,
    KbFeedback,
    KbOutcome,
    KbQuery,
    QaFinding,
    QaScore,
    ServiceRecord,
    Ticket,
    TicketStatus,
    UrgencyTier,
    session_factory,
)

DAY = date(2026, 12, 6)
LOCAL = timedelta(hours=8)
_numbers = count(1)


def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """A UTC instant given as Shanghai wall-clock time on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - LOCAL


def z(text: str) -> datetime:
    """A UTC instant from "2026-12-06T03:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def agent(session: Session, username: str, name: str, **values: Any) -> Agent:
    """A desk account (role agent unless given)."""
    row = Agent(
        username=username,
        display_name=name,
        role=values.pop("role", AgentRole.agent),
        password_hash="x",
        active=values.pop("active", True),
        created_at=z("2026-01-01T00:00"),
        **values,
    )
    session.add(row)
    session.flush()
    return row


def record(session: Session, **values: Any) -> ServiceRecord:
    """A service record (created long before the day unless given)."""
    fields: dict[str, Any] = {
        "customer_id": "cust",
        "channel": "wechat",
        "language": "zh",
        "category": "consultation",
        "impacts": [],
        "need_points": [],
        "preferences": {},
        "special_requests": [],
        "skipped": [],
        "urgency": UrgencyTier.normal,
        "classification_reasons": [],
        "correction_rounds": 0,
        "completeness": 1.0,
        "created_at": z("2026-11-01T00:00"),
        "confirmed_at": None,
    }
    fields.update(values)
    row = ServiceRecord(**fields)
    session.add(row)
    session.flush()
    return row


def ticket(session: Session, **values: Any) -> Ticket:
    """A ticket (with its own record); `due_at` defaults to the response deadline."""
    created = values.pop("created_at")
    fields: dict[str, Any] = {
        "number": f"TK20261206{next(_numbers):04d}",
        "record_id": record(session).id,
        "customer_id": values.pop("customer_id", "cust"),
        "channel": "wechat",
        "language": "zh",
        "status": TicketStatus.in_progress,
        "urgency": UrgencyTier.normal,
        "complaint_grade": None,
        "created_at": created,
        "updated_at": created,
        "resolved_at": None,
        "satisfaction": None,
        "summary": "s",
    }
    fields.update(values)
    fields.setdefault("due_at", fields.get("response_due_at") or created)
    row = Ticket(**fields)
    session.add(row)
    session.flush()
    return row


def conversation(session: Session, started: datetime, **values: Any) -> Conversation:
    """A recorded conversation from `started` (ended 10 minutes later if it has an outcome)."""
    fields: dict[str, Any] = {
        "conversation_id": f"cust-{next(_numbers)}",
        "channel": "wechat",
        "language": "zh",
        "source": "live",
        "started_at": started,
        "last_message_at": started + timedelta(minutes=10),
        "agents": [],
    }
    fields.update(values)
    if fields.get("outcome") is not None:
        fields.setdefault("ended_at", started + timedelta(minutes=10))
    row = Conversation(**fields)
    session.add(row)
    session.flush()
    return row


def score(
    session: Session, conv: Conversation, subject: str, value: float, **values: Any
) -> QaScore:
    """A QA score of one subject of a conversation."""
    row = QaScore(
        conversation_pk=conv.id,
        subject_key=subject,
        score=value,
        points=int(100 - value),
        findings=values.pop("findings", 0),
        red_card=values.pop("red_card", False),
        scored_at=conv.started_at + timedelta(hours=1),
        **values,
    )
    session.add(row)
    session.flush()
    return row


def finding(session: Session, scored: QaScore, rule_id: str, **values: Any) -> QaFinding:
    """A QA finding of a score."""
    row = QaFinding(
        conversation_pk=scored.conversation_pk,
        score_id=scored.id,
        subject_key=scored.subject_key,
        agent_id=scored.agent_id,
        rule_id=rule_id,
        title=values.pop("title", rule_id),
        points=values.pop("points", 10),
        severity=values.pop("severity", "minor"),
        detail=values.pop("detail", f"{rule_id} detail"),
        created_at=scored.scored_at,
        **values,
    )
    session.add(row)
    session.flush()
    return row


def kb(
    session: Session, sender: str, query: str, outcome: KbOutcome, at: datetime, **values: Any
) -> None:
    """A knowledge-base query (its created_at is stored naive UTC)."""
    session.add(
        KbQuery(
            sender_id=sender,
            channel="wechat",
            language="zh",
            query=query,
            outcome=outcome,
            entry_id=None,
            confidence=0.5,
            top_hits=[],
            index_version="v1",
            feedback=values.get("feedback"),
            created_at=at.astimezone(UTC).replace(tzinfo=None),
        )
    )


def build_day(engine: Engine) -> dict[str, Any]:
    """The hand-built day; returns the rows tests refer to, by name."""
    ids: dict[str, Any] = {}
    with session_factory(engine).begin() as session:
        li = agent(session, "li.na", "李娜", last_seen_at=z("2026-12-06T15:18"))
        wang = agent(session, "wang.lei", "王磊", last_seen_at=z("2026-12-06T15:10"))
        boss = agent(session, "boss", "主管", role=AgentRole.supervisor, email="boss@shop.example")
        agent(session, "old", "Old", active=False, last_seen_at=z("2026-12-06T15:19"))
        agent(session, "edna", "Edna", role=AgentRole.editor)
        li.supervisor_id = boss.id
        wang.supervisor_id = boss.id
        ids.update(li=li.id, wang=wang.id, boss=boss.id)
        # tickets: see test_metrics for the SLA state of each as of the day's end (16:00Z)
        t1 = ticket(
            session,
            created_at=z("2026-12-06T03:00"),
            urgency=UrgencyTier.urgent,
            response_due_at=z("2026-12-06T03:30"),
            first_responded_at=z("2026-12-06T03:10"),
            resolution_due_at=z("2026-12-07T03:00"),
            resolved_at=z("2026-12-06T05:00"),
            status=TicketStatus.resolved,
            due_at=z("2026-12-07T03:00"),
        )
        t2 = ticket(
            session,
            created_at=z("2026-12-06T06:20"),
            satisfaction=2,
            response_due_at=z("2026-12-06T10:20"),
            first_responded_at=z("2026-12-06T11:00"),
            resolution_due_at=z("2026-12-09T06:20"),
            due_at=z("2026-12-09T06:20"),
            sla_state="breached",
        )
        t3 = ticket(
            session,
            created_at=z("2026-12-06T06:50"),
            complaint_grade=ComplaintGrade.general,
            response_due_at=z("2026-12-06T08:50"),
            first_responded_at=z("2026-12-06T07:00"),
            resolution_due_at=z("2026-12-06T12:00"),
            due_at=z("2026-12-06T12:00"),
            sla_state="breached",
        )
        t4 = ticket(
            session,
            created_at=z("2026-12-06T14:30"),
            urgency=UrgencyTier.consultation,
            response_due_at=z("2026-12-07T14:30"),
            resolution_due_at=z("2026-12-09T14:30"),
            status=TicketStatus.open,
        )
        t5 = ticket(
            session,
            created_at=z("2026-12-06T15:00"),
            urgency=UrgencyTier.urgent,
            complaint_grade=ComplaintGrade.major,
            response_due_at=z("2026-12-06T15:30"),
            first_responded_at=z("2026-12-06T17:00"),
            resolution_due_at=z("2026-12-08T15:00"),
            status=TicketStatus.pending_agent,
            sla_state="at_risk",
        )
        ticket(
            session,
            created_at=z("2026-12-05T01:00"),
            resolved_at=z("2026-12-06T01:00"),
            response_due_at=z("2026-12-05T05:00"),
            first_responded_at=z("2026-12-05T02:00"),
            status=TicketStatus.closed,
        )
        ids.update(t1=t1.id, t2=t2.id, t3=t3.id, t4=t4.id, t5=t5.id)
        # service records of the day: completeness and need accuracy
        record(session, created_at=local(9), confirmed_at=local(9, 5))
        record(
            session,
            created_at=local(9),
            confirmed_at=local(9, 5),
            completeness=0.8,
            correction_rounds=1,
        )
        record(session, created_at=local(9))
        # conversations
        c = {}
        c[1] = conversation(session, local(10, 15), outcome="self_service", bot_messages=2)
        c[2] = conversation(session, local(10, 40), outcome="self_service", bot_messages=1)
        c[3] = conversation(
            session,
            local(11, 5),
            channel="socketio",
            language="en",
            outcome="handoff",
            handoff_requested_at=local(11, 6),
            first_response_seconds=30.0,
            ticket_id=t1.id,
            rating=5,
            agents=["li.na"],
            agent_id=li.id,
        )
        c[4] = conversation(
            session,
            local(14, 20),
            channel="telegram",
            outcome="handoff",
            handoff_requested_at=local(14, 21),
            first_response_seconds=90.0,
            ticket_id=t2.id,
            agents=["li.na", "wang.lei"],
            agent_id=wang.id,
            transfers=1,
        )
        c[5] = conversation(
            session,
            local(14, 50),
            outcome="handoff",
            handoff_requested_at=local(14, 51),
            first_response_seconds=150.0,
            ticket_id=t3.id,
            agents=["wang.lei"],
            agent_id=wang.id,
            red_cards=1,
        )
        c[6] = conversation(
            session, local(20, 10), outcome="unresolved", first_question="能开发票吗？", red_cards=1
        )
        c[7] = conversation(
            session, local(21), channel="socketio", language="en", outcome="abandoned"
        )
        c[8] = conversation(session, local(22, 30), outcome="ticket", ticket_id=t4.id)
        c[9] = conversation(session, local(23, 10))  # still open
        conversation(session, local(23, 59, date(2026, 12, 5)), outcome="self_service")
        conversation(session, local(0, 0, date(2026, 12, 7)), outcome="self_service")
        ids.update({f"c{n}": row.id for n, row in c.items()})
        ids["c6_sender"] = c[6].conversation_id
        # QA scores
        score(session, c[1], "bot", 100)
        bot3 = score(session, c[3], "bot", 90, findings=1)
        finding(session, bot3, "bot_fallbacks_over")
        li3 = score(session, c[3], "agent:li.na", 95, findings=1, agent_id=li.id)
        finding(session, li3, "no_greeting", red_card=True, appeal_status="overturned")
        finding(session, li3, "no_closing", appeal_status="pending", points=5)
        score(session, c[4], "bot", 100)
        wang5 = score(
            session, c[5], "agent:wang.lei", 40, findings=2, red_card=True, agent_id=wang.id
        )
        finding(
            session,
            wang5,
            "forbidden_words",
            red_card=True,
            severity="fatal",
            title="禁用语 Forbidden words",
            detail="说了“滚”",
        )
        finding(session, wang5, "no_greeting")
        score(session, c[5], "bot", 80, findings=2)
        bot6 = score(session, c[6], "bot", 50, findings=3, red_card=True)
        finding(session, bot6, "bot_kb_rejected", title="答案被否 KB answer rejected", points=20)
        # knowledge-base queries
        kb(session, "s1", "保修多久", KbOutcome.answered, local(10, 16))
        kb(
            session,
            "s2",
            "退货运费谁出",
            KbOutcome.answered,
            local(10, 41),
            feedback=KbFeedback.not_solved,
        )
        kb(session, "s3", "怎么退货", KbOutcome.answered, local(12), feedback=KbFeedback.solved)
        kb(session, c[6].conversation_id, "能开发票吗", KbOutcome.no_answer, local(20, 11))
        kb(session, "s5", "能开发票吗?", KbOutcome.no_answer, local(21, 30))
        kb(session, "s6", "好", KbOutcome.no_answer, local(21, 31))
        kb(session, "s7", "能开发票吗", KbOutcome.no_answer, local(21, 0, date(2026, 12, 5)))
        # the live desk: handoffs, alerts
        for status, tk in ((HandoffStatus.queued, t5), (HandoffStatus.active, t3)):
            session.execute(
                insert(Handoff).values(
                    conversation_id=f"h-{tk.id}",
                    channel="wechat",
                    language="zh",
                    reason="explicit_request",
                    status=status,
                    ticket_id=tk.id,
                    packet={},
                    due_at=tk.due_at,
                    created_at=tk.created_at,
                )
            )
        for acknowledged in (None, z("2026-12-06T10:00")):
            session.add(
                DeskAlert(
                    key=f"a{acknowledged}",
                    kind="qa_red_card",
                    severity="critical",
                    text="t",
                    created_at=z("2026-12-06T09:00"),
                    acknowledged_at=acknowledged,
                )
            )
    return ids
