"""socket.io across Rasa instances: emits travel through Redis as JSON, never as pickle.

With several Rasa instances behind the balancer, a web-chat customer's socket is connected
to one of them while an agent's reply (Rasa's HTTP API, `output_channel=latest`) may be
handled by another. python-socketio's `AsyncRedisManager` publishes every emit on a Redis
channel that each instance listens to, and each delivers it to the sockets it holds. Its
messages are pickled, and unpickling what arrives over the network runs whatever code the
sender chose; `JsonRedisManager` writes JSON and reads only JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from socketio import AsyncRedisManager

logger = logging.getLogger(__name__)

CHANNEL = "kefu_socketio"
"""The Redis pub/sub channel every Kefu socket.io server uses."""
CONNECT_TIMEOUT_SECONDS = 2.0
PUBLISH_TIMEOUT_SECONDS = 2.0
"""A reply waits at most this long for Redis before it is delivered locally."""


class JsonRedisManager(AsyncRedisManager):  # type: ignore[misc]  # python-socketio is untyped
    """`AsyncRedisManager` whose messages are JSON (the parent pickles them).

    If Redis cannot take a message, this server delivers it to its own sockets (as a lone
    server would) instead of dropping it: a Redis outage costs only replies for customers
    connected to another instance.
    """

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        """Shares emits with every server on `url` (`redis://host:6379/1`) and `channel`."""
        super().__init__(
            url=url,
            channel=channel,
            write_only=False,
            redis_options={"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        self.subscribed = asyncio.Event()
        """Set once this server listens on the channel."""

    def start_listening(self) -> None:
        """Starts listening now, not at the first connection (python-socketio's default).

        Otherwise the first customer's first replies could be published before it listens.
        """
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    async def _publish(self, data: dict[str, Any]) -> Any:
        """Publishes `data` as JSON; if Redis fails, delivers it to this server's sockets."""
        from redis.exceptions import RedisError

        message = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        for attempt in range(2):
            try:
                if attempt:
                    self._redis_connect()
                return await asyncio.wait_for(
                    self.redis.publish(self.channel, message), PUBLISH_TIMEOUT_SECONDS
                )
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                logger.error("socketio_redis_publish_failed attempt=%d error=%r", attempt, error)
        await self._deliver_here(data)
        return None

    async def _deliver_here(self, data: dict[str, Any]) -> None:
        method = data.get("method")
        if method == "emit":
            await self._handle_emit(data)
        elif method == "disconnect":
            await self._handle_disconnect(data)
        elif method == "close_room":
            await self._handle_close_room(data)

    async def _listen(self) -> AsyncIterator[dict[str, Any]]:
        """Yields each JSON object published on the channel; anything else is dropped."""
        channel = self.channel.encode("utf-8")
        await self.pubsub.subscribe(self.channel)
        self.subscribed.set()
        async for message in self._redis_listen_with_retries():
            if message.get("channel") != channel or message.get("type") != "message":
                continue
            try:
                data = json.loads(message.get("data") or b"")
            except (TypeError, ValueError):
                data = None
            if isinstance(data, dict):
                yield data  # the parent handles a dict as is: no unpickling
            else:
                logger.warning("socketio_redis_dropped a message that is not a JSON object")
