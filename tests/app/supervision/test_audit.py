"""The monthly audit: execution, compliance, complaint trend, repeats, frequent problems."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from bot.core.db import (
    ComplaintGrade,
    FollowupTask,
    KbOutcome,
    Notice,
    NoticeStatus,
    ReportRun,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    Ticket,
    session_factory,
)
from bot.core.settings import Settings
from bot.service.notices import CSAT, PROGRESS_NOTICE, RESULT
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.audit import build_monthly, month_after, month_before
from tests.app.supervision.figures_data import build_day, conversation, kb, local, ticket, z

MONTH = date(2026, 12, 1)
LATER = z("2026-12-08T00:00")


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


def notice(
    kind: str, ticket_id: int, due: datetime, status: NoticeStatus, sent: datetime | None = None
) -> Notice:
    return Notice(
        key=f"{kind}:{ticket_id}:{due.isoformat()}",
        kind=kind,
        audience="customer",
        ticket_id=ticket_id,
        conversation_id="cust",
        channel="wechat",
        language="zh",
        text="t",
        due_at=due,
        status=status,
        sent_at=sent,
        created_at=due - timedelta(hours=1),
    )


@pytest.fixture
def month(engine: Engine) -> dict[str, Any]:
    ids = build_day(engine)
    with session_factory(engine).begin() as session:
        t1, t6 = ids["t1"], ids["t1"] + 5
        session.add_all(
            [
                notice(
                    PROGRESS_NOTICE,
                    t1,
                    z("2026-12-06T01:00"),
                    NoticeStatus.sent,
                    z("2026-12-06T01:30"),
                ),
                notice(
                    PROGRESS_NOTICE,
                    t1,
                    z("2026-12-06T02:00"),
                    NoticeStatus.sent,
                    z("2026-12-06T04:00"),
                ),
                notice(PROGRESS_NOTICE, t1, z("2026-12-06T03:00"), NoticeStatus.pending),
                notice(PROGRESS_NOTICE, t1, z("2026-12-06T04:00"), NoticeStatus.cancelled),
                notice(PROGRESS_NOTICE, t1, z("2027-01-02T04:00"), NoticeStatus.pending),
                notice(RESULT, t1, z("2026-12-06T05:00"), NoticeStatus.sent, z("2026-12-06T06:00")),
                notice(RESULT, t6, z("2026-12-06T01:00"), NoticeStatus.sent, z("2026-12-08T06:00")),
                notice(CSAT, t6, z("2026-12-06T02:00"), NoticeStatus.sent, z("2026-12-06T02:00")),
            ]
        )
        for created, done in (
            (z("2026-12-06T00:00"), z("2026-12-06T10:00")),
            (z("2026-12-06T00:00"), z("2026-12-08T02:00")),  # after 50 h
            (z("2026-12-06T00:00"), None),
        ):
            session.add(
                FollowupTask(
                    key=f"f{done}",
                    ticket_id=t1,
                    score=2,
                    due_at=created,
                    created_at=created,
                    done_at=done,
                )
            )
        session.execute(update(Ticket).where(Ticket.id == ids["t2"]).values(reopen_count=1))
        # repeats: "rep" back after 3 days (repeat), then after 15 days (not); "rep2" had
        # come 5 days before the month began (a repeat in the month)
        for customer, day in (("rep", 2), ("rep", 5), ("rep", 20), ("rep2", 3)):
            conversation(
                session,
                local(9, 0, date(2026, 12, day)),
                conversation_id=customer,
                first_intent="refund",
                outcome="self_service",
            )
        conversation(
            session,
            local(9, 0, date(2026, 11, 28)),
            conversation_id="rep2",
            first_intent="refund",
            outcome="self_service",
        )
        # November: one conversation and one complaint
        ticket(
            session,
            created_at=z("2026-11-10T03:00"),
            complaint_grade=ComplaintGrade.major,
            customer_id="nov",
        )
        # frequent problem: 能开发票吗 from c6's customer, s5, s7 (build_day), f1, f2
        for sender in ("f1", "f2", "f1"):
            kb(
                session,
                sender,
                "能开发票吗？",
                KbOutcome.no_answer,
                local(12, 0, date(2026, 12, 7)),
            )
    return ids


def test_build_monthly(
    engine: Engine, policy: ServicePolicy, month: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    path = build_monthly(settings, engine, policy, MONTH, tmp_path / "audit", LATER)
    assert path.name == "audit.html"
    data = json.loads((path.parent / "audit.json").read_text("utf-8"))
    assert data["month"] == "2026-12"
    execution = data["execution"]
    assert execution["progress_notices_on_time"] == {"done": 1, "due": 3, "rate": 0.3333}
    assert execution["results_in_time"] == {"done": 1, "due": 2, "rate": 0.5}  # t6's was late
    assert execution["csat_visits_made"] == {"done": 1, "due": 2, "rate": 0.5}
    assert execution["second_followups_in_time"] == {"done": 1, "due": 3, "rate": 0.3333}
    # as of Dec 8: t1, t6 hit; t2, t3, t5 missed, and t4 is unanswered past its deadline
    assert execution["sla_hit"] == {"done": 2, "due": 6, "rate": 0.3333}
    assert data["compliance"] == {
        "qa_pass_rate": 0.7143,
        "qa_scored_subjects": 7,
        "red_cards": 2,
        "findings": 6,
        "appealed": 2,
        "appeals_pending": 1,
        "appeals_upheld": 0,
        "appeals_overturned": 1,
        "overturn_rate": 1.0,
    }
    weeks = data["complaint_trend"]["weeks"]
    assert [(w["start"], w["end"]) for w in weeks] == [
        ("2026-12-01", "2026-12-07"),
        ("2026-12-08", "2026-12-14"),
        ("2026-12-15", "2026-12-21"),
        ("2026-12-22", "2026-12-28"),
        ("2026-12-29", "2026-12-31"),
    ]
    # 11 built-day conversations + rep (12-02, 12-05) + rep2 (12-03); complaints t3, t5
    assert weeks[0] == {
        "start": "2026-12-01",
        "end": "2026-12-07",
        "conversations": 14,
        "complaints": 2,
        "rate": 0.1429,
    }
    assert weeks[2]["conversations"] == 1 and weeks[2]["rate"] == 0.0
    assert weeks[4] == {
        "start": "2026-12-29",
        "end": "2026-12-31",
        "conversations": 0,
        "complaints": 0,
        "rate": None,
    }
    months = data["complaint_trend"]["months"]
    assert [m["month"] for m in months] == ["2026-09", "2026-10", "2026-11"]
    assert months[2] == {"month": "2026-11", "conversations": 1, "complaints": 1, "rate": 1.0}
    assert data["repeats"] == {
        "conversations": 4,
        "repeat_conversations": 2,
        "repeat_conversation_rate": 0.5,
        "tickets": 6,
        "repeat_tickets": 5,
        "repeat_ticket_rate": 0.8333,
        "reopened_tickets": 1,
        "reopen_rate": 0.1667,
    }  # fmt: skip (tickets: one customer, one category, t6 first)
    [frequent] = data["frequent_problems"]
    assert (frequent["question"], frequent["count"], frequent["new"]) == ("能开发票吗", 5, True)
    assert "能开发票吗" in path.read_text("utf-8") and "月度稽核" in path.read_text("utf-8")
    with session_factory(engine)() as session:
        [item] = session.scalars(select(ReviewItem)).all()
        [run] = session.scalars(select(ReportRun)).all()
    digest = hashlib.sha1("能开发票吗".encode()).hexdigest()[:12]
    assert item.source_key == f"month:2026-12:{digest}" and item.id == frequent["review_item_id"]
    assert item.source is ReviewSource.frequent_problem and item.status is ReviewStatus.pending
    assert item.language == "zh" and item.customer_id == "s7"  # the first to ask, on Dec 5
    assert run.key == "monthly:2026-12" and run.path == str(path)
    again = build_monthly(settings, engine, policy, MONTH, tmp_path / "audit", LATER)
    assert (
        json.loads((again.parent / "audit.json").read_text("utf-8"))["frequent_problems"][0]["new"]
        is False
    )
    with session_factory(engine)() as session:
        assert len(session.scalars(select(ReviewItem)).all()) == 1
        assert len(session.scalars(select(ReportRun)).all()) == 1


def test_a_month_starts_on_its_first_day(
    engine: Engine, policy: ServicePolicy, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="first day"):
        build_monthly(
            Settings(var_dir=tmp_path), engine, policy, date(2026, 12, 2), tmp_path, LATER
        )
    empty = build_monthly(Settings(var_dir=tmp_path), engine, policy, MONTH, tmp_path, LATER)
    data = json.loads((empty.parent / "audit.json").read_text("utf-8"))
    assert data["conversations"] == 0 and data["frequent_problems"] == []
    assert data["execution"]["results_in_time"] == {"done": 0, "due": 0, "rate": None}


def test_month_arithmetic() -> None:
    assert month_after(date(2026, 12, 1)) == date(2027, 1, 1)
    assert month_after(date(2026, 1, 31)) == date(2026, 2, 1)
    assert month_before(date(2026, 3, 1)) == date(2026, 2, 1)
    assert month_before(date(2027, 1, 1)) == date(2026, 12, 1)
