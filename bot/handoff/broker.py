"""Reads Rasa's event broker for the desk: customer messages of handed-off conversations.

Rasa publishes every tracker event as `{"sender_id": ..., **event}`. `HandoffConsumer`
turns the events of conversations with an open handoff into desk messages and stores them
with its read position in one transaction, so a restart neither loses nor repeats one.
A customer's message to a handoff still waiting in the queue also goes on the ticket and
is acknowledged once, or answered with the ticket's status when it asks about progress
(`HandoffStore.store_batch`); the batch carries the ids of those notices for delivery.
The source of events is pluggable (`EventSource`): `SqlEventSource` reads the SQL broker
(SQLite or PostgreSQL, Kefu's default); a Kafka or RabbitMQ source yields the same
`BrokerEvent`s and the consumer stays as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.core.db import Handoff, HandoffMessage, MessageKind
from bot.handoff.store import HandoffStore, NewMessage

logger = logging.getLogger(__name__)

CONSUMER_NAME = "desk"
BATCH_SIZE = 500


@dataclass(frozen=True)
class BrokerEvent:
    """One event from the broker: its position (for resuming), conversation and body."""

    position: str
    sender_id: str
    data: dict[str, Any]


class EventSource(Protocol):
    """Where the consumer reads events from."""

    def read(self, after: str | None, limit: int) -> list[BrokerEvent]:
        """Up to `limit` events after position `after` (from the start when None), oldest first."""
        ...


_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("data", Text),
)
"""Rasa's `SQLEventBroker` table."""


class SqlEventSource:
    """Rasa's SQL event broker (`events(id, sender_id, data)`), SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        """Reads the broker database through `engine` (the web app makes it at start)."""
        self._engine = engine

    def read(self, after: str | None, limit: int) -> list[BrokerEvent]:
        """Events with an id above `after`; none while Rasa has not created the table yet."""
        query = select(_EVENTS).where(_EVENTS.c.id > int(after or 0)).order_by(_EVENTS.c.id)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query.limit(limit)).all()
        except (OperationalError, ProgrammingError):
            return []  # no table yet: Rasa creates it on start
        events = []
        for row in rows:
            try:
                data = json.loads(row.data)
            except (TypeError, ValueError):
                data = {}
            events.append(
                BrokerEvent(
                    str(row.id), row.sender_id or "", data if isinstance(data, dict) else {}
                )
            )
        return events


@dataclass
class ConsumedBatch:
    """What one read changed: stored messages, handoffs to show anew, notices to deliver."""

    messages: list[HandoffMessage] = field(default_factory=list)
    handoffs: list[int] = field(default_factory=list)
    events: int = 0
    notice_ids: list[int] = field(default_factory=list)


def _timestamp(data: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(float(data.get("timestamp") or 0), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def _is_desk_message(data: dict[str, Any]) -> bool:
    return bool((data.get("metadata") or {}).get("kefu"))


def _intent(data: dict[str, Any]) -> str | None:
    """The intent Rasa's NLU gave a `user` event, if any."""
    intent = (data.get("parse_data") or {}).get("intent") or {}
    name = intent.get("name") if isinstance(intent, dict) else None
    return str(name) if name else None


class HandoffConsumer:
    """Turns broker events into desk messages; `run` polls until stopped."""

    def __init__(
        self,
        store: HandoffStore,
        source: EventSource,
        consumer: str = CONSUMER_NAME,
        interval: float = 0.05,
    ) -> None:
        self.store = store
        self.source = source
        self.consumer = consumer
        self.interval = interval
        self._position: str | None = None

    def step(self) -> ConsumedBatch:
        """Reads one batch and stores what belongs to open handoffs (blocking)."""
        if self._position is None:  # once: afterwards this consumer is the only writer
            self._position = self.store.offset(self.consumer)
        events = self.source.read(self._position, BATCH_SIZE)
        if not events:
            return ConsumedBatch()
        open_handoffs: dict[str, Handoff | None] = {}
        pending: list[tuple[int, NewMessage]] = []
        announce: list[int] = []
        for event in events:
            sender = event.sender_id
            if sender not in open_handoffs or event.data.get("event") == "pause":
                open_handoffs[sender] = self.store.open_for(sender)
            handoff = open_handoffs[sender]
            if handoff is None:
                continue
            kind = event.data.get("event")
            at = _timestamp(event.data)
            if kind == "pause":
                announce.append(handoff.id)
            elif at < handoff.created_at:
                continue  # in the packet already
            elif kind == "user" and event.data.get("text"):
                pending.append(
                    (
                        handoff.id,
                        NewMessage(
                            MessageKind.customer,
                            str(event.data["text"]),
                            at,
                            source_key=f"event:{event.position}",
                            intent=_intent(event.data),
                        ),
                    )
                )
            elif kind == "bot" and event.data.get("text") and not _is_desk_message(event.data):
                pending.append(
                    (
                        handoff.id,
                        NewMessage(
                            MessageKind.bot,
                            str(event.data["text"]),
                            at,
                            source_key=f"event:{event.position}",
                        ),
                    )
                )
        stored = self.store.store_batch(self.consumer, events[-1].position, pending)
        self._position = events[-1].position
        changed = list(dict.fromkeys([*announce, *(m.handoff_id for m in stored.messages)]))
        return ConsumedBatch(stored.messages, changed, len(events), stored.notice_ids)

    async def run(
        self,
        on_batch: Callable[[ConsumedBatch], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Polls the source (in a thread) and hands each non-empty batch to `on_batch`."""
        while not stop.is_set():
            try:
                batch = await asyncio.to_thread(self.step)
            except Exception:  # a broken batch must not stop the desk: log, wait, retry
                logger.exception("Reading the event broker failed; retrying")
                batch = ConsumedBatch()
                await asyncio.sleep(1.0)
            if batch.messages or batch.handoffs or batch.notice_ids:
                await on_batch(batch)
            if batch.events < BATCH_SIZE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
