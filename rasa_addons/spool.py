"""A durable local queue of what customers wrote while Rasa could not store it.

When the tracker store or the lock store fails, `rasa_addons.resilience` appends the
customer's message here (sender, text, channel, metadata, time), or, when only the final
save of an answered turn failed, that turn's events; once the store answers again the
entries are replayed in order, per sender. One SQLite file (WAL), shared safely by every
Rasa process of the machine: an entry is claimed with a lease before it is replayed, and a
sender's entries are taken strictly oldest first.

The path comes from `KEFU_RASA_SPOOL_PATH`, by default `KEFU_VAR_DIR/rasa/spool.db`. All
methods are blocking (SQLite): call them with `asyncio.to_thread` on an event loop.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["SPOOL_PATH_VARIABLE", "Spool", "SpoolEntry", "spool_path"]

SPOOL_PATH_VARIABLE = "KEFU_RASA_SPOOL_PATH"
DEFAULT_LEASE_SECONDS = 120.0
"""How long a claim on an entry lasts; a replayer that died is taken over after it."""

Kind = Literal["message", "events"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_until REAL,
    dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS spool_sender ON spool (sender_id, dead, id);
"""


def spool_path(environ: Mapping[str, str]) -> Path:
    """`KEFU_RASA_SPOOL_PATH`, else `KEFU_VAR_DIR/rasa/spool.db` (`var/rasa/spool.db`)."""
    explicit = environ.get(SPOOL_PATH_VARIABLE, "").strip()
    if explicit:
        return Path(explicit)
    return Path(environ.get("KEFU_VAR_DIR", "").strip() or "var") / "rasa" / "spool.db"


@dataclass(frozen=True)
class SpoolEntry:
    """One spooled item: a customer message, or the events of a turn whose save failed."""

    id: int
    sender_id: str
    kind: Kind
    received_at: float
    attempts: int
    text: str | None = None
    input_channel: str | None = None
    message_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class Spool:
    """The spool file. Nothing touches the disk until the first call."""

    def __init__(
        self,
        path: Path,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._ready = False

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (transactions are explicit), closed after use."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            if not self._ready:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
                self._ready = True
            connection.execute("PRAGMA synchronous=FULL")
            yield connection
        finally:
            connection.close()

    # ------------------------------------------------------------ writing

    def append_message(
        self,
        sender_id: str,
        text: str | None,
        input_channel: str | None,
        message_id: str | None,
        metadata: Mapping[str, Any] | None,
        reason: str,
        received_at: float | None = None,
    ) -> int:
        """Keeps a customer message; returns its entry id."""
        payload = {
            "text": text,
            "input_channel": input_channel,
            "message_id": message_id,
            "metadata": dict(metadata or {}),
        }
        return self._append(sender_id, "message", payload, reason, received_at)

    def append_events(self, sender_id: str, events: list[dict[str, Any]], reason: str) -> int:
        """Keeps the serialised events of a turn that was answered but not saved."""
        return self._append(sender_id, "events", {"events": events}, reason, None)

    def _append(
        self,
        sender_id: str,
        kind: Kind,
        payload: dict[str, Any],
        reason: str,
        received_at: float | None,
    ) -> int:
        body = json.dumps(payload, ensure_ascii=False, default=str)
        when = self.clock() if received_at is None else received_at
        with self._connection() as connection:
            cursor = connection.execute(
                "INSERT INTO spool (sender_id, kind, payload, received_at, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (sender_id, kind, body, when, reason[:500]),
            )
            return int(cursor.lastrowid or 0)

    # ------------------------------------------------------------ reading and replaying

    def senders(self) -> list[str]:
        """Senders with entries waiting, oldest first; [] without touching a missing file."""
        if not self.path.exists():
            return []
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT sender_id FROM spool WHERE dead = 0 GROUP BY sender_id ORDER BY MIN(id)"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def waiting(self, sender_id: str | None = None) -> int:
        """How many entries wait (of one sender, or of all)."""
        if not self.path.exists():
            return 0
        query = "SELECT COUNT(*) FROM spool WHERE dead = 0"
        arguments: tuple[str, ...] = ()
        if sender_id is not None:
            query += " AND sender_id = ?"
            arguments = (sender_id,)
        with self._connection() as connection:
            return int(connection.execute(query, arguments).fetchone()[0])

    def claim_next(self, sender_id: str) -> SpoolEntry | None:
        """Leases the sender's oldest waiting entry; None if there is none or it is leased."""
        now = self.clock()
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "SELECT id, kind, payload, received_at, attempts, claimed_until FROM spool"
                    " WHERE sender_id = ? AND dead = 0 ORDER BY id LIMIT 1",
                    (sender_id,),
                ).fetchone()
                if row is None or (row[5] is not None and row[5] > now):
                    connection.execute("COMMIT")
                    return None
                connection.execute(
                    "UPDATE spool SET claimed_until = ? WHERE id = ?",
                    (now + self.lease_seconds, row[0]),
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        payload = json.loads(row[2])
        return SpoolEntry(
            id=int(row[0]),
            sender_id=sender_id,
            kind="events" if row[1] == "events" else "message",
            received_at=float(row[3]),
            attempts=int(row[4]),
            text=payload.get("text"),
            input_channel=payload.get("input_channel"),
            message_id=payload.get("message_id"),
            metadata=dict(payload.get("metadata") or {}),
            events=list(payload.get("events") or []),
        )

    def done(self, entry_id: int) -> None:
        """Removes a replayed entry."""
        with self._connection() as connection:
            connection.execute("DELETE FROM spool WHERE id = ?", (entry_id,))

    def release(self, entry_id: int, failed: bool = False) -> None:
        """Gives a claimed entry back (counting a failed attempt if `failed`)."""
        with self._connection() as connection:
            connection.execute(
                "UPDATE spool SET claimed_until = NULL, attempts = attempts + ? WHERE id = ?",
                (1 if failed else 0, entry_id),
            )

    def bury(self, entry_id: int, reason: str) -> None:
        """Sets aside an entry that keeps failing: kept in the file, never replayed again."""
        with self._connection() as connection:
            connection.execute(
                "UPDATE spool SET dead = 1, claimed_until = NULL, reason = ? WHERE id = ?",
                (reason[:500], entry_id),
            )
