"""StreamEventSource against a real rabbitmq-server started by the tests (about 7 s).

Events are published as Rasa's StreamEventBroker publishes them (one test runs the real
broker in the Rasa runtime); readers keep their own offsets and read by position.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from bot.core.db import MessageKind, make_engine, upgrade
from bot.core.settings import PROJECT_ROOT, Settings
from bot.handoff.broker import (
    CONSUMER_NAME,
    BrokerEvent,
    EventSourceError,
    HandoffConsumer,
    SqlEventSource,
    StreamEventSource,
    event_source,
)
from bot.handoff.store import HandoffStore
from bot.supervision.worker import run_once
from bot.web import create_app
from kefu_shared.event_stream import STREAM_ARGUMENTS, StreamTarget
from tests.app.handoff.test_handoff import _open
from tests.rasa_runtime.local_servers import RabbitMqServer, require_rabbitmq


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[RabbitMqServer]:
    require_rabbitmq()
    with RabbitMqServer() as server:
        yield server.start()


def publish(url: str, events: list[dict[str, Any]], *, confirm: bool = True) -> None:
    """Publishes like StreamEventBroker: default exchange, routing key = the stream.

    Unconfirmed, the messages go out back to back and RabbitMQ stores them in chunks of
    many (a reader asking for an offset inside a chunk is sent the whole chunk).
    """
    target = StreamTarget.from_url(url)
    connection = pika.BlockingConnection(pika.ConnectionParameters(target.host, target.port))
    try:
        channel = connection.channel()
        if confirm:
            channel.confirm_delivery()
        channel.queue_declare(target.queue, durable=True, arguments=STREAM_ARGUMENTS)
        for event in events:
            channel.basic_publish("", target.queue, json.dumps(event).encode())
    finally:
        connection.close()


def numbered(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"sender_id": f"s{n % 3}", "event": "user", "text": f"m{n}", "n": n}
        for n in range(start, start + count)
    ]


def collect(source: StreamEventSource, after: str | None, count: int) -> list[BrokerEvent]:
    """Reads batches like the desk does (from the last position) until `count` events came."""
    events: list[BrokerEvent] = []
    deadline = time.monotonic() + 20
    while len(events) < count and time.monotonic() < deadline:
        batch = source.read(events[-1].position if events else after, count - len(events))
        assert len(batch) <= count - len(events)
        events += batch
    return events


def test_readers_read_the_stream_by_offset_each_from_their_own_position(
    rabbitmq: RabbitMqServer,
) -> None:
    url = rabbitmq.url("by_offset")
    publish(url, numbered(1200), confirm=False)
    desk, qa = StreamEventSource(url), StreamEventSource(url)
    try:
        first = collect(desk, None, 500)
        assert [e.data["n"] for e in first] == list(range(500))
        assert [e.position for e in first[:3]] == ["0", "1", "2"]
        assert first[4].sender_id == "s1" and first[4].data["text"] == "m4"
        rest = collect(desk, first[-1].position, 700)
        assert [e.data["n"] for e in rest] == list(range(500, 1200))

        started = time.monotonic()
        assert desk.read(rest[-1].position, 500) == []  # caught up: no long wait
        assert time.monotonic() - started < 0.5
        publish(url, numbered(2, start=1200))
        latest = collect(desk, rest[-1].position, 2)
        assert [e.data["n"] for e in latest] == [1200, 1201]

        assert [e.data["n"] for e in collect(qa, None, 10)] == list(range(10))  # not consumed
        assert [e.data["n"] for e in collect(qa, "700", 5)] == [701, 702, 703, 704, 705]
        assert [e.data["n"] for e in collect(desk, "3", 2)] == [4, 5]  # a retried batch
        assert [e.data["n"] for e in collect(desk, "5", 1)] == [6]
    finally:
        desk.close()
        qa.close()


def test_a_lost_connection_is_reopened_at_the_reader_position(rabbitmq: RabbitMqServer) -> None:
    url = rabbitmq.url("reconnect")
    publish(url, numbered(20))
    source = StreamEventSource(url)
    try:
        assert [e.data["n"] for e in collect(source, None, 10)] == list(range(10))
        assert source._connection is not None
        source._connection.close()  # as if RabbitMQ had dropped it
        assert [e.data["n"] for e in collect(source, "9", 10)] == list(range(10, 20))
    finally:
        source.close()


def test_an_empty_or_missing_stream_reads_as_nothing(rabbitmq: RabbitMqServer) -> None:
    source = StreamEventSource(rabbitmq.url("not_yet_declared"), first_wait=0.2)
    try:
        assert source.read(None, 500) == []  # declared by whichever side comes first
    finally:
        source.close()


def test_the_desk_consumer_stores_handed_off_messages_once_from_the_stream(
    rabbitmq: RabbitMqServer, engine: Engine
) -> None:
    url = rabbitmq.url("desk")
    handoffs, handoff_id = _open(engine)
    later = datetime.now(UTC).timestamp() + 5
    publish(
        url,
        [
            {"sender_id": "c1", "event": "user", "text": "before", "timestamp": 0},
            {"sender_id": "c1", "event": "user", "text": "还在吗", "timestamp": later},
            {"sender_id": "other", "event": "user", "text": "not handed off", "timestamp": later},
        ],
    )
    source = StreamEventSource(url)
    try:
        consumer = HandoffConsumer(handoffs, source)
        batch = consumer.step()
        assert [m.text for m in batch.messages if m.kind == MessageKind.customer] == ["还在吗"]
        assert batch.handoffs == [handoff_id]
        assert consumer.step().events == 0
    finally:
        source.close()

    publish(url, [{"sender_id": "c1", "event": "user", "text": "after", "timestamp": later + 1}])
    restarted_source = StreamEventSource(url)
    try:
        restarted = HandoffConsumer(HandoffStore(engine), restarted_source)
        again = restarted.step().messages
        assert [m.text for m in again if m.kind == MessageKind.customer] == ["after"]
    finally:
        restarted_source.close()
    texts = [m.text for m in handoffs.messages(handoff_id) if m.kind == MessageKind.customer]
    assert texts == ["还在吗", "after"]


def test_events_from_rasa_s_stream_broker_reach_the_app(rabbitmq: RabbitMqServer) -> None:
    """The Rasa runtime's StreamEventBroker publishes, the app runtime's source reads."""
    rasa_python = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
    if not rasa_python.exists():
        pytest.skip("the Rasa runtime (.venv-rasa) is not installed")
    url = rabbitmq.url("from_rasa")
    script = (
        "import asyncio, sys\n"
        "from rasa_addons.stream_broker import StreamEventBroker\n"
        "async def main():\n"
        "    broker = StreamEventBroker(sys.argv[1])\n"
        "    await broker.connect()\n"
        "    for n in range(300):\n"
        "        broker.publish({'sender_id': 'c%d' % (n % 5), 'event': 'user', 'n': n})\n"
        "    await broker.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run(
        [str(rasa_python), "-c", script, url], check=True, env=env, cwd=PROJECT_ROOT, timeout=120
    )
    source = StreamEventSource(url)
    try:
        events = collect(source, None, 300)
    finally:
        source.close()
    assert [e.data["n"] for e in events] == list(range(300))
    assert events[7].sender_id == "c2"


def test_the_desk_and_the_qa_pass_read_the_stream_when_the_broker_is_amqp(
    rabbitmq: RabbitMqServer, tmp_path: Path
) -> None:
    url = rabbitmq.url("desk_and_qa")
    settings = Settings(var_dir=tmp_path, event_broker_url=url)
    upgrade(settings.database_url)
    publish(url, numbered(3))
    engine = make_engine(settings.database_url)
    try:
        with TestClient(create_app(settings)):  # the lifespan runs the desk's consumer
            deadline = time.monotonic() + 20
            while HandoffStore(engine).offset(CONSUMER_NAME) != "2":
                assert time.monotonic() < deadline, "the desk did not read the stream"
                time.sleep(0.1)
        report = run_once(settings, engine, datetime.now(UTC))  # the QA service's pass
        assert report["recorded"] == 3
    finally:
        engine.dispose()


def test_the_broker_url_picks_the_source(tmp_path: Path) -> None:
    stream = event_source(Settings(event_broker_url="amqp://guest:guest@127.0.0.1:1/kefu_events"))
    assert isinstance(stream, StreamEventSource) and stream.target.queue == "kefu_events"
    stream.close()
    sql = event_source(Settings(event_broker_url=f"sqlite:///{tmp_path}/events.db"))
    assert isinstance(sql, SqlEventSource)
    assert sql.read(None, 10) == []  # no table yet
    sql.close()
    with pytest.raises(EventSourceError):
        event_source(Settings(event_broker_url="kafka://127.0.0.1:9092/events"))
