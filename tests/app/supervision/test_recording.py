"""Recording conversations from the broker: messages, agents, idle close, outcomes, resuming."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text, update

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    BrokerOffset,
    Conversation,
    ConversationMessage,
    Handoff,
    HandoffStatus,
    KbFeedback,
    KbOutcome,
    KbQuery,
    Ticket,
    TicketStatus,
    make_engine,
    session_factory,
)
from bot.handoff.broker import SqlEventSource
from bot.handoff.store import HandoffStore
from bot.service.policy import ServicePolicy, load_policy
from bot.service.records import RecordDraft
from bot.supervision.recording import ConversationRecorder, detect_language

T0 = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)
"""10:00 in Shanghai."""


class Broker:
    """Rasa's SQL event broker table, written as `SQLEventBroker.publish` does."""

    def __init__(self, path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{path}/events.db")
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), "
                    "data TEXT)"
                )
            )

    def raw(self, sender: str | None, data: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"),
                {"s": sender, "d": data},
            )

    def publish(self, sender: str, at: datetime, event: dict[str, Any]) -> None:
        body = {"sender_id": sender, **event, "timestamp": at.timestamp()}
        body.setdefault("metadata", {"model_id": "m1", "assistant_id": "kefu"})
        self.raw(sender, json.dumps(body, ensure_ascii=False))

    def user(
        self,
        sender: str,
        words: str,
        at: datetime,
        intent: str = "inform",
        channel: str = "wechat",
        language: str | None = None,
    ) -> None:
        entities = [{"entity": "language", "value": language}] if language else []
        parse = {"intent": {"name": intent, "confidence": 0.93}, "entities": entities}
        self.publish(
            sender,
            at,
            {"event": "user", "text": words, "parse_data": parse, "input_channel": channel},
        )

    def action(self, sender: str, name: str, at: datetime) -> None:
        self.publish(sender, at, {"event": "action", "name": name, "policy": "RulePolicy"})

    def bot(
        self,
        sender: str,
        words: str,
        at: datetime,
        utter: str | None = None,
        action: str | None = None,
        **metadata: Any,
    ) -> None:
        if action:
            self.action(sender, action, at)
        meta = {"utter_action": utter, **metadata} if utter else metadata
        self.publish(sender, at, {"event": "bot", "text": words, "metadata": meta, "data": {}})

    def agent(self, sender: str, username: str, words: str, at: datetime) -> None:
        kefu = {"handoff_id": 1, "agent": username, "agent_name": username, "message_id": 3}
        self.bot(sender, words, at, kefu=kefu)

    def pause(self, sender: str, at: datetime) -> None:
        self.publish(sender, at, {"event": "pause"})

    def slot(self, sender: str, name: str, value: Any, at: datetime) -> None:
        self.publish(sender, at, {"event": "slot", "name": name, "value": value})


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    return Broker(tmp_path)


@pytest.fixture
def policy() -> ServicePolicy:
    return load_policy()


def recorder(engine: Engine, broker: Broker, policy: ServicePolicy) -> ConversationRecorder:
    return ConversationRecorder(engine, SqlEventSource(broker.engine), policy)


def conversations(engine: Engine) -> list[Conversation]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Conversation).order_by(Conversation.id)))


def messages(engine: Engine, pk: int) -> list[ConversationMessage]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                select(ConversationMessage)
                .where(ConversationMessage.conversation_pk == pk)
                .order_by(ConversationMessage.at, ConversationMessage.id)
            )
        )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def self_service(broker: Broker, sender: str = "wx-1", start: float = 0) -> None:
    """Greeting, a knowledge-base answer, thanks."""
    broker.action(sender, "action_session_start", at(start))
    broker.slot(sender, "language", "zh", at(start))
    broker.user(sender, "你好", at(start), intent="greet", language="zh")
    broker.bot(sender, "您好，有什么可以帮您？", at(start + 0.1), "utter_greet", "utter_greet")
    broker.user(sender, "发票怎么开", at(start + 1), intent="invoice")
    broker.bot(
        sender,
        "在订单详情页申请电子发票。\n这个回答解决您的问题了吗？",
        at(start + 1.1),
        "utter_kb_answer",
        "action_answer_from_kb",
        kb_entry_id="invoices-001",
    )
    broker.user(sender, "/affirm", at(start + 2), intent="affirm")
    broker.bot(sender, "太好了", at(start + 2.1), "utter_kb_glad", "action_kb_feedback")


