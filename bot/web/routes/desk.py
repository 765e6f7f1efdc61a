"""The agent desk: login, logout, the desk page and the signed-in agent (`/desk/...`).

Every route but the login form needs a session cookie: JSON routes answer 401 without
one, pages redirect to the login form. State-changing calls carry a CSRF token: the login
form a double-submit cookie, the others the session's token (form field or
`X-CSRF-Token` header). Database work runs in threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.accounts import AgentStore, SessionStore
from bot.core.db import Agent, AgentRole, DeskSession, make_engine
from bot.core.settings import Settings

router = APIRouter(prefix="/desk", tags=["desk"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

SESSION_COOKIE = "kefu_desk_session"
LOGIN_CSRF_COOKIE = "kefu_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 4096
DESK_CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class Desk:
    """The desk's stores, made on first use from the app's settings."""

    agents: AgentStore
    sessions: SessionStore


def get_desk(request: Request) -> Desk:
    """The app's desk stores (created once per app, on the first desk request)."""
    desk: Desk | None = getattr(request.app.state, "desk", None)
    if desk is None:
        settings: Settings = request.app.state.settings
        engine = make_engine(settings.database_url)
        desk = Desk(
            AgentStore.from_settings(engine, settings),
            SessionStore(engine, timedelta(hours=settings.desk_session_hours)),
        )
        request.app.state.desk = desk
    return desk


DeskDep = Annotated[Desk, Depends(get_desk)]


def optional_session(request: Request, desk: DeskDep) -> DeskSession | None:
    """The request's live desk session, if its cookie names one (sync: runs in a thread)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return desk.sessions.get(token) if token else None


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


def require_csrf(request: Request, session: SessionDep) -> DeskSession:
    """A dependency of state-changing API calls: `X-CSRF-Token` must be the session's token."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Missing or wrong CSRF token.")
    return session


CurrentAgent = Annotated[Agent, Depends(require_agent())]


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.env == "production"


def _page(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DESK_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form of `request` (first value of each field); 413 when too big."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "Form too large.")
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}


def _same(sent: str, expected: str) -> bool:
    return bool(sent) and secrets.compare_digest(sent.encode(), expected.encode())


def _login_page(
    request: Request, csrf: str, status_code: int = 200, error: str = "", username: str = ""
) -> Response:
    response = templates.TemplateResponse(
        request,
        "desk_login.html",
        {"csrf_token": csrf, "error": error, "username": username},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/desk",
    )
    return _page(response)


def _forbidden(request: Request) -> Response:
    return _page(
        templates.TemplateResponse(
            request, "desk_forbidden.html", {}, status_code=status.HTTP_403_FORBIDDEN
        )
    )


@router.get("/login", response_class=HTMLResponse, summary="The desk login form")
def login_form(request: Request) -> Response:
    """The login form, with a fresh double-submit CSRF token (cookie + hidden field)."""
    return _login_page(request, secrets.token_urlsafe(32))


@router.post("/login", response_class=HTMLResponse, summary="Sign in to the desk")
async def login(request: Request, desk: DeskDep) -> Response:
    """Checks the CSRF token, the lockout and the credentials; opens a session on success."""
    form = await _form(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _same(form.get("csrf_token", ""), cookie):
        return _forbidden(request)
    username = form.get("username", "").strip().lower()
    password = form.get("password", "")
    client = request.client.host if request.client else "unknown"
    wait = await asyncio.to_thread(desk.agents.retry_after, username, client)
    if wait > timedelta(0):
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        return _login_page(
            request,
            cookie,
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many failed attempts, try again in {minutes} minutes. "
            f"登录失败次数过多，请 {minutes} 分钟后再试。",
            username,
        )
    agent = await asyncio.to_thread(desk.agents.authenticate, username, password, client)
    if agent is None:
        return _login_page(
            request,
            cookie,
            status.HTTP_401_UNAUTHORIZED,
            "Wrong username or password. 用户名或密码错误。",
            username,
        )
    token, _ = await asyncio.to_thread(desk.sessions.create, agent.id)
    response = RedirectResponse("/desk", status.HTTP_303_SEE_OTHER)
    settings: Settings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.desk_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/desk",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/desk")
    return response


@router.post("/logout", response_class=HTMLResponse, summary="Sign out of the desk")
async def logout(request: Request, desk: DeskDep, session: OptionalSession) -> Response:
    """Ends the session (the form carries its CSRF token); 403 on a wrong token."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    form = await _form(request)
    if not _same(form.get("csrf_token", ""), session.csrf_token):
        return _forbidden(request)
    await asyncio.to_thread(desk.sessions.revoke, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/desk")
    return response


@router.get("", response_class=HTMLResponse, summary="The desk page")
def desk_page(request: Request, session: OptionalSession) -> Response:
    """The desk (the queue arrives with the handoff console); the login form without a session."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    return _page(
        templates.TemplateResponse(
            request, "desk.html", {"agent": session.agent, "csrf_token": session.csrf_token}
        )
    )


@router.get("/api/me", summary="The signed-in agent")
def me(agent: CurrentAgent) -> dict[str, str]:
    """The signed-in agent's username, display name and role; 401 without a session."""
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "role": agent.role.value,
    }
