"""Desk login sessions: a random cookie token, stored only as its SHA-256, plus a CSRF token.

Blocking SQLAlchemy: async callers run these methods in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from bot.core.db import DeskSession, session_factory


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a session token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Desk sessions in the app database; each lasts `lifetime` from login."""

    def __init__(self, engine: Engine, lifetime: timedelta = timedelta(hours=12)) -> None:
        self._sessions = session_factory(engine)
        self.lifetime = lifetime

    def create(self, agent_id: int, now: datetime | None = None) -> tuple[str, str]:
        """Opens a session for `agent_id`; returns (session token, CSRF token)."""
        now = now or datetime.now(UTC)
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._sessions() as session, session.begin():
            session.add(
                DeskSession(
                    token_hash=hash_token(token),
                    agent_id=agent_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=now + self.lifetime,
                    last_seen_at=now,
                )
            )
        return token, csrf_token

    def get(self, token: str, now: datetime | None = None) -> DeskSession | None:
        """The live session of `token` (with its agent), None when unknown, expired or inactive.

        Records the visit in `last_seen_at`.
        """
        if not token:
            return None
        now = now or datetime.now(UTC)
        with self._sessions() as session, session.begin():
            found = session.scalar(
                select(DeskSession).where(DeskSession.token_hash == hash_token(token))
            )
            if found is None or found.expires_at <= now or not found.agent.active:
                return None
            found.last_seen_at = now
        return found

    def is_live(self, token: str, now: datetime | None = None) -> bool:
        """Whether `token` still names a live session (read only: `last_seen_at` stays)."""
        if not token:
            return False
        now = now or datetime.now(UTC)
        with self._sessions() as session:
            found = session.scalar(
                select(DeskSession).where(DeskSession.token_hash == hash_token(token))
            )
            return found is not None and found.expires_at > now and found.agent.active

    def revoke(self, token: str) -> None:
        """Ends the session of `token` (nothing happens for an unknown token)."""
        with self._sessions() as session, session.begin():
            session.execute(delete(DeskSession).where(DeskSession.token_hash == hash_token(token)))
