"""Desk accounts: argon2 password hashes, authentication and the login lockout.

Blocking SQLAlchemy: async callers run these methods in a thread (`asyncio.to_thread`).
Every authentication is recorded in `login_attempts`; the lockout reads recent failures
from there, so it holds across restarts and workers.

The lockout is keyed on (username, client address) and, with a higher limit, on the client
address alone: failures against one username from one address never lock that username out
from elsewhere, nor other usernames. `login` checks and records in one write transaction
(the attempt is recorded before the lockout is counted), so concurrent guesses cannot slip
past the limit. A password change or a disabled account ends the account's sessions.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import Agent, AgentRole, DeskSession, LoginAttempt, session_factory
from bot.core.settings import Settings

USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{3,40}")
MIN_PASSWORD_LENGTH = 10
DEMO_AGENT_USERNAME = "demo-agent"
DEMO_AGENT_DISPLAY_NAME = "演示客服 Demo Agent"
DEMO_EDITOR_USERNAME = "demo-editor"
DEMO_EDITOR_DISPLAY_NAME = "演示知识编辑 Demo Editor"
DEMO_SUPERVISOR_USERNAME = "supervisor"
DEMO_SUPERVISOR_DISPLAY_NAME = "演示主管 Demo Supervisor"
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]{1,188}\.[^@\s.]{2,}")
LEAD_ROLES = (AgentRole.supervisor, AgentRole.admin)
"""Who may be another account's team lead (`Agent.supervisor_id`)."""
CLIENT_FAILURE_FACTOR = 4
"""Failures from one client address (any usernames) allowed: this many times the per-user limit."""


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


