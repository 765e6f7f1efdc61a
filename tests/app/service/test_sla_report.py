"""`overdue_rates`: late first responses and resolutions per tier and grade, CSAT coverage."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.core.db import FollowupOutcome, FollowupTask, NoticeStatus, TicketStatus, UrgencyTier
from bot.service.outbox import CUSTOMER, NewNotice, enqueue
from bot.service.policy import load_policy
from bot.service.sla_report import overdue_rates
from bot.service.tickets import TicketStore
from tests.app.conftest import NOW, draft

H = timedelta(hours=1)
S = TicketStatus


def test_overdue_rates(engine: Engine) -> None:
    store = TicketStore(engine, load_policy())

    def ticket(customer: str, at: datetime = NOW, **changes: object) -> str:
        return store.confirm(store.save_record(draft(customer, **changes)), at=at).number

    on_time = ticket("a")  # general complaint, response due +24 h, resolution +72 h
    store.transition(on_time, S.in_progress, actor="agent:li", at=NOW + H)
    store.transition(on_time, S.resolved, actor="agent:li", at=NOW + 2 * H)
    late_answer = ticket("b")
    store.transition(late_answer, S.in_progress, actor="agent:li", at=NOW + 30 * H)
    ticket("c", urgency=UrgencyTier.urgent, complaint_grade=None)  # resolution +24 h
    ticket("old", at=NOW - timedelta(days=40))  # created before the period: not counted
    found = store.find(on_time)
    assert found is not None
    with Session(engine) as session, session.begin():
        enqueue(session, NewNotice(key="csat:x", kind="csat", audience=CUSTOMER, text="?",
                                   due_at=NOW, ticket_id=found.id, status=NoticeStatus.sent),
                NOW)  # fmt: skip
        session.add(FollowupTask(key="f", ticket_id=found.id, score=2, due_at=NOW, created_at=NOW,
                                 done_at=NOW, outcome=FollowupOutcome.solved))  # fmt: skip
    report = overdue_rates(engine, NOW - H, NOW + H, now=NOW + 50 * H)
    assert report["total"]["tickets"] == 3
    # late: b's response (30 h > 24 h), c's response (unanswered, 50 h > due) and c's resolution
    assert report["total"]["response_overdue"] == 2
    assert report["total"]["resolution_overdue"] == 1
    assert report["total"]["response_overdue_rate"] == round(2 / 3, 4)
    assert report["tiers"]["urgent"] == {
        "tickets": 1, "response_overdue": 1, "response_overdue_rate": 1.0,
        "resolution_overdue": 1, "resolution_overdue_rate": 1.0,
    }  # fmt: skip
    general = report["grades"]["general"]
    assert general["tickets"] == 2 and general["resolution_overdue"] == 0
    assert general["response_overdue"] == 1  # b
    assert report["grades"]["major"]["response_overdue_rate"] is None
    assert report["csat"] == {"resolved": 1, "asked": 1, "rated": 0, "coverage": 1.0}
    assert report["second_followup"]["solved_rate"] == 1.0


def test_period_and_zones_are_checked(engine: Engine) -> None:
    with pytest.raises(ValueError, match="later"):
        overdue_rates(engine, NOW, NOW, NOW)
    with pytest.raises(ValueError, match="aware"):
        overdue_rates(engine, NOW.replace(tzinfo=None), NOW + H, NOW)
    empty = overdue_rates(engine, NOW, NOW + H, NOW)
    assert empty["total"]["tickets"] == 0 and empty["total"]["response_overdue_rate"] is None