def test_a_self_service_conversation_is_recorded_and_closed_when_idle(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    self_service(broker)
    rec = recorder(engine, broker, policy)
    assert rec.step() == 11
    [row] = conversations(engine)
    assert (row.conversation_id, row.channel, row.language, row.source) == (
        "wx-1",
        "wechat",
        "zh",
        "live",
    )
    assert (row.customer_messages, row.bot_messages, row.agent_messages) == (3, 3, 0)
    assert (row.kb_answers, row.fallbacks) == (1, 0)
    assert (row.first_intent, row.first_question) == ("invoice", "发票怎么开")
    assert row.started_at == at(0) and row.ended_at is None
    transcript = messages(engine, row.id)
    assert [(m.role, m.action) for m in transcript] == [
        ("customer", None),
        ("bot", "utter_greet"),
        ("customer", None),
        ("bot", "utter_kb_answer"),
        ("customer", None),
        ("bot", "utter_kb_glad"),
    ]
    assert transcript[2].intent == "invoice" and transcript[2].confidence == pytest.approx(0.93)
    assert all(m.source_key and m.source_key.startswith("event:") for m in transcript)

    assert rec.close_idle(at(2.1 + 29)) == []  # not quiet long enough
    assert rec.close_idle(at(2.1 + 30)) == [row.id]
    [ended] = conversations(engine)
    assert ended.ended_at == at(2.1) and ended.outcome == "self_service"
    assert rec.close_idle(at(120)) == []


def test_handoff_agents_transfers_notices_and_the_close_after_the_handoff_ends(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    agents = AgentStore(engine)
    li = agents.create("li.na", "李娜", AgentRole.agent, "a long password")
    wang = agents.create("wang.lei", "王磊", AgentRole.agent, "a long password")
    handoffs = HandoffStore(engine)
    record = handoffs.tickets.save_record(
        RecordDraft(customer_id="wx-2", channel="wechat", language="zh", category="problem",
                    problem="耳机坏了", created_at=at(1), due_at=at(600),
                    confirmation_due_at=at(30))
    )  # fmt: skip
    ticket = handoffs.tickets.confirm(
        record, at=at(1), actor="bot", status=TicketStatus.pending_agent
    )
    handoff, _ = handoffs.open(
        conversation_id="wx-2", channel="wechat", language="zh", reason="explicit_request",
        ticket_id=ticket.id, packet={}, due_at=ticket.due_at,
    )  # fmt: skip
    with session_factory(engine).begin() as session:
        session.execute(update(Handoff).values(created_at=at(1)))

    broker.user("wx-2", "耳机左耳没声音", at(0), intent="complain")
    broker.bot("wx-2", "好的，我帮您记录", at(0.1), "utter_problem_ack", "action_read_need")
    broker.user("wx-2", "转人工", at(1), intent="ask_human")
    broker.bot("wx-2", "已为您转接人工客服", at(1), "utter_handoff_queued", "action_handoff")
    broker.pause("wx-2", at(1))
    joined = {"handoff_id": 1, "agent": "li.na", "agent_name": "李娜", "message_id": None}
    broker.bot("wx-2", "客服 李娜 已接入，请稍候。", at(2), kefu=joined)  # the desk's own text
    broker.agent("wx-2", "li.na", "您好，请问是哪天买的？", at(3))
    broker.user("wx-2", "上周", at(5))
    moved = {**joined, "agent": "wang.lei"}
    broker.bot("wx-2", "您的对话已转交给客服 王磊", at(5.5), kefu=moved)
    broker.agent("wx-2", "wang.lei", "您好，我是王磊，给您换新", at(6))
    broker.agent("wx-2", "wang.lei", "还有什么可以帮您", at(7))
    broker.bot("wx-2", "您的工单有新进展", at(8), kefu={"notice_id": 9, "kind": "progress"})
    rec = recorder(engine, broker, policy)
    rec.drain()
    [row] = conversations(engine)
    assert (row.customer_messages, row.bot_messages, row.agent_messages) == (3, 2, 3)
    assert row.agents == ["li.na", "wang.lei"] and row.transfers == 1
    assert row.agent_id == wang.id
    assert row.handoff_requested_at == at(1) and row.first_agent_reply_at == at(3)
    assert row.first_response_seconds == pytest.approx(120)
    roles = [(m.role, m.author) for m in messages(engine, row.id)]
    assert roles[-7:] == [
        ("system", "li.na"),
        ("agent", "li.na"),
        ("customer", None),
        ("system", "wang.lei"),
        ("agent", "wang.lei"),
        ("agent", "wang.lei"),
        ("system", None),
    ]

    assert rec.close_idle(at(300)) == []  # the handoff is still open
    handoffs.claim(handoff.id, li)
    handoffs.end(handoff.id, HandoffStatus.resolved, li)
    handoffs.tickets.rate(ticket.number, 5)
    assert rec.close_idle(at(300)) == [row.id]
    [ended] = conversations(engine)
    assert ended.outcome == "handoff" and ended.ended_at == at(8)
    assert (ended.handoff_id, ended.ticket_id, ended.rating) == (handoff.id, ticket.id, 5)


def test_a_message_after_the_idle_time_starts_a_new_conversation(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    self_service(broker)
    broker.user("wx-1", "where is my order", at(120), intent="order_status", channel="telegram")
    broker.bot("wx-1", "Please send the order number", at(120.1), "utter_ask_order_number")
    recorder(engine, broker, policy).drain()
    first, second = conversations(engine)
    assert first.ended_at == at(2.1) and first.outcome == "self_service"
    assert second.ended_at is None and second.started_at == at(120)
    assert (second.channel, second.language, second.customer_messages) == ("telegram", "en", 1)


@pytest.mark.parametrize(
    ("script", "outcome"),
    [
        ("fallback", "unresolved"),
        ("silence", "abandoned"),
        ("not_solved", "unresolved"),
        ("ticket", "ticket"),
        ("default", "unresolved"),
    ],
)
def test_outcomes(
    engine: Engine, broker: Broker, policy: ServicePolicy, script: str, outcome: str
) -> None:
    broker.user("c", "能帮我查一下那个东西吗", at(0), intent="nlu_fallback")
    if script == "fallback":
        broker.bot("c", "抱歉，能换个说法吗？", at(0.1), "utter_ask_rephrase", "action_fallback")
        broker.user("c", "就是那个", at(1), intent="nlu_fallback")
        broker.bot("c", "抱歉，能换个说法吗？", at(1.1), "utter_ask_rephrase", "action_fallback")
    elif script == "default":
        broker.bot("c", "Sorry?", at(0.1), action="action_default_fallback")
    elif script in ("not_solved", "ticket"):
        broker.bot("c", "答案", at(0.1), "utter_kb_answer", "action_answer_from_kb")
    if script == "not_solved":
        with session_factory(engine).begin() as session:
            session.add(
                KbQuery(sender_id="c", channel="wechat", language="zh", query="q",
                        outcome=KbOutcome.answered, entry_id="e", confidence=0.9, top_hits=[],
                        index_version="v", feedback=KbFeedback.not_solved,
                        created_at=at(0.1).replace(tzinfo=None))
            )  # fmt: skip
    if script == "ticket":
        tickets = HandoffStore(engine).tickets
        record = tickets.save_record(
            RecordDraft(customer_id="c", channel="wechat", language="zh", category="problem",
                        problem="x", created_at=at(0.5), due_at=at(600),
                        confirmation_due_at=at(30))
        )  # fmt: skip
        tickets.confirm(record, at=at(0.5), actor="bot")
        with session_factory(engine).begin() as session:
            session.execute(update(Ticket).values(created_at=at(0.5)))
    rec = recorder(engine, broker, policy)
    rec.drain()
    [row] = conversations(engine)
    assert rec.close(row.id, at(60))
    assert not rec.close(row.id, at(60))
    [ended] = conversations(engine)
    assert ended.outcome == outcome
    if script == "fallback":
        assert ended.fallbacks == 2
    if script == "not_solved":
        assert ended.kb_answers == 1


def test_garbled_events_are_skipped_and_the_rest_recorded(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    broker.raw("x", "not json")
    broker.raw("x", "[1, 2]")
    broker.raw(None, json.dumps({"event": "user", "text": "no sender", "timestamp": 1}))
    broker.raw("x", json.dumps({"event": "user", "text": "no time"}))
    broker.raw("x", json.dumps({"event": "user", "text": "nan", "timestamp": "NaN"}))
    broker.raw("x", json.dumps({"event": "user", "text": 5, "timestamp": 1e9}))
    broker.raw("x", json.dumps({"event": "user", "text": "big", "timestamp": 1e300}))
    broker.raw("y" * 300, json.dumps({"event": "user", "text": "long sender", "timestamp": 1e9}))
    broker.raw("x", json.dumps({"event": "bot", "text": "no one", "timestamp": 1e9}))
    broker.publish(
        "x",
        at(0),
        {"event": "user", "text": "你好呀", "parse_data": "garbage", "input_channel": 7},
    )
    broker.publish("x", at(0.1), {"event": "bot", "text": "hi", "metadata": [1], "data": None})
    broker.publish("x", at(0.2), {"event": "slot", "name": "language", "value": {"a": 1}})
    broker.publish("x", at(0.3), {"event": "action", "name": None})
    broker.publish("x", at(0.4), {"event": "user", "text": "   "})
    broker.publish("x", at(0.5), {"event": "user_featurization"})
    rec = recorder(engine, broker, policy)
    assert rec.drain() == 15
    [row] = conversations(engine)
    assert (row.conversation_id, row.channel, row.language) == ("x", "unknown", "zh")
    assert [m.text for m in messages(engine, row.id)] == ["你好呀", "hi"]


def test_a_second_read_stores_nothing_twice_and_the_position_resumes(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    self_service(broker)
    first = recorder(engine, broker, policy)
    assert first.step() == 11
    assert first.step() == 0
    assert recorder(engine, broker, policy).step() == 0  # a restart resumes after the batch

    broker.user("wx-1", "还有一个问题", at(3))
    resumed = recorder(engine, broker, policy)
    assert resumed.step() == 1
    [row] = conversations(engine)
    assert row.customer_messages == 4

    with session_factory(engine).begin() as session:  # the position lost: all read again
        session.execute(delete(BrokerOffset))
    assert recorder(engine, broker, policy).drain() == 12
    [again] = conversations(engine)
    assert again.customer_messages == 4 and len(messages(engine, row.id)) == 7


def test_two_recorders_reading_the_same_batch_store_it_once(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    one, two = recorder(engine, broker, policy), recorder(engine, broker, policy)
    assert one.step() == 0 and two.step() == 0  # both start with no position
    self_service(broker)
    assert one.step() == 11
    assert two.step() == 0  # overtaken: rereads the position
    assert two.step() == 0
    broker.user("wx-1", "再问一个", at(3))
    assert two.step() == 1
    assert one.step() == 0
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(ConversationMessage.id))) == 7


def test_late_and_early_events(engine: Engine, broker: Broker, policy: ServicePolicy) -> None:
    self_service(broker)
    broker.user("wx-1", "new question", at(100), intent="invoice")
    broker.bot("wx-1", "stamped before its conversation", at(99), "utter_invoice_help")
    broker.user("wx-1", "a late message of the first conversation", at(50))
    broker.slot("wx-1", "language", "en", at(100.5))
    recorder(engine, broker, policy).drain()
    first, second = conversations(engine)
    assert first.customer_messages == 3
    second_messages = messages(engine, second.id)
    assert [m.text for m in second_messages] == [
        "new question",
        "stamped before its conversation",
        "a late message of the first conversation",
    ]
    assert all(m.at >= second.started_at for m in second_messages)
    assert second.language == "en"


def test_a_late_customer_message_of_a_closed_conversation_is_not_recorded(
    engine: Engine, broker: Broker, policy: ServicePolicy
) -> None:
    self_service(broker)
    rec = recorder(engine, broker, policy)
    rec.drain()
    rec.close_idle(at(60))
    broker.user("wx-1", "stamped before the end", at(1.5))
    broker.bot("wx-1", "a notice with no conversation open", at(200), kefu={"notice_id": 1})
    assert rec.drain() == 2
    [row] = conversations(engine)
    assert row.customer_messages == 3 and len(conversations(engine)) == 1


@pytest.mark.parametrize(
    ("text", "entities", "language"),
    [
        ("我的order到哪了", None, "zh"),
        ("where is my order", None, "en"),
        ("12345", None, None),
        ("/greet", None, None),
        ("ok", {"entities": [{"entity": "language", "value": "en"}]}, "en"),
        ("好", {"entities": "bad"}, "zh"),
    ],
)
def test_detect_language(text: str, entities: dict[str, Any] | None, language: str | None) -> None:
    assert detect_language(text, entities) == language
