"""Rasa's SQL tracker store, reading and writing only what is new.

Rasa 3.6's `SQLTrackerStore` reads and parses a conversation's whole session twice per
message (once to answer, once more in `save` to find which events are new for the event
broker), counts the stored events a third time, and publishes each new event to the broker
in its own transaction before the reply leaves. On a 180-turn conversation that was half of
every turn. `IncrementalSQLTrackerStore` keeps the same tables and the same behaviour:

- **Recent trackers stay in memory**, each with the id of the last stored event it holds.
  `retrieve` asks the database only for events after that id (another Rasa instance may
  have written some: they are applied), so several instances behind a load balancer, with
  the Redis lock store, see one conversation. A tracker that was changed but not saved, a
  new session, or a cache over its limits is read afresh from the database.
- **`save` writes the new events** (those after the ones it read) in one transaction, off the
  event loop, without reading the conversation again.
- **A new model** (a deploy sets a new domain) empties the memory: trackers hold slots.
- **The event broker gets them in the background**: an SQL broker in one transaction per
  batch from a worker thread, in order; other brokers (RabbitMQ, Kafka) publish without
  blocking already. Events still queued when the process exits are written at exit.

endpoints.yml: `tracker_store: {type: rasa_addons.tracker_store.IncrementalSQLTrackerStore,
url: ...}`; `cache_trackers` and `cache_events` bound the memory (defaults below).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

__all__ = ["IncrementalSQLTrackerStore"]

DEFAULT_CACHE_TRACKERS = 1000
DEFAULT_CACHE_EVENTS = 100_000
PUBLISH_ATTEMPTS = 14
"""Tries to write a batch to the SQL broker (waits 2, 4, ... 30 s between: about 5 minutes)."""


@dataclass
class _Known:
    """A tracker held in memory: how many of its events are stored, and the last one's id."""

    tracker: DialogueStateTracker
    stored_events: int
    last_id: int
    counted: int = 0
    """Its events as counted towards the memory limit when it was last remembered."""


class IncrementalSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` with trackers cached, incremental reads and writes, broker after reply."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        cache_trackers: int = DEFAULT_CACHE_TRACKERS,
        cache_events: int = DEFAULT_CACHE_EVENTS,
        **kwargs: Any,
    ) -> None:
        """Connects like `SQLTrackerStore` (`host` may be a full URL) and adds an index."""
        super().__init__(domain=domain, host=host, event_broker=event_broker, **kwargs)
        sa.Index("ix_events_sender_id_id", self.SQLEvent.sender_id, self.SQLEvent.id).create(
            self.engine, checkfirst=True
        )
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._events_held = 0
        self._cache_trackers = int(cache_trackers)
        self._cache_events = int(cache_events)
        self._publisher = _BackgroundPublisher(event_broker) if event_broker else None

    @property
    def domain(self) -> Domain:
        """The model's domain; a new one (a deployed model) empties the memory."""
        return self._domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._domain = domain or Domain.empty()
        self._known = OrderedDict()  # trackers hold the old domain's slots
        self._events_held = 0

    # ------------------------------------------------------------ reading

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The latest session's tracker: from memory plus newer rows, else from the database."""
        known = self._known.get(sender_id)
        if known is not None and len(known.tracker.events) == known.stored_events:
            rows = await asyncio.to_thread(self._rows_after, sender_id, known.last_id)
            parsed = (Event.from_parameters(data) for _, data in rows)
            newer = [event for event in parsed if event is not None]
            if not any(isinstance(event, SessionStarted) for event in newer):
                for event in newer:
                    known.tracker.update(event, self.domain)
                if rows:
                    known.stored_events += len(rows)
                    known.last_id = rows[-1][0]
                self._known.move_to_end(sender_id)
                return known.tracker
        self._forget(sender_id)
        rows = await asyncio.to_thread(self._session_rows, sender_id)
        if not rows or not self.domain:
            return None
        tracker = DialogueStateTracker.from_dict(
            sender_id, [data for _, data in rows], self.domain.slots
        )
        self._remember(sender_id, _Known(tracker, len(rows), rows[-1][0]))
        return tracker

    def _rows_after(self, sender_id: str, last_id: int) -> list[tuple[int, dict[str, Any]]]:
        table = self.SQLEvent
        with self.session_scope() as session:
            rows = (
                session.query(table.id, table.data)
                .filter(table.sender_id == sender_id, table.id > last_id)
                .order_by(table.id)
                .all()
            )
        return [(row.id, json.loads(row.data)) for row in rows]

    def _session_rows(self, sender_id: str) -> list[tuple[int, dict[str, Any]]]:
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
            return [(row.id, json.loads(row.data)) for row in rows.all()]

    def _remember(self, sender_id: str, known: _Known) -> None:
        """Keeps `known`, dropping the least recently used trackers beyond the limits.

        The events held are a running total, so a save costs the same with 1,000 trackers kept.
        """
        self._forget(sender_id)
        known.counted = len(known.tracker.events)
        self._known[sender_id] = known
        self._events_held += known.counted
        while self._known and (
            len(self._known) > self._cache_trackers or self._events_held > self._cache_events
        ):
            _, dropped = self._known.popitem(last=False)
            self._events_held -= dropped.counted

    def _forget(self, sender_id: str) -> None:
        dropped = self._known.pop(sender_id, None)
        if dropped is not None:
            self._events_held -= dropped.counted

    # ------------------------------------------------------------ writing

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Stores the events the database does not have yet and hands them to the broker."""
        sender_id = tracker.sender_id
        known = self._known.get(sender_id)
        if known is not None and known.tracker is tracker:
            already: int | None = known.stored_events
        else:
            already = None  # not read through this store: count what the database holds
        events = list(tracker.events)
        new, last_id = await asyncio.to_thread(self._insert, sender_id, events, already)
        if self._publisher is not None and new:
            self._publisher.put(sender_id, new)
        if any(isinstance(event, SessionStarted) for event in new) or last_id is None:
            self._forget(sender_id)  # a new session: read it afresh next time
        else:
            self._remember(sender_id, _Known(tracker, len(events), last_id))

    def _insert(
        self, sender_id: str, events: list[Event], already: int | None
    ) -> tuple[list[Event], int | None]:
        """Inserts `events[already:]` in one transaction; the new events and the last id."""
        with self.session_scope() as session:
            if already is None:
                already = self._event_query(
                    session, sender_id, fetch_events_from_all_sessions=False
                ).count()
            new = events[already:]
            rows = []
            for event in new:
                data = event.as_dict()
                rows.append(
                    self.SQLEvent(
                        sender_id=sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.add_all(rows)
            session.flush()
            last_id = (
                rows[-1].id
                if rows
                else session.query(sa.func.max(self.SQLEvent.id))
                .filter(self.SQLEvent.sender_id == sender_id)
                .scalar()
            )
            session.commit()
        return new, last_id


class _BackgroundPublisher:
    """Publishes tracker events to the broker after the reply, in order."""

    def __init__(self, broker: EventBroker) -> None:
        self._broker = broker
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, sender_id: str, events: list[Event]) -> None:
        """Queues `events` of `sender_id` (SQL broker) or publishes them now (other brokers)."""
        bodies = [{"sender_id": sender_id, **event.as_dict()} for event in events]
        if not isinstance(self._broker, SQLEventBroker):
            for body in bodies:  # RabbitMQ, Kafka: Rasa's brokers publish without blocking
                self._broker.publish(body)
            return
        self._queue.put(bodies)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kefu-broker", daemon=True)
                self._thread.start()
                atexit.register(self._flush_at_exit)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            bodies = list(batch)
            while not self._queue.empty():  # everything waiting: one transaction
                more = self._queue.get()
                if more is None:
                    self._write(bodies)
                    return
                bodies += more
            self._write(bodies)

    def _write(self, bodies: list[dict[str, Any]]) -> None:
        """Writes `bodies` in one transaction; retries for about 5 minutes if the database fails."""
        broker = self._broker
        assert isinstance(broker, SQLEventBroker)
        for attempt in range(PUBLISH_ATTEMPTS):
            if attempt:
                time.sleep(min(2.0**attempt, 30.0))
            try:
                with broker.session_scope() as session:
                    session.add_all(
                        broker.SQLBrokerEvent(sender_id=body["sender_id"], data=json.dumps(body))
                        for body in bodies
                    )
                    session.commit()
                return
            except sa.exc.SQLAlchemyError:
                logger.warning("Publishing %d events failed (attempt %d)", len(bodies), attempt + 1)
        logger.error("Dropped %d events the broker's database did not take", len(bodies))

    def _flush_at_exit(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)
