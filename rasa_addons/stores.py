"""Event broker and lock store chosen by a single URL each, so switching needs no YAML edit.

`endpoints.yml` points Rasa at these factories; the URL scheme picks the backend:

| URL | backend |
|---|---|
| `sqlite:///var/rasa/events.db`, `postgresql://user:pw@host/db` | Rasa's `SQLEventBroker` |
| `kafka://host:9092/topic` | Rasa's `KafkaEventBroker` (PLAINTEXT) |
| `amqp://user:pw@host:5672/queue`, `amqps://` | `StreamEventBroker`: a RabbitMQ stream |
| `memory://` (lock store) | `InMemoryLockStore`, one process |
| `redis://[user:pw@]host:6379/db`, `rediss://` (lock store) | `AtomicRedisLockStore` |

`StreamEventBroker` (stream_broker.py) and `AtomicRedisLockStore` (redis_lock.py) are what
several Rasa instances need: one ordered event stream for every reader, one lock per
conversation that two instances can never both hold.
"""

from __future__ import annotations

from asyncio import AbstractEventLoop
from typing import Any
from urllib.parse import unquote, urlsplit

from rasa.core.brokers.broker import EventBroker
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import event
from sqlalchemy.engine import Engine


def tune_sqlite_connections() -> None:
    """Runs every SQLite connection of this process in WAL mode with `synchronous=NORMAL`.

    Rasa's SQL tracker store and SQL event broker commit once per event; with SQLite's
    default rollback journal each commit waits for the disk several times. WAL keeps the
    data safe across process crashes and lets readers (the desk) work beside the writer.
    Idempotent; other databases are untouched.
    """
    if event.contains(Engine, "connect", _sqlite_pragmas):
        return
    event.listen(Engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__.split(".")[0] != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class StoreUrlError(ValueError):
    """A store URL whose scheme or form Kefu does not support."""


class UrlEventBroker(EventBroker):
    """Factory: `from_endpoint_config` returns the broker the URL's scheme names."""

    @classmethod
    async def from_endpoint_config(  # type: ignore[override]  # returns another broker class
        cls,
        broker_config: EndpointConfig,
        event_loop: AbstractEventLoop | None = None,
    ) -> EventBroker | None:
        """Builds the concrete broker for `broker_config.url`, or none for an empty URL.

        Rasa creates the broker before the tracker store, so SQLite tuning set up here
        applies to both.
        """
        tune_sqlite_connections()
        url = (broker_config.url or "").strip()
        if not url:
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        if scheme in ("sqlite", "postgresql", "postgres"):
            from rasa.core.brokers.sql import SQLEventBroker

            return SQLEventBroker(host=url)
        if scheme == "kafka":
            from rasa.core.brokers.kafka import KafkaEventBroker

            topic = parts.path.strip("/") or "rasa_core_events"
            return KafkaEventBroker(parts.netloc, topic=topic, security_protocol="PLAINTEXT")
        if scheme in ("amqp", "amqps"):
            from rasa_addons.stream_broker import StreamEventBroker

            broker = StreamEventBroker(url, event_loop=event_loop)
            await broker.connect()
            return broker
        raise StoreUrlError(f"Unsupported event broker URL scheme: {parts.scheme!r}")


class UrlLockStore(LockStore):
    """Factory: instantiating it returns the lock store the URL's scheme names."""

    def __new__(  # type: ignore[misc]
        cls, endpoint_config: EndpointConfig | None = None, **_: Any
    ) -> LockStore:
        """Returns an in-memory lock store or a Redis lock store."""
        url = ((endpoint_config.url if endpoint_config else None) or "").strip()
        parts = urlsplit(url)
        if not url or parts.scheme == "memory":
            return InMemoryLockStore()
        if parts.scheme in ("redis", "rediss"):
            from rasa_addons.redis_lock import AtomicRedisLockStore

            return AtomicRedisLockStore(
                host=parts.hostname or "localhost",
                port=parts.port or 6379,
                db=int(parts.path.strip("/") or 0),
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                use_ssl=parts.scheme == "rediss",
            )
        raise StoreUrlError(f"Unsupported lock store URL scheme: {parts.scheme!r}")
