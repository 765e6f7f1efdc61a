"""Desk accounts: argon2 password hashes, authentication and the login lockout.

Blocking SQLAlchemy: async callers run these methods in a thread (`asyncio.to_thread`).
Every authentication is recorded in `login_attempts`; the lockout reads recent failures
from there, so it holds across restarts and workers.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import Agent, AgentRole, LoginAttempt, session_factory
from bot.core.settings import Settings

USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{3,40}")
MIN_PASSWORD_LENGTH = 10
DEMO_AGENT_USERNAME = "demo-agent"
DEMO_AGENT_DISPLAY_NAME = "演示客服 Demo Agent"
DEMO_EDITOR_USERNAME = "demo-editor"
DEMO_EDITOR_DISPLAY_NAME = "演示知识编辑 Demo Editor"


class AccountError(ValueError):
    """A desk account cannot be created or changed as asked."""


def validate_username(username: str) -> str:
    """Returns `username` if it is 3-40 characters of a-z, 0-9, '.', '_' and '-'."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise AccountError(
            f"Username {username!r} is invalid: use 3-40 characters of a-z, 0-9, '.', '_', '-'."
        )
    return username


def validate_password(password: str) -> str:
    """Returns `password` if it is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def _now() -> datetime:
    return datetime.now(UTC)


class AgentStore:
    """Desk accounts in the app database."""

    def __init__(
        self,
        engine: Engine,
        hasher: PasswordHasher | None = None,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self._sessions = session_factory(engine)
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        self.max_failures = max_failures
        self.window = window

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> AgentStore:
        """A store with the lockout of `settings`."""
        return cls(
            engine,
            max_failures=settings.desk_login_max_failures,
            window=timedelta(minutes=settings.desk_login_window_minutes),
        )

    def create(
        self, username: str, display_name: str, role: AgentRole | str, password: str
    ) -> Agent:
        """Creates an active account; `AccountError` for bad input or a taken username."""
        validate_username(username)
        validate_password(password)
        display_name = display_name.strip()
        if not display_name or len(display_name) > 80:
            raise AccountError("The display name must have 1-80 characters.")
        try:
            role = AgentRole(role)
        except ValueError as error:
            roles = ", ".join(r.value for r in AgentRole)
            raise AccountError(f"Unknown role {role!r}: use one of {roles}.") from error
        agent = Agent(
            username=username,
            display_name=display_name,
            role=role,
            password_hash=self._hasher.hash(password),
            active=True,
            created_at=_now(),
        )
        try:
            with self._sessions() as session, session.begin():
                session.add(agent)
        except IntegrityError as error:
            raise AccountError(f"Username {username!r} is taken.") from error
        return agent

    def get(self, username: str) -> Agent | None:
        """The account named `username`, if any."""
        with self._sessions() as session:
            return session.scalar(select(Agent).where(Agent.username == username))

    def list(self) -> list[Agent]:
        """Every account, by username."""
        with self._sessions() as session:
            return list(session.scalars(select(Agent).order_by(Agent.username)))

    def set_active(self, username: str, active: bool) -> Agent:
        """Enables or disables an account (a disabled one cannot log in or use its sessions)."""
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            agent.active = active
        return agent

    def set_password(self, username: str, password: str) -> Agent:
        """Replaces an account's password."""
        validate_password(password)
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            agent.password_hash = self._hasher.hash(password)
        return agent

    def verify_password(self, agent: Agent, password: str) -> bool:
        """Whether `password` is `agent`'s (no attempt is recorded)."""
        try:
            return self._hasher.verify(agent.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def authenticate(
        self, username: str, password: str, client: str, now: datetime | None = None
    ) -> Agent | None:
        """The active account `username` if `password` is right, else None; always recorded.

        Unknown usernames cost the same work (a dummy hash is verified). A hash made with
        older parameters is replaced on success.
        """
        now = now or _now()
        agent = self.get(username)
        if agent is None:
            self._verify_dummy(password)
            ok = False
        else:
            ok = self.verify_password(agent, password) and agent.active
        with self._sessions() as session, session.begin():
            session.add(
                LoginAttempt(username=username[:80], client=client[:64], at=now, succeeded=ok)
            )
            if ok and agent is not None and self._hasher.check_needs_rehash(agent.password_hash):
                stored = session.get(Agent, agent.id)
                if stored is not None:
                    stored.password_hash = agent.password_hash = self._hasher.hash(password)
        return agent if ok else None

    def retry_after(self, username: str, client: str, now: datetime | None = None) -> timedelta:
        """How long `username` / `client` is locked out (zero when it is not).

        Locked once `max_failures` failures for that username or that client fall within
        the window (failures before the key's last success do not count).
        """
        now = now or _now()
        waits = [timedelta(0)]
        with self._sessions() as session:
            keys = ((LoginAttempt.username, username[:80]), (LoginAttempt.client, client[:64]))
            for column, value in keys:
                since = now - self.window
                last_success = session.scalar(
                    select(func.max(LoginAttempt.at)).where(
                        column == value, LoginAttempt.succeeded.is_(True), LoginAttempt.at > since
                    )
                )
                if last_success is not None:
                    since = last_success.replace(tzinfo=UTC)
                failures = list(
                    session.scalars(
                        select(LoginAttempt.at)
                        .where(
                            column == value,
                            LoginAttempt.succeeded.is_(False),
                            LoginAttempt.at > since,
                        )
                        .order_by(LoginAttempt.at.desc())
                        .limit(self.max_failures)
                    )
                )
                if len(failures) >= self.max_failures:
                    waits.append(failures[-1] + self.window - now)
        return max(waits)

    def is_locked(self, username: str, client: str, now: datetime | None = None) -> bool:
        """Whether logins for `username` or from `client` are refused for now."""
        return self.retry_after(username, client, now) > timedelta(0)

    def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, password)

    @staticmethod
    def _existing(session: Session, username: str) -> Agent:
        agent = session.scalar(select(Agent).where(Agent.username == username))
        if agent is None:
            raise AccountError(f"No agent named {username!r}.")
        return agent


def seed_demo_agent(
    engine: Engine,
    settings: Settings,
    username: str = DEMO_AGENT_USERNAME,
    display_name: str = DEMO_AGENT_DISPLAY_NAME,
    role: AgentRole = AgentRole.agent,
) -> str:
    """Creates (or re-enables and re-passwords) `demo-agent` (or another demo login).

    Its password is `settings.demo_agent_password`; `AccountError` when that is empty
    (production settings have no demo password). Returns the username.
    """
    password = settings.demo_agent_password
    if not password:
        raise AccountError("No demo agent password is configured (KEFU_DEMO_AGENT_PASSWORD).")
    store = AgentStore(engine)
    agent = store.get(username)
    if agent is None:
        store.create(username, display_name, role, password)
        return username
    if not store.verify_password(agent, password):
        store.set_password(username, password)
    if not agent.active:
        store.set_active(username, True)
    return username


def seed_demo_editor(engine: Engine, settings: Settings) -> str:
    """`seed_demo_agent` for `demo-editor`, a knowledge editor (the review queue)."""
    return seed_demo_agent(
        engine, settings, DEMO_EDITOR_USERNAME, DEMO_EDITOR_DISPLAY_NAME, AgentRole.editor
    )
