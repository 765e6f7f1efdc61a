"""A customer waiting for an agent: acknowledged once, progress questions answered, on the ticket.

Also the desk's side of the service loop: claims and replies are the first response, the
rating question of a resolve is recorded as the ticket's sent satisfaction notice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    HandoffStatus,
    MessageKind,
    Notice,
    NoticeStatus,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    make_engine,
    session_factory,
)
from bot.core.settings import get_settings
from bot.handoff.broker import ConsumedBatch, HandoffConsumer, SqlEventSource
from bot.handoff.hub import DeskHub
from bot.handoff.service import DeskService
from bot.handoff.store import HandoffStore
from bot.service.records import RecordDraft


class Broker:
    """A SQL event broker table, as Rasa's SQLEventBroker writes it."""

    def __init__(self, path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{path}/events.db")
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), "
                    "data TEXT)"
                )
            )

    def say(self, sender: str, words: str, intent: str = "inform") -> None:
        event = {
            "event": "user",
            "text": words,
            "timestamp": datetime.now(UTC).timestamp() + 1,
            "parse_data": {"intent": {"name": intent, "confidence": 0.95}},
        }
        with self.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"),
                {"s": sender, "d": json.dumps({"sender_id": sender, **event})},
            )


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    return Broker(tmp_path)


def open_handoff(engine: Engine, conversation: str = "c1") -> tuple[HandoffStore, int, str]:
    """A queued handoff with a pending_agent ticket."""
    handoffs = HandoffStore(engine)
    now = datetime.now(UTC)
    record = handoffs.tickets.save_record(
        RecordDraft(customer_id=conversation, channel="socketio", language="zh",
                    category="problem", problem="坏了", created_at=now, due_at=now,
                    confirmation_due_at=now)
    )  # fmt: skip
    ticket = handoffs.tickets.confirm(
        record, at=now, actor="bot", status=TicketStatus.pending_agent
    )
    handoff, _ = handoffs.open(
        conversation_id=conversation, channel="socketio", language="zh",
        reason="explicit_request", ticket_id=ticket.id, packet={}, due_at=ticket.due_at,
    )  # fmt: skip
    return handoffs, handoff.id, ticket.number


def notices_of(engine: Engine) -> list[Notice]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Notice).order_by(Notice.id)))


def customer_events(engine: Engine) -> list[str | None]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                select(TicketEvent.note)
                .where(TicketEvent.kind == TicketEventKind.customer)
                .order_by(TicketEvent.id)
            )
        )


def test_a_waiting_customer_is_acknowledged_once_and_every_message_goes_on_the_ticket(
    engine: Engine, broker: Broker
) -> None:
    handoffs, handoff_id, number = open_handoff(engine)
    broker.say("c1", "在吗")
    broker.say("c1", "还有人吗")
    consumer = HandoffConsumer(handoffs, SqlEventSource(broker.engine))
    batch = consumer.step()
    [ack] = notices_of(engine)
    assert batch.notice_ids == [ack.id]
    assert ack.key == f"ack:{handoff_id}" and ack.kind == "acknowledgement"
    assert ack.status is NoticeStatus.pending and ack.conversation_id == "c1" and ack.urgent
    assert number in ack.text and "我的工单" in ack.text
    assert customer_events(engine) == ["在吗", "还有人吗"]
    shown = [m for m in handoffs.messages(handoff_id) if m.kind == MessageKind.bot]
    assert [m.text for m in shown] == [ack.text]  # the agent sees what the customer was told

    broker.say("c1", "人呢？？")
    assert consumer.step().notice_ids == []  # acknowledged before: no second one
    assert len(notices_of(engine)) == 1 and len(customer_events(engine)) == 3


