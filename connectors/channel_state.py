"""State the messaging channels share across requests and processes.

Deduplication claims (WeChat retries, Telegram redeliveries), numbered options waiting
for the customer's choice, the WeChat access token and the record of messages that
could not be delivered. SQLite by default (one file, shared by every process on the
machine), Redis at scale: `open_channel_state("sqlite:///var/rasa/channels.db")` or
`open_channel_state("redis://host:6379/0")`.

Every method blocks: call them from async code with `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

DEFAULT_STATE_URL = "sqlite:///var/rasa/channels.db"
"""The state when a channel's credentials name none (Kefu's settings always do)."""
DAY_SECONDS = 24 * 3600
UNDELIVERED_KEPT = 1000
"""How many undelivered-message records are kept (the oldest go first)."""


class ChannelState(Protocol):
    """Key-value state with expiry, an atomic claim and the undelivered-message record."""

    def claim(self, key: str, ttl_seconds: int = DAY_SECONDS) -> bool:
        """True for the first caller of `key` within `ttl_seconds`, False for every later one."""

    def get(self, key: str) -> str | None:
        """The value of `key`, or None when missing or expired."""

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        """Stores `value` under `key`, forever when `ttl_seconds` is None."""

    def delete(self, key: str) -> None:
        """Removes `key` (no error when missing)."""

    def record_undelivered(self, record: dict[str, Any]) -> None:
        """Keeps a message that could not be delivered, for an agent to follow up."""

    def undelivered(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest undelivered-message records, newest first."""


class SqliteChannelState:
    """`ChannelState` in one SQLite file (WAL mode; safe across processes on one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the file prepared) on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            _prepare(connection)
            self._local.connection = connection
        return connection

    def claim(self, key: str, ttl_seconds: int = DAY_SECONDS) -> bool:
        """Inserts `key` unless a live claim exists; expired claims are replaced."""
        now = time.time()
        connection = self._connection()
        connection.execute(
            "DELETE FROM channel_state WHERE key = ? AND expires_at <= ?", (key, now)
        )
        cursor = connection.execute(
            "INSERT OR IGNORE INTO channel_state (key, value, expires_at) VALUES (?, '1', ?)",
            (key, now + ttl_seconds),
        )
        if cursor.rowcount == 1 and hash(key) % 200 == 0:
            connection.execute("DELETE FROM channel_state WHERE expires_at <= ?", (now,))
        return cursor.rowcount == 1

    def get(self, key: str) -> str | None:
        """The value of `key` unless it expired."""
        row = (
            self._connection()
            .execute(
                "SELECT value FROM channel_state WHERE key = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (key, time.time()),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        """Stores `value` under `key`, replacing any earlier value."""
        expires_at = None if ttl_seconds is None else time.time() + ttl_seconds
        self._connection().execute(
            "INSERT OR REPLACE INTO channel_state (key, value, expires_at) VALUES (?, ?, ?)",
            (key, value, expires_at),
        )

    def delete(self, key: str) -> None:
        """Removes `key`."""
        self._connection().execute("DELETE FROM channel_state WHERE key = ?", (key,))

    def record_undelivered(self, record: dict[str, Any]) -> None:
        """Appends the record and keeps the newest `UNDELIVERED_KEPT`."""
        connection = self._connection()
        connection.execute(
            "INSERT INTO undelivered_messages (recorded_at, record) VALUES (?, ?)",
            (time.time(), json.dumps(record, ensure_ascii=False)),
        )
        connection.execute(
            "DELETE FROM undelivered_messages WHERE id <= "
            "(SELECT MAX(id) FROM undelivered_messages) - ?",
            (UNDELIVERED_KEPT,),
        )

    def undelivered(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest records first."""
        rows = (
            self._connection()
            .execute(
                "SELECT recorded_at, record FROM undelivered_messages ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [{**json.loads(record), "recorded_at": at} for at, record in rows]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_state (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL
);
CREATE TABLE IF NOT EXISTS undelivered_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_at REAL NOT NULL, record TEXT NOT NULL
);
"""
_PREPARE_LOCK = threading.Lock()
PREPARE_ATTEMPTS = 50


def _prepare(connection: sqlite3.Connection) -> None:
    """WAL mode, `synchronous=NORMAL` and the tables.

    Switching to WAL does not wait for a busy database (SQLite answers "database is
    locked" at once when another connection is setting up the same new file), so it is
    retried; within one process the set-up runs one connection at a time.
    """
    with _PREPARE_LOCK:
        for attempt in range(PREPARE_ATTEMPTS):
            try:
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == PREPARE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)


class RedisChannelState:
    """`ChannelState` in Redis, for several machines (keys under `kefu:channels:`)."""

    PREFIX = "kefu:channels:"

    def __init__(self, url: str) -> None:
        import redis  # only needed at scale

        self.redis = redis.Redis.from_url(url, decode_responses=True)

    def claim(self, key: str, ttl_seconds: int = DAY_SECONDS) -> bool:
        """`SET key 1 NX EX ttl`: atomic across every process sharing the Redis."""
        return bool(self.redis.set(self.PREFIX + key, "1", nx=True, ex=ttl_seconds))

    def get(self, key: str) -> str | None:
        """The value, or None."""
        value = self.redis.get(self.PREFIX + key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        """Stores the value, with an expiry when given."""
        self.redis.set(self.PREFIX + key, value, ex=ttl_seconds)

    def delete(self, key: str) -> None:
        """Removes the key."""
        self.redis.delete(self.PREFIX + key)

    def record_undelivered(self, record: dict[str, Any]) -> None:
        """Pushes the record onto a capped list."""
        name = self.PREFIX + "undelivered"
        pipeline = self.redis.pipeline()
        pipeline.lpush(name, json.dumps({**record, "recorded_at": time.time()}))
        pipeline.ltrim(name, 0, UNDELIVERED_KEPT - 1)
        pipeline.execute()

    def undelivered(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest records first."""
        items = self.redis.lrange(self.PREFIX + "undelivered", 0, limit - 1)
        return [json.loads(item) for item in items]


def recent_undelivered(state: ChannelState, channel: str, since: float) -> int:
    """How many of `channel`'s messages were recorded undelivered since `since` (epoch s)."""
    return sum(
        1
        for record in state.undelivered(UNDELIVERED_KEPT)
        if record.get("channel") == channel and float(record.get("recorded_at") or 0) >= since
    )


def open_channel_state(url: str) -> ChannelState:
    """The state store named by `url`: `sqlite:///path` or `redis://...`."""
    if url.startswith("sqlite:///"):
        return SqliteChannelState(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisChannelState(url)
    raise ValueError(f"Unsupported channel state URL {url!r}: use sqlite:///PATH or redis://HOST")
