"""Handoffs: the action that opens one, the packet, the store, the broker consumer, ratings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, text

from actions.handoff import (
    ActionHandoff,
    ActionRateService,
    ActionSessionStart,
    read_score,
    suggested_next_step,
)
from bot.accounts import AgentStore
from bot.casework import CaseWork
from bot.core.db import AgentRole, HandoffStatus, MessageKind, TicketStatus, make_engine
from bot.customers import CustomerDirectory
from bot.handoff.broker import HandoffConsumer, SqlEventSource
from bot.handoff.packet import SCHEMA_PATH, HandoffPacket, packet_schema
from bot.handoff.policy import HandoffReason
from bot.handoff.service import may_see
from bot.handoff.store import HandoffConflict, HandoffError, HandoffStore, NewMessage
from bot.service.orders import OrderStore
from bot.service.policy import load_policy
from bot.service.tickets import TicketStore
from tests.app.conftest import make_tracker, user_event

NOW = datetime.now(UTC).timestamp()


@pytest.fixture
def stores(engine: Engine) -> Iterator[tuple[HandoffStore, TicketStore]]:
    """The handoff and ticket stores the actions use, on the test database."""
    handoffs = HandoffStore(engine)
    tickets = handoffs.tickets
    with ExitStack() as stack:
        for module in ("actions.handoff", "actions.confirmation"):
            stack.enter_context(patch(f"{module}.ticket_store", return_value=tickets))
        stack.enter_context(patch("actions.handoff.handoff_store", return_value=handoffs))
        directory = CustomerDirectory(engine)
        for module in ("actions.handoff", "actions.confirmation"):
            stack.enter_context(patch(f"{module}.customer_directory", return_value=directory))
        orders = OrderStore(engine)  # the product name of an order in the record
        stack.enter_context(patch("actions.confirmation.order_store", return_value=orders))
        yield handoffs, tickets


def conversation() -> list[dict[str, Any]]:
    """A customer who asked about an order, got no answer, then asked for a person."""
    web, start = {"input_channel": "socketio"}, NOW - 9
    return [
        {**user_event("KF202611200003 坏了", "product_question", 0.81), **web, "timestamp": start},
        {"event": "bot", "text": "请问是什么问题？", "timestamp": NOW - 8},
        {**user_event("左耳没声音", "inform", 0.52), "timestamp": NOW - 7, **web},
        {"event": "bot", "text": "抱歉我没找到答案", "timestamp": NOW - 6},
    ]  # fmt: skip


async def hand_over(**slots: Any) -> tuple[CollectingDispatcher, list[dict[str, Any]]]:
    tracker = make_tracker("转人工", "ask_human", 0.97, slots=slots, events=conversation())
    tracker.events[-1].update({"timestamp": NOW, "input_channel": "socketio"})
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker, {})
    return dispatcher, events


async def test_the_handoff_pauses_the_bot_and_stores_the_packet_with_a_ticket(
    stores: tuple[HandoffStore, TicketStore],
) -> None:
    handoffs, _ = stores
    dispatcher, events = await hand_over(spin_situation="KF202611200003")
    assert events[-1] == ConversationPaused()
    assert dispatcher.messages[0]["response"] == "utter_handoff_offline"  # nobody online
    handoff = handoffs.open_for("test-user")
    assert handoff is not None and handoff.status == HandoffStatus.queued
    assert handoff.ticket.status == TicketStatus.pending_agent
    packet = HandoffPacket.model_validate(handoff.packet)
    assert packet.reason == "explicit_request"
    assert [line.text for line in packet.transcript][-1] == "转人工"
    assert packet.transcript[0].channel == "socketio"
    assert (packet.intents[0].intent, packet.intents[0].confidence) == ("product_question", 0.81)
    assert packet.customer.phone is None  # a typed order number never gives its phone
    assert packet.ticket_number == handoff.ticket.number
    assert packet.due_at == handoff.due_at
    assert packet.urgency_tier == handoff.ticket.urgency.value
    assert "客户要求人工" in packet.suggested_next_step
    opening = handoffs.messages(handoff.id)
    assert [m.kind for m in opening][:2] == [MessageKind.customer, MessageKind.bot]
    assert opening[-1].text == "转人工"


async def test_a_second_handoff_reuses_the_open_one(
    stores: tuple[HandoffStore, TicketStore],
) -> None:
    handoffs, _ = stores
    await hand_over()
    first = handoffs.open_for("test-user")
    await hand_over()
    second = handoffs.open_for("test-user")
    assert first is not None and second is not None and second.id == first.id
    assert len(handoffs.queue()) == 1


async def test_queue_position_and_the_agents_online(
    stores: tuple[HandoffStore, TicketStore], engine: Engine
) -> None:
    handoffs, _ = stores
    agent = AgentStore(engine).create("li.na", "李娜", AgentRole.agent, "a long password")
    handoffs.touch_agent(agent.id)
    dispatcher, _ = await hand_over()
    assert dispatcher.messages[0]["response"] == "utter_handoff_queued"
    assert dispatcher.messages[0]["position"] == 1
    assert dispatcher.messages[0]["ahead"] == 0


async def test_a_trigger_names_the_reason_and_the_ticket(
    stores: tuple[HandoffStore, TicketStore],
) -> None:
    handoffs, _ = stores
    await hand_over(handoff_reason="negative_sentiment")
    handoff = handoffs.open_for("test-user")
    assert handoff is not None and handoff.reason == "negative_sentiment"
    assert handoff.packet["reason"] == "negative_sentiment"


def test_claim_transfer_and_end(engine: Engine) -> None:
    handoffs, ticket = _open(engine)
    agents = AgentStore(engine)
    li = agents.create("li.na", "李娜", AgentRole.agent, "a long password")
    wang = agents.create("wang", "王", AgentRole.agent, "a long password")
    admin = agents.create("boss", "Boss", AgentRole.admin, "a long password")
    claimed = handoffs.claim(ticket, li)
    assert claimed.status == HandoffStatus.active and claimed.agent_id == li.id
    assert claimed.ticket.status == TicketStatus.in_progress
    with pytest.raises(HandoffConflict):
        handoffs.claim(ticket, wang)
    with pytest.raises(HandoffConflict):
        handoffs.assign(ticket, wang, wang)  # not the owner
    assert handoffs.assign(ticket, wang, li).agent_id == wang.id
    assert handoffs.assign(ticket, li, admin).agent_id == li.id  # an admin may
    with pytest.raises(HandoffConflict):
        handoffs.end(ticket, HandoffStatus.resolved, wang)
    ended = handoffs.end(ticket, HandoffStatus.resolved, li)
    assert ended.status == HandoffStatus.resolved and ended.ended_at is not None
    assert ended.ticket.status == TicketStatus.resolved
    with pytest.raises(HandoffConflict):
        handoffs.claim(ticket, li)
    assert handoffs.open_for("c1") is None


def test_who_may_see_a_handoff(engine: Engine) -> None:
    handoffs, handoff_id = _open(engine)
    agents = AgentStore(engine)
    li = agents.create("li.na", "李娜", AgentRole.agent, "a long password")
    wang = agents.create("wang", "王", AgentRole.agent, "a long password")
    editor = agents.create("editor", "编辑", AgentRole.editor, "a long password")
    admin = agents.create("boss", "Boss", AgentRole.admin, "a long password")
    queued = handoffs.get(handoff_id)
    assert queued is not None
    assert [may_see(queued, a) for a in (li, wang, editor, admin)] == [True, True, False, True]
    claimed = handoffs.claim(handoff_id, li)
    assert [may_see(claimed, a) for a in (li, wang, editor, admin)] == [True, False, False, True]
    ended = handoffs.end(handoff_id, HandoffStatus.resolved, li)
    assert [may_see(ended, a) for a in (li, wang, editor, admin)] == [True, False, False, True]


def test_handing_back_reopens_the_ticket_for_the_bot(engine: Engine) -> None:
    handoffs, handoff_id = _open(engine)
    li = AgentStore(engine).create("li.na", "李娜", AgentRole.agent, "a long password")
    handoffs.claim(handoff_id, li)
    ended = handoffs.end(handoff_id, HandoffStatus.handed_back, li)
    assert ended.ticket.status == TicketStatus.open
    assert [e.to_status for e in handoffs.tickets.history(ended.ticket.number)][
        -1
    ] == TicketStatus.open


def test_messages_are_checked(engine: Engine) -> None:
    handoffs, handoff_id = _open(engine)
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(HandoffError):
            handoffs.add_message(handoff_id, NewMessage(MessageKind.note, bad, datetime.now(UTC)))


def test_the_consumer_stores_customer_messages_once_and_resumes_after_a_restart(
    engine: Engine, tmp_path: Path
) -> None:
    handoffs, handoff_id = _open(engine)
    broker = make_engine(f"sqlite:///{tmp_path}/events.db")
    with broker.begin() as connection:
        connection.execute(
            text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)")
        )
    later = datetime.now(UTC).timestamp() + 5

    def publish(sender: str, event: dict[str, Any]) -> None:
        with broker.begin() as connection:
            connection.execute(
                text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"),
                {"s": sender, "d": json.dumps({"sender_id": sender, **event})},
            )

    publish("c1", {"event": "user", "text": "before", "timestamp": 0})  # in the packet already
    publish("c1", {"event": "user", "text": "还在吗", "timestamp": later})
    publish("other", {"event": "user", "text": "not handed off", "timestamp": later})
    publish(
        "c1",
        {
            "event": "bot",
            "text": "agent reply",
            "timestamp": later,
            "metadata": {"kefu": {"agent": "li"}},
        },
    )
    publish("c1", {"event": "user", "text": "<script>x</script>", "timestamp": later + 1})
    consumer = HandoffConsumer(handoffs, SqlEventSource(broker))
    batch = consumer.step()
    customer = [m.text for m in batch.messages if m.kind == MessageKind.customer]
    assert customer == ["还在吗", "<script>x</script>"]
    assert batch.handoffs == [handoff_id]
    assert consumer.step().events == 0

    publish("c1", {"event": "user", "text": "after restart", "timestamp": later + 2})
    restarted = HandoffConsumer(HandoffStore(engine), SqlEventSource(broker))
    assert [m.text for m in restarted.step().messages] == ["after restart"]  # acknowledged once
    texts = [m.text for m in handoffs.messages(handoff_id) if m.kind == MessageKind.customer]
    assert texts == ["还在吗", "<script>x</script>", "after restart"]
    broker.dispose()


def test_the_consumer_waits_for_rasa_to_create_the_broker_table(
    engine: Engine, tmp_path: Path
) -> None:
    handoffs = HandoffStore(engine)
    broker = make_engine(f"sqlite:///{tmp_path}/none.db")
    consumer = HandoffConsumer(handoffs, SqlEventSource(broker))
    assert consumer.step().events == 0


async def test_a_rating_is_stored_on_the_resolved_ticket(engine: Engine) -> None:
    handoffs, handoff_id = _open(engine)
    li = AgentStore(engine).create("li.na", "李娜", AgentRole.agent, "a long password")
    handoffs.claim(handoff_id, li)
    number = handoffs.end(handoff_id, HandoffStatus.resolved, li).ticket.number
    tracker = make_tracker(
        '/rate_service{"score": 2}', "rate_service", 1.0,
        slots={"rating_ticket": number}, entities=[{"entity": "score", "value": 2}],
    )  # fmt: skip
    dispatcher = CollectingDispatcher()
    work = CaseWork(engine, load_policy(), CustomerDirectory(engine))
    with patch("actions.handoff.case_work", return_value=work):
        events = await ActionRateService().run(dispatcher, tracker, {})
    assert events == [SlotSet("rating_ticket", None)]
    assert dispatcher.messages[0]["response"] == "utter_rating_sorry"
    ticket = handoffs.tickets.find(number)
    assert ticket is not None and ticket.satisfaction == 2


async def test_an_unclear_rating_is_asked_again() -> None:
    unclear = make_tracker("嗯", "rate_service", slots={"rating_ticket": "TK202611220001"})
    dispatcher = CollectingDispatcher()
    assert await ActionRateService().run(dispatcher, unclear, {}) == []
    assert dispatcher.messages[0]["response"] == "utter_ask_rating_again"


@pytest.mark.parametrize("text", ["3", "5", "10", "３"])
async def test_a_bare_number_nobody_asked_a_rating_for_is_asked_about(text: str) -> None:
    dispatcher = CollectingDispatcher()
    assert await ActionRateService().run(dispatcher, make_tracker(text, "rate_service"), {}) == []
    assert dispatcher.messages == [
        {**dispatcher.messages[0], "response": "utter_clarify_number", "number": text}
    ]


async def test_praise_nobody_asked_for_is_thanked_without_a_rating() -> None:
    dispatcher = CollectingDispatcher()
    await ActionRateService().run(dispatcher, make_tracker("五星好评！", "rate_service"), {})
    assert dispatcher.messages[0]["response"] == "utter_thanks_for_praise"


@pytest.mark.parametrize(
    ("text", "score"),
    [("5", 5), ("打4分", 4), ("五星", 5), ("一星", 1), ("非常满意", 5), ("不满意", 2),
     ("i'd rate this 3 out of 5", 3), ("very satisfied", 5), ("TK202611220001", None),
     ("嗯", None)],
)  # fmt: skip
def test_read_score(text: str, score: int | None) -> None:
    assert read_score(text) == score


async def test_session_start_marks_vips_and_keeps_a_handed_off_conversation_paused(
    stores: tuple[HandoffStore, TicketStore],
) -> None:
    handoffs, _ = stores
    handoffs.set_vip("test-user", True)
    tracker = make_tracker("hi", "greet", slots={"spin_problem": "坏了"})
    events = await ActionSessionStart().run(CollectingDispatcher(), tracker, {})
    assert SlotSet("customer_vip", True) in events
    assert SlotSet("spin_problem", "坏了") in events
    assert ConversationPaused() not in events
    await hand_over()
    events = await ActionSessionStart().run(CollectingDispatcher(), tracker, {})
    assert ConversationPaused() in events


def test_suggested_next_step_names_the_wanted_outcome_and_order() -> None:
    step = suggested_next_step(HandoffReason.major_complaint, "refund", "KF202611200001")
    assert "重大投诉" in step and "退款" in step and "KF202611200001" in step and "refund" in step


def test_the_committed_schema_matches_the_packet_model() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == packet_schema()


def _open(engine: Engine) -> tuple[HandoffStore, int]:
    """A queued handoff of conversation c1 with a pending_agent ticket."""
    from bot.service.records import RecordDraft

    handoffs = HandoffStore(engine)
    now = datetime.now(UTC)
    record = handoffs.tickets.save_record(
        RecordDraft(customer_id="c1", channel="socketio", language="zh", category="problem",
                    problem="坏了", created_at=now, due_at=now, confirmation_due_at=now)
    )  # fmt: skip
    ticket = handoffs.tickets.confirm(
        record, at=now, actor="bot", status=TicketStatus.pending_agent
    )
    handoff, created = handoffs.open(
        conversation_id="c1", channel="socketio", language="zh", reason="explicit_request",
        ticket_id=ticket.id, packet={}, due_at=ticket.due_at,
    )  # fmt: skip
    assert created
    return handoffs, handoff.id
