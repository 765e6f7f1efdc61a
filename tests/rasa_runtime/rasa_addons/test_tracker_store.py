"""The incremental SQL tracker store: Rasa's tables and answers, less reading and writing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_addons.tracker_store import IncrementalSQLTrackerStore

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
slots:
  order_number:
    type: text
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: hi}]
"""
)


def turn(text: str, at: float) -> list[Event]:
    """One customer message and the bot's answer."""
    return [
        UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=at),
        ActionExecuted("utter_greet", timestamp=at + 0.1),
        BotUttered("hi", timestamp=at + 0.2),
        SlotSet("order_number", f"KF{int(at)}", timestamp=at + 0.3),
        ActionExecuted("action_listen", timestamp=at + 0.4),
    ]


def store(
    path: Path, broker: SQLEventBroker | None = None, **kwargs: int
) -> IncrementalSQLTrackerStore:
    return IncrementalSQLTrackerStore(
        DOMAIN, host=f"sqlite:///{path}", event_broker=broker, **kwargs
    )


async def chat(
    store: IncrementalSQLTrackerStore, sender: str, text: str, at: float
) -> DialogueStateTracker:
    """Retrieve (or create), add one turn, save: what Rasa does per message."""
    tracker = await store.retrieve(sender) or DialogueStateTracker(sender, DOMAIN.slots)
    for event in turn(text, at):
        tracker.update(event, DOMAIN)
    await store.save(tracker)
    return tracker


async def test_rasa_reads_what_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    incremental = store(db)
    for index in range(5):
        await chat(incremental, "c1", f"m{index}", 100.0 + index)
    stock = await SQLTrackerStore(DOMAIN, host=f"sqlite:///{db}").retrieve("c1")
    fresh = await store(db).retrieve("c1")
    assert stock is not None and fresh is not None
    assert (
        list(stock.events) == list(fresh.events) == list((await incremental.retrieve("c1")).events)
    )
    assert len(stock.events) == 25 and stock.get_slot("order_number") == "KF104"


async def test_turns_written_by_another_instance_are_read(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    first, second = store(db), store(db)
    await chat(first, "c1", "one", 100.0)
    await chat(second, "c1", "two", 200.0)  # the next turn lands on the other instance
    await chat(first, "c1", "three", 300.0)
    tracker = await second.retrieve("c1")
    assert tracker is not None
    texts = [e.text for e in tracker.events if isinstance(e, UserUttered)]
    assert texts == ["one", "two", "three"]
    assert tracker.get_slot("order_number") == "KF300"
    with first.session_scope() as session:
        assert session.query(first.SQLEvent).count() == 15  # each event stored once


async def test_a_tracker_changed_but_not_saved_is_read_again(tmp_path: Path) -> None:
    incremental = store(tmp_path / "tracker.db")
    tracker = await chat(incremental, "c1", "one", 100.0)
    tracker.update(UserUttered("never saved", timestamp=150.0))
    again = await incremental.retrieve("c1")
    assert again is not tracker
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["one"]


async def test_a_new_session_is_read_alone(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    incremental = store(db)
    tracker = await chat(incremental, "c1", "yesterday", 100.0)
    tracker.update(ActionExecuted("action_session_start", timestamp=5000.0))
    tracker.update(SessionStarted(timestamp=5000.1))
    tracker.update(ActionExecuted("action_listen", timestamp=5000.2))
    await incremental.save(tracker)
    await chat(incremental, "c1", "today", 5001.0)
    again = await incremental.retrieve("c1")
    stock = await SQLTrackerStore(DOMAIN, host=f"sqlite:///{db}").retrieve("c1")
    assert list(again.events) == list(stock.events)
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["today"]


async def test_the_broker_gets_every_event_once_in_order(tmp_path: Path) -> None:
    broker = SQLEventBroker(host=f"sqlite:///{tmp_path}/events.db")
    incremental = store(tmp_path / "tracker.db", broker)
    for index in range(20):
        await chat(incremental, f"c{index % 3}", f"m{index}", 100.0 + index)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with broker.session_scope() as session:
            rows = session.query(broker.SQLBrokerEvent).order_by(broker.SQLBrokerEvent.id).all()
        if len(rows) >= 100:
            break
        time.sleep(0.05)
    bodies = [json.loads(row.data) for row in rows]
    assert len(bodies) == 100
    users = [b["text"] for b in bodies if b["event"] == "user"]
    assert users == [f"m{index}" for index in range(20)]
    assert all(b["sender_id"] == row.sender_id for b, row in zip(bodies, rows, strict=True))


async def test_queued_events_are_written_at_exit(tmp_path: Path) -> None:
    broker = SQLEventBroker(host=f"sqlite:///{tmp_path}/events.db")
    incremental = store(tmp_path / "tracker.db", broker)
    await chat(incremental, "c1", "one", 100.0)
    assert incremental._publisher is not None
    incremental._publisher._flush_at_exit()
    with broker.session_scope() as session:
        assert session.query(broker.SQLBrokerEvent).count() == 5


async def test_memory_is_bounded(tmp_path: Path) -> None:
    incremental = store(tmp_path / "tracker.db", cache_trackers=2)
    for sender in ("a", "b", "c"):
        await chat(incremental, sender, "hi", 100.0)
    assert list(incremental._known) == ["b", "c"]
    assert (await incremental.retrieve("a")) is not None  # read again from the database
    small = store(tmp_path / "tracker.db", cache_events=12)
    for sender in ("a", "b", "c"):
        await small.retrieve(sender)
    assert list(small._known) == ["b", "c"]  # 5 events each


async def test_the_events_held_are_counted_as_conversations_grow(tmp_path: Path) -> None:
    held = store(tmp_path / "tracker.db", cache_events=12)
    await chat(held, "a", "one", 100.0)
    await chat(held, "a", "two", 101.0)  # the same tracker, grown to 10 events
    assert held._events_held == 10
    await chat(held, "b", "one", 102.0)  # 15 > 12: "a" goes
    assert list(held._known) == ["b"] and held._events_held == 5
    await chat(held, "b", "two", 103.0)
    await chat(held, "c", "one", 104.0)  # 10 + 5 > 12: "b" goes
    assert list(held._known) == ["c"] and held._events_held == 5
    held.domain = DOMAIN
    assert held._events_held == 0


async def test_a_new_domain_empties_the_memory(tmp_path: Path) -> None:
    incremental = store(tmp_path / "tracker.db")
    await chat(incremental, "c1", "one", 100.0)
    assert list(incremental._known) == ["c1"]
    incremental.domain = DOMAIN.merge(Domain.from_yaml("version: '3.1'\nintents: [bye]"))
    assert not incremental._known
    tracker = await incremental.retrieve("c1")
    assert tracker is not None and len(tracker.events) == 5
