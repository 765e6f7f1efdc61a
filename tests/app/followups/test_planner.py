"""Planning at an injected moment: progress every 3 days, SLA at risk then breached, the result
and satisfaction coverage, the reminder, overdue follow-ups and VIP check-ins."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select, update

from bot.core.db import (
    AgentRole,
    Customer,
    DeskAlert,
    FollowupTask,
    Notice,
    NoticeStatus,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    session_factory,
)
from bot.followups.planner import RESOLVE_GRACE, Planner, PlanResult, plan
from bot.service.policy import ServicePolicy
from tests.app.followups.support import DAY_10AM, add_agent, add_ticket, notices

UTC = timezone.utc


def ticket_row(engine: Engine, ticket_id: int) -> Ticket:
    with session_factory(engine)() as session:
        row = session.get(Ticket, ticket_id)
        assert row is not None
        return row


def alerts(engine: Engine) -> list[DeskAlert]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(DeskAlert).order_by(DeskAlert.id)))


def events(engine: Engine, ticket_id: int, kind: TicketEventKind) -> list[TicketEvent]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                select(TicketEvent).where(
                    TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind
                )
            )
        )


def test_the_progress_notice_goes_once_every_three_days(
    engine: Engine, policy: ServicePolicy
) -> None:
    created = DAY_10AM
    ticket = add_ticket(
        engine,
        created,
        status=TicketStatus.in_progress,
        next_progress_at=created + timedelta(days=3),
        due_at=created + timedelta(days=5),
    )
    assert plan(engine, policy, created + timedelta(days=3, seconds=-1)).progress_notices == 0
    at = created + timedelta(days=3, minutes=1)
    assert plan(engine, policy, at).progress_notices == 1
    assert plan(engine, policy, at).progress_notices == 0
    assert plan(engine, policy, at + timedelta(days=2)).progress_notices == 0
    [first] = notices(engine)
    assert (
        first.key
        == f"progress:{ticket.id}:{(created + timedelta(days=3)).astimezone(UTC).isoformat()}"
    )
    assert (first.kind, first.audience, first.conversation_id) == (
        "progress_notice",
        "customer",
        ticket.customer_id,
    )
    assert ticket.number in first.text and "仍在处理中" in first.text
    row = ticket_row(engine, ticket.id)
    assert row.last_progress_at == at and row.next_progress_at == at + timedelta(days=3)
    assert plan(engine, policy, at + timedelta(days=3)).progress_notices == 1
    assert len(notices(engine)) == 2


def test_the_progress_notice_carries_the_latest_update(
    engine: Engine, policy: ServicePolicy
) -> None:
    ticket = add_ticket(
        engine,
        DAY_10AM,
        status=TicketStatus.in_progress,
        last_progress_at=DAY_10AM,
        next_progress_at=DAY_10AM + timedelta(days=3),
    )
    with session_factory(engine).begin() as session:
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=DAY_10AM + timedelta(hours=1),
                from_status=TicketStatus.in_progress,
                to_status=TicketStatus.in_progress,
                actor="wang",
                note="备件已到仓库",
                kind=TicketEventKind.progress,
                visible_to_customer=True,
            )
        )
    plan(engine, policy, DAY_10AM + timedelta(days=3))
    [notice] = notices(engine)
    assert "备件已到仓库" in notice.text


def test_finished_tickets_get_no_progress_notice_and_leave_the_scan(
    engine: Engine, policy: ServicePolicy
) -> None:
    ticket = add_ticket(
        engine,
        DAY_10AM,
        status=TicketStatus.closed,
        next_progress_at=DAY_10AM + timedelta(days=3),
        sla_check_at=DAY_10AM + timedelta(hours=1),
    )
    assert plan(engine, policy, DAY_10AM + timedelta(days=4)).total == 0
    row = ticket_row(engine, ticket.id)
    assert row.next_progress_at is None and row.sla_check_at is None
    assert notices(engine) == [] and alerts(engine) == []


def test_sla_at_risk_then_breached_then_silent(engine: Engine, policy: ServicePolicy) -> None:
    boss = add_agent(engine, "boss", AgentRole.supervisor, email="boss@example.com")
    due = DAY_10AM + timedelta(hours=10)
    ticket = add_ticket(
        engine,
        DAY_10AM,
        due_at=due,
        response_due_at=due,
        sla_check_at=DAY_10AM + timedelta(hours=8),
        supervisor_id=boss,
    )
    assert plan(engine, policy, DAY_10AM + timedelta(hours=7)).total == 0
    risk = plan(engine, policy, DAY_10AM + timedelta(hours=8))
    assert (risk.at_risk, risk.breached) == (1, 0)
    row = ticket_row(engine, ticket.id)
    assert (row.sla_state, row.sla_check_at) == ("at_risk", due)
    assert plan(engine, policy, DAY_10AM + timedelta(hours=9)).total == 0

    breach = plan(engine, policy, due + timedelta(minutes=1))
    assert (breach.at_risk, breach.breached) == (0, 1)
    row = ticket_row(engine, ticket.id)
    assert (row.sla_state, row.sla_check_at) == ("breached", None)
    assert row.escalated_at == due + timedelta(minutes=1)
    assert plan(engine, policy, due + timedelta(days=1)).total == 0

    risk_alert, breach_alert = alerts(engine)
    assert (risk_alert.kind, risk_alert.severity) == ("sla_at_risk", "warning")
    assert (breach_alert.kind, breach_alert.severity) == ("sla_breach", "critical")
    assert "SLA 即将超时" in risk_alert.text and "Boss" in breach_alert.text
    staff = notices(engine, audience="staff")
    assert [(n.kind, n.recipient_agent_id) for n in staff] == [
        ("sla_at_risk", boss),
        ("sla_breach", boss),
    ]
    notes = [event.note or "" for event in events(engine, ticket.id, TicketEventKind.sla)]
    assert len(notes) == 2 and "escalated to Boss" in notes[1]


def test_a_ticket_found_already_past_due_is_breached_at_once(
    engine: Engine, policy: ServicePolicy
) -> None:
    ticket = add_ticket(
        engine, DAY_10AM, due_at=DAY_10AM + timedelta(hours=1), sla_check_at=DAY_10AM
    )
    result = plan(engine, policy, DAY_10AM + timedelta(hours=2))
    assert (result.at_risk, result.breached) == (0, 1)
    [alert] = alerts(engine)
    assert alert.agent_id is None  # no supervisor: every supervisor sees it
    assert notices(engine) == []  # nobody to email
    assert ticket_row(engine, ticket.id).escalated_at is not None


def resolved_ticket(engine: Engine, resolved_at: datetime, **values: object) -> Ticket:
    return add_ticket(
        engine,
        resolved_at - timedelta(days=1),
        status=TicketStatus.resolved,
        resolved_at=resolved_at,
        **values,
    )


def test_a_resolved_ticket_without_its_notices_gets_the_result_and_the_question(
    engine: Engine, policy: ServicePolicy
) -> None:
    ticket = resolved_ticket(engine, DAY_10AM, result="已补发", improvement="加强质检")
    assert plan(engine, policy, DAY_10AM + RESOLVE_GRACE / 2).total == 0  # its own path first
    result = plan(engine, policy, DAY_10AM + RESOLVE_GRACE)
    assert (result.results, result.csat_questions) == (1, 1)
    assert plan(engine, policy, DAY_10AM + timedelta(hours=1)).total == 0
    sent_result, question = notices(engine)
    assert sent_result.key == f"result:{ticket.id}:0" and "已补发" in sent_result.text
    assert "加强质检" in sent_result.text
    assert question.key == f"csat:{ticket.id}:0"
    assert question.slots == {"rating_ticket": ticket.number}
    assert question.buttons is not None and len(question.buttons) == 5


def test_coverage_has_limits_in_time_and_respects_what_exists(
    engine: Engine, policy: ServicePolicy
) -> None:
    now = DAY_10AM
    old = resolved_ticket(engine, now - timedelta(days=2), result="done")  # csat only
    rated = resolved_ticket(engine, now - timedelta(hours=1), result="ok", satisfaction=5)
    too_old = resolved_ticket(engine, now - timedelta(days=8), result="done")
    result = plan(engine, policy, now)
    assert (result.results, result.csat_questions) == (1, 1)
    keys = {n.key for n in notices(engine)}
    assert keys == {f"csat:{old.id}:0", f"result:{rated.id}:0"}
    assert not any(str(too_old.id) in key.split(":")[1] for key in keys)


def test_one_satisfaction_reminder_when_unanswered(engine: Engine, policy: ServicePolicy) -> None:
    ticket = resolved_ticket(engine, DAY_10AM, result="done")
    plan(engine, policy, DAY_10AM + RESOLVE_GRACE)
    with session_factory(engine).begin() as session:
        session.execute(
            update(Notice).values(status=NoticeStatus.sent, sent_at=DAY_10AM + RESOLVE_GRACE)
        )
    asked = DAY_10AM + RESOLVE_GRACE
    assert plan(engine, policy, asked + timedelta(days=1)).csat_reminders == 0
    assert plan(engine, policy, asked + timedelta(days=2)).csat_reminders == 1
    assert plan(engine, policy, asked + timedelta(days=3)).csat_reminders == 0
    [reminder] = notices(engine, kind="csat_reminder")
    assert reminder.key == f"csat_reminder:{ticket.id}:0"
    assert reminder.slots == {"rating_ticket": ticket.number}


def test_no_reminder_after_a_score_or_after_the_week(engine: Engine, policy: ServicePolicy) -> None:
    rated = resolved_ticket(engine, DAY_10AM, result="done")
    late = resolved_ticket(engine, DAY_10AM, result="done")
    plan(engine, policy, DAY_10AM + RESOLVE_GRACE)
    with session_factory(engine).begin() as session:
        session.execute(update(Notice).values(status=NoticeStatus.sent, sent_at=DAY_10AM))
        session.execute(update(Ticket).where(Ticket.id == rated.id).values(satisfaction=4))
    assert plan(engine, policy, DAY_10AM + timedelta(days=8)).csat_reminders == 0
    assert plan(engine, policy, DAY_10AM + timedelta(days=3)).csat_reminders == 1
    [reminder] = notices(engine, kind="csat_reminder")
    assert reminder.ticket_id == late.id


def test_an_overdue_followup_task_alerts_its_supervisor_once(
    engine: Engine, policy: ServicePolicy
) -> None:
    boss = add_agent(engine, "boss", AgentRole.supervisor)
    ticket = resolved_ticket(engine, DAY_10AM, satisfaction=2)
    with session_factory(engine).begin() as session:
        for n, done in ((1, None), (2, DAY_10AM)):
            session.add(
                FollowupTask(
                    key=f"followup:{ticket.id}:{n}",
                    ticket_id=ticket.id,
                    score=2,
                    assignee_id=boss,
                    due_at=DAY_10AM + timedelta(hours=48),
                    created_at=DAY_10AM,
                    done_at=done,
                )
            )
    assert plan(engine, policy, DAY_10AM + timedelta(hours=47)).followups_overdue == 0
    assert plan(engine, policy, DAY_10AM + timedelta(hours=48)).followups_overdue == 1
    assert plan(engine, policy, DAY_10AM + timedelta(hours=50)).followups_overdue == 0
    [alert] = [a for a in alerts(engine) if a.kind == "followup_overdue"]
    assert (alert.severity, alert.agent_id) == ("critical", boss)
    assert ticket.number in alert.text


def test_vip_checkins_monthly_from_the_advisor(engine: Engine, policy: ServicePolicy) -> None:
    advisor = add_agent(engine, "zhao")
    with session_factory(engine).begin() as session:
        for id_, vip in (("web:vip", True), ("web:plain", False)):
            session.add(
                Customer(
                    id=id_,
                    channel="web",
                    name="李女士",
                    vip=vip,
                    language="zh",
                    first_seen_at=DAY_10AM,
                    last_seen_at=DAY_10AM,
                    advisor_id=advisor,
                )
            )
    assert plan(engine, policy, DAY_10AM).vip_checkins == 1  # new VIP: at once
    assert plan(engine, policy, DAY_10AM + timedelta(days=29)).vip_checkins == 0
    assert plan(engine, policy, DAY_10AM + timedelta(days=30)).vip_checkins == 1
    first, second = notices(engine)
    assert first.key == "vip:web:vip:2026-12" and second.key == "vip:web:vip:2027-01"
    assert "Zhao" in first.text and "李女士" in first.text
    assert first.conversation_id == "web:vip" and first.ticket_id is None


def test_two_planners_at_once_change_each_ticket_once(
    engine: Engine, policy: ServicePolicy
) -> None:
    for _ in range(40):
        add_ticket(
            engine,
            DAY_10AM,
            due_at=DAY_10AM + timedelta(hours=10),
            sla_check_at=DAY_10AM + timedelta(hours=8),
            next_progress_at=DAY_10AM + timedelta(hours=8),
        )
    at = DAY_10AM + timedelta(hours=9)
    results: list[PlanResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(Planner(engine, policy, batch=7).plan(at))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.at_risk for r in results) == 40
    assert sum(r.progress_notices for r in results) == 40
    assert len(alerts(engine)) == 40 and len(notices(engine)) == 40
    with session_factory(engine)() as session:
        assert session.query(TicketEvent).count() == 40


def test_plan_times_are_utc_aware(engine: Engine, policy: ServicePolicy) -> None:
    ticket = add_ticket(engine, DAY_10AM, next_progress_at=DAY_10AM)
    plan(engine, policy, DAY_10AM.astimezone(UTC))
    assert ticket_row(engine, ticket.id).last_progress_at == DAY_10AM


def test_a_customer_who_left_before_confirming_still_gets_a_ticket_and_the_need(
    engine: Engine, policy: ServicePolicy
) -> None:
    from bot.core.db import ServiceRecord
    from bot.service.tickets import TicketStore
    from tests.app.conftest import draft

    store = TicketStore(engine, policy)
    created = DAY_10AM
    left = store.save_record(
        draft("web:left", created_at=created, confirmation_due_at=created + timedelta(hours=2))
    )
    stayed = store.save_record(
        draft("web:stayed", created_at=created, confirmation_due_at=created + timedelta(hours=2))
    )
    store.confirm(stayed, at=created + timedelta(minutes=5))
    planner = Planner(engine, policy)
    assert planner.plan(created + timedelta(hours=1)).unconfirmed_needs == 0  # still answering
    at = created + timedelta(hours=1, minutes=50)  # 10 minutes before the 2-hour promise
    assert planner.plan(at).unconfirmed_needs == 1
    assert plan(engine, policy, at).unconfirmed_needs == 0  # once
    with session_factory(engine)() as session:
        record = session.get(ServiceRecord, left)
        assert record is not None and record.confirmed_at == at
        ticket = session.scalars(select(Ticket).where(Ticket.record_id == left)).one()
        [notice] = session.scalars(select(Notice).where(Notice.key == f"unconfirmed:{left}"))
    assert ticket.status is TicketStatus.open and notice.conversation_id == "web:left"
    assert ticket.number in notice.text and "左耳没有声音" in notice.text
    assert notice.due_at == at and notice.status is NoticeStatus.pending
    assert any("left before confirming" in (e.note or "") for e in events(
        engine, ticket.id, TicketEventKind.status
    ))  # fmt: skip
