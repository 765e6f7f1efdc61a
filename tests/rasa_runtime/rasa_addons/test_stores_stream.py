"""StreamEventBroker against a real rabbitmq-server started by the tests (about 7 s each).

Rasa's events go to a RabbitMQ stream in the order Rasa published them, each confirmed;
`publish` never waits for RabbitMQ; several readers read the whole stream from any offset;
events published while RabbitMQ is down arrive, in order, once it is back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from rasa.utils.endpoints import EndpointConfig

from kefu_shared.event_stream import STREAM_ARGUMENTS, StreamTarget, StreamUrlError
from rasa_addons.stores import UrlEventBroker
from rasa_addons.stream_broker import StreamEventBroker
from tests.rasa_runtime.local_servers import RabbitMqServer, require_rabbitmq


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[RabbitMqServer]:
    require_rabbitmq()
    with RabbitMqServer() as server:
        yield server.start()


def event(sender: str, number: int) -> dict[str, Any]:
    return {"sender_id": sender, "event": "user", "text": f"message {number}", "n": number}


async def read_stream(
    url: str, count: int, offset: int | str = "first", timeout: float = 30
) -> list[tuple[int, dict[str, Any]]]:
    """(offset, event) of the first `count` messages from `offset`, read as a stream reader."""
    target = StreamTarget.from_url(url)
    connection = await aio_pika.connect(host=target.host, port=target.port)
    received: list[tuple[int, dict[str, Any]]] = []
    done = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        if done.is_set():
            return  # the rest goes with the connection
        headers = message.headers or {}
        received.append((int(headers["x-stream-offset"]), json.loads(message.body)))  # type: ignore[call-overload]
        await message.ack()
        if len(received) >= count:
            done.set()

    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=200)
        queue = await channel.declare_queue(target.queue, durable=True, arguments=STREAM_ARGUMENTS)
        tag = await queue.consume(on_message, arguments={"x-stream-offset": offset})
        await asyncio.wait_for(done.wait(), timeout)
        await queue.cancel(tag)
    finally:
        await connection.close()
    return received[:count]


async def test_events_go_to_a_stream_in_order_without_delaying_the_caller(
    rabbitmq: RabbitMqServer,
) -> None:
    url = rabbitmq.url("ordered")
    broker = await UrlEventBroker.from_endpoint_config(EndpointConfig(url=url))
    assert isinstance(broker, StreamEventBroker)
    try:
        started = time.perf_counter()
        for number in range(600):
            broker.publish(event(f"s{number % 7}", number))
        assert time.perf_counter() - started < 0.1  # the reply path only queues
        assert await broker.flush(30), f"{broker.pending} events not confirmed"
        assert broker.published == 600
        await asyncio.to_thread(broker.publish, event("from a thread", 600))
        assert await broker.flush(30) and broker.published == 601
    finally:
        await broker.close()

    desk, qa = await asyncio.gather(read_stream(url, 600), read_stream(url, 600))
    assert [e["n"] for _, e in desk] == list(range(600))  # Rasa's order
    assert desk == qa  # every reader gets everything: a stream, not a work queue
    assert desk[5][1] == event("s5", 5)
    assert [offset for offset, _ in desk] == sorted({offset for offset, _ in desk})
    from_middle = await read_stream(url, 10, offset=desk[300][0])
    assert [e["n"] for _, e in from_middle] == list(range(300, 310))


async def test_events_published_during_an_outage_arrive_in_order_afterwards() -> None:
    require_rabbitmq()
    server = RabbitMqServer().start()
    try:
        broker = StreamEventBroker(server.url("outage"), retry_delay_in_seconds=0.5)
        await broker.connect()
        for number in range(5):
            broker.publish(event("s", number))
        assert await broker.flush(30)

        await asyncio.to_thread(server.stop, keep_data=True)
        started = time.perf_counter()
        for number in range(5, 10):
            broker.publish(event("s", number))  # RabbitMQ is down: still no wait
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(1.5)
        assert broker.pending == 5

        await asyncio.to_thread(server.start)
        assert await broker.flush(60), f"{broker.pending} events still queued"
        await broker.close()
        read = await read_stream(server.url("outage"), 10)
        assert [e["n"] for _, e in read] == list(range(10))
    finally:
        await asyncio.to_thread(server.stop)


def test_stream_urls() -> None:
    target = StreamTarget.from_url("amqp://kefu:p%40ss@mq.internal:5673/kefu_events")
    assert target == StreamTarget("mq.internal", 5673, "kefu", "p@ss", "kefu_events")
    assert StreamTarget.from_url("amqps://mq/q") == StreamTarget(
        "mq", 5671, "guest", "guest", "q", tls=True
    )
    assert StreamTarget.from_url("amqp://127.0.0.1").queue == "rasa_core_events"
    for bad in ("redis://x/0", "amqp://h/vhost/queue", "amqp://h:notaport/q"):
        with pytest.raises(StreamUrlError):
            StreamTarget.from_url(bad)
