"""The RabbitMQ stream that carries Rasa's events: its URL form and its declaration.

Rasa's side publishes (`rasa_addons.stream_broker.StreamEventBroker`) and the app's side
reads (`bot.handoff.broker.StreamEventSource`); both declare the queue with the same
arguments (RabbitMQ refuses a second declaration that differs), so either may start first.

URL: `amqp://user:password@host:5672/queue` (or `amqps://`, TLS): user and password
default to guest, the port to 5672 (5671 for amqps), the queue to `rasa_core_events`; the
virtual host is always `/`. A stream keeps its messages after they are read: every reader
keeps its own position (offset) and may read again from any offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_QUEUE", "STREAM_ARGUMENTS", "StreamTarget", "StreamUrlError"]

DEFAULT_QUEUE = "rasa_core_events"

STREAM_ARGUMENTS: dict[str, object] = {"x-queue-type": "stream", "x-max-age": "30D"}
"""A durable stream; segments whose messages are all older than 30 days are dropped."""


class StreamUrlError(ValueError):
    """An event stream URL that is not `amqp://user:pw@host:port/queue`."""


@dataclass(frozen=True)
class StreamTarget:
    """Where the stream lives: the broker's address, the login and the queue name."""

    host: str
    port: int
    username: str
    password: str
    queue: str
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> StreamTarget:
        """Parses `amqp[s]://user:pw@host:port/queue`."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("amqp", "amqps"):
            raise StreamUrlError(f"Not an amqp:// or amqps:// URL: {parts.scheme!r}")
        queue = unquote(parts.path.lstrip("/")) or DEFAULT_QUEUE
        if "/" in queue:
            raise StreamUrlError("The URL path names one queue (virtual hosts are not supported)")
        tls = parts.scheme == "amqps"
        try:
            port = parts.port or (5671 if tls else 5672)
        except ValueError as error:
            raise StreamUrlError(str(error)) from error
        return cls(
            host=parts.hostname or "localhost",
            port=port,
            username=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            queue=queue,
            tls=tls,
        )
