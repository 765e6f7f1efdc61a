"""Rasa's events into a RabbitMQ stream, in order and confirmed, without delaying replies.

`StreamEventBroker` keeps Rasa's `PikaEventBroker` (aio-pika connection with its retries
and reconnection, message format) and changes three things:

- the queue is a durable stream (`x-queue-type: stream`, `kefu_shared.event_stream`), so
  several readers (the desk, QA) each read it from their own offset and nothing is consumed
  away; messages go to it through the default exchange (no shared fanout exchange, so two
  stacks on one broker never see each other's events);
- `publish` only appends to an in-memory queue: one task publishes the queue's events in
  order, in windows confirmed by RabbitMQ, so the stream holds them in the order Rasa
  published them. A failed publish is retried until confirmed, across reconnections; nothing
  is dropped while the process lives (a confirm lost with the connection can duplicate an
  event). A process killed with events still queued loses them (at most its last turns');
- `close` waits (a few seconds at most) for the queued events before closing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from asyncio import AbstractEventLoop
from typing import Any
from urllib.parse import quote

import aio_pika
from rasa.core.brokers.pika import PikaEventBroker

from kefu_shared.event_stream import STREAM_ARGUMENTS, StreamTarget

logger = logging.getLogger(__name__)

PUBLISH_WINDOW = 100
"""Events published before waiting for their confirms (one by one: about 1 ms each here)."""
RETRY_SECONDS = 1.0
"""Pause before publishing a failed event again."""
RECONNECT_SECONDS = 1.0
"""Pause between attempts to reopen a lost connection (aio-pika's default is 5 s)."""
CLOSE_FLUSH_SECONDS = 5.0
"""How long `close` waits for queued events."""


class StreamEventBroker(PikaEventBroker):
    """Publishes every event to one RabbitMQ stream queue (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        event_loop: AbstractEventLoop | None = None,
        connection_attempts: int = 20,
        retry_delay_in_seconds: float = 5,
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        """Targets the stream of `amqp://user:pw@host:port/queue`; call `connect` next.

        `connection_attempts` and `retry_delay_in_seconds` bound the first connection (as in
        Rasa); once connected, a lost connection is retried every `reconnect_seconds`.
        """
        target = StreamTarget.from_url(url)
        super().__init__(
            host=target.host,
            username=target.username,
            password=target.password,
            port=target.port,
            queues=[target.queue],
            event_loop=event_loop,
            connection_attempts=connection_attempts,
            retry_delay_in_seconds=retry_delay_in_seconds,
        )
        self.target = target
        self.reconnect_seconds = reconnect_seconds
        self._pending: collections.deque[tuple[dict[str, Any], dict[str, str] | None]] = (
            collections.deque()
        )
        self._wakeup = asyncio.Event()
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._publisher: asyncio.Task[None] | None = None
        self.published = 0
        """Events confirmed by RabbitMQ since the start."""

    def _configure_url(self) -> str | None:
        """The URL aio-pika connects to (Rasa's `_connect` prefers it to host and port)."""
        target = self.target
        login = f"{quote(target.username, safe='')}:{quote(target.password, safe='')}"
        scheme = "amqps" if target.tls else "amqp"
        return (
            f"{scheme}://{login}@{target.host}:{target.port}/"
            f"?reconnect_interval={self.reconnect_seconds:g}"
        )

    async def connect(self) -> None:
        """Connects (with Rasa's retries), declares the stream, starts the publisher task."""
        self._connection = await self._connect()
        channel = await self._connection.channel(publisher_confirms=True)
        assert isinstance(channel, aio_pika.abc.AbstractRobustChannel)  # robust connection
        await channel.declare_queue(self.target.queue, durable=True, arguments=STREAM_ARGUMENTS)
        self._channel = channel
        logger.info(
            "stream_broker_connected host=%s port=%s queue=%s",
            self.target.host,
            self.target.port,
            self.target.queue,
        )
        if self._publisher is None:
            self._publisher = self._loop.create_task(self._publish_pending())
            if self._pending:
                self._wakeup.set()

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Queues `event` for the stream; returns at once (the reply does not wait).

        Callable from any thread: from another than the broker's loop, the publisher task
        is woken through the loop.
        """
        self._pending.append((event, headers))
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def pending(self) -> int:
        """Events queued and not yet confirmed."""
        return len(self._pending)

    def is_ready(self) -> bool:
        """True once connected (the publisher task keeps retrying through outages)."""
        return self._channel is not None and super().is_ready()

    async def _publish_pending(self) -> None:
        """Publishes the queued events in order, a window at a time, until all are confirmed.

        The window's publishes go out in queue order (aiormq writes them under a FIFO lock)
        and are confirmed together; on a failure the confirmed prefix leaves the queue and
        the rest is published again (a confirm lost with the connection may duplicate one).
        """
        failing_since: float | None = None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                window = list(itertools.islice(self._pending, PUBLISH_WINDOW))
                results = await asyncio.gather(
                    *(self._publish_one(event, headers) for event, headers in window),
                    return_exceptions=True,
                )
                for result in results:
                    if isinstance(result, BaseException):
                        break
                    self._pending.popleft()
                    self.published += 1
                failure = next((r for r in results if isinstance(r, BaseException)), None)
                if isinstance(failure, asyncio.CancelledError):
                    raise failure
                if failure is not None:
                    if failing_since is None:
                        failing_since = time.monotonic()
                        logger.warning(
                            "stream_publish_failed queued=%d error=%r; retrying",
                            len(self._pending),
                            failure,
                        )
                    await asyncio.sleep(RETRY_SECONDS)
                elif failing_since is not None:
                    logger.info(
                        "stream_publish_recovered after=%.1fs",
                        time.monotonic() - failing_since,
                    )
                    failing_since = None

    async def _publish_one(self, event: dict[str, Any], headers: dict[str, str] | None) -> None:
        if self._channel is None:
            raise ConnectionError("not connected")
        await self._channel.default_exchange.publish(
            self._message(event, headers), routing_key=self.target.queue
        )

    async def flush(self, timeout: float = CLOSE_FLUSH_SECONDS) -> bool:
        """Waits until every queued event is confirmed (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return not self._pending

    async def close(self) -> None:
        """Publishes what is queued (a few seconds at most), then closes the connection."""
        if self._publisher is not None:
            if not await self.flush():
                logger.warning("stream_close_unpublished events=%d", len(self._pending))
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None
        self._channel = None
        await super().close()
