"""Signing in to the desk, out again, and who is signed in.

Routes: `/desk/login`, `/desk/logout`, `/desk/api/me`, `/desk/api/me/password`.

The login form carries a double-submit CSRF token (cookie + hidden field), the logout form
the session's token. Database work runs in threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.accounts import AccountError
from bot.core.db import DeskSession
from bot.web.deps import (
    SESSION_COOKIE,
    AccountsDep,
    CurrentAgent,
    Limited,
    OptionalSession,
    app_settings,
    client_address,
    require_csrf,
)
from bot.web.pages import desk_page, templates

router = APIRouter(prefix="/desk", tags=["desk sessions"])

LOGIN_CSRF_COOKIE = "kefu_login_csrf"
MAX_FORM_BYTES = 4096


def _secure(request: Request) -> bool:
    return app_settings(request).env == "production"


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
    return desk_page(response)


def _forbidden(request: Request) -> Response:
    return desk_page(
        templates.TemplateResponse(
            request, "desk_forbidden.html", {}, status_code=status.HTTP_403_FORBIDDEN
        )
    )


@router.get("/login", response_class=HTMLResponse, summary="The desk login form")
def login_form(request: Request) -> Response:
    """The login form, with a fresh double-submit CSRF token (cookie + hidden field)."""
    return _login_page(request, secrets.token_urlsafe(32))


@router.post("/login", response_class=HTMLResponse, summary="Sign in to the desk")
async def login(request: Request, accounts: AccountsDep) -> Response:
    """Checks the CSRF token, the lockout and the credentials; opens a session on success.

    The lockout counts failures per (username, client address) and per client address, the
    address being `client_address` (X-Forwarded-For only from trusted proxies).
    """
    form = await _form(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _same(form.get("csrf_token", ""), cookie):
        return _forbidden(request)
    username = form.get("username", "").strip().lower()
    password = form.get("password", "")
    client = client_address(request)
    outcome = await asyncio.to_thread(accounts.agents.login, username, password, client)
    if outcome.locked:
        minutes = max(1, math.ceil(outcome.retry_after.total_seconds() / 60))
        return _login_page(
            request,
            cookie,
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many failed attempts, try again in {minutes} minutes. "
            f"登录失败次数过多，请 {minutes} 分钟后再试。",
            username,
        )
    agent = outcome.agent
    if agent is None:
        return _login_page(
            request,
            cookie,
            status.HTTP_401_UNAUTHORIZED,
            "Wrong username or password. 用户名或密码错误。",
            username,
        )
    token, _ = await asyncio.to_thread(accounts.sessions.create, agent.id)
    response = RedirectResponse("/desk", status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(app_settings(request).desk_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/desk",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/desk")
    return response


@router.post("/logout", response_class=HTMLResponse, summary="Sign out of the desk")
async def logout(request: Request, accounts: AccountsDep, session: OptionalSession) -> Response:
    """Ends the session (the form carries its CSRF token); 403 on a wrong token."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    form = await _form(request)
    if not _same(form.get("csrf_token", ""), session.csrf_token):
        return _forbidden(request)
    await asyncio.to_thread(accounts.sessions.revoke, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/desk")
    return response


@router.get("/api/me", summary="The signed-in agent")
def me(agent: CurrentAgent) -> dict[str, str]:
    """The signed-in agent's username, display name and role; 401 without a session."""
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "role": agent.role.value,
    }


class PasswordBody(BaseModel):
    """The agent's own password change: the current password and the new one."""

    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


@router.post(
    "/api/me/password",
    summary="Change the signed-in agent's password",
    dependencies=[Limited],
)
async def change_password(
    request: Request,
    body: PasswordBody,
    accounts: AccountsDep,
    session: Annotated[DeskSession, Depends(require_csrf)],
) -> dict[str, str]:
    """Checks the current password, sets the new one and ends the agent's other sessions.

    403 for a wrong current password (the attempt counts towards the login lockout), 422 for
    a new password that is too short.
    """
    agent = session.agent
    client = client_address(request)
    outcome = await asyncio.to_thread(
        accounts.agents.login, agent.username, body.current_password, client
    )
    if outcome.locked:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "Too many failed attempts.")
    if outcome.agent is None or outcome.agent.id != agent.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "The current password is wrong.")
    try:
        await asyncio.to_thread(
            accounts.agents.set_password,
            agent.username,
            body.new_password,
            session.token_hash,
        )
    except AccountError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return {"status": "changed"}
