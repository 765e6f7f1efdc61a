"""The web service's FastAPI dependencies; routes take them from here, never from each other.

The app's engine, stores and services; the client's address; the signed-in agent and its
role; CSRF and body limits.

Roles: the console (conversations, packets, claims, replies) is for agents and admins
(`Console`); tickets, alerts and the live WebSocket for agents, supervisors and admins
(`TicketDesk`); the review queue and knowledge for editors and admins (`Editor`). Which
handoffs an agent may see is decided per handoff by `DeskService`, which tickets by
`CaseWork`.

Everything an app owns lives on `app.state`: `create_app` puts the settings and the one
engine there; the stores and services are made from them on first use (tests may set
`desk_service`, `casework`, `deliverer`, `review_queue` or `review_encoder` beforehand).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from bot.accounts import AgentStore, SessionStore
from bot.casework import CaseWork
from bot.core.db import Agent, AgentRole, DeskSession
from bot.core.settings import Settings
from bot.editor.review import ReviewQueue, default_encoder
from bot.handoff.service import DeskService
from bot.service.policy import load_policy
from knowledge_index import Encoder, KnowledgeIndexError

SESSION_COOKIE = "kefu_desk_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY_BYTES = 16 * 1024
"""The largest JSON body a desk call takes (a 2,000-character reply is at most 8 KB)."""
EDITOR_ROLES = (AgentRole.editor, AgentRole.admin)
"""Who may use the review queue."""
CONSOLE_ROLES = (AgentRole.agent, AgentRole.admin)
"""Who may use the console: conversations, packets, claims and replies."""
TICKET_ROLES = (AgentRole.agent, AgentRole.supervisor, AgentRole.admin)
"""Who may use tickets, desk alerts and the live WebSocket (agents only their own tickets)."""
LEAD_ROLES = (AgentRole.supervisor, AgentRole.admin)
"""Who sees every ticket and records second follow-ups."""


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


def _address(value: str) -> str:
    """`value` as a normalised IP address ("" when it is none, e.g. "unknown" or garbage)."""
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "1.2.3.4:5678"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def client_address(connection: HTTPConnection) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies (`settings.trusted_proxy_addresses`) it is the right-most address
    of `X-Forwarded-For` that is not itself a trusted proxy; the header of an untrusted peer
    is ignored (anyone can send one).
    """
    peer = connection.client.host if connection.client else ""
    address = _address(peer) or peer or "unknown"
    trusted = {
        _address(proxy) or proxy for proxy in app_settings(connection).trusted_proxy_addresses
    }
    if address not in trusted:
        return address
    hops = [
        hop.strip()
        for header in connection.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
    ]
    for hop in reversed([hop for hop in hops if hop]):
        hop_address = _address(hop)
        if not hop_address:
            return hop[:64]  # garbage from beyond the proxies: still one client's key
        if hop_address not in trusted:
            return hop_address
    return address


def get_service(connection: HTTPConnection) -> DeskService:
    """The app's desk service (made by the app's lifespan, or here on first use)."""
    service: DeskService | None = getattr(connection.app.state, "desk_service", None)
    if service is None:
        service = DeskService.from_settings(app_settings(connection), app_engine(connection))
        connection.app.state.desk_service = service
    return service


Service = Annotated[DeskService, Depends(get_service)]


def casework_of(app: Any) -> CaseWork:
    """`app`'s ticket casework (made on first use, on its engine, with the service policy)."""
    casework: CaseWork | None = getattr(app.state, "casework", None)
    if casework is None:
        casework = CaseWork(app.state.engine, load_policy())
        app.state.casework = casework
    return casework


def get_casework(connection: HTTPConnection) -> CaseWork:
    """The app's ticket casework (`casework_of`)."""
    return casework_of(connection.app)


Cases = Annotated[CaseWork, Depends(get_casework)]


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
"""Any signed-in account (agent, editor or admin)."""
Editor = Annotated[Agent, Depends(require_agent(*EDITOR_ROLES))]
"""An editor or admin: the review queue and knowledge."""
Console = Annotated[Agent, Depends(require_agent(*CONSOLE_ROLES))]
"""An agent or admin: the console's conversations."""
TicketDesk = Annotated[Agent, Depends(require_agent(*TICKET_ROLES))]
"""An agent, supervisor or admin: tickets, alerts and follow-up tasks."""
Lead = Annotated[Agent, Depends(require_agent(*LEAD_ROLES))]
"""A supervisor or admin: recording second follow-ups."""


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
