"""Reads Rasa's event broker for the desk: customer messages of handed-off conversations.

Rasa publishes every tracker event as `{"sender_id": ..., **event}`. `HandoffConsumer`
turns the events of conversations with an open handoff into desk messages and stores them
with its read position in one transaction, so a restart neither loses nor repeats one.
A customer's message to a handoff still waiting in the queue also goes on the ticket and
is acknowledged once, or answered with the ticket's status when it asks about progress
(`HandoffStore.store_batch`); the batch carries the ids of those notices for delivery.
The source of events is pluggable (`EventSource`): `SqlEventSource` reads the SQL broker
(SQLite or PostgreSQL, Kefu's default), `StreamEventSource` the RabbitMQ stream Rasa's
`StreamEventBroker` writes (`amqp://`, the scale-out stack); `event_source(settings)` picks
one by the scheme of `KEFU_EVENT_BROKER_URL`. Both yield the same `BrokerEvent`s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.core.db import Handoff, HandoffMessage, MessageKind, make_engine
from bot.core.settings import Settings
from bot.handoff.store import HandoffStore, NewMessage
from kefu_shared.event_stream import STREAM_ARGUMENTS, StreamTarget

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
    from pika.spec import Basic, BasicProperties

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


class ClosableEventSource(EventSource, Protocol):
    """An event source holding connections: `close` releases them (not during a `read`)."""

    def close(self) -> None:
        """Closes what the source opened."""
        ...


class EventSourceError(ValueError):
    """An event broker URL the app cannot read."""


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

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        """Reads the broker database through `engine`; `close` disposes it if `owns_engine`."""
        self._engine = engine
        self._owns_engine = owns_engine

    def close(self) -> None:
        """Disposes the engine when this source made it."""
        if self._owns_engine:
            self._engine.dispose()

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


class StreamEventSource:
    """The RabbitMQ stream of `amqp://user:pw@host:port/queue`, read by offset (blocking pika).

    A position is the event's stream offset as a string. The source keeps one consumer
    open between reads: a read that continues where the last one ended takes what RabbitMQ
    has pushed since, while a read from another position (a restart, a retried batch)
    subscribes again from there; right after subscribing it waits up to `first_wait`
    seconds for the first events. RabbitMQ pushes: a read returns what has arrived (up to
    `limit`, pumping while more keeps coming), so it may return fewer events, or none,
    while more are on their way; the next read gets them. Deliveries are acknowledged on
    arrival (for a stream that only grants credit; `prefetch` bounds those in flight) and
    pika is only pumped inside `read`, so at most about `limit + prefetch` wait in memory.
    A lost connection is reopened once per read. One thread at a time (a lock guards it);
    `asyncio.to_thread` calls are fine.
    """

    def __init__(
        self,
        url: str,
        *,
        first_wait: float = 1.0,
        idle_wait: float = 0.02,
        prefetch: int = 2 * BATCH_SIZE,
    ) -> None:
        """Reads the stream of `url` (connects on the first read)."""
        self.target = StreamTarget.from_url(url)
        self.first_wait = first_wait
        self.idle_wait = idle_wait
        self.prefetch = prefetch
        self._lock = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._consumer_tag: str | None = None
        self._next: int | None = None
        """The offset the open consumer delivers next (None: no consumer)."""
        self._buffer: collections.deque[tuple[int, bytes]] = collections.deque()
        """(offset, body) received and not yet returned."""

    def read(self, after: str | None, limit: int) -> list[BrokerEvent]:
        """Up to `limit` events after offset `after` (from the stream's start when None)."""
        import pika.exceptions

        start = int(after) + 1 if after is not None else 0
        with self._lock:
            try:
                return self._read(start, limit)
            except (pika.exceptions.AMQPError, OSError) as error:
                logger.info("Event stream connection lost (%r); reconnecting", error)
                self._disconnect()
            return self._read(start, limit)

    def close(self) -> None:
        """Closes the connection (the next read opens a new one)."""
        with self._lock:
            self._disconnect()

    def _read(self, start: int, limit: int) -> list[BrokerEvent]:
        channel = self._channel
        if channel is None or not channel.is_open or self._next != start:
            self._subscribe(start)
            self._wait(self.first_wait)
        else:
            self._wait(0)
        while len(self._buffer) < limit:
            received = len(self._buffer)
            self._wait(self.idle_wait)
            if len(self._buffer) == received:
                break
        return self._take(limit)

    def _wait(self, seconds: float) -> None:
        """Lets pika deliver for up to `seconds`, returning early once something arrived."""
        assert self._connection is not None
        deadline = time.monotonic() + seconds
        received = len(self._buffer)
        while True:
            self._connection.process_data_events(time_limit=max(deadline - time.monotonic(), 0))
            if len(self._buffer) > received or time.monotonic() >= deadline:
                return

    def _take(self, limit: int) -> list[BrokerEvent]:
        events: list[BrokerEvent] = []
        while self._buffer and len(events) < limit:
            offset, body = self._buffer.popleft()
            try:
                data = json.loads(body)
            except (TypeError, ValueError):
                data = {}
            if not isinstance(data, dict):
                data = {}
            events.append(BrokerEvent(str(offset), str(data.get("sender_id") or ""), data))
            self._next = offset + 1
        return events

    def _subscribe(self, start: int) -> None:
        """A fresh channel and consumer delivering from offset `start`."""
        import pika

        if self._connection is None or not self._connection.is_open:
            self._channel, self._consumer_tag = None, None
            target = self.target
            parameters = pika.ConnectionParameters(
                host=target.host,
                port=target.port,
                credentials=pika.PlainCredentials(target.username, target.password),
                ssl_options=pika.SSLOptions(_tls_context()) if target.tls else None,
                connection_attempts=1,
                socket_timeout=10,
                blocked_connection_timeout=30,
            )
            self._connection = pika.BlockingConnection(parameters)
        else:
            self._stop_consuming()
        self._buffer.clear()
        channel = self._connection.channel()
        channel.queue_declare(self.target.queue, durable=True, arguments=STREAM_ARGUMENTS)
        channel.basic_qos(prefetch_count=self.prefetch)
        self._consumer_tag = channel.basic_consume(
            self.target.queue,
            self._on_message,
            arguments={"x-stream-offset": start if start > 0 else "first"},
        )
        self._channel = channel
        self._next = start

    def _stop_consuming(self) -> None:
        """Cancels the consumer and closes its channel, dropping what it had pushed.

        pika rejects (basic.reject) the deliveries a cancelled consumer still holds or that
        arrive during the cancel; a stream answers a reject by closing the connection. So
        the consumer is first marked as not acknowledging (pika's own bookkeeping, stable
        across pika 1.x): its leftovers are dropped instead. Acknowledging a stream message
        only grants credit, so nothing is lost: the next consumer starts at an offset.
        """
        channel, tag = self._channel, self._consumer_tag
        self._channel, self._consumer_tag = None, None
        if channel is None or not channel.is_open:
            return
        info = getattr(channel, "_consumer_infos", {}).get(tag)
        noack = getattr(getattr(channel, "_impl", None), "_consumers_with_noack", None)
        if tag is not None and info is not None and isinstance(noack, set):
            info.auto_ack = True
            noack.add(tag)
            channel.basic_cancel(tag)
        channel.close()

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        channel.basic_ack(delivery_tag=method.delivery_tag)  # credit for the next one
        offset = int((properties.headers or {}).get("x-stream-offset", -1))
        if self._next is not None and offset >= self._next:
            self._buffer.append((offset, body))
        # else: a stream delivers from the start of the chunk holding the offset asked for

    def _disconnect(self) -> None:
        connection, self._connection, self._next = self._connection, None, None
        self._buffer.clear()
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                self._stop_consuming()
            with contextlib.suppress(Exception):
                connection.close()
        self._channel, self._consumer_tag = None, None


def _tls_context() -> Any:
    import ssl

    return ssl.create_default_context()


def event_source(settings: Settings) -> ClosableEventSource:
    """The reader of `settings.event_broker_url`: a RabbitMQ stream or Rasa's SQL broker.

    Close it when done (`close`): it owns its engine or connection.
    """
    url = settings.event_broker_url.strip()
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme in ("amqp", "amqps"):
        return StreamEventSource(url)
    if scheme in ("", "kafka"):
        raise EventSourceError(
            f"The desk cannot read a {scheme or 'blank'!r} event broker URL: use sqlite://, "
            "postgresql:// or amqp://"
        )
    return SqlEventSource(make_engine(url), owns_engine=True)


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