def test_a_progress_question_is_answered_every_time(engine: Engine, broker: Broker) -> None:
    handoffs, _, number = open_handoff(engine)
    consumer = HandoffConsumer(handoffs, SqlEventSource(broker.engine))
    broker.say("c1", "我的工单呢", "ask_ticket_progress")
    broker.say("c1", "工单咋样了", "ask_ticket_progress")
    batch = consumer.step()
    answers = notices_of(engine)
    assert [n.kind for n in answers] == ["ticket_status", "ticket_status"]
    assert batch.notice_ids == [n.id for n in answers]
    assert all(number in n.text and "等待客服接手" in n.text for n in answers)
    assert len({n.key for n in answers}) == 2


def test_a_batch_read_again_owes_nothing_twice(engine: Engine, broker: Broker) -> None:
    handoffs, _, _ = open_handoff(engine)
    broker.say("c1", "在吗")
    broker.say("c1", "进度呢", "ask_ticket_progress")
    HandoffConsumer(handoffs, SqlEventSource(broker.engine)).step()
    with session_factory(engine).begin() as session:  # a crash before the offset was kept
        session.execute(text("DELETE FROM broker_offsets"))
    again = HandoffConsumer(HandoffStore(engine), SqlEventSource(broker.engine)).step()
    assert again.messages == [] and again.notice_ids == []
    assert len(notices_of(engine)) == 2 and len(customer_events(engine)) == 2


def test_a_conversation_an_agent_has_gets_no_automatic_answer(
    engine: Engine, broker: Broker
) -> None:
    handoffs, handoff_id, _ = open_handoff(engine)
    li = AgentStore(engine).create("li.na", "李娜", AgentRole.agent, "a long password")
    handoffs.claim(handoff_id, li)
    broker.say("c1", "在吗")
    batch = HandoffConsumer(handoffs, SqlEventSource(broker.engine)).step()
    assert [m.text for m in batch.messages] == ["在吗"] and batch.notice_ids == []
    assert notices_of(engine) == [] and customer_events(engine) == []


class FakeRasa:
    """Records what the desk appends to conversations."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, list[dict[str, Any]]]] = []

    async def append(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        self.appended.append((conversation_id, events))


def desk(engine: Engine, handoffs: HandoffStore) -> tuple[DeskService, FakeRasa]:
    rasa = FakeRasa()
    return DeskService(get_settings(), handoffs, rasa, DeskHub()), rasa  # type: ignore[arg-type]


async def test_the_consumer_hands_its_notices_to_the_delivery_hook(engine: Engine) -> None:
    handoffs, _, _ = open_handoff(engine)
    service, _ = desk(engine, handoffs)
    delivered: list[list[int]] = []

    async def deliver(ids: list[int]) -> None:
        delivered.append(ids)

    await service.on_batch(ConsumedBatch(notice_ids=[]))
    service.deliver = deliver
    await service.on_batch(ConsumedBatch(notice_ids=[7, 8]))
    assert delivered == [[7, 8]]

    async def broken(ids: list[int]) -> None:
        raise RuntimeError("SMTP down")

    service.deliver = broken
    await service.on_batch(ConsumedBatch(notice_ids=[9]))  # logged; the scheduler retries


async def test_claim_is_the_first_response_and_resolve_records_the_rating_question(
    engine: Engine,
) -> None:
    handoffs, handoff_id, number = open_handoff(engine)
    service, rasa = desk(engine, handoffs)
    li = AgentStore(engine).create("li.na", "李娜", AgentRole.agent, "a long password")
    await service.claim(handoff_id, li)
    ticket = handoffs.tickets.find(number)
    assert ticket is not None and ticket.first_responded_at is not None
    await service.resolve(handoff_id, li)
    handoff = handoffs.get(handoff_id)
    assert handoff is not None and handoff.status is HandoffStatus.resolved
    [csat] = [n for n in notices_of(engine) if n.kind == "csat"]
    assert csat.key == f"csat:{ticket.id}:0" and csat.status is NoticeStatus.sent
    assert csat.via == "rasa" and csat.slots == {"rating_ticket": number}
    asked = [e for _, events in rasa.appended for e in events if e.get("data")]
    assert asked and asked[0]["text"] == csat.text
