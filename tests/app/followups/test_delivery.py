"""Delivering the outbox: Rasa, quiet hours, crash recovery, WeChat fallbacks, retries, staff."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from bot.core.db import (
    AgentRole,
    DeskAlert,
    Notice,
    NoticeStatus,
    TicketEvent,
    TicketEventKind,
    UrgencyTier,
    session_factory,
)
from bot.core.settings import Settings
from bot.customers.directory import CustomerDirectory
from bot.followups.delivery import MAX_ATTEMPTS, Deliverer
from bot.handoff.rasa_api import RasaClient
from bot.service.outbox import STAFF
from bot.service.policy import ServicePolicy
from tests.app.followups.support import (
    DAY_10AM,
    SHANGHAI,
    FakeRasa,
    Inbox,
    add_agent,
    add_notice,
    add_ticket,
    notice,
)


def make_deliverer(settings: Settings, engine: Engine, policy: ServicePolicy) -> Deliverer:
    return Deliverer(settings, engine, policy, RasaClient.from_settings(settings), worker_id="test")


async def test_a_notice_reaches_the_conversation_once_with_its_slots_and_marker(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = add_ticket(engine, DAY_10AM)
    buttons = [{"title": "5", "payload": "/rate_service"}]
    notice_id = add_notice(
        engine,
        ticket,
        "csat:1:0",
        DAY_10AM,
        kind="csat",
        buttons=buttons,
        slots={"rating_ticket": ticket.number},
    )
    deliverer = make_deliverer(settings, engine, policy)
    first = await deliverer.deliver_ids([notice_id], DAY_10AM)
    again = await deliverer.deliver_ids([notice_id], DAY_10AM)
    await deliverer.close()

    assert [d.as_dict() for d in first] == [
        {
            "id": notice_id,
            "kind": "csat",
            "ticket": ticket.number,
            "conversation": ticket.customer_id,
            "via": "rasa",
            "status": "sent",
        }
    ]
    assert again == []
    [(conversation, events)] = rasa.appends
    assert conversation == ticket.customer_id
    assert events[0] == {"event": "slot", "name": "rating_ticket", "value": ticket.number}
    assert events[1]["event"] == "bot" and events[1]["data"] == {"buttons": buttons}
    assert events[1]["metadata"]["kefu"] == {
        "notice_id": notice_id,
        "kind": "csat",
        "ticket": ticket.number,
    }
    row = notice(engine, notice_id)
    assert (row.status, row.via, row.sent_at, row.attempts) == (
        NoticeStatus.sent,
        "rasa",
        DAY_10AM.astimezone(timezone.utc),
        1,
    )
    with session_factory(engine)() as session:
        kinds = session.scalars(
            select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)
        ).all()
    assert kinds == [TicketEventKind.notice]


async def test_notices_not_yet_due_wait(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = add_ticket(engine, DAY_10AM)
    later = add_notice(engine, ticket, "later", DAY_10AM + timedelta(hours=1))
    deliverer = make_deliverer(settings, engine, policy)
    assert await deliverer.deliver_ids([later], DAY_10AM) == []
    assert await deliverer.deliver_due(DAY_10AM) == []
    sent = await deliverer.deliver_due(DAY_10AM + timedelta(hours=1))
    await deliverer.close()
    assert [d.id for d in sent] == [later] and rasa.sent_notice_ids() == [later]


async def test_each_conversation_gets_its_notices_in_order(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    tickets = [add_ticket(engine, DAY_10AM) for _ in range(3)]
    ids = [
        add_notice(engine, ticket, f"{kind}:{ticket.id}", DAY_10AM, kind=kind)
        for ticket in tickets
        for kind in ("result", "csat")
    ]
    rasa.delay = 0.05
    deliverer = make_deliverer(settings, engine, policy)
    done = await deliverer.deliver_due(DAY_10AM)
    await deliverer.close()
    assert sorted(d.id for d in done) == ids
    for ticket in tickets:
        kinds = [
            event["metadata"]["kefu"]["kind"]
            for conversation, events in rasa.appends
            if conversation == ticket.customer_id
            for event in events
        ]
        assert kinds == ["result", "csat"]


async def test_quiet_hours_defer_customer_notices_but_not_urgent_ones(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    night = datetime(2026, 12, 10, 23, 30, tzinfo=SHANGHAI)
    normal = add_ticket(engine, night)
    urgent = add_ticket(engine, night, urgency=UrgencyTier.urgent)
    quiet_id = add_notice(engine, normal, "quiet", night)
    urgent_id = add_notice(engine, urgent, "urgent", night)
    deliverer = make_deliverer(settings, engine, policy)
    done = {d.id: d for d in await deliverer.deliver_due(night)}
    assert done[quiet_id].status == "deferred" and done[urgent_id].status == "sent"
    row = notice(engine, quiet_id)
    morning = datetime(2026, 12, 11, 9, 0, tzinfo=SHANGHAI)
    assert (row.status, row.due_at, row.attempts) == (NoticeStatus.pending, morning, 0)
    assert rasa.sent_notice_ids() == [urgent_id]
    assert await deliverer.deliver_due(morning - timedelta(minutes=1)) == []
    [sent] = await deliverer.deliver_due(morning)
    await deliverer.close()
    assert sent.id == quiet_id and sent.status == "sent"


async def test_an_expired_claim_whose_message_reached_rasa_is_not_sent_again(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    """A worker died after Rasa stored the message, before it marked the notice."""
    ticket = add_ticket(engine, DAY_10AM)
    delivered = add_notice(engine, ticket, "delivered", DAY_10AM)
    lost = add_notice(engine, ticket, "lost", DAY_10AM)
    rasa.events[ticket.customer_id] = [
        {"event": "bot", "text": "x", "metadata": {"kefu": {"notice_id": delivered}}}
    ]
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    with session_factory(engine).begin() as session:
        session.execute(
            update(Notice)
            .where(Notice.id.in_([delivered, lost]))
            .values(status=NoticeStatus.sending, claimed_by="dead", lease_until=past, attempts=1)
        )
    deliverer = make_deliverer(settings, engine, policy)
    done = {d.id: d for d in await deliverer.deliver_due(DAY_10AM)}
    await deliverer.close()
    assert done[delivered].status == done[lost].status == "sent"
    assert rasa.sent_notice_ids() == [lost]  # only the one Rasa had not got
    assert notice(engine, delivered).error == "found in the conversation after a retry"
    assert notice(engine, delivered).attempts == 2


async def test_a_live_claim_is_left_alone(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = add_ticket(engine, DAY_10AM)
    held = add_notice(engine, ticket, "held", DAY_10AM)
    future = datetime.now(timezone.utc) + timedelta(minutes=1)
    with session_factory(engine).begin() as session:
        session.execute(
            update(Notice)
            .where(Notice.id == held)
            .values(status=NoticeStatus.sending, claimed_by="other", lease_until=future)
        )
    deliverer = make_deliverer(settings, engine, policy)
    assert await deliverer.deliver_due(DAY_10AM) == []
    assert await deliverer.deliver_ids([held], DAY_10AM) == []
    await deliverer.close()
    assert rasa.appends == []


def wechat_ticket(engine: Engine) -> Any:
    return add_ticket(engine, DAY_10AM, customer_id="wechat:o6_abc", channel="wechat")


async def test_wechat_inside_the_window_goes_through_rasa(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = wechat_ticket(engine)
    rasa.user_said(ticket.customer_id, DAY_10AM - timedelta(hours=47))
    notice_id = add_notice(engine, ticket, "n", DAY_10AM)
    deliverer = make_deliverer(settings, engine, policy)
    [done] = await deliverer.deliver_due(DAY_10AM)
    await deliverer.close()
    assert (done.status, done.via) == ("sent", "rasa")
    assert rasa.sent_notice_ids() == [notice_id]


async def test_wechat_outside_the_window_falls_back_to_the_verified_email(
    engine: Engine, tmp_path: Path, policy: ServicePolicy, rasa: FakeRasa, inbox: Inbox
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",
        rasa_port=rasa.port,
        rasa_token="rasa-token-for-followup-tests",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,  # type: ignore[attr-defined]
    )
    ticket = wechat_ticket(engine)
    CustomerDirectory(engine).set_contact(ticket.customer_id, email="li@example.com")
    rasa.user_said(ticket.customer_id, DAY_10AM - timedelta(hours=49))
    notice_id = add_notice(engine, ticket, "n", DAY_10AM, text="工单进展：已寄出")
    deliverer = make_deliverer(settings, engine, policy)
    [done] = await deliverer.deliver_due(DAY_10AM)
    await deliverer.close()
    assert (done.status, done.via) == ("sent", "email")
    assert rasa.appends == []
    [(to, message)] = inbox.messages
    assert to == ["li@example.com"] and ticket.number in str(message["Subject"])
    assert "工单进展：已寄出" in message.get_content()
    assert notice(engine, notice_id).via == "email"


async def test_wechat_outside_the_window_without_email_texts_the_verified_phone(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = wechat_ticket(engine)
    CustomerDirectory(engine).set_contact(ticket.customer_id, phone="13800138000")
    notice_id = add_notice(engine, ticket, "sms-key", DAY_10AM, text="您的工单已处理")
    deliverer = make_deliverer(settings, engine, policy)
    [done] = await deliverer.deliver_due(DAY_10AM)  # no customer message at all: closed
    await deliverer.close()
    assert (done.status, done.via) == ("sent", "sms")
    assert settings.sms_log_path is not None
    [line] = settings.sms_log_path.read_text().splitlines()
    logged = json.loads(line)
    assert logged["to"] == "13800138000" and logged["reference"] == "sms-key"
    assert "您的工单已处理" in logged["text"]
    assert notice(engine, notice_id).via == "sms"


async def test_wechat_unreachable_is_recorded_for_the_agent(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    agent_id = add_agent(engine, "wang")
    ticket = add_ticket(
        engine, DAY_10AM, customer_id="wechat:o6_x", channel="wechat", assignee_id=agent_id
    )
    rasa.user_said(ticket.customer_id, DAY_10AM - timedelta(days=5))
    notice_id = add_notice(engine, ticket, "n", DAY_10AM)
    deliverer = make_deliverer(settings, engine, policy)
    [done] = await deliverer.deliver_due(DAY_10AM)
    await deliverer.close()
    assert done.status == "undeliverable"
    row = notice(engine, notice_id)
    assert row.status is NoticeStatus.undeliverable and "48-hour" in (row.error or "")
    with session_factory(engine)() as session:
        alert = session.scalars(select(DeskAlert)).one()
    assert alert.key == f"undeliverable:{notice_id}" and alert.agent_id == agent_id
    assert alert.ticket_id == ticket.id and ticket.number in alert.text


async def test_rasa_failures_back_off_then_give_up_with_an_alert(
    engine: Engine, settings: Settings, policy: ServicePolicy, rasa: FakeRasa
) -> None:
    ticket = add_ticket(engine, DAY_10AM)
    notice_id = add_notice(engine, ticket, "n", DAY_10AM)
    rasa.fail = True
    deliverer = make_deliverer(settings, engine, policy)
    now = DAY_10AM
    statuses = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [done] = await deliverer.deliver_due(now)
        statuses.append(done.status)
        row = notice(engine, notice_id)
        if attempt < MAX_ATTEMPTS:
            assert row.status is NoticeStatus.pending and row.attempts == attempt
            assert row.due_at == now.astimezone(timezone.utc) + timedelta(seconds=30 * attempt)
            assert await deliverer.deliver_due(now) == []  # not before the backoff
            now = row.due_at
    await deliverer.close()
    assert statuses == ["retry"] * (MAX_ATTEMPTS - 1) + ["undeliverable"]
    assert notice(engine, notice_id).status is NoticeStatus.undeliverable
    with session_factory(engine)() as session:
        assert session.scalar(select(DeskAlert.key)) == f"undeliverable:{notice_id}"


async def test_staff_notices_are_emailed_or_left_to_the_desk(
    engine: Engine, tmp_path: Path, policy: ServicePolicy, rasa: FakeRasa, inbox: Inbox
) -> None:
    boss = add_agent(engine, "boss", AgentRole.supervisor, email="boss@example.com")
    ticket = add_ticket(engine, DAY_10AM)
    night = datetime(2026, 12, 10, 23, 0, tzinfo=SHANGHAI)  # staff mail ignores quiet hours
    staff = {"audience": STAFF, "conversation_id": None, "channel": None}
    emailed = add_notice(
        engine, ticket, "a", night, kind="sla_breach", recipient_agent_id=boss, **staff
    )
    settings = Settings(
        var_dir=tmp_path / "var",
        rasa_port=rasa.port,
        rasa_token="rasa-token-for-followup-tests",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,  # type: ignore[attr-defined]
    )
    deliverer = make_deliverer(settings, engine, policy)
    [done] = await deliverer.deliver_due(night)
    await deliverer.close()
    assert (done.id, done.status, done.via) == (emailed, "sent", "email")
    assert inbox.messages[0][0] == ["boss@example.com"]

    desk_only = add_notice(
        engine, ticket, "b", night, kind="sla_breach", recipient_agent_id=boss, **staff
    )
    no_smtp = settings.model_copy(update={"smtp_host": ""})
    deliverer = make_deliverer(no_smtp, engine, policy)
    [done] = await deliverer.deliver_ids([desk_only], night)
    await deliverer.close()
    assert (done.status, done.via) == ("sent", "desk")
    assert rasa.appends == []