def validate_email(email: str) -> str:
    """Returns `email` (trimmed, lower-cased) if it looks like an address; "" stays "" (none)."""
    email = email.strip().lower()
    if email and (len(email) > 254 or not EMAIL_PATTERN.fullmatch(email)):
        raise AccountError(f"Email {email!r} is not an email address.")
    return email


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoginOutcome:
    """What `AgentStore.login` found: the agent (None when refused) and any lockout wait."""

    agent: Agent | None
    retry_after: timedelta = timedelta(0)

    @property
    def locked(self) -> bool:
        """Whether the attempt was refused by the lockout (the password was not checked)."""
        return self.retry_after > timedelta(0)


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
        self,
        username: str,
        display_name: str,
        role: AgentRole | str,
        password: str,
        email: str = "",
        supervisor: str = "",
    ) -> Agent:
        """Creates an active account; `AccountError` for bad input or a taken username.

        `email` is where SLA alerts and follow-up tasks go (supervisors); "" for none.
        `supervisor` names the account's team lead (a supervisor or admin); "" for none.
        """
        validate_username(username)
        validate_password(password)
        email = validate_email(email)
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
            email=email or None,
        )
        try:
            with self._sessions() as session, session.begin():
                if supervisor:
                    agent.supervisor_id = self._lead(session, supervisor).id
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
        """Enables or disables an account; disabling ends every session of it."""
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            agent.active = active
            if not active:
                session.execute(delete(DeskSession).where(DeskSession.agent_id == agent.id))
        return agent

    def set_email(self, username: str, email: str) -> Agent:
        """Sets (or with "" clears) where an account's alerts and tasks are emailed."""
        email = validate_email(email)
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            agent.email = email or None
        return agent

    def set_supervisor(self, username: str, supervisor: str) -> Agent:
        """Makes `supervisor` (a supervisor or admin) `username`'s team lead; "" clears it.

        The team lead becomes the supervisor of tickets assigned to the account.
        """
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            if not supervisor:
                agent.supervisor_id = None
                return agent
            lead = self._lead(session, supervisor)
            if lead.id == agent.id:
                raise AccountError("An account cannot be its own supervisor.")
            agent.supervisor_id = lead.id
        return agent

    def supervisor_of(self, username: str) -> Agent | None:
        """The team lead of `username`, if it has one."""
        with self._sessions() as session:
            agent = self._existing(session, username)
            return session.get(Agent, agent.supervisor_id) if agent.supervisor_id else None

    def set_password(self, username: str, password: str, keep_session: str = "") -> Agent:
        """Replaces an account's password and ends its sessions.

        `keep_session` is the token hash of the session that made the change (it stays
        signed in); every other session of the account ends (an admin reset ends them all).
        """
        validate_password(password)
        with self._sessions() as session, session.begin():
            agent = self._existing(session, username)
            agent.password_hash = self._hasher.hash(password)
            ended = delete(DeskSession).where(DeskSession.agent_id == agent.id)
            if keep_session:
                ended = ended.where(DeskSession.token_hash != keep_session)
            session.execute(ended)
        return agent

    def verify_password(self, agent: Agent, password: str) -> bool:
        """Whether `password` is `agent`'s (no attempt is recorded)."""
        try:
            return self._hasher.verify(agent.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def login(
        self, username: str, password: str, client: str, now: datetime | None = None
    ) -> LoginOutcome:
        """A desk login: the lockout, then the password; the attempt is always recorded.

        In one write transaction the attempt is recorded (as a failure) and the recent
        failures of (username, client) and of client are counted, so concurrent attempts
        see each other. When the lockout applies the attempt is dropped again and the
        password is not checked; otherwise it is checked and a success is recorded.
        """
        now = now or _now()
        username, client = username[:80], client[:64]
        with self._sessions() as session, session.begin():
            self._lock_attempts(session, client)
            attempt = LoginAttempt(username=username, client=client, at=now, succeeded=False)
            session.add(attempt)
            session.flush()
            wait = self._wait(session, username, client, now, exclude=attempt.id)
            if wait > timedelta(0):
                session.delete(attempt)
        if wait > timedelta(0):
            return LoginOutcome(None, wait)
        agent = self._check(username, password)
        if agent is not None:
            with self._sessions() as session, session.begin():
                stored = session.get(LoginAttempt, attempt.id)
                if stored is not None:
                    stored.succeeded = True
                self._rehash(session, agent, password)
        return LoginOutcome(agent)

    def authenticate(
        self, username: str, password: str, client: str, now: datetime | None = None
    ) -> Agent | None:
        """The active account `username` if `password` is right, else None; always recorded.

        Unknown usernames cost the same work (a dummy hash is verified). A hash made with
        older parameters is replaced on success. No lockout applies (see `login`).
        """
        now = now or _now()
        agent = self._check(username, password)
        with self._sessions() as session, session.begin():
            session.add(
                LoginAttempt(
                    username=username[:80], client=client[:64], at=now, succeeded=agent is not None
                )
            )
            if agent is not None:
                self._rehash(session, agent, password)
        return agent

    def _check(self, username: str, password: str) -> Agent | None:
        agent = self.get(username)
        if agent is None:
            self._verify_dummy(password)
            return None
        return agent if self.verify_password(agent, password) and agent.active else None

    def _rehash(self, session: Session, agent: Agent, password: str) -> None:
        if self._hasher.check_needs_rehash(agent.password_hash):
            stored = session.get(Agent, agent.id)
            if stored is not None:
                stored.password_hash = agent.password_hash = self._hasher.hash(password)

    @staticmethod
    def _lock_attempts(session: Session, client: str) -> None:
        """Serialises logins: SQLite's first write takes its one write lock; PostgreSQL locks."""
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext('kefu-login'))"))

    def retry_after(self, username: str, client: str, now: datetime | None = None) -> timedelta:
        """How long `username` from `client` is locked out (zero when it is not).

        Locked once `max_failures` failures for that username from that client, or
        `CLIENT_FAILURE_FACTOR` times as many from that client for any usernames, fall within
        the window (failures before the username's last success from the client do not count).
        """
        with self._sessions() as session:
            return self._wait(session, username[:80], client[:64], now or _now())

    def _wait(
        self, session: Session, username: str, client: str, now: datetime, exclude: int = 0
    ) -> timedelta:
        waits = [timedelta(0)]
        pair = (LoginAttempt.username == username) & (LoginAttempt.client == client)
        keys: tuple[tuple[ColumnElement[bool], int, bool], ...] = (
            (pair, self.max_failures, True),
            (LoginAttempt.client == client, self.max_failures * CLIENT_FAILURE_FACTOR, False),
        )
        for where, limit, cleared_by_success in keys:
            since = now - self.window
            if cleared_by_success:
                last_success = session.scalar(
                    select(func.max(LoginAttempt.at)).where(
                        where, LoginAttempt.succeeded.is_(True), LoginAttempt.at > since
                    )
                )
                if last_success is not None:
                    since = last_success.replace(tzinfo=UTC)
            failures = list(
                session.scalars(
                    select(LoginAttempt.at)
                    .where(
                        where,
                        LoginAttempt.succeeded.is_(False),
                        LoginAttempt.at > since,
                        LoginAttempt.id != exclude,
                    )
                    .order_by(LoginAttempt.at.desc())
                    .limit(limit)
                )
            )
            if len(failures) >= limit:
                waits.append(failures[-1].replace(tzinfo=UTC) + self.window - now)
        return max(waits)

    def is_locked(self, username: str, client: str, now: datetime | None = None) -> bool:
        """Whether logins for `username` from `client` are refused for now."""
        return self.retry_after(username, client, now) > timedelta(0)

    def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, password)

    @classmethod
    def _lead(cls, session: Session, username: str) -> Agent:
        """The account `username` if it may lead a team; `AccountError` otherwise."""
        lead = cls._existing(session, username)
        if lead.role not in LEAD_ROLES:
            raise AccountError(
                f"{username!r} has the role {lead.role.value}: only a supervisor or admin "
                "can lead a team."
            )
        return lead

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


def seed_demo_supervisor(engine: Engine, settings: Settings) -> str:
    """`seed_demo_agent` for `supervisor`, a team lead, made `demo-agent`'s supervisor.

    `demo-agent` is seeded too if missing. Returns the supervisor's username.
    """
    username = seed_demo_agent(
        engine,
        settings,
        DEMO_SUPERVISOR_USERNAME,
        DEMO_SUPERVISOR_DISPLAY_NAME,
        AgentRole.supervisor,
    )
    AgentStore(engine).set_supervisor(seed_demo_agent(engine, settings), username)
    return username


def seed_demo_editor(engine: Engine, settings: Settings) -> str:
    """`seed_demo_agent` for `demo-editor`, a knowledge editor (the review queue)."""
    return seed_demo_agent(
        engine, settings, DEMO_EDITOR_USERNAME, DEMO_EDITOR_DISPLAY_NAME, AgentRole.editor
    )
