"""The web service's FastAPI dependencies; routes take them from here, never from each other.

The app's engine, stores and services; the signed-in agent; CSRF and body limits.

Everything an app owns lives on `app.state`: `create_app` puts the settings and the one
engine there; the stores and services are made from them on first use (tests may set
`desk_service`, `review_queue` or `review_encoder` beforehand).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from bot.accounts import AgentStore, SessionStore
from bot.core.db import Agent, AgentRole, DeskSession
from bot.core.settings import Settings
from bot.editor.review import ReviewQueue, default_encoder
from bot.handoff.service import DeskService
from knowledge_index import Encoder, KnowledgeIndexError

SESSION_COOKIE = "kefu_desk_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY_BYTES = 16 * 1024
"""The largest JSON body a desk call takes (a 2,000-character reply is at most 8 KB)."""
EDITOR_ROLES = (AgentRole.editor, AgentRole.admin)
"""Who may use the review queue."""


# ---------------------------------------------------------------------- app resources
def app_settings(connection: HTTPConnection) -> Settings:
    """The app's settings."""
    settings: Settings = connection.app.state.settings
    return settings


def app_engine(connection: HTTPConnection) -> Engine:
    """The app database's engine: one per app, made by `create_app`."""
    engine: Engine = connection.app.state.engine
    return engine


@dataclass(frozen=True)
class Accounts:
    """The desk's agent accounts and sign-in sessions."""

    agents: AgentStore
    sessions: SessionStore


def get_accounts(connection: HTTPConnection) -> Accounts:
    """The app's account stores (made once per app, on the first desk request)."""
    accounts: Accounts | None = getattr(connection.app.state, "accounts", None)
    if accounts is None:
        settings = app_settings(connection)
        engine = app_engine(connection)
        accounts = Accounts(
            AgentStore.from_settings(engine, settings),
            SessionStore(engine, timedelta(hours=settings.desk_session_hours)),
        )
        connection.app.state.accounts = accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def get_service(connection: HTTPConnection) -> DeskService:
    """The app's desk service (made by the app's lifespan, or here on first use)."""
    service: DeskService | None = getattr(connection.app.state, "desk_service", None)
    if service is None:
        service = DeskService.from_settings(app_settings(connection), app_engine(connection))
        connection.app.state.desk_service = service
    return service


Service = Annotated[DeskService, Depends(get_service)]


def shared_encoder(app: Any) -> Encoder:
    """The encoder of the desk's knowledge base if it has one loaded, else the review's own."""
    service = getattr(app.state, "desk_service", None)
    if service is not None:
        try:
            encoder: Encoder = service.knowledge_base.index.encoder
            return encoder
        except (KnowledgeIndexError, AttributeError):
            pass
    return default_encoder()


def get_review(connection: HTTPConnection) -> ReviewQueue:
    """The app's review queue (made on first use; `app.state.review_encoder` overrides)."""
    queue: ReviewQueue | None = getattr(connection.app.state, "review_queue", None)
    if queue is None:
        app = connection.app
        encoder: Encoder | Callable[[], Encoder] = getattr(app.state, "review_encoder", None) or (
            lambda: shared_encoder(app)
        )
        queue = ReviewQueue(app_engine(connection), app_settings(connection), encoder)
        app.state.review_queue = queue
    return queue


Review = Annotated[ReviewQueue, Depends(get_review)]


# ---------------------------------------------------------------------- the signed-in agent
def optional_session(connection: HTTPConnection, accounts: AccountsDep) -> DeskSession | None:
    """The request's live desk session, if its cookie names one (sync: runs in a thread)."""
    token = connection.cookies.get(SESSION_COOKIE, "")
    return accounts.sessions.get(token) if token else None


OptionalSession = Annotated[DeskSession | None, Depends(optional_session)]


def require_session(session: OptionalSession) -> DeskSession:
    """The live desk session; 401 without one."""
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in to the desk first.")
    return session


SessionDep = Annotated[DeskSession, Depends(require_session)]


def require_agent(*roles: AgentRole) -> Callable[[DeskSession], Agent]:
    """A dependency: the signed-in agent (401 without a session, 403 without one of `roles`)."""

    def dependency(session: SessionDep) -> Agent:
        if roles and session.agent.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Your role may not do this.")
        return session.agent

    return dependency


CurrentAgent = Annotated[Agent, Depends(require_agent())]
Editor = Annotated[Agent, Depends(require_agent(*EDITOR_ROLES))]


# ---------------------------------------------------------------------- guards of changes
def require_csrf(request: Request, session: SessionDep) -> DeskSession:
    """A dependency of state-changing API calls: `X-CSRF-Token` must be the session's token."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Missing or wrong CSRF token.")
    return session


async def limit_body(request: Request) -> None:
    """413 for a body over `MAX_BODY_BYTES` (by its declared length, then its real one)."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "The request is too large.")
    if len(await request.body()) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "The request is too large.")


Csrf = Depends(require_csrf)
"""For `dependencies=[...]` of state-changing calls."""
Limited = Depends(limit_body)
"""For `dependencies=[...]` of calls with a JSON body."""
